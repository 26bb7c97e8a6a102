package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.Fixtures.drain;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.policy.ConnectionPolicy;
import org.kdbusbridge.core.policy.PolicyRule;
import org.kdbusbridge.core.policy.PolicyRuleParser;

/** Refusals nobody is told of reach the refusal listener, in order, and only while monitors watch. */
class BusRefusalTest {
    private record Refusal(Message message, Connection addressed, Delivery reason, String text) { }

    private Bus bus;
    private final List<Refusal> refusals = new ArrayList<>();

    @BeforeEach
    void setUp() {
        bus = new Bus(new BusLimits());
        bus.setRefusalListener((m, addressed, reason, text) -> refusals.add(new Refusal(m, addressed, reason, text)));
    }

    private static ConnectionPolicy deny(String... kv) {
        Map<String, String> attrs = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            attrs.put(kv[i], kv[i + 1]);
        }
        PolicyRuleParser.Principals none = PolicyRuleParser.Principals.NONE;
        try {
            List<PolicyRule> rules = List.of(
                    PolicyRuleParser.parse("allow", Map.of("send_destination", "*"), none).rule(),
                    PolicyRuleParser.parse("deny", attrs, none).rule());
            return ConnectionPolicy.compile(rules);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private Connection client(ConnectionPolicy p) {
        Connection c = bus.connect(new Credentials(1000, 1000, 1), x -> { });
        bus.hello(c);
        c.setPolicy(p);
        return c;
    }

    private Connection monitor() {
        Connection mon = client(ConnectionPolicy.ALLOW_ALL);
        bus.becomeMonitor(mon);
        bus.startMonitoring(mon, List.of());
        return mon;
    }

    @Test
    void refusedBroadcastReceiversAreReportedOnlyWhileMonitorsWatch() throws Exception {
        Connection receiver = client(deny("receive_interface", Fixtures.IFACE));
        bus.matches().add(receiver, MatchRule.parse("type='signal'"));
        Connection sender = client(ConnectionPolicy.ALLOW_ALL);
        bus.send(sender, Fixtures.signal("S"));
        assertTrue(refusals.isEmpty(), "no monitor: nothing to render");

        Connection mon = monitor();
        Message s = Fixtures.signal("S");
        assertEquals(Delivery.OK, bus.send(sender, s), "the sender is not told");
        assertEquals(1, refusals.size());
        Refusal r = refusals.get(0);
        assertSame(s, r.message());
        assertSame(sender, r.addressed(), "the error is for the sender");
        assertEquals(Delivery.ACCESS_DENIED, r.reason());
        assertTrue(r.text().startsWith("Rejected receive message, "), r.text());
        assertTrue(drain(receiver).isEmpty());
        assertEquals(List.of(s), drain(mon));
    }

    @Test
    void aSenderDeniedBroadcastsIsReportedPerReceiver() throws Exception {
        Connection a = client(ConnectionPolicy.ALLOW_ALL);
        Connection b = client(ConnectionPolicy.ALLOW_ALL);
        bus.matches().add(a, MatchRule.parse("type='signal'"));
        bus.matches().add(b, MatchRule.parse("type='signal'"));
        monitor();
        Connection mute = client(deny("send_interface", Fixtures.IFACE));
        bus.send(mute, Fixtures.signal("S"));
        assertEquals(2, refusals.size(), "one per refused receiver, as dbus-daemon");
        assertTrue(refusals.get(0).text().startsWith("Rejected send message, "), refusals.get(0).text());
    }

    @Test
    void aBusMessageTheReceiverRefusesIsReportedForThatReceiver() {
        monitor();
        Connection c = client(deny("receive_interface", "org.freedesktop.DBus", "receive_member", "NameAcquired"));
        Message acquired = Fixtures.msg(Message.SIGNAL, Message.FLAG_NO_REPLY_EXPECTED, 3, Message.NO_REPLY_SERIAL,
                c.uniqueName(), "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameAcquired", null, 16, null);
        bus.emitTo(c, acquired);
        assertTrue(drain(c).isEmpty());
        assertEquals(1, refusals.size());
        assertSame(acquired, refusals.get(0).message());
        assertSame(c, refusals.get(0).addressed());
    }

    @Test
    void aBroadcastWithFdsSkipsReceiversWithoutFdSupportAndSaysSo() throws Exception {
        Connection noFds = client(ConnectionPolicy.ALLOW_ALL);
        bus.matches().add(noFds, MatchRule.parse("type='signal'"));
        monitor();
        Connection sender = client(ConnectionPolicy.ALLOW_ALL);
        sender.setAcceptsUnixFds(true);
        FdSet fds = new FdSet(new int[] {-1}, fd -> { });
        Message s = new Message(Message.SIGNAL, Message.FLAG_NO_REPLY_EXPECTED, 1, Message.NO_REPLY_SERIAL, null,
                Fixtures.PATH, Fixtures.IFACE, "S", null, new org.kdbusbridge.core.message.SealedPayload(new byte[16]),
                null, fds);
        bus.send(sender, s);
        assertEquals(1, refusals.size());
        assertEquals(Delivery.FDS_NOT_SUPPORTED, refusals.get(0).reason());
        assertEquals("broadcast cannot be delivered to " + noFds.uniqueName() + " (uid=1000 pid=1) because it does not"
                + " support receiving Unix fds", refusals.get(0).text());
    }

    @Test
    void capturedOnlyMessagesReachMonitorsAlone() {
        Connection c = client(ConnectionPolicy.ALLOW_ALL);
        Connection mon = monitor();
        Message err = Fixtures.error(c.uniqueName(), 4);
        bus.captureOnly(err, c);
        assertEquals(List.of(err), drain(mon));
        assertTrue(drain(c).isEmpty());
    }
}
