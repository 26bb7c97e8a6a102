package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The reclaimer's decisions, on a fake clock and fake sizes (no GC, no sleeps). */
class MemoryReclaimerTest {
    static final long S = 1_000_000_000L;
    static final long MIB = 1024 * 1024;

    final MemoryReclaimer r = new MemoryReclaimer(S + S / 2, 8 * MIB, 32);

    @Test
    void nothingGrewNeverReclaims() {
        for (long t = 0; t < 100; t++) {
            assertFalse(r.shouldReclaim(t * S, 0, 32 * MIB, 128 * 1024));
        }
        assertEquals(0, r.reclaimCount());
    }

    @Test
    void reclaimsOnceAfterQuietTimeFollowingGrowth() {
        assertFalse(r.shouldReclaim(0, 0, 32 * MIB, 0));
        // a flood: busy and the heap grows
        assertFalse(r.shouldReclaim(S, 1000, 140 * MIB, 0));
        assertFalse(r.shouldReclaim(2 * S, 2000, 140 * MIB, 0));
        // quiet, but not yet long enough (quiet since 2 s)
        assertFalse(r.shouldReclaim(3 * S, 2000, 140 * MIB, 0));
        assertTrue(r.shouldReclaim(2 * S + S + S / 2, 2000, 140 * MIB, 0));
        r.reclaimed(34 * MIB, 0);
        // still quiet: never again for the same growth, even if the GC could not shrink it all
        for (long t = 4; t < 50; t++) {
            assertFalse(r.shouldReclaim(t * S, 2000, 34 * MIB, 0));
        }
        assertEquals(1, r.reclaimCount());
    }

    @Test
    void busyLoopNeverReclaims() {
        r.shouldReclaim(0, 0, 32 * MIB, 0);
        for (long t = 1; t < 100; t++) {
            assertFalse(r.shouldReclaim(t * S, t * 1000, 200 * MIB, 16 * MIB));
        }
    }

    @Test
    void poolGrowthAloneReclaims() {
        r.shouldReclaim(0, 0, 32 * MIB, 128 * 1024);
        assertFalse(r.shouldReclaim(S, 100, 32 * MIB, 16 * MIB));
        assertTrue(r.shouldReclaim(3 * S, 100, 32 * MIB, 16 * MIB));
    }

    @Test
    void smallGrowthIsLeftAlone() {
        r.shouldReclaim(0, 0, 32 * MIB, 0);
        r.shouldReclaim(S, 100, 32 * MIB + 4 * MIB, 4 * MIB);
        assertFalse(r.shouldReclaim(10 * S, 100, 32 * MIB + 4 * MIB, 4 * MIB), "8 MiB in all is left alone");
    }

    @Test
    void heapAndPoolGrowthCountTogether() {
        r.shouldReclaim(0, 0, 32 * MIB, 0);
        r.shouldReclaim(S, 100, 32 * MIB + 6 * MIB, 6 * MIB);
        assertTrue(r.shouldReclaim(10 * S, 100, 32 * MIB + 6 * MIB, 6 * MIB),
                "6 MiB of heap and 6 of pool: 12 MiB kept, each under the threshold");
    }

    @Test
    void secondBurstAfterReclaimIsMeasuredFromTheNewFloor() {
        r.shouldReclaim(0, 0, 32 * MIB, 0);
        r.shouldReclaim(S, 100, 100 * MIB, 0);
        assertTrue(r.shouldReclaim(3 * S, 100, 100 * MIB, 0));
        r.reclaimed(20 * MIB, 0);
        assertEquals(20 * MIB, r.heapFloor());
        // busy again, grows by less than the threshold from the new floor: nothing
        r.shouldReclaim(4 * S, 200, 27 * MIB, 0);
        assertFalse(r.shouldReclaim(10 * S, 200, 27 * MIB, 0));
        // busy again, grows past it: one more reclaim
        r.shouldReclaim(11 * S, 300, 60 * MIB, 0);
        assertTrue(r.shouldReclaim(13 * S, 300, 60 * MIB, 0));
    }

