package org.kdbusbridge.bridge.server;

import java.nio.ByteBuffer;
import java.util.ArrayList;

/**
 * Direct buffers for large (zero-copy) payloads, reused once the last receiver has been written:
 * a fresh 1 MiB direct buffer costs a zeroing pass and page faults on every message, a reused
 * one neither.
 *
 * Invariants: loop thread only (payloads are freed by the core on the loop thread); a buffer is
 * either inside exactly one live payload or spare, never both; spare buffers total at most
 * {@link #MAX_SPARE_BYTES}, so what the pool keeps resident is bounded; a request is served only
 * by a spare of at most 5/4 of its size, so a small payload never pins a huge buffer.
 */
final class PayloadBuffers {
    /** Room for two windows of the 1 MiB fan-out (or eight 1 MiB messages in flight). */
    static final long MAX_SPARE_BYTES = 8L * 1024 * 1024;
    /** Capacities are rounded up to this, so sizes that differ by a header's length share buffers. */
    static final int GRANULE = 64 * 1024;

    private final ArrayList<ByteBuffer> spares = new ArrayList<>();
    private long spareBytes;
    private long reused;
    private long allocated;

    /** A direct buffer of at least {@code size} bytes, position 0, limit {@code size}; contents undefined. */
    ByteBuffer take(int size) {
        long ceiling = size + (long) size / 4;
        for (int i = spares.size() - 1; i >= 0; i--) {
            ByteBuffer b = spares.get(i);
            if (b.capacity() >= size && b.capacity() <= ceiling) {
                spares.set(i, spares.get(spares.size() - 1));
                spares.remove(spares.size() - 1);
                spareBytes -= b.capacity();
                reused++;
                b.clear().limit(size);
                return b;
            }
        }
        allocated++;
        long rounded = ((long) size + GRANULE - 1) / GRANULE * GRANULE;
        ByteBuffer b = ByteBuffer.allocateDirect((int) Math.min(Integer.MAX_VALUE - 8, rounded));
        b.limit(size);
        return b;
    }

    /** Takes a buffer back from a freed payload; kept if there is room, else released now. */
    void give(ByteBuffer b) {
        if (spareBytes + b.capacity() <= MAX_SPARE_BYTES) {
            spares.add(b);
            spareBytes += b.capacity();
            return;
        }
        release(b);
    }

    /** Frees the native memory now rather than at some later GC (what kept RSS high before). */
    private static void release(ByteBuffer b) {
        org.kdbusbridge.core.message.DirectMemory.release(b);
    }

    long spareBytes() {
        return spareBytes;
    }

    long reusedCount() {
        return reused;
    }

    long allocatedCount() {
        return allocated;
    }
}
