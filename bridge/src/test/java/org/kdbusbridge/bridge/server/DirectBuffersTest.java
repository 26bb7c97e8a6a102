package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.message.SealedPayload;

/** The large-payload pool: reuse, the size window, and the bound on what it keeps. */
class DirectBuffersTest {
    @Test
    void aFreedPayloadsBufferServesTheNextOfASimilarSize() {
        DirectBuffers pool = new DirectBuffers();
        ByteBuffer a = pool.take(1_048_700);
        assertTrue(a.isDirect());
        assertEquals(0, a.position());
        assertEquals(1_048_700, a.limit());
        assertEquals(0, a.capacity() % DirectBuffers.GRANULE, "rounded up to the granule");
        SealedPayload p = new SealedPayload(a, pool::give);
        p.free();
        assertEquals(a.capacity(), pool.spareBytes());
        ByteBuffer b = pool.take(1_048_600);
        assertSame(a, b, "reused");
        assertEquals(1_048_600, b.limit());
        assertEquals(0, pool.spareBytes());
        assertEquals(1, pool.reusedCount());
        assertEquals(1, pool.allocatedCount());
    }

    @Test
    void aSmallRequestDoesNotPinABigBuffer() {
        DirectBuffers pool = new DirectBuffers();
        ByteBuffer big = pool.take(4 << 20);
        pool.give(big);
        ByteBuffer small = pool.take(100_000);
        assertNotSame(big, small);
        assertEquals(big.capacity(), pool.spareBytes(), "the big one stays spare");
    }

    @Test
    void spareMemoryIsBounded() {
        DirectBuffers pool = new DirectBuffers();
        ByteBuffer[] bs = new ByteBuffer[12];
        for (int i = 0; i < bs.length; i++) {
            bs[i] = pool.take(1 << 20);
        }
        for (ByteBuffer b : bs) {
            pool.give(b);
        }
        assertTrue(pool.spareBytes() <= DirectBuffers.MAX_SPARE_BYTES, "kept " + pool.spareBytes());
        assertEquals(DirectBuffers.MAX_SPARE_BYTES, pool.spareBytes(), "filled up to the bound");
    }

    @Test
    void ioBuffersAreBoundedRefusedNotAllocatedPastTheBoundAndReused() {
        DirectBuffers pool = new DirectBuffers(2);
        ByteBuffer a = pool.takeIo();
        ByteBuffer b = pool.takeIo();
        assertTrue(a.isDirect());
        assertEquals(DirectBuffers.IO_BUFFER, a.capacity());
        assertEquals(null, pool.takeIo(), "refused past the bound, not allocated");
        assertEquals(1, pool.ioRefusedCount());
        assertEquals(2, pool.ioLent());
        pool.giveIo(a);
        ByteBuffer c = pool.takeIo();
        assertSame(a, c, "reused once given back");
        assertEquals(0, c.position());
        pool.giveIo(b);
        pool.giveIo(c);
        assertEquals(0, pool.ioLent());
        assertTrue(pool.isScratch(pool.inputScratch()));
        assertTrue(pool.isScratch(pool.outputScratch()));
        assertNotSame(pool.inputScratch(), pool.outputScratch());
        assertTrue(!pool.isScratch(a));
    }
}
