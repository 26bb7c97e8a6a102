package org.kdbusbridge.bridge.server;

/**
 * Decides when the bus gives memory back to the OS after a burst (a flood drained, many clients
 * gone): once the loop has been quiet for {@code quietNanos} (at most {@code quietEvents} socket
 * events in that time, so a trickle of traffic, a client pinging once a second, still counts as
 * quiet) and the committed heap and the
 * direct-buffer pool have grown more than {@code growthBytes} together past what they were after the last
 * reclaim (or at start; for the pool, at its high since then, since a burst between two looks
 * leaves up to 8 MiB of spares (DirectBuffers.MAX_SPARE_BYTES) that the size at a look never
 * shows as growth, so it is enough that something is still held above the floor), or the
 * bytes the bus accounts to clients (match rules, names, reply slots, queued messages) fell more than {@code growthBytes} below their high since the last reclaim:
 * a departure frees the old generation without growing anything, and a reclaim made while the
 * attacker still held its memory would otherwise be the last. Then the caller trims the pool's spares and runs one full GC, which,
 * with the shipped GC flags (-XX:-ShrinkHeapInSteps), uncommits the heap down to what is live.
 *
 * Why not leave it to the GC: the serial collector shrinks the old generation only at a full
 * GC, and a quiet bus never has one, so a flood's heap stayed committed (and resident) for good.
 *
 * Pure decision logic: time and sizes are passed in, so it is tested without a clock or a GC.
 * It never asks for a reclaim while busy, twice for the same growth, or when nothing grew.
 * Loop thread only.
 */
final class MemoryReclaimer {
    /** What the bus does once the loop has been quiet this long after a burst. */
    static final long DEFAULT_QUIET_NANOS = 1_500_000_000L;
    /** Growth (heap committed or pool bytes) below this is left alone: a GC costs a pause. */
    static final long DEFAULT_GROWTH_BYTES = 8L * 1024 * 1024;
    /** Socket events a quiet period may have: a few calls, not a workload. */
    static final long DEFAULT_QUIET_EVENTS = 32;
    /** How often the loop asks; a reclaim comes at most this much after the quiet time. */
    static final long CHECK_INTERVAL_MILLIS = 500;

    private final long quietNanos;
    private final long growthBytes;
    private final long quietEvents;

    /** The activity counter when the current quiet period began; -1 before the first look. */
    private long quietStartCount = -1;
    private long quietSince;
    /** Sizes after the last reclaim (or the first look): growth is measured from these. */
    private long heapFloor = -1;
    private long poolFloor = -1;
    /** The most client-accounted bytes seen since the last reclaim. */
    private long accountedHigh;
    private boolean reclaimed;
    private long reclaims;

    MemoryReclaimer(long quietNanos, long growthBytes, long quietEvents) {
        this.quietNanos = quietNanos;
        this.growthBytes = growthBytes;
        this.quietEvents = quietEvents;
    }

    /**
     * One look, every {@link #CHECK_INTERVAL_MILLIS}: {@code activity} is a counter the loop
     * bumps on every I/O event (more than quietEvents since the quiet period began means busy),
     * {@code heapCommitted} and
     * {@code poolBytes} are the current sizes. True: trim and collect now, then call
     * {@link #reclaimed(long, long)} with the sizes after.
     */
    boolean shouldReclaim(long now, long activity, long heapCommitted, long poolBytes) {
        return shouldReclaim(now, activity, heapCommitted, poolBytes, 0);
    }

    /** As above, with {@code accountedBytes}: what the bus's ledgers hold for clients now. */
    boolean shouldReclaim(long now, long activity, long heapCommitted, long poolBytes, long accountedBytes) {
        return shouldReclaim(now, activity, heapCommitted, poolBytes, poolBytes, accountedBytes);
    }

    /**
     * As above, with {@code poolHigh}: the most the pool held at once since the last reclaim
     * (DirectBuffers.highBytes; the caller starts a new mark when it reclaims), at least
     * {@code poolBytes}.
     */
    boolean shouldReclaim(long now, long activity, long heapCommitted, long poolBytes, long poolHigh,
            long accountedBytes) {
        accountedHigh = Math.max(accountedHigh, accountedBytes);
        if (heapFloor < 0) {
            heapFloor = heapCommitted;
            poolFloor = poolBytes;
        }
        // A shrink below the floor (the GC gave memory back on its own) lowers it, so the next
        // growth is measured from there.
        heapFloor = Math.min(heapFloor, heapCommitted);
        poolFloor = Math.min(poolFloor, poolBytes);
        if (quietStartCount < 0 || activity - quietStartCount > quietEvents) {
            quietStartCount = activity; // busy: the quiet period starts again from here
            quietSince = now;
            reclaimed = false;
            return false;
        }
        if (reclaimed || now - quietSince < quietNanos) {
            return false;
        }
        // The pool: the spares a burst left (what is above the floor now) go, however little,
        // once the burst itself (the high) was growth enough.
        // Heap and pool together: a burst that grew each by less than the threshold still
        // leaves their sum resident.
        long heapGrowth = Math.max(0, heapCommitted - heapFloor);
        long poolGrowth = Math.max(poolHigh, poolBytes) - poolFloor;
        boolean left = heapGrowth > 0 || poolBytes > poolFloor;
        return (heapGrowth + poolGrowth > growthBytes && left) || accountedHigh - accountedBytes > growthBytes;
    }

    /**
     * After {@link #shouldReclaim} (the same look) said no: whether the pool's spares
     * ({@code spareBytes}, large and I/O buffers nobody holds) go now, without a GC. True
     * whenever the loop has been quiet for {@code quietNanos} and there are any: a spare costs
     * no pause to release, only a fresh allocation on the next burst, and the growth rule cannot
     * see them all. A reclaim that came while the burst's buffers were still lent (a never-read
     * queue holds its messages' payloads) sets the pool's floor there; when the queue goes, its
     * buffers come back as up to DirectBuffers.MAX_SPARE_BYTES of spares, below that floor,
     * which no growth rule ever counted (issue 14: never-read monitors left 8 MiB resident).
     */
    boolean shouldTrimSpares(long now, long spareBytes) {
        return spareBytes > 0 && quietStartCount >= 0 && now - quietSince >= quietNanos;
    }

    /** The sizes right after a reclaim: the floors for the next growth. */
    void reclaimed(long heapCommitted, long poolBytes) {
        reclaimed(heapCommitted, poolBytes, 0);
    }

    /** As above, with the client-accounted bytes after it: the high for the next release. */
    void reclaimed(long heapCommitted, long poolBytes, long accountedBytes) {
        heapFloor = heapCommitted;
        poolFloor = poolBytes;
        accountedHigh = accountedBytes;
        reclaimed = true; // not again until the loop has been busy
        reclaims++;
    }

    long reclaimCount() {
        return reclaims;
    }

    long heapFloor() {
        return heapFloor;
    }

    long poolFloor() {
        return poolFloor;
    }
}
