package org.kdbusbridge.bridge.server;

import java.nio.ByteBuffer;
import java.util.ArrayList;

/**
 * The bus's direct buffers. Large ones hold large payloads (reused once the last receiver has
 * been written) and large input frames: a fresh 1 MiB direct buffer costs a zeroing pass and
 * page faults on every message, a reused one neither. I/O buffers (64 KiB) are lent to a
 * session only while it has output pending, from a bounded set; input is read into one
 * loop-wide scratch buffer (a session keeps only its partial frame, copied out). So an idle
 * session holds no direct memory at all.
 *
 * Invariants: loop thread only (payloads are freed by the core on the loop thread); a buffer is
 * lent to one payload or session, or spare, never both; large spares total at most
 * {@link #MAX_SPARE_BYTES}, and at most maxIoBuffers I/O buffers exist (lent or spare) besides
 * the two scratches, so what the pool keeps resident is bounded; a large request is served only by a spare of at most 5/4
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

    /** The size of a session's input or output buffer while it has I/O in progress. */
    static final int IO_BUFFER = 64 * 1024;
    /** How many I/O buffers may be lent at once by default (8 MiB of direct memory). */
    static final int DEFAULT_MAX_IO_BUFFERS = 128;

    private final int maxIoBuffers;
    private final java.util.ArrayDeque<ByteBuffer> ioSpares = new java.util.ArrayDeque<>();
    private int ioLent;
    private long ioRefused;
    private ByteBuffer inputScratch;
    private ByteBuffer outputScratch;

    /** {@code -Dkdbus.ioBuffers=N} sets the bound on lent I/O buffers (docs/performance.md). */
    DirectBuffers() {
        this(Integer.getInteger("kdbus.ioBuffers", DEFAULT_MAX_IO_BUFFERS));
    }

    /** {@code maxIoBuffers}: the bound on I/O buffers lent at once (0: every session uses the scratches). */
    DirectBuffers(int maxIoBuffers) {
        this.maxIoBuffers = Math.max(0, maxIoBuffers);
    }

    /**
     * An {@link #IO_BUFFER}-byte buffer, cleared, for a session's pending output; null when
     * {@code maxIoBuffers} are already lent. Refusing (rather than allocating past the bound)
     * keeps the loop out of the JDK's direct-memory reservation, which, once the direct-memory
     * cap is near, runs System.gc() and sleeps on the calling thread.
     */
    ByteBuffer takeIo() {
        if (ioLent >= maxIoBuffers) {
            ioRefused++;
            return null;
        }
        ByteBuffer b = ioSpares.pollLast();
        if (b == null) {
            b = ByteBuffer.allocateDirect(IO_BUFFER);
        }
        ioLent++;
        b.clear();
        return b;
    }

    /** Takes back a buffer from {@link #takeIo}; it stays spare (there are at most maxIoBuffers). */
    void giveIo(ByteBuffer b) {
        ioLent--;
        ioSpares.addLast(b);
    }

    /**
     * The loop's one input buffer ({@link #IO_BUFFER} bytes): a session reads into it for one
     * read burst and, before the burst ends, copies out whatever partial frame is left, so it
     * is free again when the next socket is served. Loop thread only, never held across events.
     */
    ByteBuffer inputScratch() {
        if (inputScratch == null) {
            inputScratch = ByteBuffer.allocateDirect(IO_BUFFER);
        }
        return inputScratch.clear();
    }

    /** As {@link #inputScratch}, for output when no I/O buffer can be lent: held for one flush only. */
    ByteBuffer outputScratch() {
        if (outputScratch == null) {
            outputScratch = ByteBuffer.allocateDirect(IO_BUFFER);
        }
        return outputScratch.clear();
    }

    boolean isScratch(ByteBuffer b) {
        return b == inputScratch || b == outputScratch;
    }

    int ioLent() {
        return ioLent;
    }

    long ioRefusedCount() {
        return ioRefused;
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
