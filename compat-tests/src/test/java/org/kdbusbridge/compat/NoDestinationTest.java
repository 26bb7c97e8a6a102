package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Messages other than signals without a DESTINATION field: dbus-daemon's connection layer
 * answers a method call itself (Peer.Ping, Peer.GetMachineId, else UnknownMethod, with
 * libdbus's texts, NO_REPLY_EXPECTED or not, before Hello too), drops a reply or error, and
 * routes neither to match rules. The answer has neither SENDER nor DESTINATION. The one
 * deliberate difference (docs/compatibility.md): our monitors see the call and the answer.
 */
class NoDestinationTest {
    private static final String PEER = "org.freedesktop.DBus.Peer";
    private static final String UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod";

    private static Message unaddressed(String path, String iface, String member) {
        return Message.call(null, path, iface, member);
    }

    /** The bus's answer to an unaddressed call, as libdbus sends it. */
    private static void assertBare(Message answer) {
        assertNull(answer.sender, "no SENDER: " + answer);
        assertNull(answer.destination, "no DESTINATION: " + answer);
        assertEquals(Message.FLAG_NO_REPLY_EXPECTED, answer.flags & Message.FLAG_NO_REPLY_EXPECTED, answer.toString());
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void callsWithoutDestinationAreAnsweredByTheBus(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start(); RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            Message ping = c.call(unaddressed("/", PEER, "Ping"), Buses.SHORT);
            assertEquals(Message.METHOD_RETURN, ping.type, ping.toString());
            assertEquals("", ping.signature);
            assertBare(ping);

            Message id = c.call(unaddressed("/", PEER, "GetMachineId"), Buses.SHORT);
            assertEquals(Message.METHOD_RETURN, id.type, id.toString());
            assertBare(id);
            Message busId = c.call(Message.call(RawClient.BUS, RawClient.BUS_PATH, PEER, "GetMachineId"), Buses.SHORT);
            assertEquals(busId.arg(0), id.arg(0), "the same machine id as the driver's");

            Message bogus = c.call(unaddressed("/", PEER, "Bogus"), Buses.SHORT);
            assertEquals(UNKNOWN_METHOD, bogus.errorName, bogus.toString());
            assertEquals("Unknown method invoked on org.freedesktop.DBus.Peer interface", bogus.arg(0));
            assertBare(bogus);

            Message foo = c.call(unaddressed("/com/example", "com.example.X", "Foo").body("su", "hi", 7L), Buses.SHORT);
            assertEquals(UNKNOWN_METHOD, foo.errorName, foo.toString());
            assertEquals("Method \"Foo\" with signature \"su\" on interface \"com.example.X\" doesn't exist\n", foo.arg(0));
            assertBare(foo);

            Message noIface = c.call(unaddressed("/", null, "Ping"), Buses.SHORT);
            assertEquals(UNKNOWN_METHOD, noIface.errorName, "Ping needs the Peer interface: " + noIface);
            assertEquals("Method \"Ping\" with signature \"\" on interface \"(null)\" doesn't exist\n", noIface.arg(0));

            // dbus-daemon answers whatever NO_REPLY_EXPECTED says.
            Message quiet = c.call(unaddressed("/com/example", "com.example.X", "Foo")
                    .flags(Message.FLAG_NO_REPLY_EXPECTED), Buses.SHORT);
            assertEquals(UNKNOWN_METHOD, quiet.errorName, quiet.toString());
            Message quietPing = c.call(unaddressed("/", PEER, "Ping").flags(Message.FLAG_NO_REPLY_EXPECTED), Buses.SHORT);
            assertEquals(Message.METHOD_RETURN, quietPing.type, quietPing.toString());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void matchRulesNeverSeeThemAndRepliesWithoutDestinationAreDropped(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start();
             RawClient eavesdropper = RawClient.connectHello(bus.address(), Buses.T);
             RawClient watcher = RawClient.connectHello(bus.address(), Buses.T);
             RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(Message.METHOD_RETURN, eavesdropper.callBus("AddMatch", Buses.T, "s", "eavesdrop='true'").type);
            for (String rule : List.of("type='method_call'", "type='method_return'", "type='error'")) {
                assertEquals(Message.METHOD_RETURN, watcher.callBus("AddMatch", Buses.T, "s", rule).type);
            }
            assertEquals(Message.METHOD_RETURN, c.call(unaddressed("/", PEER, "Ping"), Buses.SHORT).type);
            assertEquals(UNKNOWN_METHOD, c.call(unaddressed("/x", "com.example.X", "Foo"), Buses.SHORT).errorName);
            Message ret = new Message();
            ret.type = Message.METHOD_RETURN;
            ret.replySerial = 1;
            c.send(ret);
            Message err = new Message();
            err.type = Message.ERROR;
            err.replySerial = 1;
            err.errorName = "com.example.Error";
            c.send(err);
            // A signal still goes to everyone with a rule: once it arrives, nothing sent before it is pending.
            Message sig = new Message();
            sig.type = Message.SIGNAL;
            sig.path = "/x";
            sig.iface = "com.example.X";
            sig.member = "Marker";
            c.send(sig);
            assertNotNull(eavesdropper.awaitSignal("Marker", Buses.SHORT), String.join("\n", eavesdropper.transcript()));
            c.sync(Buses.SHORT);
            watcher.sync(Buses.SHORT);
            for (RawClient r : List.of(eavesdropper, watcher)) {
                assertFalse(r.messages().stream().anyMatch(m -> c.uniqueName().equals(m.sender) && m.destination == null
                                && m.type != Message.SIGNAL),
                        "match rules see none of them:\n" + String.join("\n", r.transcript()));
            }
            assertFalse(c.messages().stream().anyMatch(m -> m.replySerial == 1 && m.type == Message.ERROR),
                    "a dropped reply gets no error\n" + String.join("\n", c.transcript()));
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void beforeHelloTheyAreAnsweredTooAndBreakNoRule(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start(); RawClient c = RawClient.connect(bus.address(), Buses.T)) {
            Message ping = c.call(unaddressed("/", PEER, "Ping"), Buses.SHORT);
            assertEquals(Message.METHOD_RETURN, ping.type, ping.toString());
            assertBare(ping);
            Message foo = c.call(unaddressed("/", "com.example.X", "Foo"), Buses.SHORT);
            assertEquals(UNKNOWN_METHOD, foo.errorName, foo.toString());
            assertTrue(c.hello(Buses.T).startsWith(":1."), "still allowed to register");
        }
    }

    /** libdbus's dbus-send without --dest: an answer, not its reply timeout. */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void dbusSendWithoutDestGetsAnAnswer(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            Cmd.Result ping = Cmd.run(List.of("dbus-send", "--bus=" + bus.address(), "--print-reply", "--reply-timeout=5000",
                    "/", PEER + ".Ping"), Buses.T);
            assertTrue(ping.ok(), ping.describe());
            assertTrue(ping.stdout().contains("sender=(null sender) -> destination=(null destination)"), ping.describe());
            Cmd.Result foo = Cmd.run(List.of("dbus-send", "--bus=" + bus.address(), "--print-reply", "--reply-timeout=5000",
                    "/x", "com.example.X.Foo", "string:hi"), Buses.T);
            assertFalse(foo.ok(), foo.describe());
            assertTrue(foo.stderr().contains("Error " + UNKNOWN_METHOD
                    + ": Method \"Foo\" with signature \"s\" on interface \"com.example.X\" doesn't exist"), foo.describe());
        }
    }

    /**
     * dbus-daemon shows monitors none of it (its own FIXME in bus/dispatch.c: these never reach
     * its dispatcher); we show the call and the bus's answer, like every other message.
     */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void monitorsSeeTheCallAndTheAnswerOnOurBusOnly(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start();
             RawClient mon = RawClient.connectHello(bus.address(), Buses.T);
             RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(Message.METHOD_RETURN, MonitorTest.becomeMonitor(mon, List.of(), 0).type);
            long serial = c.send(unaddressed("/", PEER, "Ping"));
            assertEquals(Message.METHOD_RETURN, c.awaitReply(serial, Buses.SHORT).type);
            // A marker the monitor sees on both buses: everything before it has been captured.
            Message marker = new Message();
            marker.type = Message.SIGNAL;
            marker.path = "/x";
            marker.iface = "com.example.X";
            marker.member = "Marker";
            c.send(marker);
            assertNotNull(mon.awaitSignal("Marker", Buses.SHORT), String.join("\n", mon.transcript()));
            boolean sawCall = mon.messages().stream().anyMatch(m -> m.type == Message.METHOD_CALL && "Ping".equals(m.member)
                    && m.destination == null && c.uniqueName().equals(m.sender));
            boolean sawAnswer = mon.messages().stream().anyMatch(m -> m.type == Message.METHOD_RETURN
                    && m.replySerial == serial && m.sender == null);
            boolean ours = kind == BusKind.KDBUS_BRIDGE;
            assertEquals(ours, sawCall, String.join("\n", mon.transcript()));
            assertEquals(ours, sawAnswer, String.join("\n", mon.transcript()));
        }
    }
}
