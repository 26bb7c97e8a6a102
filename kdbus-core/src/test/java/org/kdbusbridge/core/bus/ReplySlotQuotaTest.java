// Invariants under test: a call that expects a reply is charged to its caller's uid
// (UserQuota.REPLY_SLOT_COST) while it counts against max_replies_per_connection, and the
// charge goes back on every path that ends it (answered, reply_timeout, caller leaves, callee
// leaves with NoReply owed, BecomeMonitor, activator hand-over refused, activation failed,
// caller left while waiting on the activator); a call over the uid's budget is refused as
// max_replies_per_connection refuses it (TOO_MANY_REPLIES), nothing else changes and the
// refusal is logged once per uid per interval; other uids are unaffected.
package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.Fixtures.call;
import static org.kdbusbridge.core.Fixtures.drain;
import static org.kdbusbridge.core.Fixtures.reply;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures.RecordingSink;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;

class ReplySlotQuotaTest {
    private static final long SLOT = UserQuota.REPLY_SLOT_COST;
    private static final String SVC = "org.example.Svc";

    private BusLimits limits;
    private Bus bus;
    private long now;
    private final List<String> logged = new ArrayList<>();

    @AfterEach
    void replySlotInvariantsHold() {
        bus.checkReplySlots();
    }

    @BeforeEach
    void setUp() {
        limits = new BusLimits();
        limits.maxRepliesPerConnection = 1000;
        limits.replyTimeout = 1000;
        // Room for exactly 5 reply slots per uid and 12 for everyone.
        bus = new Bus(limits, new UserQuota(5 * SLOT, 12 * SLOT, UserQuota.MATCH_RULE_BASE,
                UserQuota.NAME_ENTRY_BASE));
        bus.setClock(() -> now);
        bus.setQuotaLog(logged::add);
    }

    private Connection client(long uid) {
        Connection c = bus.connect(new Credentials(uid, uid, 1), new RecordingSink());
        bus.hello(c);
        return c;
    }

    private void assertNothingCharged() {
        assertEquals(0, bus.quotaUsedTotal());
        assertEquals(0, bus.quotas().holders(), "a uid holding nothing has no entry");
        assertEquals(0, bus.openReplySlots());
    }

    @Test
    void anAnsweredCallIsChargedToItsCallerUntilTheReply() {
        Connection caller = client(1000);
        Connection callee = client(2000);
        assertEquals(Delivery.OK, bus.send(caller, call(callee.uniqueName(), 1)));
        assertEquals(SLOT, bus.quotaUsed(1000));
        assertEquals(0, bus.quotaUsed(2000), "the callee is not charged");
        assertEquals(Delivery.OK, bus.send(callee, reply(caller.uniqueName(), 1)));
        assertNothingCharged();
        assertEquals(Delivery.OK, bus.send(callee, reply(caller.uniqueName(), 1)), "unrequested now");
        assertNothingCharged();
    }

    @Test
    void aTimedOutCallGivesItsChargeBack() {
        Connection caller = client(1000);
        Connection callee = client(2000);
        bus.send(caller, call(callee.uniqueName(), 1));
        bus.send(caller, call(callee.uniqueName(), 2));
        bus.send(callee, reply(caller.uniqueName(), 2)); // answered first: skipped by the FIFO
        assertEquals(SLOT, bus.quotaUsed(1000));
        now += 1000;
        assertEquals(List.of(new DeadReply(caller, 1)), bus.expireReplies());
        assertNothingCharged();
    }

    @Test
    void theCallerLeavingGivesItsChargesBack() {
        Connection caller = client(1000);
        Connection callee = client(2000);
        Connection other = client(2000);
        for (int serial = 1; serial <= 3; serial++) {
            bus.send(caller, call(callee.uniqueName(), serial));
            bus.send(caller, call(other.uniqueName(), serial));
        }
        bus.send(other, call(caller.uniqueName(), 9)); // owed by the leaving caller: uid 2000's
        assertEquals(5 * SLOT, bus.quotaUsed(1000), "the sixth call was over the budget");
        assertEquals(SLOT, bus.quotaUsed(2000));
        assertEquals(List.of(new DeadReply(other, 9)), bus.disconnect(caller).deadReplies());
        assertNothingCharged();
        assertEquals(0, callee.pendingIncomingReplies());
        now += 1000;
        assertEquals(List.of(), bus.expireReplies(), "the FIFO only skips closed slots");
        assertNothingCharged();
    }

