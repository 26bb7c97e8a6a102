package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.Fixtures.call;
import static org.kdbusbridge.core.Fixtures.drain;
import static org.kdbusbridge.core.Fixtures.reply;
import static org.kdbusbridge.core.Fixtures.signal;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.policy.ConnectionPolicy;
import org.kdbusbridge.core.policy.PolicyQuery;
import org.kdbusbridge.core.policy.PolicyRule;
import org.kdbusbridge.core.policy.PolicyRuleParser;

/** Where the bus applies the compiled policies: unicast, broadcast, eavesdropping, the driver, activation. */
class BusPolicyTest {
    private static final String NAME = "com.example.A";
    private Bus bus;
    private final List<String> logged = new ArrayList<>();
    private final List<String> started = new ArrayList<>();

    /** Builds a policy from (element, attributes...) tuples. */
    private static final class P {
        private final List<PolicyRule> rules = new ArrayList<>();

        P allow(String... kv) { return add("allow", kv); }

        P deny(String... kv) { return add("deny", kv); }

        private P add(String element, String... kv) {
            Map<String, String> attrs = new LinkedHashMap<>();
            for (int i = 0; i < kv.length; i += 2) {
                attrs.put(kv[i], kv[i + 1]);
            }
            try {
                rules.add(PolicyRuleParser.parse(element, attrs, PolicyRuleParser.Principals.NONE).rule());
            } catch (Exception e) {
                throw new AssertionError(e);
            }
            return this;
        }

        ConnectionPolicy build() { return ConnectionPolicy.compile(rules); }
    }

    /** system.conf's default context, in short. */
    private static P system() {
        return new P().deny("send_type", "method_call").allow("send_type", "signal")
                .allow("send_requested_reply", "true", "send_type", "method_return")
                .allow("send_requested_reply", "true", "send_type", "error")
                .allow("receive_type", "method_call").allow("receive_type", "method_return")
                .allow("receive_type", "error").allow("receive_type", "signal");
    }

    @BeforeEach
    void setUp() {
        bus = new Bus(new BusLimits());
        bus.setPolicyLog(logged::add);
        bus.setActivationListener(started::add);
    }

    private Connection client(ConnectionPolicy p) {
        Connection c = bus.connect(new Credentials(1000, 1000, 1), x -> { });
        bus.hello(c);
        c.setPolicy(p);
        return c;
    }

    @Test
    void deniedCallIsAccessDeniedWithDbusDaemonsTextAndIsLogged() {
        Connection service = client(system().build());
        bus.names().request(service, NAME, 0, new ArrayList<>());
        Connection caller = client(system().build());
        Message denied = call(NAME, 1);
        assertEquals(Delivery.ACCESS_DENIED, bus.send(caller, denied));
        assertTrue(drain(service).isEmpty());
        assertEquals("Rejected send message, 1 matched rules; type=\"method_call\", sender=\"" + caller.uniqueName()
                + "\" (uid=1000 pid=1) interface=\"" + Fixtures.IFACE + "\" member=\"Call\" error name=\"(unset)\""
                + " requested_reply=\"0\" destination=\"" + NAME + "\" (uid=1000 pid=1)", bus.denialText(denied));
        assertEquals(List.of(bus.denialText(denied)), logged, "logged once, by the check");
        assertEquals(0, caller.pendingOutgoingReplies(), "a denied call holds no reply slot");

        Connection allowed = client(system().allow("send_destination", NAME).build());
        assertEquals(Delivery.OK, bus.send(allowed, call(NAME, 2)));
        assertEquals(1, drain(service).size());
    }

    @Test
    void recipientsReceiveRulesAreCheckedToo() {
        Connection service = client(system().deny("receive_interface", Fixtures.IFACE).build());
        bus.names().request(service, NAME, 0, new ArrayList<>());
        Connection caller = client(ConnectionPolicy.ALLOW_ALL);
        Message denied = call(NAME, 1);
        assertEquals(Delivery.ACCESS_DENIED, bus.send(caller, denied));
        assertTrue(bus.denialText(denied).startsWith("Rejected receive message, 2 matched rules; "),
                bus.denialText(denied));
        assertEquals(List.of(bus.denialText(denied)), logged);
    }

