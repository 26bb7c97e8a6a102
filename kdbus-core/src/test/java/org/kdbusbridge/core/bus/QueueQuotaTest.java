// Invariants under test: the bus-wide ledger of queued messages charges each client message once
// (its bytes + MESSAGE_BYTES, its fds) to the sender's uid, plus ENTRY_BYTES per queue that holds it;
// past the uid's or the bus's budget a delivery is refused exactly as by a full queue
// (RECIPIENT_FULL for a call, a dropped signal, a dropped monitor copy) and logged once per uid;
// bystanders of other uids are still served; every charge goes back when the message is written or
// its receiver leaves; bus-originated messages are never charged.
package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.connection.QueueLedger;
import org.kdbusbridge.core.connection.QueueQuota;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;

class QueueQuotaTest {
    private static final int SIZE = 1000;
    /** A test call's charge: wire bytes, MESSAGE_BYTES, its header's characters ("/p" "a.B" "M" and :1.n), one entry. */
    private static long charge(String dest) {
        return SIZE + QueueLedger.MESSAGE_BYTES + 2 + 3 + 1 + dest.length() + QueueLedger.ENTRY_BYTES;
    }

    private static final long CHARGE = charge(":1.1");
    /** A signal's charge without its entry ("/p" "a.B" "S"). */
    private static final long SIGNAL = SIZE + QueueLedger.MESSAGE_BYTES + 2 + 3 + 1;
    /** Room for exactly ten unicast messages of one uid, and twenty-five in all. */
    private static final QueueQuota QUOTA = new QueueQuota(10 * CHARGE, 25 * CHARGE, 6, 10);

    private final List<String> logged = new ArrayList<>();
    private long now = 1_000;
    private Bus bus;

    @BeforeEach
    void setUp() {
        UserQuota q = new UserQuota(1 << 20, 1 << 21, UserQuota.MATCH_RULE_BASE, UserQuota.NAME_ENTRY_BASE, QUOTA,
                Long.MAX_VALUE, Long.MAX_VALUE);
        bus = new Bus(new BusLimits(), q);
        bus.setQuotaLog(logged::add);
        bus.setClock(() -> now);
    }

    private Connection client(long uid) {
        Connection c = bus.connect(new Credentials(uid, uid, 1), x -> { });
        bus.hello(c);
        c.setAcceptsUnixFds(true);
        return c;
    }

    private static Message call(String dest, FdSet fds) {
        return new Message(Message.METHOD_CALL, Message.FLAG_NO_REPLY_EXPECTED, 1, Message.NO_REPLY_SERIAL, dest, "/p",
                "a.B", "M", null, new SealedPayload(new byte[SIZE]), null, fds);
    }

    private static Message signal() {
        return new Message(Message.SIGNAL, 0, 2, Message.NO_REPLY_SERIAL, null, "/p", "a.B", "S", null,
                new SealedPayload(new byte[SIZE]), null);
    }

    private QueueLedger ledger() {
        return bus.queued();
    }