    @Test
    void aTrickleOfTrafficStillCountsAsQuiet() {
        r.shouldReclaim(0, 0, 32 * MIB, 0);
        r.shouldReclaim(S, 5000, 100 * MIB, 0); // the burst
        // then one ping a second: 2 events per look, far under the quiet bound
        assertFalse(r.shouldReclaim(2 * S, 5002, 100 * MIB, 0));
        assertTrue(r.shouldReclaim(3 * S, 5004, 100 * MIB, 0));
        r.reclaimed(30 * MIB, 0);
        assertFalse(r.shouldReclaim(4 * S, 5006, 30 * MIB, 0));
    }

    @Test
    void theGcShrinkingOnItsOwnLowersTheFloor() {
        r.shouldReclaim(0, 0, 32 * MIB, 0);
        r.shouldReclaim(S, 100, 10 * MIB, 0);
        r.shouldReclaim(2 * S, 200, 19 * MIB, 0);
        assertTrue(r.shouldReclaim(4 * S, 200, 19 * MIB, 0));
    }

    /** A reclaim while an attacker held its memory is not the last: its departure is one too. */
    @Test
    void aDepartureAfterAReclaimAtTheHighWaterMarkReclaimsAgain() {
        MemoryReclaimer r = new MemoryReclaimer(S, 8 * MIB, 32);
        r.shouldReclaim(0, 0, 32 * MIB, 0, 0);
        r.shouldReclaim(S / 2, 1000, 150 * MIB, 0, 90 * MIB); // the attack
        assertTrue(r.shouldReclaim(2 * S, 1000, 150 * MIB, 0, 90 * MIB), "quiet while the memory is held");
        r.reclaimed(140 * MIB, 0, 90 * MIB); // all of it still live
        assertFalse(r.shouldReclaim(3 * S, 1000, 140 * MIB, 0, 90 * MIB));
        r.shouldReclaim(3 * S + S / 2, 5000, 140 * MIB, 0, 1 * MIB); // the attacker leaves: busy
        assertFalse(r.shouldReclaim(4 * S, 5000, 140 * MIB, 0, 1 * MIB), "not while the departure is fresh");
        assertTrue(r.shouldReclaim(5 * S, 5000, 140 * MIB, 0, 1 * MIB), "quiet after a release");
        r.reclaimed(40 * MIB, 0, 1 * MIB);
        assertFalse(r.shouldReclaim(7 * S, 5000, 40 * MIB, 0, 1 * MIB), "once per release");
    }

    /**
     * A burst of large payloads between two looks (a sub-second flood, then everyone gone): no
     * look sees the pool grow, and what it leaves, 8 MiB of spares, is not more than the growth
     * threshold; the pool's high since the last reclaim is the growth.
     */
    @Test
    void aPoolBurstBetweenTwoLooksIsSeenByItsHigh() {
        long floor = 128 * 1024;
        r.shouldReclaim(0, 0, 32 * MIB, floor, floor, 0);
        // next look: the burst is over, 8 MiB of spares left, the high saw 70 MiB
        assertFalse(r.shouldReclaim(S / 2, 5000, 32 * MIB, floor + 8 * MIB, 70 * MIB, 0), "busy");
        assertFalse(r.shouldReclaim(S, 5000, 32 * MIB, floor + 8 * MIB, 70 * MIB, 0), "not yet quiet long enough");
        assertTrue(r.shouldReclaim(2 * S, 5000, 32 * MIB, floor + 8 * MIB, 70 * MIB, 0));
        r.reclaimed(32 * MIB, floor);
        // the caller's new mark starts at the floor: nothing more, busy or not
        assertFalse(r.shouldReclaim(3 * S, 5000, 32 * MIB, floor, floor, 0));
        r.shouldReclaim(4 * S, 9000, 32 * MIB, floor, floor, 0);
        assertFalse(r.shouldReclaim(6 * S, 9000, 32 * MIB, floor, floor, 0));
        assertEquals(1, r.reclaimCount());
    }

    /** The same without the high: the spares alone are not growth enough (the rule's old gap, kept for callers that pass none). */
    @Test
    void sparesAtTheThresholdAloneAreNotGrowth() {
        long floor = 128 * 1024;
        r.shouldReclaim(0, 0, 32 * MIB, floor);
        r.shouldReclaim(S / 2, 5000, 32 * MIB, floor + 8 * MIB);
        assertFalse(r.shouldReclaim(3 * S, 5000, 32 * MIB, floor + 8 * MIB));
    }