    @Test
    void theCalleeLeavingOwesNoReplyAndGivesTheCallersChargesBack() {
        Connection a = client(1000);
        Connection b = client(1001);
        Connection callee = client(2000);
        bus.send(a, call(callee.uniqueName(), 1));
        bus.send(b, call(callee.uniqueName(), 1));
        bus.send(a, call(callee.uniqueName(), 2));
        assertEquals(2 * SLOT, bus.quotaUsed(1000));
        assertEquals(SLOT, bus.quotaUsed(1001));
        assertEquals(List.of(new DeadReply(a, 1), new DeadReply(b, 1), new DeadReply(a, 2)),
                bus.disconnect(callee).deadReplies());
        assertNothingCharged();
    }

    @Test
    void becomingAMonitorDropsItsSlotsAndTheirCharges() {
        Connection caller = client(1000);
        Connection m = client(2000);
        bus.send(caller, call(m.uniqueName(), 1));
        bus.send(m, call(caller.uniqueName(), 1));
        assertEquals(List.of(new DeadReply(caller, 1)), bus.becomeMonitor(m).deadReplies());
        assertNothingCharged();
    }

    /** The owner's name is charged to uid 2000; the callers' uids hold only their calls. */
    private void assertCallersCharged(long bytes) {
        assertEquals(bytes, bus.quotaUsed(1000) + bus.quotaUsed(1001));
        assertEquals(bus.quotaUsedTotal(), bytes + bus.quotaUsed(2000));
    }

    @Test
    void callsWaitingOnAnActivatorAreChargedUntilHandOverOrFailure() {
        bus.setActivatable(Set.of(SVC));
        Connection caller = client(1000);
        Connection leaves = client(1001);
        bus.send(caller, call(SVC, 1));
        bus.send(caller, call(SVC, 2));
        bus.send(leaves, call(SVC, 1));
        assertEquals(2 * SLOT, bus.quotaUsed(1000), "the reply budget is held while it waits");
        assertEquals(SLOT, bus.quotaUsed(1001));
        bus.disconnect(leaves);
        assertEquals(SLOT, bus.quotaUsed(1001), "still queued: its message is still held");
        Connection owner = client(2000);
        bus.names().request(owner, SVC, 0, new ArrayList<>());
        assertEquals(3, bus.completeActivation(SVC).drained());
        assertEquals(2 * SLOT, bus.quotaUsed(1000), "now the open slots are charged");
        assertEquals(0, bus.quotaUsed(1001), "its caller had left: no slot, no charge");
        bus.send(owner, reply(caller.uniqueName(), 1));
        bus.send(owner, reply(caller.uniqueName(), 2));
        assertCallersCharged(0);

        bus.disconnect(owner);
        bus.send(caller, call(SVC, 3));
        assertEquals(SLOT, bus.quotaUsed(1000));
        assertEquals(1, bus.failActivation(SVC).size());
        assertCallersCharged(0);
        bus.send(caller, call(SVC, 4));
        assertEquals(0, bus.setActivatable(Set.of()).size(), "its file went, but the start in flight keeps its waiter");
        assertEquals(SLOT, bus.quotaUsed(1000), "still charged while it waits");
        assertEquals(1, bus.failActivation(SVC).size(), "the start ends: the activator goes with its waiter");
        assertNull(bus.activator(SVC));
        assertCallersCharged(0);
    }

