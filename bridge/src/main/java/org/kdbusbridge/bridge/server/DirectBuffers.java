package org.kdbusbridge.bridge.server;

import java.nio.ByteBuffer;
import java.util.ArrayList;

/**
 * The bus's spare direct buffers, in two size classes. Large ones hold large payloads (reused
 * once the last receiver has been written) and large input frames: a fresh 1 MiB direct buffer
 * costs a zeroing pass and page faults on every message, a reused one neither. Small ones are
 * the fixed-size input/output buffers of closed sessions, reused by new ones, so a connect
 * costs no fresh zeroed direct memory.
 *
 * Invariants: loop thread only (payloads are freed by the core on the loop thread); a buffer is
 * lent to one payload or session, or spare, never both; large spares total at most
 * {@link #MAX_SPARE_BYTES} and at most {@link #MAX_SMALL_SPARES} small ones are kept, so what
 * the pool keeps resident is bounded; a large request is served only by a spare of at most 5/4
 * of its size, so a small payload never pins a huge buffer.
 */
final class DirectBuffers {
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
        org.kdbusbridge.core.message.DirectMemory.release(b); // now, not at some later GC
    }

    static final int MAX_SMALL_SPARES = 128;
    private final java.util.ArrayDeque<ByteBuffer> smallSpares = new java.util.ArrayDeque<>();

    /** A cleared session-sized buffer ({@code size} bytes), reused when one is spare. */
    ByteBuffer takeSmall(int size) {
        ByteBuffer b = smallSpares.pollLast();
        if (b == null || b.capacity() != size) {
            return ByteBuffer.allocateDirect(size);
        }
        b.clear();
        return b;
    }

    /** Returns a closed session's buffer; at most {@link #MAX_SMALL_SPARES} are kept. */
    void giveSmall(ByteBuffer b) {
        if (smallSpares.size() < MAX_SMALL_SPARES) {
            smallSpares.addLast(b);
        }
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