    @Test
    void requestedRepliesPassUnrequestedOnesDoNot() {
        Connection service = client(system().allow("send_destination", NAME).build());
        bus.names().request(service, NAME, 0, new ArrayList<>());
        Connection caller = client(system().allow("send_destination", NAME).build());
        assertEquals(Delivery.OK, bus.send(caller, call(NAME, 7)));
        assertEquals(Delivery.OK, bus.send(service, reply(caller.uniqueName(), 7)), "requested");
        assertEquals(1, drain(caller).size());
        Message unrequested = reply(caller.uniqueName(), 7);
        assertEquals(Delivery.ACCESS_DENIED, bus.send(service, unrequested), "slot used up");
        assertTrue(bus.denialText(unrequested).contains("requested_reply=\"0\""), bus.denialText(unrequested));
    }

    @Test
    void aDeniedRequestedReplyIsDescribedAsRequested() {
        Connection service = client(new P().allow("send_destination", "*").allow("receive_type", "method_call")
                .deny("send_type", "method_return", "send_requested_reply", "true").build());
        bus.names().request(service, NAME, 0, new ArrayList<>());
        Connection caller = client(ConnectionPolicy.ALLOW_ALL);
        assertEquals(Delivery.OK, bus.send(caller, call(NAME, 7)));
        Message answer = reply(caller.uniqueName(), 7);
        assertEquals(Delivery.ACCESS_DENIED, bus.send(service, answer));
        assertTrue(bus.denialText(answer).contains("requested_reply=\"1\""), bus.denialText(answer));
        assertEquals(List.of(bus.denialText(answer)), logged, "the text the check logged, once");
        assertEquals(0, caller.pendingOutgoingReplies(), "the slot is used up all the same");
    }

    @Test
    void deniedBroadcastRecipientsAreSkippedSilently() throws Exception {
        Connection open = client(ConnectionPolicy.ALLOW_ALL);
        Connection closed = client(new P().allow("receive_interface", "other.Iface").build());
        Connection sender = client(ConnectionPolicy.ALLOW_ALL);
        for (Connection c : List.of(open, closed)) {
            bus.matches().add(c, MatchRule.parse("type='signal'"));
        }
        assertEquals(Delivery.OK, bus.send(sender, signal("S")));
        assertEquals(1, drain(open).size());
        assertTrue(drain(closed).isEmpty());
        assertTrue(logged.isEmpty(), "broadcast denials are not logged");
        // send_broadcast="false" denies nothing broadcast; a sender denied broadcasts reaches nobody.
        Connection mute = client(new P().allow("send_destination", "*", "eavesdrop", "true")
                .deny("send_broadcast", "true", "send_type", "signal").build());
        assertEquals(Delivery.OK, bus.send(mute, signal("S")));
        assertTrue(drain(open).isEmpty());
    }

    @Test
    void eavesdroppersNeedBothSidesToAllowIt() throws Exception {
        Connection service = client(ConnectionPolicy.ALLOW_ALL);
        bus.names().request(service, NAME, 0, new ArrayList<>());
        Connection spy = client(new P().allow("send_destination", "*", "eavesdrop", "true")
                .allow("receive_type", "method_call").build());
        bus.matches().add(spy, MatchRule.parse("eavesdrop='true',type='method_call'"));
        Connection caller = client(new P().allow("send_destination", "*", "eavesdrop", "true").build());
        assertEquals(Delivery.OK, bus.send(caller, call(NAME, 1)));
        assertEquals(1, drain(service).size());
        assertTrue(drain(spy).isEmpty(), "its receive allow lacks eavesdrop=\"true\"");

        spy.setPolicy(new P().allow("receive_type", "method_call", "eavesdrop", "true").build());
        assertEquals(Delivery.OK, bus.send(caller, call(NAME, 2)));
        assertEquals(1, drain(spy).size());
        assertEquals(1, drain(service).size());
        // The sender's send rules are checked against the eavesdropper: it owns no com.example.A.
        caller.setPolicy(new P().allow("send_destination", NAME).build());
        assertEquals(Delivery.OK, bus.send(caller, call(NAME, 3)));
        assertEquals(1, drain(service).size());
        assertTrue(drain(spy).isEmpty());
        assertTrue(logged.isEmpty());
    }

    @Test
    void busMessagesAreCheckedAgainstReceiveRulesAndDroppedSilently() {
        Connection c = client(new P().allow("receive_type", "method_return").build());
        bus.emitTo(c, reply(c.uniqueName(), 5));
        assertEquals(1, drain(c).size(), "a driver reply is a requested reply");
        bus.emitTo(c, Fixtures.signalTo(c.uniqueName(), "NameAcquired"));
        assertTrue(drain(c).isEmpty());
        c.setPolicy(new P().allow("receive_sender", "org.freedesktop.DBus").build());
        bus.emitTo(c, Fixtures.signalTo(c.uniqueName(), "NameAcquired"));
        assertEquals(1, drain(c).size(), "receive_sender compares the bus's name");
    }

