package org.kdbusbridge.core.message;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.connection.ReceivePool;

/** A direct payload's memory is freed when the last queue lets its message go, not before. */
class DirectPayloadFreeTest {
    private static Connection conn(long id) {
        Connection c = new Connection(id, Credentials.UNKNOWN, x -> { }, new ReceivePool(Long.MAX_VALUE, Integer.MAX_VALUE));
        c.setUniqueNameOnce(":1." + id);
        return c;
    }

    @Test
    void freedAfterTheLastPoolPopsAndNeverReadAfterwards() {
        ByteBuffer big = ByteBuffer.allocateDirect(1 << 20);
        SealedPayload p = new SealedPayload(big);
        Message m = new Message(Message.SIGNAL, 0, 1, Message.NO_REPLY_SERIAL, null, "/p", "a.b", "C", null, p, null);
        Connection a = conn(1);
        Connection b = conn(2);
        a.push(m);
        b.push(m);
        assertSame(m, a.pool().pop());
        assertFalse(p.isFreed(), "b still holds it");
        p.view(); // still readable
        assertSame(m, b.pool().pop());
        assertTrue(p.isFreed(), "the last pool let go");
        assertThrows(IllegalStateException.class, p::view);
        assertThrows(IllegalStateException.class, () -> p.copyTo(0, ByteBuffer.allocate(8)));
    }

    @Test
    void heapPayloadsAndHeapCopiesAreUnaffected() {
        SealedPayload direct = new SealedPayload(ByteBuffer.allocateDirect(16).put(0, (byte) 7));
        SealedPayload copy = direct.heapCopy();
        direct.free();
        assertTrue(direct.isFreed());
        assertFalse(copy.isFreed());
        assertTrue(copy.byteAt(0) == 7, "the copy outlives the original");
        SealedPayload heap = new SealedPayload(new byte[4]);
        heap.free();
        assertFalse(heap.isFreed());
        assertSame(heap, heap.heapCopy());
    }

    @Test
    void aRecycledPayloadHandsItsBufferBackOnceAndRefusesReadsAfterwards() {
        ByteBuffer big = ByteBuffer.allocateDirect(1 << 16);
        java.util.List<ByteBuffer> returned = new java.util.ArrayList<>();
        SealedPayload p = new SealedPayload(big, returned::add);
        Message m = new Message(Message.SIGNAL, 0, 1, Message.NO_REPLY_SERIAL, null, "/p", "a.b", "C", null, p, null);
        Connection a = conn(1);
        a.push(m);
        assertTrue(returned.isEmpty(), "still queued");
        assertSame(m, a.pool().pop());
        assertTrue(returned.size() == 1 && returned.get(0) == big, "the allocated buffer itself, once");
        p.free();
        assertTrue(returned.size() == 1, "free is idempotent");
        assertThrows(IllegalStateException.class, p::view);
    }
}
