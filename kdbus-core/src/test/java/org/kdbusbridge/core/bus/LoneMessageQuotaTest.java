// Invariants under test (QueueLedger, "one message beyond the budget"): a uid that holds nothing
// else may queue one message larger than its budget, on a long queue and on an activator too,
// held only to the bus-wide ceiling (one and a half bus budgets); while it holds that message
// its next one is over the budget and refused by every long queue (short queues still take it
// up to the ceiling); a lone message past the ceiling is refused and logged as such; once the
// message is written the uid is back to nothing and may do it again.
package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
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

class LoneMessageQuotaTest {
    private static final int SIZE = 1000;
    /** Per uid 10 kB, all uids 25 kB, so the ceiling is 37.5 kB; 6 and 10 fds (ceiling 15). */
    private static final QueueQuota QUOTA = new QueueQuota(10_000, 25_000, 6, 10);
    private static final long CEILING = QUOTA.busBytes() + QUOTA.busBytes() / 2;
    /** Larger than a uid's budget and than the bus's, smaller than the ceiling. */
    private static final int BIG = 30_000;

    private final List<String> logged = new ArrayList<>();
    private Bus bus;

    @BeforeEach
    void setUp() {
        UserQuota q = new UserQuota(1 << 20, 1 << 21, UserQuota.MATCH_RULE_BASE, UserQuota.NAME_ENTRY_BASE, QUOTA,
                Long.MAX_VALUE, Long.MAX_VALUE);
        bus = new Bus(new BusLimits(), q);
        bus.setQuotaLog(logged::add);
        bus.setClock(() -> 1_000);
    }

    private Connection client(long uid) {
        Connection c = bus.connect(new Credentials(uid, uid, 1), x -> { });
        bus.hello(c);
        c.setAcceptsUnixFds(true);
        return c;
    }

    private static Message call(String dest, int size, FdSet fds) {
        return new Message(Message.METHOD_CALL, Message.FLAG_NO_REPLY_EXPECTED, 1, Message.NO_REPLY_SERIAL, dest, "/p",
                "a.B", "M", null, new SealedPayload(new byte[size]), null, fds);
    }

    private static Message call(String dest, int size) {
        return call(dest, size, null);
    }

    private QueueLedger ledger() {
        return bus.queued();
    }

    private long fillerUid = 2000;

    /** A receiver whose queue is long (far past the short-queue size), filled by a uid of its own. */
    private Connection longQueue() {
        Connection r = client(3000);
        Connection filler = client(fillerUid++);
        for (int i = 0; i < 3; i++) {
            assertEquals(Delivery.OK, bus.send(filler, call(r.uniqueName(), SIZE)));
        }
        assertTrue(r.pool().bytes() >= QUOTA.shortQueueBytes(), "a long queue");
        return r;
    }

