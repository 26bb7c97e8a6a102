package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;

import org.junit.jupiter.api.Test;

/** trimSpares: what the memory reclaimer gives back after a burst. */
class DirectBuffersTrimTest {
    @Test
    void trimReleasesEverySpareAndKeepsWhatIsLent() {
        DirectBuffers pool = new DirectBuffers(8, 64L * 1024 * 1024);
        long scratches = pool.heldBytes();
        ByteBuffer big = pool.take(1 << 20);
        ByteBuffer big2 = pool.take(1 << 20);
        ByteBuffer io = pool.takeIo();
        ByteBuffer io2 = pool.takeIo();
        pool.give(big);
        pool.giveIo(io);
        long lent = (1 << 20) + DirectBuffers.IO_BUFFER;
        assertEquals(scratches + 2 * lent, pool.heldBytes());

        assertEquals(lent, pool.trimSpares());
        assertEquals(scratches + lent, pool.heldBytes());
        assertEquals(0, pool.spareBytes());
        assertEquals(0, pool.trimSpares());

        // what was lent comes back as spare as before, and a new take allocates again
        pool.give(big2);
        pool.giveIo(io2);
        assertEquals(lent, pool.spareBytes() + DirectBuffers.IO_BUFFER);
        assertEquals(scratches + lent, pool.heldBytes());
        long allocated = pool.allocatedCount();
        pool.trimSpares();
        pool.take(1 << 20);
        assertEquals(allocated + 1, pool.allocatedCount());
    }

    @Test
    void theHighSeesWhatWasLentAndGivenBackBetweenTwoLooks() {
        DirectBuffers pool = new DirectBuffers(8, 64L * 1024 * 1024);
        long scratches = pool.heldBytes();
        assertEquals(scratches, pool.highBytes());
        java.util.List<ByteBuffer> lent = new java.util.ArrayList<>();
        for (int i = 0; i < 12; i++) {
            lent.add(pool.take(1 << 20));
        }
        lent.add(pool.takeIo());
        pool.giveIo(lent.remove(lent.size() - 1));
        lent.forEach(pool::give);
        assertEquals(scratches + 12L * (1 << 20) + DirectBuffers.IO_BUFFER, pool.highBytes());
        assertEquals(scratches + DirectBuffers.MAX_SPARE_BYTES + DirectBuffers.IO_BUFFER, pool.heldBytes());
        pool.trimSpares();
        pool.resetHigh();
        assertEquals(scratches, pool.highBytes());
        assertEquals(scratches, pool.heldBytes());
    }
}
