// The ledger against a plain map under random charges and releases over colliding uids
// (negative, -1 for unknown credentials, large): same values, and an entry only while non-zero.
package org.kdbusbridge.core.connection;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;

class UidLedgerTest {
    @Test
    void agreesWithAMapAndDropsEntriesThatReachZero() {
        Random r = new Random(14);
        UidLedger ledger = new UidLedger();
        Map<Long, Long> model = new HashMap<>();
        long[] uids = new long[300];
        for (int i = 0; i < uids.length; i++) {
            uids[i] = i % 3 == 0 ? -1 - i : i % 3 == 1 ? 1000 + i : ((long) i << 40);
        }
        for (int step = 0; step < 200_000; step++) {
            long uid = uids[r.nextInt(step < 100_000 ? uids.length : 40)];
            long held = model.getOrDefault(uid, 0L);
            long delta = r.nextBoolean() ? 1 + r.nextInt(50) : -(held == 0 ? 1 : 1 + r.nextInt((int) held));
            ledger.add(uid, delta);
            long now = Math.max(0, held + delta);
            if (now == 0) {
                model.remove(uid);
            } else {
                model.put(uid, now);
            }
            if (step % 997 == 0) {
                for (long u : uids) {
                    assertEquals(model.getOrDefault(u, 0L), ledger.get(u), "uid " + u + " at step " + step);
                }
                assertEquals(model.size(), ledger.size());
            }
        }
        for (long u : uids) {
            ledger.add(u, -ledger.get(u));
        }
        assertEquals(0, ledger.size());
    }
}