    @Test
    void aFloodedNonReaderIsBoundedByTheSendersUidAndOtherUidsAreStillServed() {
        Connection attacker = client(1000);
        Connection sink = client(1000); // never reads; its own uid: no fair share applies
        Connection bystander = client(2000);
        Connection peer = client(2000);
        for (int i = 0; i < 10; i++) {
            assertEquals(Delivery.OK, bus.send(attacker, call(sink.uniqueName(), null)), "call " + i);
        }
        assertEquals(10 * CHARGE, ledger().bytes(1000));
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(attacker, call(sink.uniqueName(), null)));
        // Past its budget the uid still reaches receivers with a short queue (its bystanders),
        // up to the ceiling: what fills the heap is the receiver that does not read.
        assertEquals(Delivery.OK, bus.send(attacker, call(peer.uniqueName(), null)),
                "a short queue still takes the over-budget uid's message");
        assertEquals(11 * CHARGE - (CHARGE - charge(peer.uniqueName())), ledger().bytes(1000));
        peer.pool().pop(); // the peer reads it
        assertTrue(peer.pool().isEmpty());
        assertEquals(10 * CHARGE, ledger().bytes(1000), "refused messages hold nothing once routed");
        assertEquals(10, sink.pool().messages());
        assertEquals(Delivery.OK, bus.send(bystander, call(peer.uniqueName(), null)), "another uid is served");
        assertEquals(CHARGE, ledger().bytes(2000));
        assertEquals(11 * CHARGE, ledger().totalBytes());
        assertEquals(1, logged.size(), "one line per uid per interval: " + logged);
        assertTrue(logged.get(0).startsWith("Queued messages of uid 1000 reached its memory quota of " + 10 * CHARGE
                + " bytes"), logged.get(0));
        // The receiver reads one: exactly one more fits.
        sink.pool().pop();
        assertEquals(Delivery.OK, bus.send(attacker, call(sink.uniqueName(), null)));
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(attacker, call(sink.uniqueName(), null)));
        assertEquals(1, logged.size(), "still rate-limited");
        now += 60_000;
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(attacker, call(sink.uniqueName(), null)));
        assertEquals(2, logged.size(), "logged again after the interval");
        assertEquals(3, ledger().refusals());
    }

    @Test
    void messagesWaitingOnAnActivatorAreHeldToTheSendersBudget() {
        String name = "org.example.Activatable";
        assertTrue(bus.setActivatable(java.util.Set.of(name)).isEmpty());
        Connection attacker = client(1000);
        Connection bystander = client(2000);
        // A waiting call holds its bytes and header (no queue entry); the routing hold already
        // counts the one being checked, so the uid stops at its budget.
        long each = charge(name) - QueueLedger.ENTRY_BYTES;
        long fit = 10 * CHARGE / each;
        for (int i = 0; i < fit; i++) {
            assertEquals(Delivery.OK, bus.send(attacker, call(name, null)), "call " + i);
        }
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(attacker, call(name, null)));
        assertEquals(fit, bus.pendingActivationEntries(), "the refused call does not wait");
        assertEquals(fit * each, ledger().bytes(1000), "the refused call holds nothing once routed");
        assertEquals(1, logged.size(), logged.toString());
        assertTrue(logged.get(0).startsWith("Queued messages of uid 1000 reached its memory quota"), logged.get(0));
        assertEquals(Delivery.OK, bus.send(bystander, call(name, null)), "another uid still waits on it");
        assertEquals(fit + 1, bus.pendingActivationEntries());
        // The owner arrives: the waiting calls move to its pool, their charges with them.
        Connection owner = client(3000);
        assertEquals(1, bus.requestName(owner, name, 0).reply());
        assertEquals(fit + 1, bus.completeActivation(name).drained());
        assertEquals(fit + 1, owner.pool().messages());
        while (owner.pool().pop() != null) {
            // the owner reads them all
        }
        assertEquals(0, ledger().totalBytes(), "every charge went back");
        assertEquals(Delivery.OK, bus.send(attacker, call(name, null)), "the name has an owner again: delivered");
    }

    @Test
    void shortQueuesStopAtTheCeiling() {
        Connection attacker = client(1000);
        Connection sink = client(1000);
        for (int i = 0; i < 10; i++) {
            assertEquals(Delivery.OK, bus.send(attacker, call(sink.uniqueName(), null)));
        }
        // Each new receiver's queue is short: it takes one message, until all uids together
        // hold one and a half bus budgets (37.5 calls here).
        int taken = 0;
        for (int i = 0; i < 40; i++) {
            Connection r = client(3000 + i);
            if (bus.send(attacker, call(r.uniqueName(), null)) == Delivery.OK) {
                taken++;
            }
        }
        assertTrue(ledger().totalBytes() <= QUOTA.busBytes() + QUOTA.busBytes() / 2, "ceiling holds");
        assertTrue(taken >= 26 && taken <= 28, "short queues took " + taken);
    }

    @Test
    void theBusWideBudgetBoundsManyUidsTogether() {
        Connection sink = client(1);
        for (long uid = 100; uid < 103; uid++) {
            Connection a = client(uid);
            for (int i = 0; i < 10; i++) {
                Delivery d = bus.send(a, call(sink.uniqueName(), null));
                assertEquals(uid < 102 || i < 5 ? Delivery.OK : Delivery.QUEUE_QUOTA, d, "uid " + uid + " call " + i);
            }
        }
        assertEquals(25 * CHARGE, ledger().totalBytes());
        assertTrue(logged.get(0).contains("the bus's memory quota of " + 25 * CHARGE + " bytes for all users"),
                logged.toString());
    }

    @Test
    void aBroadcastIsChargedOnceAndEachQueueEntrySeparately() throws Exception {
        Connection sender = client(1000);
        List<Connection> receivers = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            Connection r = client(2000);
            bus.addMatch(r, MatchRule.parse("type='signal'"));
            receivers.add(r);
        }
        bus.send(sender, signal());
        assertEquals(SIGNAL + 5 * QueueLedger.ENTRY_BYTES, ledger().bytes(1000));
        for (Connection r : receivers) {
            assertEquals(1, r.pool().messages());
            r.pool().pop();
        }
        assertEquals(0, ledger().totalBytes());
        assertEquals(0, ledger().holders(), "a uid holding nothing has no entry");
        // Past the budget a broadcast skips the receivers that hold a long queue (the sender is
        // never told) and still reaches the short queues of the others.
        for (int i = 0; i < 9; i++) { // 9 charges held: the signal's own leaves room for one entry
            bus.send(sender, call(receivers.get(0).uniqueName(), null));
        }
        bus.send(sender, signal());
        for (Connection r : receivers) {
            assertEquals(r == receivers.get(0) ? 10 : 1, r.pool().messages(), "the first signal reached every receiver");
        }
        for (Connection r : receivers.subList(1, receivers.size())) {
            r.pool().pop(); // the bystanders read: their queues are short again
        }
        bus.send(sender, signal()); // the uid is past its budget now
        for (Connection r : receivers) {
            assertEquals(r == receivers.get(0) ? 10 : 1, r.pool().messages(),
                    r == receivers.get(0) ? "the long queue is skipped" : "short queues still take it");
        }
        assertEquals(9 * CHARGE + 2 * SIGNAL + 5 * QueueLedger.ENTRY_BYTES, ledger().bytes(1000), "each signal once, one entry per queue holding it");
    }

    @Test
    void queuedFdsAreChargedToTheSendersUid() {
        Connection a = client(1000);
        Connection b = client(2000);
        List<Integer> closed = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            FdSet set = new FdSet(new int[] {10 + 2 * i, 11 + 2 * i}, closed::add);
            assertEquals(Delivery.OK, bus.send(a, call(b.uniqueName(), set)));
            set.release();
        }
        assertEquals(6, ledger().fds(1000));
        FdSet more = new FdSet(new int[] {30}, closed::add);
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(a, call(b.uniqueName(), more)), "past 6 fds of one uid");
        more.release();
        assertEquals(List.of(30), closed, "the refused message's fd is closed at once");
        assertEquals(6, ledger().fds(1000));
        assertEquals(Delivery.OK, bus.send(a, call(b.uniqueName(), null)), "a message without fds still fits");
        assertTrue(logged.get(0).contains("its quota of 6 unix fds"), logged.toString());
        b.pool().pop();
        assertEquals(4, ledger().fds(1000));
        assertEquals(4, ledger().totalFds());
    }

    @Test
    void everythingGoesBackWhenTheReceiverLeaves() {
        Connection a = client(1000);
        Connection b = client(2000);
        List<Integer> closed = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            FdSet set = new FdSet(new int[] {i}, closed::add);
            bus.send(a, call(b.uniqueName(), set));
            set.release();
        }
        assertEquals(4, ledger().totalFds());
        bus.disconnect(b);
        assertEquals(0, ledger().totalBytes());
        assertEquals(0, ledger().totalFds());
        assertEquals(0, ledger().holders());
        assertEquals(4, closed.size());
    }

    @Test
    void busMessagesAreNeverChargedNorRefused() {
        Connection b = client(2000);
        for (int i = 0; i < 50; i++) {
            Message m = new Message(Message.SIGNAL, 0, 1, Message.NO_REPLY_SERIAL, b.uniqueName(), "/p", "a.B", "S",
                    null, new SealedPayload(new byte[SIZE]), null);
            bus.emitTo(b, m);
        }
        assertEquals(50, b.pool().messages());
        assertEquals(0, ledger().totalBytes());
    }

    @Test
    void aMonitorsCopiesAreChargedAndDroppedPastTheBudget() throws Exception {
        Connection mon = client(0);
        bus.becomeMonitor(mon);
        bus.startMonitoring(mon, List.of());
        Connection a = client(1000);
        Connection b = client(2000);
        for (int i = 0; i < 12; i++) {
            bus.send(a, call(b.uniqueName(), null));
        }
        // Each call held once, with two entries (b's pool and the monitor's) while both hold it.
        long each = charge(b.uniqueName()) + QueueLedger.ENTRY_BYTES;
        assertTrue(ledger().bytes(1000) <= QUOTA.perUserBytes());
        assertEquals(ledger().bytes(1000) / each, mon.pool().messages(), "the monitor holds what fits");
        assertTrue(mon.pool().messages() < 12);
        assertTrue(mon.pool().dropped() > 0, "the monitor's overflow path counted the drops");
        bus.disconnect(mon);
        bus.disconnect(b);
        assertEquals(0, ledger().totalBytes());
    }
}
