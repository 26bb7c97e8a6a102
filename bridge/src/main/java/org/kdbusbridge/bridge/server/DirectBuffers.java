package org.kdbusbridge.bridge.server;

import java.lang.ref.PhantomReference;
import java.lang.ref.ReferenceQueue;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;

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
 *
 * Budget: every buffer this pool allocates (large, I/O, the two scratches) is counted in
 * {@link #heldBytes} until it is released (or, if abandoned to the GC, collected), and a new
 * large or I/O buffer is allocated only while the total stays within the budget, which is kept
 * below the JVM's direct-memory limit. Past it {@link #take} and {@link #takeIo} return null
 * (spares are released first to make room), so ByteBuffer.allocateDirect is never called where
 * it could fail: the JDK's reservation path, once the limit is near, runs System.gc() and
 * sleeps on the calling thread, which here is the event loop.
 */
final class DirectBuffers {
    /** Room for two windows of the 1 MiB fan-out (or eight 1 MiB messages in flight). */
    static final long MAX_SPARE_BYTES = 8L * 1024 * 1024;
    /** Capacities are rounded up to this, so sizes that differ by a header's length share buffers. */
    static final int GRANULE = 64 * 1024;

    /** What is left for other direct-memory users of the JVM: a quarter of its limit, at least this. */
    static final long MIN_MARGIN = 32L * 1024 * 1024;

    private final ArrayList<ByteBuffer> spares = new ArrayList<>();
    private long spareBytes;
    private long reused;
    private long allocated;
    private long refused;
    /** The most direct memory this pool may hold at once. */
    private final long budget;
    /** Bytes allocated by this pool and not yet released: lent, spare, abandoned, scratches. */
    private long heldBytes;
    private long peakHeldBytes;
    /**
     * The most held at once since {@link #resetHigh}: the memory reclaimer looks only every
     * 500 ms, and a burst that lends and gives back tens of MiB between two looks leaves up to
     * {@link #MAX_SPARE_BYTES} of spares that its growth rule would never see otherwise.
     */
    private long highBytes;
    /** Bytes of large buffers lent by {@link #take} and not yet given back or abandoned. */
    private long lentBytes;
    /** Buffers left to the GC (a view may still read them): counted until collected. */
    private final HashSet<Abandoned> abandoned = new HashSet<>();
    private final ReferenceQueue<ByteBuffer> collected = new ReferenceQueue<>();
    private long abandonedBytes;

    private static final class Abandoned extends PhantomReference<ByteBuffer> {
        final int bytes;

        Abandoned(ByteBuffer b, ReferenceQueue<ByteBuffer> q) {
            super(b, q);
            bytes = b.capacity();
        }
    }

    /**
     * A direct buffer of at least {@code size} bytes, position 0, limit {@code size}; contents
     * undefined. Null when none is spare and a new one would take the pool past its budget.
     */
    ByteBuffer take(int size) {
        long ceiling = size + (long) size / 4;
        for (int i = spares.size() - 1; i >= 0; i--) {
            ByteBuffer b = spares.get(i);
            if (b.capacity() >= size && b.capacity() <= ceiling) {
                spares.set(i, spares.get(spares.size() - 1));
                spares.remove(spares.size() - 1);
                spareBytes -= b.capacity();
                reused++;
                lentBytes += b.capacity(); // give() and abandon() count it back out
                b.clear().limit(size);
                return b;
            }
        }
        int capacity = (int) Math.min(Integer.MAX_VALUE - 8, ((long) size + GRANULE - 1) / GRANULE * GRANULE);
        if (!makeRoom(capacity)) {
            refused++;
            return null;
        }
        allocated++;
        ByteBuffer b = ByteBuffer.allocateDirect(capacity);
        heldBytes += capacity;
        lentBytes += capacity;
        grew();
        b.limit(size);
        return b;
    }

    /**
     * Whether {@code bytes} more fit in the budget, after counting collected abandoned buffers
     * out and, if needed, releasing spares (a spare costs a new allocation later; refusing costs
     * a heap copy now). Never waits, never asks for a GC.
     */
    private boolean makeRoom(long bytes) {
        for (Object r; (r = collected.poll()) != null; ) {
            Abandoned a = (Abandoned) r;
            if (abandoned.remove(a)) {
                heldBytes -= a.bytes;
                abandonedBytes -= a.bytes;
            }
        }
        while (heldBytes + bytes > budget && !spares.isEmpty()) {
            ByteBuffer s = spares.remove(spares.size() - 1);
            spareBytes -= s.capacity();
            heldBytes -= s.capacity();
            org.kdbusbridge.core.message.DirectMemory.release(s);
        }
        while (heldBytes + bytes > budget && !ioSpares.isEmpty()) {
            org.kdbusbridge.core.message.DirectMemory.release(ioSpares.pollFirst());
            heldBytes -= IO_BUFFER;
        }
        return heldBytes + bytes <= budget;
    }

    /** Takes a buffer back from a freed payload; kept if there is room, else released now. */
    void give(ByteBuffer b) {
        lentBytes -= b.capacity();
        if (spareBytes + b.capacity() <= MAX_SPARE_BYTES) {
            spares.add(b);
            spareBytes += b.capacity();
            return;
        }
        heldBytes -= b.capacity();
        org.kdbusbridge.core.message.DirectMemory.release(b); // now, not at some later GC
    }

    /**
     * Takes back a buffer from {@link #take} that cannot be reused or released because views of
     * it may still be read (a driver call's frame): it stays counted against the budget until
     * the GC has collected it.
     */
    void abandon(ByteBuffer b) {
        lentBytes -= b.capacity();
        abandonedBytes += b.capacity();
        abandoned.add(new Abandoned(b, collected));
    }

    /** The size of a session's input or output buffer while it has I/O in progress. */
    static final int IO_BUFFER = 64 * 1024;
    /** How many I/O buffers may be lent at once by default (8 MiB of direct memory). */
    static final int DEFAULT_MAX_IO_BUFFERS = org.kdbusbridge.bridge.transport.TransportSettings.IO_BUFFERS;

    private final int maxIoBuffers;
    private final java.util.ArrayDeque<ByteBuffer> ioSpares = new java.util.ArrayDeque<>();
    private int ioLent;
    private long ioRefused;
    private ByteBuffer inputScratch;
    private ByteBuffer outputScratch;

    /**
     * The default bound on lent I/O buffers (TransportSettings.ioBuffers sets another,
     * docs/performance.md); the budget is {@link #defaultBudget} of this JVM's direct-memory limit.
     */
    DirectBuffers() {
        this(DEFAULT_MAX_IO_BUFFERS);
    }

    /** {@code maxIoBuffers}: the bound on I/O buffers lent at once (0: every session uses the scratches). */
    DirectBuffers(int maxIoBuffers) {
        this(maxIoBuffers, defaultBudget(jvmDirectMemoryLimit()));
    }

    /** {@code budget}: the most direct memory (bytes) the pool holds at once, scratches included. */
    DirectBuffers(int maxIoBuffers, long budget) {
        this.maxIoBuffers = Math.max(0, maxIoBuffers);
        this.budget = Math.max(0, budget);
        // The two scratches are needed whatever happens: counted before anything else is lent,
        // so a late first use cannot take the pool past its budget.
        this.heldBytes = 2L * IO_BUFFER;
        this.peakHeldBytes = heldBytes;
        this.highBytes = heldBytes;
    }

    private void grew() {
        peakHeldBytes = Math.max(peakHeldBytes, heldBytes);
        highBytes = Math.max(highBytes, heldBytes);
    }

    /**
     * The JVM's direct-memory limit, read once: -XX:MaxDirectMemorySize if given, else the JDK's
     * default, which is the heap's maximum (jdk.internal.misc.VM is not exported).
     */
    static long jvmDirectMemoryLimit() {
        long limit = Runtime.getRuntime().maxMemory();
        for (String arg : ProcessFacts.jvmOptions()) {
            if (arg.startsWith("-XX:MaxDirectMemorySize=")) {
                long v = parseSize(arg.substring("-XX:MaxDirectMemorySize=".length()));
                if (v >= 0) {
                    limit = v; // the last one given wins, as in the JVM
                }
            }
        }
        return limit;
    }

    /** A JVM size ("512m", "1G", "65536"); -1 if malformed. */
    static long parseSize(String s) {
        if (s.isEmpty()) {
            return -1;
        }
        long unit = switch (Character.toLowerCase(s.charAt(s.length() - 1))) {
            case 'k' -> 1L << 10;
            case 'm' -> 1L << 20;
            case 'g' -> 1L << 30;
            case 't' -> 1L << 40;
            default -> 1;
        };
        String digits = unit == 1 ? s : s.substring(0, s.length() - 1);
        try {
            long v = Long.parseLong(digits);
            return v < 0 || v > Long.MAX_VALUE / unit ? -1 : v * unit;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** The pool's share of a direct-memory limit: it leaves a margin for the JVM's other users. */
    static long defaultBudget(long limit) {
        return Math.max(0, limit - Math.max(limit / 4, MIN_MARGIN));
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
            if (!makeRoom(IO_BUFFER)) {
                ioRefused++;
                return null;
            }
            b = ByteBuffer.allocateDirect(IO_BUFFER);
            heldBytes += IO_BUFFER;
            grew();
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
            inputScratch = ByteBuffer.allocateDirect(IO_BUFFER); // counted from the start (constructor)
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

    /**
     * Releases every spare (large and I/O) now: the memory reclaimer's step after a burst, so
     * the pool's resident memory goes back to its two scratches. Returns the bytes released.
     */
    long trimSpares() {
        long released = 0;
        while (!spares.isEmpty()) {
            ByteBuffer s = spares.remove(spares.size() - 1);
            released += s.capacity();
            org.kdbusbridge.core.message.DirectMemory.release(s);
        }
        spareBytes = 0;
        for (ByteBuffer b; (b = ioSpares.pollFirst()) != null; ) {
            released += IO_BUFFER;
            org.kdbusbridge.core.message.DirectMemory.release(b);
        }
        heldBytes -= released;
        return released;
    }

    int ioLent() {
        return ioLent;
    }

    long ioRefusedCount() {
        return ioRefused;
    }

    long budget() {
        return budget;
    }

    long heldBytes() {
        return heldBytes;
    }

    /** The most this pool has held at once (never past the budget, bar the two scratches). */
    long peakHeldBytes() {
        return peakHeldBytes;
    }

    /** The most this pool has held at once since the last {@link #resetHigh} (or since it was made). */
    long highBytes() {
        return highBytes;
    }

    /** Starts a new high-water mark from what is held now (the reclaimer, after a reclaim). */
    void resetHigh() {
        highBytes = heldBytes;
    }

    long lentBytes() {
        return lentBytes;
    }

    long abandonedBytes() {
        return abandonedBytes;
    }

    /** Large buffers refused because the budget was reached. */
    long refusedCount() {
        return refused;
    }

    long spareBytes() {
        return spareBytes;
    }

    /** Spare bytes, large and I/O: what {@link #trimSpares} would release now. */
    long spareTotalBytes() {
        return spareBytes + (long) ioSpares.size() * IO_BUFFER;
    }

    long reusedCount() {
        return reused;
    }

    long allocatedCount() {
        return allocated;
    }
}