    /** A high that was all given back already leaves nothing to trim: no GC for it. */
    @Test
    void aBurstGivenBackEntirelyIsLeftAlone() {
        long floor = 128 * 1024;
        r.shouldReclaim(0, 0, 32 * MIB, floor, floor, 0);
        r.shouldReclaim(S / 2, 5000, 32 * MIB, floor, 70 * MIB, 0);
        assertFalse(r.shouldReclaim(3 * S, 5000, 32 * MIB, floor, 70 * MIB, 0));
    }

    /** A high within the threshold is small growth, whatever is left of it. */
    @Test
    void aSmallBurstIsLeftAlone() {
        long floor = 128 * 1024;
        r.shouldReclaim(0, 0, 32 * MIB, floor, floor, 0);
        r.shouldReclaim(S / 2, 5000, 32 * MIB, floor + 4 * MIB, floor + 8 * MIB, 0);
        assertFalse(r.shouldReclaim(3 * S, 5000, 32 * MIB, floor + 4 * MIB, floor + 8 * MIB, 0));
    }

    /**
     * Never-read monitors (issue 14): a reclaim came while their queues still held the flood's
     * payload buffers (lent), so the pool's floor is there; when they leave, the buffers come
     * back as 8 MiB of spares, below that floor: no growth, no GC, but the spares go.
     */
    @Test
    void sparesLeftBelowAFloorSetWhileLentAreTrimmedWithoutAGc() {
        long floor = 128 * 1024;
        r.shouldReclaim(0, 0, 10 * MIB, floor, floor, 0);
        r.shouldReclaim(S / 2, 5000, 10 * MIB, floor + 12 * MIB, floor + 12 * MIB, 6 * MIB); // the flood
        assertFalse(r.shouldTrimSpares(S / 2, 0), "nothing spare, and busy");
        assertTrue(r.shouldReclaim(2 * S, 5000, 10 * MIB, floor + 12 * MIB, floor + 12 * MIB, 6 * MIB));
        r.reclaimed(10 * MIB, floor + 12 * MIB, 6 * MIB); // all still lent to the queues
        // the monitors leave: busy, then 8 MiB of the 12 come back as spares
        assertFalse(r.shouldReclaim(2 * S + S / 2, 9000, 10 * MIB, floor + 8 * MIB, floor + 12 * MIB, 0));
        assertFalse(r.shouldTrimSpares(2 * S + S / 2, 8 * MIB), "not while busy");
        assertFalse(r.shouldReclaim(3 * S, 9000, 10 * MIB, floor + 8 * MIB, floor + 8 * MIB, 0));
        assertFalse(r.shouldTrimSpares(3 * S, 8 * MIB), "not before the quiet time");
        assertFalse(r.shouldReclaim(4 * S + S / 2, 9000, 10 * MIB, floor + 8 * MIB, floor + 8 * MIB, 0),
                "no growth from the floor: no GC");
        assertTrue(r.shouldTrimSpares(4 * S + S / 2, 8 * MIB), "but the spares go");
        assertEquals(1, r.reclaimCount());
    }

    /** Spares go after any quiet time, a small burst's too (that costs no pause); nothing to trim, nothing done. */
    @Test
    void sparesGoAfterQuietTimeOnly() {
        r.shouldReclaim(0, 0, 10 * MIB, 0);
        assertFalse(r.shouldTrimSpares(0, 4 * MIB));
        r.shouldReclaim(S, 10, 10 * MIB, 4 * MIB); // a trickle: still quiet
        assertFalse(r.shouldTrimSpares(S, 4 * MIB), "quiet since 0, but only for 1 s");
        assertTrue(r.shouldTrimSpares(S + S / 2, 4 * MIB));
        assertFalse(r.shouldTrimSpares(S + S / 2, 0));
        r.shouldReclaim(2 * S, 5000, 10 * MIB, 4 * MIB); // busy again
        assertFalse(r.shouldTrimSpares(2 * S, 4 * MIB));
    }
}
