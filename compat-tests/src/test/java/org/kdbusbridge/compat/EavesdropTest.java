package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Old-style monitoring (what dbus-monitor falls back to): with the stock session policy, a
 * rule with eavesdrop='true' sees a method call between two other peers; the same rule
 * without it does not. Both buses must agree.
 */
class EavesdropTest {
    private static final String IFACE = "com.example.Eavesdrop";

    private static Message signal(String member) {
        Message m = new Message();
        m.type = Message.SIGNAL;
        m.path = "/p";
        m.iface = IFACE;
        m.member = member;
        return m;
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void eavesdropRuleSeesOtherPeersCalls(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start();
             RawClient spy = RawClient.connectHello(bus.address(), Buses.T);
             RawClient plain = RawClient.connectHello(bus.address(), Buses.T);
             RawClient callee = RawClient.connectHello(bus.address(), Buses.T);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T)) {
            for (RawClient c : new RawClient[] {spy, plain}) {
                String rule = (c == spy ? "eavesdrop='true'," : "") + "type='method_call'";
                assertEquals(Message.METHOD_RETURN, c.callBus("AddMatch", Buses.T, "s", rule).type);
                assertEquals(Message.METHOD_RETURN, c.callBus("AddMatch", Buses.T, "s",
                        "type='signal',interface='" + IFACE + "',member='Done'").type);
            }
            caller.send(Message.call(callee.uniqueName(), "/p", IFACE, "Secret").body("s", "psst")
                    .flags(Message.FLAG_NO_REPLY_EXPECTED));
            assertNotNull(callee.await(m -> "Secret".equals(m.member), Buses.T, false), "the callee got it");
            caller.send(signal("Done")); // after the call in the bus's single order
            assertNotNull(spy.awaitSignal("Done", Buses.T));
            assertNotNull(plain.awaitSignal("Done", Buses.T));

            Message seen = spy.await(m -> "Secret".equals(m.member), Buses.SHORT, false);
            assertNotNull(seen, "eavesdropper saw the call\n" + String.join("\n", spy.transcript()));
            assertEquals(caller.uniqueName(), seen.sender);
            assertEquals(callee.uniqueName(), seen.destination, "delivered unchanged, destination intact");
            assertEquals("psst", seen.arg(0));
            assertNull(plain.await(m -> "Secret".equals(m.member), java.time.Duration.ZERO, false),
                    "no eavesdrop, no call\n" + String.join("\n", plain.transcript()));
        }
    }
}
