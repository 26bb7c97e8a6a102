package org.kdbusbridge.core.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;

import org.junit.jupiter.api.Test;

/** dbus-daemon's check semantics (policy.c), rule by rule, on a compiled connection policy. */
class ConnectionPolicyTest {
    private static final int CALL = 1;
    private static final int RETURN = 2;
    private static final int ERROR = 3;
    private static final int SIGNAL = 4;

    private static final PolicyRuleParser.Principals NONE = new PolicyRuleParser.Principals() {
        @Override
        public OptionalLong uid(String userName) { return OptionalLong.empty(); }

        @Override
        public OptionalLong gid(String groupName) { return OptionalLong.empty(); }
    };

    private final List<PolicyRule> rules = new ArrayList<>();

    /** Adds {@code <element k1="v1" k2="v2" .../>}. */
    private ConnectionPolicyTest r(String element, String... kv) throws PolicyException {
        Map<String, String> attrs = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            attrs.put(kv[i], kv[i + 1]);
        }
        rules.add(PolicyRuleParser.parse(element, attrs, NONE).rule());
        return this;
    }

    private ConnectionPolicy p() {
        return ConnectionPolicy.compile(rules);
    }

    /** A peer owning (primary or queued) exactly these names. */
    private static ConnectionPolicy.Peer owning(String... names) {
        Set<String> set = Set.of(names);
        return new ConnectionPolicy.Peer() {
            @Override
            public boolean inQueueOf(String name) { return set.contains(name); }

            @Override
            public boolean inQueueByPrefix(String prefix) {
                return set.stream().anyMatch(n -> PolicyRule.startsWithWords(n, prefix));
            }
        };
    }

    /** A fresh query: every field absent. */
    private static PolicyQuery q() {
        return new PolicyQuery();
    }

    private static boolean send(ConnectionPolicy p, int type, String iface, String member, String dest,
            ConnectionPolicy.Peer to) {
        return p.canSend(q().type(type).path("/p").iface(iface).member(member).destination(dest).receiver(to));
    }

    private static boolean call(ConnectionPolicy p, String iface, String member, ConnectionPolicy.Peer to) {
        return send(p, CALL, iface, member, "x.y", to);
    }

    @Test
    void nothingMatchedMeansDenied() {
        ConnectionPolicy p = p();
        assertFalse(call(p, "a.b", "M", owning("x.y")));
        assertFalse(p.canReceive(q().type(SIGNAL).path("/p").iface("a.b").member("S").sender(owning())));
        assertFalse(p.canOwn("a.b"));
        assertFalse(p.allowsAllSends());
    }

    @Test
    void lastMatchingRuleWins() throws Exception {
        r("allow", "send_destination", "*").r("deny", "send_interface", "a.b").r("allow", "send_interface", "a.b",
                "send_member", "Ok");
        ConnectionPolicy p = p();
        assertTrue(call(p, "c.d", "M", owning()));
        assertFalse(call(p, "a.b", "M", owning()));
        assertTrue(call(p, "a.b", "Ok", owning()));
        assertEquals(3, p.sendMatchCount(q().type(CALL).path("/p").iface("a.b").member("Ok").destination("x.y")
                .receiver(owning())));
        rules.add(rules.get(1)); // the deny again, last
        assertFalse(call(p(), "a.b", "Ok", owning()));
    }

    @Test
    void sessionConfIsTheFastPathAndACatchAllHidesEarlierRules() throws Exception {
        r("allow", "send_destination", "*", "eavesdrop", "true").r("allow", "eavesdrop", "true").r("allow", "own", "*");
        ConnectionPolicy p = p();
        assertTrue(p.allowsAllSends());
        assertTrue(p.allowsAllReceives());
        assertTrue(p.canOwn("any.thing"));
        // Without eavesdrop="true" an allow does not cover unrequested replies: no fast path.
        rules.clear();
        r("allow", "send_destination", "*");
        assertFalse(p().allowsAllSends());
        assertFalse(p().canSend(q().type(RETURN).hasReplySerial(true).destination(":1.1").receiver(owning())));
        assertTrue(p().canSend(q().type(RETURN).hasReplySerial(true).requestedReply(true).destination(":1.1")
                .receiver(owning())));
        // A later catch-all deny makes every earlier rule irrelevant.
        r("deny", "send_destination", "*", "send_requested_reply", "true");
        assertFalse(p().canSend(q().type(RETURN).hasReplySerial(true).requestedReply(true).destination(":1.1")
                .receiver(owning())));
        assertFalse(call(p(), "a.b", "M", owning()));
    }

    @Test
    void requestedRepliesAreAllowedUnlessExplicitlyDenied() throws Exception {
        // system.conf's shape: calls denied, requested replies allowed.
        r("deny", "send_type", "method_call").r("allow", "send_requested_reply", "true", "send_type", "method_return")
                .r("allow", "send_requested_reply", "true", "send_type", "error");
        ConnectionPolicy p = p();
        assertTrue(p.canSend(q().type(RETURN).hasReplySerial(true).requestedReply(true).destination(":1.1")
                .receiver(owning())));
        assertTrue(p.canSend(q().type(ERROR).hasReplySerial(true).requestedReply(true).error("e.r")
                .destination(":1.1").receiver(owning())));
        assertFalse(p.canSend(q().type(RETURN).hasReplySerial(true).destination(":1.1")
                .receiver(owning())), "unrequested");
        // A deny defaults to send_requested_reply="false": it leaves requested replies alone...
        r("deny", "send_type", "method_return");
        assertTrue(p().canSend(q().type(RETURN).hasReplySerial(true).requestedReply(true).destination(":1.1")
                .receiver(owning())));
        // ...unless it says send_requested_reply="true".
        r("deny", "send_type", "method_return", "send_requested_reply", "true");
        assertFalse(p().canSend(q().type(RETURN).hasReplySerial(true).requestedReply(true).destination(":1.1")
                .receiver(owning())));
    }

    @Test
    void receiveRequestedReplies() throws Exception {
        r("allow", "receive_type", "method_return");
        ConnectionPolicy p = p();
        assertTrue(p.canReceive(q().type(RETURN).hasReplySerial(true).requestedReply(true).sender(owning())));
        assertFalse(p.canReceive(q().type(RETURN).hasReplySerial(true).sender(owning())));
        r("allow", "receive_type", "method_return", "receive_requested_reply", "false");
        assertTrue(p().canReceive(q().type(RETURN).hasReplySerial(true).sender(owning())));
        r("deny", "receive_type", "method_return", "receive_requested_reply", "true");
        assertFalse(p().canReceive(q().type(RETURN).hasReplySerial(true).requestedReply(true).sender(owning())));
    }

    @Test
    void eavesdroppingNeedsAnAllowWithEavesdropTrue() throws Exception {
        r("allow", "receive_type", "method_call");
        ConnectionPolicy plain = p();
        assertTrue(plain.canReceive(q().type(CALL).path("/p").iface("a.b").member("M").sender(owning())));
        assertFalse(plain.canReceive(q().type(CALL).eavesdropping(true).path("/p").iface("a.b").member("M")
                .sender(owning())), "eavesdropping");
        r("allow", "receive_type", "method_call", "eavesdrop", "true");
        assertTrue(p().canReceive(q().type(CALL).eavesdropping(true).path("/p").iface("a.b").member("M")
                .sender(owning())));
        // A deny with eavesdrop="true" applies only to eavesdropping.
        r("deny", "receive_interface", "a.b", "eavesdrop", "true");
        assertFalse(p().canReceive(q().type(CALL).eavesdropping(true).path("/p").iface("a.b").member("M")
                .sender(owning())));
        assertTrue(p().canReceive(q().type(CALL).path("/p").iface("a.b").member("M").sender(owning())));
    }

    @Test
    void sendDestinationMatchesAnyQueuedNameOfTheRecipientOrTheStringWithoutOne() throws Exception {
        r("allow", "send_destination", "com.example.A");
        ConnectionPolicy p = p();
        assertTrue(call(p, "i.f", "M", owning("com.example.Other", "com.example.A")));
        assertFalse(call(p, "i.f", "M", owning("com.example.B")));
        // Recipient unknown (to the bus, or before activation): the message's destination.
        assertTrue(send(p, CALL, "i.f", "M", "com.example.A", null));
        assertFalse(send(p, CALL, "i.f", "M", "com.example.B", null));
    }

    @Test
    void prefixRulesUseWholeWords() throws Exception {
        r("allow", "send_destination_prefix", "com.example").r("allow", "own_prefix", "org.ex");
        ConnectionPolicy p = p();
        assertTrue(call(p, "i.f", "M", owning("com.example.Foo.Bar")));
        assertTrue(call(p, "i.f", "M", owning("com.example")));
        assertFalse(call(p, "i.f", "M", owning("com.examples")));
        assertTrue(send(p, CALL, "i.f", "M", "com.example.X", null));
        assertFalse(send(p, CALL, "i.f", "M", "com.exampleX", null));
        assertTrue(p.canOwn("org.ex.Y"));
        assertTrue(p.canOwn("org.ex"));
        assertFalse(p.canOwn("org.example"));
    }

    @Test
    void receiveSenderMatchesTheSendersNamesOrTheBus() throws Exception {
        r("allow", "receive_sender", "com.example.A").r("allow", "receive_sender", "org.freedesktop.DBus");
        ConnectionPolicy p = p();
        assertTrue(p.canReceive(q().type(SIGNAL).path("/p").iface("a.b").member("S").sender(owning("com.example.A"))));
        assertFalse(p.canReceive(q().type(SIGNAL).path("/p").iface("a.b").member("S").sender(owning("com.example.B"))));
        assertTrue(p.canReceive(q().type(SIGNAL).path("/p").iface("a.b").member("S")), "from the bus");
    }

    @Test
    void sendBroadcastSplitsBroadcastsFromUnicasts() throws Exception {
        r("allow", "send_type", "signal", "send_broadcast", "true");
        ConnectionPolicy p = p();
        assertTrue(send(p, SIGNAL, "a.b", "S", null, null));
        assertFalse(send(p, SIGNAL, "a.b", "S", ":1.4", owning()), "a unicast signal");
        rules.clear();
        r("allow", "send_destination", "*", "eavesdrop", "true").r("deny", "send_broadcast", "false",
                "send_interface", "a.b");
        assertTrue(send(p(), SIGNAL, "a.b", "S", null, null));
        assertFalse(send(p(), SIGNAL, "a.b", "S", ":1.4", owning()));
        assertFalse(send(p(), CALL, "a.b", "M", ":1.4", owning()), "a call is never a broadcast");
    }

    @Test
    void fdBounds() throws Exception {
        r("allow", "send_destination", "*", "eavesdrop", "true").r("deny", "send_destination", "*", "min_fds", "2")
                .r("allow", "receive_sender", "*", "max_fds", "0");
        ConnectionPolicy p = p();
        assertFalse(p.allowsAllSends());
        assertTrue(p.canSend(q().type(CALL).path("/p").iface("a.b").member("M").destination("x.y").fds(1)
                .receiver(owning())));
        assertFalse(p.canSend(q().type(CALL).path("/p").iface("a.b").member("M").destination("x.y").fds(2)
                .receiver(owning())));
        assertTrue(p.canReceive(q().type(CALL).path("/p").iface("a.b").member("M").sender(owning())));
        assertFalse(p.canReceive(q().type(CALL).path("/p").iface("a.b").member("M").fds(1).sender(owning())));
    }

    @Test
    void typeFiltersAndMissingFields() throws Exception {
        r("allow", "send_type", "signal").r("deny", "send_interface", "a.b").r("allow", "send_path", "/ok");
        ConnectionPolicy p = p();
        assertTrue(send(p, SIGNAL, "c.d", "S", null, null));
        assertFalse(send(p, CALL, "c.d", "M", "x.y", owning()));
        assertFalse(send(p, SIGNAL, "a.b", "S", null, null));
        // A deny naming an interface catches messages without one; an allow naming one skips them.
        assertFalse(p.canSend(q().type(SIGNAL).path("/q").member("S")));
        rules.clear();
        r("allow", "send_interface", "a.b");
        assertFalse(p().canSend(q().type(CALL).path("/q").member("M").destination("x.y").receiver(owning())));
        // Member and path rules do match messages without that field.
        rules.clear();
        r("allow", "send_path", "/q", "send_member", "M");
        assertFalse(p().canSend(q().type(RETURN).hasReplySerial(true).destination("x.y").receiver(owning())),
                "an allow covers requested replies only");
        assertTrue(p().canSend(q().type(RETURN).hasReplySerial(true).requestedReply(true).destination("x.y")
                .receiver(owning())));
        // send_error.
        rules.clear();
        r("allow", "send_type", "error", "send_requested_reply", "false").r("deny", "send_error", "e.Bad");
        assertTrue(p().canSend(q().type(ERROR).hasReplySerial(true).error("e.Good").destination("x.y")
                .receiver(owning())));
        assertFalse(p().canSend(q().type(ERROR).hasReplySerial(true).error("e.Bad").destination("x.y")
                .receiver(owning())));
    }

    @Test
    void logFlagIsReportedForTheDecidingRule() throws Exception {
        r("allow", "send_destination", "*", "eavesdrop", "true").r("allow", "send_interface", "a.b", "log", "true");
        ConnectionPolicy p = p();
        assertTrue(p.anySendLogs());
        assertTrue(p.sendLogs(q().type(CALL).path("/p").iface("a.b").member("M").destination("x.y")
                .receiver(owning())));
        assertFalse(p.sendLogs(q().type(CALL).path("/p").iface("c.d").member("M").destination("x.y")
                .receiver(owning())));
    }

    @Test
    void allowAllAllowsEverything() {
        ConnectionPolicy p = ConnectionPolicy.ALLOW_ALL;
        assertTrue(p.allowsAllSends());
        assertTrue(p.allowsAllReceives());
        assertTrue(p.canReceive(q().type(RETURN).hasReplySerial(true).eavesdropping(true).fds(3)));
        assertTrue(p.canOwn("a.b"));
    }
}