    @Test
    void driverBoundMessagesUseTheSendersRulesWithTheDriverAsDestination() {
        Connection c = client(system().allow("send_destination", "org.freedesktop.DBus",
                "send_interface", "org.freedesktop.DBus").deny("send_destination", "org.freedesktop.DBus",
                "send_interface", "org.freedesktop.DBus", "send_member", "ReloadConfig").build());
        assertTrue(bus.checkSendToDriver(c, bus.policyQuery().type(Message.METHOD_CALL).path("/org/freedesktop/DBus")
                .iface("org.freedesktop.DBus").member("GetId")));
        PolicyQuery refused = new PolicyQuery().type(Message.METHOD_CALL)
                .path("/org/freedesktop/DBus").iface("org.freedesktop.DBus").member("ReloadConfig");
        assertFalse(bus.checkSendToDriver(c, refused));
        String text = bus.driverDenialText(c, refused);
        assertTrue(text.endsWith("destination=\"org.freedesktop.DBus\" (bus)"), text);
        assertEquals(List.of(text), logged);
    }

    @Test
    void policyIsCheckedBeforeActivationAndAgainAtHandOver() {
        assertTrue(bus.setActivatable(Set.of(NAME)).isEmpty());
        Connection denied = client(system().build());
        Message first = call(NAME, 1);
        assertEquals(Delivery.ACCESS_DENIED, bus.send(denied, first));
        assertTrue(started.isEmpty(), "a denied call starts nothing");
        assertTrue(bus.denialText(first).endsWith("destination=\"" + NAME + "\" (bus)"), bus.denialText(first));

        // Allowed by destination string; the owner then refuses it by its receive rules.
        Connection caller = client(system().allow("send_destination", NAME).build());
        assertEquals(Delivery.OK, bus.send(caller, call(NAME, 2)));
        assertEquals(List.of(NAME), started);
        assertEquals(1, caller.pendingOutgoingReplies());
        Connection owner = client(new P().allow("receive_interface", "other.Iface").build());
        bus.names().request(owner, NAME, 0, new ArrayList<>());
        List<ActivationCompleted.Rejection> rejected = bus.completeActivation(NAME).denied();
        assertEquals(1, rejected.size());
        assertEquals(2, rejected.get(0).message().serial());
        assertNotNull(rejected.get(0).text());
        assertTrue(rejected.get(0).text().startsWith("Rejected receive message"), rejected.get(0).text());
        assertTrue(drain(owner).isEmpty());
        assertEquals(0, caller.pendingOutgoingReplies(), "its reply slot budget came back");
    }

    @Test
    void anAllowedMessageUnderACompiledPolicyAllocatesNothingInTheBus() {
        Connection service = client(system().allow("send_destination", NAME).build());
        bus.names().request(service, NAME, 0, new ArrayList<>());
        Connection caller = client(system().allow("send_destination", NAME).build());
        com.sun.management.ThreadMXBean mx =
                (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long tid = Thread.currentThread().getId();
        int n = 20_000;
        Message[] calls = new Message[n];
        for (int i = 0; i < n; i++) {
            calls[i] = call(NAME, i + 1, Message.FLAG_NO_REPLY_EXPECTED, 16);
        }
        long perMessage = Long.MAX_VALUE;
        for (int round = 0; round < 4; round++) { // the last rounds run compiled
            int from = round * (n / 4);
            long before = mx.getThreadAllocatedBytes(tid);
            for (int i = from; i < from + n / 4; i++) {
                if (bus.send(caller, calls[i]) != Delivery.OK || service.pool().pop() == null) {
                    throw new AssertionError("not delivered: " + i);
                }
            }
            perMessage = Math.min(perMessage, (mx.getThreadAllocatedBytes(tid) - before) / (n / 4));
        }
        assertEquals(0, perMessage, "bytes allocated per allowed message");
        assertTrue(logged.isEmpty());
    }

    @Test
    void theAllAllowedPathNeverBuildsADenial() {
        Connection a = client(ConnectionPolicy.ALLOW_ALL);
        Connection b = client(ConnectionPolicy.ALLOW_ALL);
        Message call = call(b.uniqueName(), 1);
        Message reply = reply(a.uniqueName(), 99);
        assertEquals(Delivery.OK, bus.send(a, call));
        assertEquals(Delivery.OK, bus.send(b, reply), "an unrequested reply passes");
        assertNull(bus.denialText(call));
        assertNull(bus.denialText(reply));
        assertTrue(logged.isEmpty());
    }
}
