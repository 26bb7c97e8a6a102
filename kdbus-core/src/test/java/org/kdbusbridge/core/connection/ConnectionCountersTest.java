package org.kdbusbridge.core.connection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;

/**
 * ConnectionCounters keeps small counts in 32 bits and moves to 64 bits when one would not fit:
 * whatever the tier, every accessor returns the exact 64-bit count.
 */
class ConnectionCountersTest {
    private static Message of(int type, int bytes) {
        return new Message(type, 0, 1, Message.NO_REPLY_SERIAL, null, "/p", "a.B", "M", null,
                new SealedPayload(new byte[bytes]), null);
    }

    @Test
    void smallCountsByTypeAndDirection() {
        ConnectionCounters c = new ConnectionCounters();
        c.countIn(Message.METHOD_CALL, 100);
        c.countIn(Message.METHOD_CALL, 50);
        c.countIn(Message.SIGNAL, 7);
        c.countOut(of(Message.METHOD_RETURN, 32));
        c.countOut(of(Message.SIGNAL, 16));
        c.countOut(of(Message.SIGNAL, 16));
        assertEquals(2, c.messagesIn(Message.METHOD_CALL));
        assertEquals(150, c.bytesIn(Message.METHOD_CALL));
        assertEquals(1, c.messagesIn(Message.SIGNAL));
        assertEquals(7, c.bytesIn(Message.SIGNAL));
        assertEquals(0, c.messagesIn(Message.ERROR));
        assertEquals(1, c.messagesOut(Message.METHOD_RETURN));
        assertEquals(32, c.bytesOut(Message.METHOD_RETURN));
        assertEquals(2, c.messagesOut(Message.SIGNAL));
        assertEquals(32, c.bytesOut(Message.SIGNAL));
        assertEquals(0, c.messagesOut(0));
        assertEquals(0, c.messagesIn(9));
        assertEquals(6, c.totalMessages());
        assertEquals(0, c.refusedLimitsCount() + c.refusedAccessCount() + c.refusedOtherCount()
                + c.skippedFullCount() + c.skippedPolicyCount() + c.skippedOtherCount());
    }

    @Test
    void bytesPastFourGiBAreKeptExactly() {
        ConnectionCounters c = new ConnectionCounters();
        c.countIn(Message.SIGNAL, 3_000_000_000L);
        assertEquals(3_000_000_000L, c.bytesIn(Message.SIGNAL)); // still 32 bits, unsigned
        c.countIn(Message.SIGNAL, 3_000_000_000L);
        c.countIn(Message.METHOD_CALL, 5);
        assertEquals(6_000_000_000L, c.bytesIn(Message.SIGNAL));
        assertEquals(2, c.messagesIn(Message.SIGNAL));
        assertEquals(1, c.messagesIn(Message.METHOD_CALL));
        assertEquals(5, c.bytesIn(Message.METHOD_CALL));
        // One message bigger than 32 bits at once (the core never sees one, the API allows it).
        ConnectionCounters d = new ConnectionCounters();
        d.countIn(Message.ERROR, 1L << 40);
        assertEquals(1L << 40, d.bytesIn(Message.ERROR));
    }

    @Test
    void otherTypesRefusalsAndSkipsAfterSmallCounts() {
        ConnectionCounters c = new ConnectionCounters();
        c.countIn(Message.METHOD_CALL, 10);
        c.countOut(of(Message.METHOD_RETURN, 8));
        c.countIn(0, 4); // anything else: slot 0
        c.countIn(77, 6);
        c.refusedLimits();
        c.refusedAccess();
        c.refusedAccess();
        c.refusedOther();
        c.skippedFull();
        c.skippedPolicy();
        c.skippedOther();
        c.skippedOther();
        assertEquals(2, c.messagesIn(0));
        assertEquals(10, c.bytesIn(0));
        assertEquals(2, c.messagesIn(77)); // any unknown type reads slot 0
        assertEquals(1, c.messagesIn(Message.METHOD_CALL));
        assertEquals(10, c.bytesIn(Message.METHOD_CALL));
        assertEquals(1, c.messagesOut(Message.METHOD_RETURN));
        assertEquals(8, c.bytesOut(Message.METHOD_RETURN));
        assertEquals(1, c.refusedLimitsCount());
        assertEquals(2, c.refusedAccessCount());
        assertEquals(1, c.refusedOtherCount());
        assertEquals(1, c.skippedFullCount());
        assertEquals(1, c.skippedPolicyCount());
        assertEquals(2, c.skippedOtherCount());
        assertEquals(4, c.totalMessages());
        c.countIn(Message.METHOD_CALL, 1);
        assertEquals(2, c.messagesIn(Message.METHOD_CALL));
        assertEquals(11, c.bytesIn(Message.METHOD_CALL));
    }

    @Test
    void addSumsEitherTier() {
        ConnectionCounters small = new ConnectionCounters();
        small.countIn(Message.SIGNAL, 5);
        small.countOut(of(Message.ERROR, 3));
        ConnectionCounters wide = new ConnectionCounters();
        wide.countIn(Message.SIGNAL, 5_000_000_000L);
        wide.refusedOther();
        ConnectionCounters total = new ConnectionCounters();
        total.add(small);
        total.add(wide);
        total.add(small);
        assertEquals(3, total.messagesIn(Message.SIGNAL));
        assertEquals(5_000_000_010L, total.bytesIn(Message.SIGNAL));
        assertEquals(2, total.messagesOut(Message.ERROR));
        assertEquals(6, total.bytesOut(Message.ERROR));
        assertEquals(1, total.refusedOtherCount());
        assertEquals(5, total.totalMessages());
        // The summands are unchanged.
        assertEquals(1, small.messagesIn(Message.SIGNAL));
        assertEquals(5_000_000_000L, wide.bytesIn(Message.SIGNAL));
    }

    @Test
    void foldsOnce() {
        ConnectionCounters c = new ConnectionCounters();
        assertTrue(c.foldOnce());
        assertFalse(c.foldOnce());
    }
}