    @Test
    void aUidHoldingNothingQueuesOneMessageLargerThanItsBudgetOnALongQueue() {
        Connection sink = longQueue();
        Connection sender = client(1000);
        assertEquals(Delivery.OK, bus.send(sender, call(sink.uniqueName(), BIG)), "the uid's only message");
        assertEquals(1, ledger().messages(1000));
        assertTrue(ledger().bytes(1000) > QUOTA.perUserBytes() && ledger().totalBytes() > QUOTA.busBytes(),
                "past both budgets by that one message");
        // While it holds it, nothing more from that uid reaches a long queue, large or small.
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(sender, call(sink.uniqueName(), BIG)));
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(sender, call(sink.uniqueName(), SIZE)));
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(client(1000), call(sink.uniqueName(), SIZE)),
                "nor from another connection of the uid");
        // A short queue still takes a small one (the ceiling holds), not a second large one.
        Connection peer = client(4000);
        assertEquals(Delivery.OK, bus.send(sender, call(peer.uniqueName(), SIZE)));
        peer.pool().pop();
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(sender, call(peer.uniqueName(), BIG)), "past the ceiling");
        assertTrue(ledger().totalBytes() <= CEILING);
        assertEquals(1, ledger().messages(1000), "refused messages hold nothing once routed");
        assertEquals(4, sink.pool().messages());
        // The sink reads everything: the uid holds nothing and may send one large message again.
        while (sink.pool().pop() != null) {
            // read
        }
        assertEquals(0, ledger().totalBytes());
        assertEquals(0, ledger().messages(1000));
        Connection sink2 = longQueue();
        assertEquals(Delivery.OK, bus.send(sender, call(sink2.uniqueName(), BIG)));
        assertEquals(1, logged.size(), "refusals logged once per uid per interval: " + logged);
    }

    @Test
    void theLoneMessageIsHeldToTheCeiling() {
        Connection sink = client(1);
        // Other uids hold the bus's whole budget.
        for (long uid = 100; uid < 103; uid++) {
            Connection a = client(uid);
            while (bus.send(a, call(sink.uniqueName(), SIZE)) == Delivery.OK) {
                // until the uid's or the bus's budget refuses
            }
        }
        long held = ledger().totalBytes();
        assertTrue(held > QUOTA.busBytes() - 2 * SIZE && held <= QUOTA.busBytes(), "the bus budget is spent: " + held);
        int fits = (int) (CEILING - held) - 400; // header, MESSAGE_BYTES and the entry fit in 400 bytes
        Connection first = client(1000);
        Connection second = client(1001);
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(first, call(sink.uniqueName(), fits + 401)), "past the ceiling");
        assertTrue(logged.get(logged.size() - 1).startsWith("Queued messages of uid 1000 reached the bus's ceiling of "
                + CEILING + " bytes"), logged.toString());
        assertEquals(Delivery.OK, bus.send(first, call(sink.uniqueName(), fits)), "the ceiling still takes it");
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(second, call(sink.uniqueName(), SIZE)),
                "another uid's lone message finds the ceiling reached");
        assertTrue(ledger().totalBytes() <= CEILING);
    }

    @Test
    void aLoneMessageWaitsOnAnActivatorAndASecondDoesNot() {
        String name = "org.example.Big";
        assertTrue(bus.setActivatable(java.util.Set.of(name)).isEmpty());
        Connection sender = client(1000);
        assertEquals(Delivery.OK, bus.send(sender, call(name, BIG)));
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(sender, call(name, SIZE)), "the uid is past its budget now");
        assertEquals(1, bus.pendingActivationEntries());
        Connection owner = client(3000);
        assertEquals(1, bus.requestName(owner, name, 0).reply());
        assertEquals(1, bus.completeActivation(name).drained());
        assertEquals(BIG, owner.pool().pop().size());
        assertEquals(0, ledger().totalBytes());
    }

    @Test
    void aLoneBroadcastReachesLongQueuesOnceCharged() throws Exception {
        Connection sender = client(1000);
        List<Connection> receivers = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            Connection r = longQueue();
            bus.addMatch(r, MatchRule.parse("type='signal'"));
            receivers.add(r);
        }
        Message s = new Message(Message.SIGNAL, 0, 2, Message.NO_REPLY_SERIAL, null, "/p", "a.B", "S", null,
                new SealedPayload(new byte[BIG / 2]), null); // past the uid's budget; with the queues', under the ceiling
        bus.send(sender, s);
        for (Connection r : receivers) {
            assertEquals(4, r.pool().messages(), "every long queue took the uid's only message");
        }
        assertEquals(QueueLedger.messageBytes(s) + 3 * QueueLedger.ENTRY_BYTES, ledger().bytes(1000),
                "charged once, one entry per queue");
    }

    @Test
    void aLoneMessageMayCarryMoreFdsThanTheUidsBudget() {
        Connection a = client(1000);
        Connection b = longQueue();
        List<Integer> closed = new ArrayList<>();
        FdSet eight = new FdSet(new int[] {1, 2, 3, 4, 5, 6, 7, 8}, closed::add);
        assertEquals(Delivery.OK, bus.send(a, call(b.uniqueName(), SIZE, eight)), "8 fds > the uid's 6, alone");
        eight.release();
        FdSet one = new FdSet(new int[] {9}, closed::add);
        assertEquals(Delivery.QUEUE_QUOTA, bus.send(a, call(b.uniqueName(), SIZE, one)), "a second message: over");
        one.release();
        assertEquals(List.of(9), closed);
        while (b.pool().pop() != null) {
            // b reads everything
        }
        assertEquals(0, ledger().totalFds());
        assertEquals(9, closed.size(), "the 8 fds are closed once written: " + closed);
    }
}
