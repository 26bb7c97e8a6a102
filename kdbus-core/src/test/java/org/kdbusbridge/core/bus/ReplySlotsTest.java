package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.kdbusbridge.core.Fixtures.call;
import static org.kdbusbridge.core.Fixtures.reply;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures.RecordingSink;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;

// Reply slots at scale (issue 14): the per-caller index, NoReply order on a callee's departure,
// the reply_timeout FIFO and max_replies_per_connection, with many callers and serials.
class ReplySlotsTest {
    private BusLimits limits;
    private Bus bus;
    private long now;

    @AfterEach
    void replySlotInvariantsHold() {
        bus.checkReplySlots();
    }

    @BeforeEach
    void setUp() {
        limits = new BusLimits();
        limits.maxRepliesPerConnection = 10_000;
        bus = new Bus(limits);
        bus.setClock(() -> now);
    }

    private Connection client() {
        Connection c = bus.connect(new Credentials(1000, 1000, 1), new RecordingSink());
        bus.hello(c);
        return c;
    }

    @Test
    void departingCallersDropOnlyTheirOwnSlotsAndTheCalleeOwesTheRestInCallOrder() {
        Connection callee = client();
        List<Connection> callers = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            callers.add(client());
        }
        List<DeadReply> expected = new ArrayList<>();
        for (int serial = 1; serial <= 50; serial++) {
            for (int i = 0; i < callers.size(); i++) {
                assertEquals(Delivery.OK, bus.send(callers.get(i), call(callee.uniqueName(), serial)));
                if (i % 2 == 1 && serial % 5 != 0) {
                    expected.add(new DeadReply(callers.get(i), serial));
                }
            }
        }
        // The callee answers every fifth call; the even callers leave.
        for (int serial = 5; serial <= 50; serial += 5) {
            for (Connection c : callers) {
                bus.send(callee, reply(c.uniqueName(), serial));
            }
        }
        for (int i = 0; i < callers.size(); i += 2) {
            assertEquals(List.of(), bus.disconnect(callers.get(i)).deadReplies());
        }
        assertEquals(expected.size(), callee.pendingIncomingReplies());
        for (int i = 1; i < callers.size(); i += 2) {
            assertEquals(40, callers.get(i).pendingOutgoingReplies());
        }
        assertEquals(Delivery.DUPLICATE_SERIAL, bus.send(callers.get(1), call(callee.uniqueName(), 1)));
        assertEquals(Delivery.OK, bus.send(callers.get(1), call(callee.uniqueName(), 5)), "answered: reusable");
        expected.add(new DeadReply(callers.get(1), 5));

        assertEquals(expected, bus.disconnect(callee).deadReplies());
        for (Connection c : callers) {
            assertEquals(0, c.pendingOutgoingReplies());
        }
    }

    @Test
    void aReplyAfterTheCallerLeftIsUnrequested() {
        Connection callee = client();
        Connection caller = client();
        Connection stays = client();
        bus.send(caller, call(callee.uniqueName(), 7));
        bus.send(stays, call(callee.uniqueName(), 7));
        bus.disconnect(caller);
        assertEquals(1, callee.pendingIncomingReplies());
        assertEquals(Delivery.OK, bus.send(callee, reply(stays.uniqueName(), 7)));
        assertEquals(0, callee.pendingIncomingReplies());
        assertEquals(0, stays.pendingOutgoingReplies());
    }

    @Test
    void timeoutFifoSkipsClosedSlotsAndAReusedSerialGetsItsOwnDeadline() {
        limits.replyTimeout = 1_000;
        Connection callee = client();
        Connection a = client();
        Connection b = client();
        now = 0;
        bus.send(a, call(callee.uniqueName(), 1));
        now = 100;
        bus.send(b, call(callee.uniqueName(), 1));
        bus.send(callee, reply(a.uniqueName(), 1)); // answered
        now = 500;
        bus.send(a, call(callee.uniqueName(), 1)); // same key again: a new slot, deadline 1500
        assertEquals(1_000, bus.nextReplyDeadline());
        now = 1_100;
        assertEquals(List.of(new DeadReply(b, 1)), bus.expireReplies(), "the answered slot is skipped");
        assertEquals(1, callee.pendingIncomingReplies(), "a's new call keeps its own deadline");
        assertEquals(1, a.pendingOutgoingReplies());
        assertEquals(0, b.pendingOutgoingReplies());
        now = 1_500;
        assertEquals(List.of(new DeadReply(a, 1)), bus.expireReplies());
        assertEquals(-1, bus.nextReplyDeadline());
        assertEquals(0, a.pendingOutgoingReplies());
    }

    @Test
    void answeredCallsKeepTheirFifoEntriesUntilTheNextOpenWithinTheStatedBound() {
        limits.replyTimeout = 1_000;
        Connection callee = client();
        Connection caller = client();
        for (int serial = 1; serial <= 2_000; serial++) {
            assertEquals(Delivery.OK, bus.send(caller, call(callee.uniqueName(), serial)));
        }
        for (int serial = 1; serial <= 1_900; serial++) {
            assertEquals(Delivery.OK, bus.send(callee, reply(caller.uniqueName(), serial)));
        }
        assertEquals(2_000, bus.replyDeadlineEntries(), "answers close slots without shrinking the FIFO");
        bus.checkReplySlots(); // 2,000 entries for 100 open slots: within the bound as of the last open
        assertEquals(Delivery.OK, bus.send(caller, call(callee.uniqueName(), 2_001)));
        assertEquals(101, bus.replyDeadlineEntries(), "the next open compacts it");
    }

    @Test
    void maxRepliesPerConnectionCountsOpenSlotsAcrossCallees() {
        limits.maxRepliesPerConnection = 3;
        Connection caller = client();
        Connection x = client();
        Connection y = client();
        assertEquals(Delivery.OK, bus.send(caller, call(x.uniqueName(), 1)));
        assertEquals(Delivery.OK, bus.send(caller, call(y.uniqueName(), 1)));
        assertEquals(Delivery.OK, bus.send(caller, call(y.uniqueName(), 2)));
        assertEquals(Delivery.TOO_MANY_REPLIES, bus.send(caller, call(x.uniqueName(), 2)));
        assertEquals(List.of(new DeadReply(caller, 1), new DeadReply(caller, 2)), bus.disconnect(y).deadReplies());
        assertEquals(1, caller.pendingOutgoingReplies());
        assertEquals(Delivery.OK, bus.send(caller, call(x.uniqueName(), 2)));
        assertEquals(Delivery.OK, bus.send(x, reply(caller.uniqueName(), 2)));
        assertEquals(Delivery.OK, bus.send(x, reply(caller.uniqueName(), 2)), "a second answer is unrequested");
        assertEquals(1, caller.pendingOutgoingReplies());
    }
}