    @Test
    void aCallOverTheUidsBudgetIsRefusedAsTheReplyLimitRefusesItAndChangesNothing() {
        Connection a1 = client(1000);
        Connection a2 = client(1000);
        Connection callee = client(2000);
        for (int serial = 1; serial <= 3; serial++) {
            assertEquals(Delivery.OK, bus.send(a1, call(callee.uniqueName(), serial)));
        }
        assertEquals(Delivery.OK, bus.send(a2, call(callee.uniqueName(), 1)));
        assertEquals(Delivery.OK, bus.send(a2, call(callee.uniqueName(), 2)));
        drain(callee);
        assertEquals(5 * SLOT, bus.quotaUsed(1000));
        assertTrue(logged.isEmpty());

        assertEquals(Delivery.TOO_MANY_REPLIES, bus.send(a2, call(callee.uniqueName(), 3)),
                "over the uid's budget, though each connection is far under max_replies_per_connection");
        assertEquals(5 * SLOT, bus.quotaUsed(1000));
        assertEquals(2, a2.pendingOutgoingReplies());
        assertEquals(5, callee.pendingIncomingReplies());
        assertTrue(drain(callee).isEmpty(), "not delivered");
        assertEquals(1, logged.size());
        assertTrue(logged.get(0).contains("(uid=1000) reached its memory quota of " + 5 * SLOT + " bytes"),
                logged.get(0));
        assertEquals(Delivery.TOO_MANY_REPLIES, bus.send(a1, call(callee.uniqueName(), 9)));
        assertEquals(1, logged.size(), "logged once per uid per interval");

        // A call without a reply, and a reply, still go through.
        assertEquals(Delivery.OK, bus.send(a2, call(callee.uniqueName(), 10, org.kdbusbridge.core.message.Message.FLAG_NO_REPLY_EXPECTED, 0)));
        // Other uids are unaffected.
        Connection b = client(1001);
        assertEquals(Delivery.OK, bus.send(b, call(callee.uniqueName(), 1)));
        assertEquals(SLOT, bus.quotaUsed(1001));

        // An answer makes room again.
        bus.send(callee, reply(a1.uniqueName(), 1));
        assertEquals(Delivery.OK, bus.send(a2, call(callee.uniqueName(), 3)));
        now += UserQuotas.LOG_INTERVAL_MILLIS;
        assertEquals(Delivery.TOO_MANY_REPLIES, bus.send(a2, call(callee.uniqueName(), 4)));
        assertEquals(2, logged.size(), "logged again after the interval");
    }

    @Test
    void theBusWideBudgetRefusesToo() {
        Connection callee = client(3000);
        List<Connection> callers = new ArrayList<>();
        for (long uid = 1000; uid < 1003; uid++) {
            Connection c = client(uid);
            callers.add(c);
            for (int serial = 1; serial <= 4; serial++) {
                assertEquals(Delivery.OK, bus.send(c, call(callee.uniqueName(), serial)));
            }
        }
        Connection late = client(1003);
        assertEquals(Delivery.TOO_MANY_REPLIES, bus.send(late, call(callee.uniqueName(), 1)));
        assertTrue(logged.get(0).contains("the bus's memory quota of " + 12 * SLOT + " bytes for all users"),
                logged.get(0));
        assertEquals(0, bus.quotaUsed(1003));
        bus.disconnect(callee);
        assertNothingCharged();
    }

    @Test
    void theActivatorPathRefusesOverBudgetBeforeQueueing() {
        bus.setActivatable(Set.of(SVC));
        Connection caller = client(1000);
        for (int serial = 1; serial <= 5; serial++) {
            assertEquals(Delivery.OK, bus.send(caller, call(SVC, serial)));
        }
        assertEquals(Delivery.TOO_MANY_REPLIES, bus.send(caller, call(SVC, 6)));
        assertEquals(5, bus.pendingActivationEntries());
        assertEquals(5, caller.pendingOutgoingReplies());
        assertEquals(5, bus.failActivation(SVC).size());
        assertNothingCharged();
    }

    @Test
    void answeredCallsDoNotPinTheirSlotsInTheTimeoutFifo() {
        bus = new Bus(limits, UserQuota.forHeap(1L << 30));
        bus.setClock(() -> now);
        Connection caller = client(1000);
        Connection callee = client(2000);
        Connection slow = client(2001);
        for (int serial = 1; serial <= 100; serial++) {
            assertEquals(Delivery.OK, bus.send(caller, call(slow.uniqueName(), serial)));
        }
        for (int serial = 101; serial <= 20_000; serial++) {
            assertEquals(Delivery.OK, bus.send(caller, call(callee.uniqueName(), serial)));
            // Compacted when a slot opens: then at most twice the open ones, plus the slack.
            assertTrue(bus.replyDeadlineEntries() <= 2 * bus.openReplySlots() + Bus.DEADLINE_SLACK + 1,
                    bus.replyDeadlineEntries() + " FIFO entries for " + bus.openReplySlots() + " open slots");
            bus.send(callee, reply(caller.uniqueName(), serial));
            drain(callee);
            drain(caller);
        }
        assertEquals(100, bus.openReplySlots());
        assertEquals(100 * SLOT, bus.quotaUsed(1000));
        now += 1000;
        List<DeadReply> dead = bus.expireReplies();
        assertEquals(100, dead.size(), "the open slots survived compaction, in deadline order");
        for (int i = 0; i < 100; i++) {
            assertEquals(new DeadReply(caller, i + 1), dead.get(i));
        }
        assertEquals(0, bus.openReplySlots());
        assertEquals(0, bus.replyDeadlineEntries());
        assertEquals(0, bus.quotaUsed(1000));
    }
}
