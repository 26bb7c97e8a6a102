package org.kdbusbridge.core.connection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures;

// The callee index against a LinkedHashMap model: lookups, opening order, and removals in any
// order (the backward shift must keep every probe run reachable).
class ReplySlotIndexTest {
    private final Connection callee = Fixtures.conn(1);

    @Test
    void matchesALinkedHashMapUnderRandomOpensAndCloses() {
        List<Connection> callers = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            callers.add(Fixtures.conn(100 + i));
        }
        Map<List<Long>, Connection> model = new LinkedHashMap<>();
        Random r = new Random(14);
        for (int step = 0; step < 200_000; step++) {
            Connection caller = callers.get(r.nextInt(callers.size()));
            long serial = 1 + r.nextInt(400);
            List<Long> key = List.of(caller.id(), serial);
            if (r.nextInt(3) > 0) {
                ReplySlot s = callee.openPendingIncoming(caller, serial);
                assertEquals(!model.containsKey(key), s != null, "duplicate refused, new one opened");
                model.putIfAbsent(key, caller);
            } else {
                assertSame(model.remove(key), callee.takePendingIncoming(caller.id(), serial));
            }
            if (step < 5_000 || step % 1_000 == 0) { // a full check is O(open slots): every step while small
                callee.checkReplySlotLinks();
                caller.checkReplySlotLinks();
            }
            if (step % 10_000 == 0) {
                assertSameOrder(model);
            }
        }
        assertSameOrder(model);
        for (List<Long> key : new ArrayList<>(model.keySet())) {
            assertSame(model.remove(key), callee.takePendingIncoming(key.get(0), key.get(1)));
            assertEquals(model.size(), callee.pendingIncomingReplies());
        }
        assertNull(callee.firstPendingIncoming());
    }

    private void assertSameOrder(Map<List<Long>, Connection> model) {
        List<List<Long>> walked = new ArrayList<>();
        for (ReplySlot s = callee.firstPendingIncoming(); s != null; s = s.nextIncoming()) {
            walked.add(List.of(s.caller().id(), s.serial()));
            assertEquals(true, callee.hasPendingIncoming(s.caller().id(), s.serial()));
        }
        assertEquals(new ArrayList<>(model.keySet()), walked);
        assertEquals(model.size(), callee.pendingIncomingReplies());
    }

    @Test
    void denseCallerSerialGridSpreadsOverTheTable() {
        // The shape of issue 14: 100 callers x 1,000 serials gave 31*id + serial only ~4k hashes.
        Set<Integer> buckets = new HashSet<>();
        int mask = (1 << 18) - 1; // the table size 100k slots grow to (kept at most half full)
        for (long id = 1; id <= 100; id++) {
            for (long serial = 1; serial <= 1000; serial++) {
                buckets.add(ReplySlotIndex.hash(id, serial) & mask);
            }
        }
        // A random function fills 2^18 * (1 - e^(-100k/2^18)) ~ 83k distinct buckets.
        assertEquals(true, buckets.size() > 80_000, buckets.size() + " distinct buckets");
    }

    @Test
    void callerDepartureClosesItsSlotsOnEveryCalleeOnly() {
        Connection a = Fixtures.conn(2);
        Connection b = Fixtures.conn(3);
        Connection other = Fixtures.conn(4);
        callee.openPendingIncoming(a, 1);
        callee.openPendingIncoming(b, 1);
        other.openPendingIncoming(a, 2);
        ReplySlot s = callee.openPendingIncoming(a, 3);
        assertEquals(3, a.closeAllPendingOutgoing());
        assertEquals(1, callee.pendingIncomingReplies());
        assertSame(b, callee.firstPendingIncoming().caller());
        assertEquals(0, other.pendingIncomingReplies());
        assertEquals(false, s.isOpen());
        assertEquals(false, callee.closePendingIncoming(s), "a closed slot is never closed twice");
        assertEquals(0, a.closeAllPendingOutgoing());
    }
}
