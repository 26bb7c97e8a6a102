package org.kdbusbridge.core.connection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.Fixtures.RecordingSink;
import org.kdbusbridge.core.message.Message;

class ReceivePoolTest {

    private static Message sized(int n) {
        return Fixtures.msg(Message.SIGNAL, 0, n, -1, null, "/p", "a.b", "M", null, n, null);
    }

    @Test
    void aDrainedBurstDoesNotKeepItsRing() {
        ReceivePool p = new ReceivePool(1L << 30, 1 << 20);
        Message[] ms = new Message[100_000];
        for (int i = 0; i < ms.length; i++) {
            ms[i] = sized(1);
            assertTrue(p.offer(ms[i]));
        }
        assertTrue(p.ringCapacity() >= ms.length);
        for (int i = 0; i < ms.length - 3; i++) {
            assertSame(ms[i], p.pop(), "FIFO order while the ring shrinks");
            assertSame(ms[i + 1], p.peek());
            assertSame(ms[i + 3], p.peek(2));
        }
        assertEquals(3, p.messages());
        assertTrue(p.ringCapacity() <= 64, "ring after the drain: " + p.ringCapacity());
        p.checkInvariants();
        for (int i = ms.length - 3; i < ms.length; i++) {
            assertSame(ms[i], p.pop());
        }
        assertTrue(p.isEmpty());
    }

    @Test
    void emptyPool() {
        ReceivePool p = new ReceivePool(100, 10);
        assertTrue(p.isEmpty());
        assertEquals(0, p.messages());
        assertEquals(0, p.bytes());
        assertEquals(0, p.dropped());
        assertEquals(0, p.peakBytes());
        assertEquals(100, p.maxBytes());
        assertNull(p.peek());
        assertNull(p.pop());
        assertEquals(0, p.bytes(), "popping an empty pool changes nothing");
    }

    @Test
    void accountingFollowsOfferAndPopInFifoOrder() {
        ReceivePool p = new ReceivePool(100, 10);
        Message m1 = sized(10);
        Message m2 = sized(20);
        Message m3 = sized(30);
        assertTrue(p.offer(m1));
        assertTrue(p.offer(m2));
        assertTrue(p.offer(m3));
        assertEquals(3, p.messages());
        assertEquals(60, p.bytes());
        assertEquals(60, p.peakBytes());
        assertSame(m1, p.peek());
        assertEquals(3, p.messages(), "peek does not remove");

        assertSame(m1, p.pop());
        assertEquals(50, p.bytes());
        assertSame(m2, p.pop());
        assertEquals(30, p.bytes());
        assertEquals(1, p.messages());
        assertEquals(60, p.peakBytes(), "peak is a high-water mark");
        assertSame(m3, p.pop());
        assertTrue(p.isEmpty());
        assertEquals(0, p.bytes());
        assertEquals(0, p.dropped());
    }

    @Test
    void byteBudgetRefusesAndCountsDrops() {
        ReceivePool p = new ReceivePool(100, 10);
        assertTrue(p.offer(sized(60)));
        assertTrue(p.fits(40));
        assertFalse(p.fits(41));
        assertTrue(p.offer(sized(40)));
        assertFalse(p.offer(sized(1)));
        assertFalse(p.offer(sized(50)));
        assertEquals(2, p.dropped());
        assertEquals(2, p.messages());
        assertEquals(100, p.bytes());
        assertTrue(p.offer(sized(0)), "an empty message still fits exactly at the limit");
        p.pop();
        assertTrue(p.offer(sized(50)), "space freed by pop is reusable");
        assertEquals(2, p.dropped());
    }

    @Test
    void countRefusalCountsADropAndNeverQueuesEvenWhenTheMessageWouldFit() {
        ReceivePool p = new ReceivePool(100, 10);
        Message m = sized(10);
        assertTrue(p.fits(m, 0));
        p.countRefusal(m, 0);
        assertEquals(1, p.dropped());
        assertTrue(p.isEmpty(), "a refusal queues nothing");
        assertEquals(0, p.bytes());
        assertEquals(0, p.fds());
        assertTrue(p.offer(m));
        p.countRefusal(sized(95), 1); // over the budget: still only counted
        assertEquals(2, p.dropped());
        assertEquals(1, p.messages());
        assertEquals(10, p.bytes());
    }

    @Test
    void messageCountBudget() {
        ReceivePool p = new ReceivePool(1_000, 2);
        assertTrue(p.offer(sized(1)));
        assertTrue(p.offer(sized(1)));
        assertFalse(p.fits(0));
        assertFalse(p.offer(sized(0)));
        assertEquals(1, p.dropped());
        p.pop();
        assertTrue(p.offer(sized(1)));
    }

    @Test
    void emptyPoolAlwaysAcceptsOneMessageEvenOverBudget() {
        ReceivePool p = new ReceivePool(100, 1);
        assertTrue(p.fits(1_000));
        assertTrue(p.offer(sized(1_000)));
        assertEquals(1_000, p.bytes());
        assertEquals(1_000, p.peakBytes());
        assertFalse(p.offer(sized(1)));
        assertEquals(1, p.dropped());

        ReceivePool zero = new ReceivePool(0, 0);
        assertTrue(zero.offer(sized(5)));
        assertFalse(zero.offer(sized(0)));
    }

    @Test
    void pushIgnoresTheBudget() {
        ReceivePool p = new ReceivePool(10, 1);
        p.push(sized(10));
        p.push(sized(50));
        p.push(sized(5));
        assertEquals(3, p.messages());
        assertEquals(65, p.bytes());
        assertEquals(65, p.peakBytes());
        assertEquals(0, p.dropped());
        assertFalse(p.offer(sized(1)), "offer still respects it");
        assertEquals(1, p.dropped());
    }

    @Test
    void clearEmptiesButKeepsStatistics() {
        ReceivePool p = new ReceivePool(100, 10);
        p.offer(sized(30));
        p.offer(sized(90));
        p.clear();
        assertTrue(p.isEmpty());
        assertEquals(0, p.bytes());
        assertEquals(30, p.peakBytes());
        assertEquals(1, p.dropped());
    }

    @Test
    void connectionOfferAndPushNotifyTheSinkAndStopAfterClose() {
        RecordingSink sink = new RecordingSink();
        Connection c = new Connection(7, new Credentials(1000, 1000, 42), sink, new ReceivePool(10, 10));
        assertEquals(7, c.id());
        assertEquals(new Credentials(1000, 1000, 42), c.credentials());
        assertFalse(c.isActive(), "no unique name yet");
        c.setUniqueNameOnce(":1.7");
        assertTrue(c.isActive());

        assertTrue(c.offer(sized(8)));
        assertFalse(c.offer(sized(8)), "over budget");
        c.push(sized(8));
        assertEquals(List.of(c, c), sink.queued, "one notification per queued message, none for a refusal");
        assertEquals(1, c.pool().dropped());

        c.markClosed();
        assertTrue(c.isClosed());
        assertFalse(c.isActive());
        assertTrue(c.pool().isEmpty(), "closing drops what was not yet received");
        assertFalse(c.offer(sized(1)));
        c.push(sized(1));
        assertTrue(c.pool().isEmpty());
        assertEquals(2, sink.queued.size());
    }

    @Test
    void uniqueNameIsSetOnce() {
        Connection c = Fixtures.conn(3);
        assertEquals(":1.3", c.uniqueName());
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () -> c.setUniqueNameOnce(":1.4"));
        assertEquals(":1.3", c.uniqueName());
    }
}
