package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.MessageFacts;
import org.kdbusbridge.core.name.NameChange;
import org.kdbusbridge.core.name.NameRegistry;

/**
 * Restore (hand-over step 1): a bus rebuilt from the values of another answers the same about
 * its connections, names (queues, flags, each connection's acquisition order), rules,
 * monitors, counters and quota charges, and goes on from there as the old one would have;
 * a busy bus names what it cannot hand over; a restore that contradicts itself fails.
 */
class RestoreTest {
    private static Connection client(Bus bus, long uid) {
        Connection c = bus.connect(new Credentials(uid, uid, 100 + uid), x -> { });
        assertFalse(bus.hello(c).refused());
        return c;
    }

    private static MatchRule rule(String text) throws Exception {
        return MatchRule.parse(text);
    }

    /** A copy of {@code a} through Restore, as the bridge makes it from a snapshot's values. */
    private static Bus copy(Bus a) throws Exception {
        Bus b = new Bus(new BusLimits());
        Restore r = b.beginRestore();
        Map<Connection, List<MatchRule>> monitors = a.monitorRules();
        List<Connection> all = new ArrayList<>(a.activeConnections());
        all.addAll(monitors.keySet());
        all.sort(Comparator.comparingLong(Connection::id));
        for (Connection c : all) {
            Connection n = r.connection(c.id(), c.credentials(), x -> { });
            n.setAuthenticatedUid(c.authenticatedUid());
            if (monitors.containsKey(c)) {
                r.monitor(n, c.uniqueName(), monitors.get(c));
            } else {
                r.register(n, c.uniqueName());
            }
            r.attachMetadata(n, c.attachedMetadata(), c.drops() != null, 0, 0, 0);
        }
        java.util.LinkedHashSet<String> names = new java.util.LinkedHashSet<>();
        for (Connection c : all) {
            names.addAll(c.ownedNames());
        }
        for (String name : names) {
            List<Connection> q = a.names().queue(name);
            List<Connection> owners = new ArrayList<>();
            int[] flags = new int[q.size()];
            for (int i = 0; i < q.size(); i++) {
                owners.add(r.byId(q.get(i).id()));
                flags[i] = a.names().storedFlags(q.get(i), name);
            }
            r.queue(name, owners, flags);
        }
        for (Connection c : all) {
            r.ownedNames(r.byId(c.id()), c.ownedNames());
            for (MatchRule m : a.matches().rulesOf(c)) {
                r.match(r.byId(c.id()), MatchRule.parseCanonical(m.toString()));
            }
        }
        r.finish(a.restoreCounts());
        return b;
    }

