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
        a.connect(new Credentials(1, 1, 1), x -> { }); // never says Hello: carried since step 5
        Message call = Fixtures.msg(Message.METHOD_CALL, 0, 7, Message.NO_REPLY_SERIAL, svc.uniqueName(), "/p",
                "a.b", "M", null, 16, null);
        assertEquals(Delivery.OK, a.send(peer, call));
        String all = String.join("\n", a.handOverRefusals());
        assertFalse(all.contains("Hello"), "connections before Hello are carried (step 5): " + all);
        assertFalse(all.contains("queued message"), "queued messages are carried (step 4): " + all);
        assertFalse(all.contains("reply slot"), "open reply slots are carried (step 4): " + all);
    }

    @Test
    void aConnectionBeforeHelloIsRestoredIncompleteAndMaySayHelloAfter() throws Exception {
        Bus a = new Bus(new BusLimits());
        Connection done = client(a, 1000);
        Connection early = a.connect(new Credentials(1001, 1001, 1101), x -> { });
        Bus b = new Bus(new BusLimits());
        Restore r = b.beginRestore();
        Connection d = r.connection(done.id(), done.credentials(), x -> { });
        r.register(d, done.uniqueName());
        Connection e = r.connection(early.id(), early.credentials(), x -> { });
        r.beforeHello(e);
        assertThrows(IllegalStateException.class, () -> r.beforeHello(d), "a registered connection is not before Hello");
        r.finish(a.restoreCounts());
        assertEquals(a.connectionCount(), b.connectionCount());
        assertEquals(1, b.connectionCount() - b.completedConnectionCount(), "counted as incomplete, as it was");
        assertFalse(b.hello(e).refused(), "Hello after the restore");
        assertTrue(Long.parseLong(e.uniqueName().substring(3)) > Long.parseLong(done.uniqueName().substring(3)),
                "a fresh unique name: " + e.uniqueName());
        assertEquals(b.connectionCount(), b.completedConnectionCount());
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

        // Step 4: messages, pools and slots are checked too.
        Restore q = new Bus(new BusLimits()).beginRestore();
        Connection p1 = q.connection(1, new Credentials(5, 5, 5), c -> { });
        q.register(p1, ":1.0");
        Connection p2 = q.connection(2, new Credentials(5, 5, 5), c -> { });
        q.register(p2, ":1.1");
        Message stray = Fixtures.signal("Stray");
        assertThrows(IllegalStateException.class, () -> q.queued(p1, stray), "queued before message()");
        assertThrows(IllegalStateException.class, () -> q.message(Fixtures.signal("NoSeq"), p2, 0, false),
                "a queued message has a sequence number");
        Connection outsider = new Bus(new BusLimits()).connect(new Credentials(5, 5, 5), c -> { });
        assertThrows(IllegalStateException.class, () -> q.message(Fixtures.signal("Foreign"), outsider, 3, false),
                "a sender this restore did not make");
        Connection left = q.departed(7, ":1.6", new Credentials(6, 6, 6));
        assertTrue(left.isClosed());
        assertThrows(IllegalStateException.class, () -> q.departed(2, ":1.1", null), "a departed id is not carried");
        q.queued(p1, q.message(Fixtures.signal("FromLeft"), left, 4, false));
        q.replySlot(p1, p2, 11, 100);
        assertThrows(IllegalStateException.class, () -> q.replySlot(p1, p2, 11, 100), "one slot per (caller, serial)");
        assertThrows(IllegalStateException.class, () -> q.replySlot(p1, left, 12, 100), "a departed caller has no slot");
        Message late = q.message(Fixtures.signal("Late"), p2, 9, false);
        q.queued(p1, late);
        assertThrows(IllegalStateException.class, () -> q.finish(new Restore.Counts(3, 2, 8, 0, 0, 0, 0)),
                "a message after the carried sequence");
    }

    /**
     * Step 4 (docs/handover.md section 8): what {@link #copy} leaves out, through Restore as the
     * bridge does it: each distinct queued message once (a new Message with a copy of its bytes
     * and a new FdSet over the same fd numbers, {@code closer} recording), pushed into every pool
     * in pool order; every open reply slot in each callee's opening order with its remaining ms.
     */
    private static Bus copyWithQueues(Bus a, long[] now, List<Integer> closed) throws Exception {
        Bus b = new Bus(a.limits());
        b.setClock(() -> now[0]);
        Restore r = b.beginRestore();
        List<Connection> all = new ArrayList<>(a.activeConnections());
        all.sort(Comparator.comparingLong(Connection::id));
        for (Connection c : all) {
            Connection n = r.connection(c.id(), c.credentials(), x -> { });
            n.setAuthenticatedUid(c.authenticatedUid());
            n.setAcceptsUnixFds(c.acceptsUnixFds());
            r.register(n, c.uniqueName());
        }
        for (Connection c : all) {
            for (MatchRule m : a.matches().rulesOf(c)) {
                r.match(r.byId(c.id()), MatchRule.parseCanonical(m.toString()));
            }
        }
        java.util.IdentityHashMap<Message, Message> made = new java.util.IdentityHashMap<>();
        java.util.Map<Long, Connection> gone = new java.util.HashMap<>();
        for (Connection c : all) {
            for (int i = 0; i < c.pool().messages(); i++) {
                Message m = c.pool().peek(i);
                Message n = made.get(m);
                if (n == null) {
                    byte[] bytes = new byte[m.size()];
                    m.payload().view().get(bytes);
                    org.kdbusbridge.core.message.FdSet fds = null;
                    if (m.fds() != null) {
                        int[] numbers = new int[m.fds().count()];
                        for (int k = 0; k < numbers.length; k++) {
                            numbers[k] = m.fds().fd(k);
                        }
                        fds = new org.kdbusbridge.core.message.FdSet(numbers, closed::add);
                    }
                    n = new Message(m.type(), m.flags(), m.serial(), m.replySerial(), m.destination(), m.path(),
                            m.iface(), m.member(), m.errorName(), new org.kdbusbridge.core.message.SealedPayload(bytes),
                            null, fds);
                    Connection from = m.sender() == null ? null : r.byId(m.sender().id());
                    if (m.sender() != null && from == null) { // it left: a DEPARTED stub
                        assertTrue(m.sender().isClosed());
                        from = gone.computeIfAbsent(m.sender().id(),
                                id -> r.departed(id, m.sender().uniqueName(), m.sender().credentials()));
                    }
                    r.message(n, from, m.seq(), m.isRequestedReply());
                    made.put(m, n);
                }
                r.queued(r.byId(c.id()), n);
            }
        }
        for (Connection c : all) {
            for (org.kdbusbridge.core.connection.ReplySlot s = c.firstPendingIncoming(); s != null; s = s.nextIncoming()) {
                r.replySlot(r.byId(c.id()), r.byId(s.caller().id()), s.serial(),
                        s.hasDeadline() ? s.deadline() - now[0] : Long.MIN_VALUE);
            }
        }
        r.finish(a.restoreCounts());
        return b;
    }

    @Test
    void queuedMessagesAndReplySlotsAreRechargedToTheSameLedgerTotals() throws Exception {
        long[] now = {1_000};
        BusLimits limits = new BusLimits();
        limits.replyTimeout = 500;
        Bus a = new Bus(limits);
        a.setClock(() -> now[0]);
        Connection svc = client(a, 1000);
        Connection r1 = client(a, 1001);
        Connection r2 = client(a, 1002);
        Connection caller = client(a, 1001);
        r1.setAcceptsUnixFds(true);
        a.addMatch(r1, rule("type='signal',member='Tick'"));
        a.addMatch(r2, rule("type='signal',member='Tick'"));
        List<Message> ticks = new ArrayList<>();
        for (int i = 0; i < 5; i++) { // broadcasts shared by two pools: one copy each in the ledger
            Message t = Fixtures.msg(Message.SIGNAL, Message.FLAG_NO_REPLY_EXPECTED, 10 + i, Message.NO_REPLY_SERIAL,
                    null, "/t", "a.b", "Tick", null, 100 + i, null);
            assertEquals(Delivery.OK, a.send(svc, t));
            ticks.add(t);
        }
        Connection leaver = client(a, 1003); // sends, then leaves while its messages wait
        for (int i = 0; i < 3; i++) {
            assertEquals(Delivery.OK, a.send(leaver, Fixtures.msg(Message.SIGNAL, Message.FLAG_NO_REPLY_EXPECTED, 40 + i,
                    Message.NO_REPLY_SERIAL, null, "/t", "a.b", "Tick", null, 50, null)));
        }
        a.disconnect(leaver);
        List<Integer> closedA = new ArrayList<>();
        Message withFds = new Message(Message.METHOD_CALL, Message.FLAG_NO_REPLY_EXPECTED, 20, Message.NO_REPLY_SERIAL,
                r1.uniqueName(), "/f", "a.b", "TakeFds", null, new org.kdbusbridge.core.message.SealedPayload(new byte[64]),
                null, new org.kdbusbridge.core.message.FdSet(new int[] {901, 902}, closedA::add));
        assertEquals(Delivery.OK, a.send(svc, withFds));
        withFds.fds().release(); // the maker's reference, as the bridge drops it after routing
        Message early = Fixtures.call(svc.uniqueName(), 30); // slot opened at t=1000, due at 1500
        assertEquals(Delivery.OK, a.send(caller, early));
        now[0] = 1_200;
        Message late = Fixtures.call(svc.uniqueName(), 31); // due at 1700
        assertEquals(Delivery.OK, a.send(caller, late));
        while (svc.pool().pop() != null) { } // the service read both calls: only their slots stay
        List<String> refusals = a.handOverRefusals();
        assertEquals(List.of(), refusals, "queued messages and open reply slots are carried (step 4)");

        List<Integer> closedB = new ArrayList<>();
        Bus b = copyWithQueues(a, now, closedB);
        assertEquals(a.queued().totalBytes(), b.queued().totalBytes(), "ledger bytes: one charge per message");
        assertEquals(a.queued().totalFds(), b.queued().totalFds());
        assertTrue(a.queued().bytes(1003) > 0, "the departed sender's messages are still charged to its uid");
        for (long uid : new long[] {1000, 1001, 1002, 1003}) {
            assertEquals(a.queued().bytes(uid), b.queued().bytes(uid), "uid " + uid);
            assertEquals(a.queued().messages(uid), b.queued().messages(uid), "uid " + uid);
            assertEquals(a.quotaUsed(uid), b.quotaUsed(uid), "uid " + uid + ": rules, names and reply slots");
        }
        assertEquals(a.quotaUsedTotal(), b.quotaUsedTotal());
        for (Connection c : List.of(svc, r1, r2, caller)) {
            Connection n = b.resolve(c.uniqueName());
            assertEquals(c.pool().bytes(), n.pool().bytes(), c + " pool bytes");
            assertEquals(c.pool().fds(), n.pool().fds(), c + " pool fds");
            assertEquals(c.pool().messages(), n.pool().messages(), c + " pool count");
            assertEquals(c.incomingBytes(), n.incomingBytes(), c + " incoming bytes");
            assertEquals(c.incomingFds(), n.incomingFds(), c + " incoming fds");
            assertEquals(c.pendingOutgoingReplies(), n.pendingOutgoingReplies(), c + " replies expected");
            n.pool().checkInvariants();
        }
        assertEquals(a.openReplySlots(), b.openReplySlots());
        b.checkReplySlots();
        Connection r1b = b.resolve(r1.uniqueName());
        assertSame(r1b.pool().peek(0), b.resolve(r2.uniqueName()).pool().peek(0), "a broadcast stays one message");
        for (int i = 0; i < 5; i++) {
            assertEquals(ticks.get(i).seq(), r1b.pool().peek(i).seq(), "pool order and sequence numbers kept");
        }
        for (int i = 0; i < 3; i++) {
            Message m = r1b.pool().peek(5 + i);
            assertTrue(m.sender().isClosed() && m.sender().uniqueName().equals(leaver.uniqueName()), "from the stub");
        }
        assertEquals(null, b.resolve(leaver.uniqueName()), "a DEPARTED stub is not registered");
        assertEquals(a.connectionCount(), b.connectionCount(), "nor counted");
        assertEquals(withFds.seq(), r1b.pool().peek(8).seq());
        assertEquals(1, r1b.pool().peek(8).fds().references(), "one reference: r1's pool");

        // The deadlines go on from the remaining ms: at 1600 only the first has expired, once.
        now[0] = 1_600;
        List<DeadReply> dead = b.expireReplies();
        assertEquals(1, dead.size());
        assertEquals(30, dead.get(0).serial());
        assertEquals(List.of(), b.expireReplies(), "exactly once");
        now[0] = 1_700;
        assertEquals(31, b.expireReplies().get(0).serial());
        assertEquals(0, b.quotaUsed(1001) - a.quotaUsed(1001) + 2 * UserQuota.REPLY_SLOT_COST,
                "both slots' charges given back");

        // Everything written out: the ledger empties and the carried fds close once, after the last pool.
        for (Connection c : b.activeConnections()) {
            while (c.pool().pop() != null) { }
        }
        assertEquals(0, b.queued().totalBytes());
        assertEquals(0, b.queued().totalFds());
        assertEquals(List.of(901, 902), closedB);
        assertEquals(List.of(), closedA, "the old bus's set is its own");
    }

    private static List<Long> ids(List<Connection> l) {
        List<Long> out = new ArrayList<>();
        for (Connection c : l) {
            out.add(c.id());
        }
        return out;
    }
}