    @Test
    void aRestoredBusAnswersAsTheOldOneAndGoesOnFromThere() throws Exception {
        Bus a = new Bus(new BusLimits());
        Connection svc = client(a, 1000);
        Connection peer = client(a, 1001);
        Connection third = client(a, 1000);
        Connection gone = client(a, 1002);
        a.disconnect(gone); // its id and unique name must never come back
        Connection mon = client(a, 1003);
        a.requestName(svc, "org.example.B", 0);
        a.requestName(svc, "org.example.A", NameRegistry.FLAG_ALLOW_REPLACEMENT);
        a.requestName(peer, "org.example.A", 0);
        a.requestName(third, "org.example.A", NameRegistry.FLAG_ALLOW_REPLACEMENT);
        a.requestName(peer, "org.example.C", 0);
        a.addMatch(peer, rule("type='signal',member='Ping'"));
        a.addMatch(peer, rule("type='signal',member='Ping'"));
        a.addMatch(third, rule("eavesdrop=true,arg0namespace='org.example',arg2path='/x/'"));
        a.attachMetadata(peer, MessageFacts.CREDS | MessageFacts.COMM, true);
        a.becomeMonitor(mon);
        a.startMonitoring(mon, List.of(rule("type='signal'")));
        a.emitSignal(Fixtures.signal("Warm")); // the sequence moves; nobody's rule takes it but the monitor's
        mon.pool().pop();
        assertEquals(List.of(), a.handOverRefusals());

        Bus b = copy(a);
        assertEquals(a.restoreCounts(), b.restoreCounts());
        assertEquals(a.connectionCount(), b.connectionCount());
        assertEquals(a.completedConnectionCount(), b.completedConnectionCount());
        assertEquals(a.busNameCount(), b.busNameCount());
        assertEquals(a.matches().size(), b.matches().size());
        assertEquals(a.quotaUsedTotal(), b.quotaUsedTotal(), "the same charges, recharged");
        assertEquals(a.quotaUsed(1000), b.quotaUsed(1000));
        assertEquals(a.metadataWanted(), b.metadataWanted());
        for (String n : List.of("org.example.A", "org.example.B", "org.example.C")) {
            assertEquals(ids(a.names().queue(n)), ids(b.names().queue(n)), n);
            for (Connection c : a.names().queue(n)) {
                assertEquals(a.names().storedFlags(c, n), b.names().storedFlags(b.resolve(c.uniqueName()), n));
            }
        }
        Connection svc2 = b.resolve(svc.uniqueName());
        Connection peer2 = b.resolve(peer.uniqueName());
        assertEquals(svc.ownedNames(), svc2.ownedNames(), "acquisition order kept");
        assertEquals(a.matches().rulesOf(peer), b.matches().rulesOf(peer2), "duplicates kept, in order");
        assertTrue(b.isMonitor(b.monitorRules().keySet().iterator().next()));
        assertEquals(null, b.resolve(mon.uniqueName()), "a monitor stays invisible");

        // It goes on as the old bus would: the queue moves, the sequence and the names go forward.
        List<NameChange> fromA = a.disconnect(svc).nameChanges();
        List<NameChange> fromB = b.disconnect(svc2).nameChanges();
        assertEquals(fromA.size(), fromB.size());
        for (int i = 0; i < fromA.size(); i++) {
            assertEquals(fromA.get(i).name(), fromB.get(i).name(), "released in the same order");
        }
        assertSame(peer2, b.names().owner("org.example.A"));
        Connection lateA = client(a, 1000);
        Connection lateB = client(b, 1000);
        assertEquals(lateA.uniqueName(), lateB.uniqueName());
        assertEquals(lateA.id(), lateB.id());
        Message ping = Fixtures.signal("Ping");
        b.emitSignal(ping);
        assertEquals(a.lastSequence() + 1, ping.seq());
        assertEquals(1, peer2.pool().messages(), "two equal rules, one copy");
    }

    @Test
    void aBusyBusNamesWhatStepOneCannotCarry() {
        Bus a = new Bus(new BusLimits());
        Connection svc = client(a, 1000);
        Connection peer = client(a, 1001);
        a.connect(new Credentials(1, 1, 1), x -> { }); // never says Hello
        Message call = Fixtures.msg(Message.METHOD_CALL, 0, 7, Message.NO_REPLY_SERIAL, svc.uniqueName(), "/p",
                "a.b", "M", null, 16, null);
        assertEquals(Delivery.OK, a.send(peer, call));
        String all = String.join("\n", a.handOverRefusals());
        assertTrue(all.contains("not completed Hello"), all);
        assertTrue(all.contains("1 queued message"), all);
        assertTrue(all.contains("1 open reply slot"), all);
    }

    @Test
    void restoreTakesOnlyANewBusAndChecksWhatItWasGiven() throws Exception {
        Bus a = new Bus(new BusLimits());
        client(a, 1);
        assertThrows(IllegalStateException.class, a::beginRestore);
        Bus b = new Bus(new BusLimits());
        Restore r = b.beginRestore();
        Connection x = r.connection(4, new Credentials(1, 1, 1), c -> { });
        r.register(x, ":1.3");
        r.queue("org.example.N", List.of(x), new int[] {0});
        // x.ownedNames() was never restored: the registry and the connection disagree.
        assertThrows(IllegalStateException.class, () -> r.finish(new Restore.Counts(5, 4, 0, 0, 0, 0, 0)));
        Restore again = new Bus(new BusLimits()).beginRestore();
        again.connection(9, null, c -> { });
        assertThrows(IllegalStateException.class, () -> again.connection(3, null, c -> { }), "ids ascend");
    }

    private static List<Long> ids(List<Connection> l) {
        List<Long> out = new ArrayList<>();
        for (Connection c : l) {
            out.add(c.id());
        }
        return out;
    }
}
