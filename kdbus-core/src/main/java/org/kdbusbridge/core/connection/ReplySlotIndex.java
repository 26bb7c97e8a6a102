package org.kdbusbridge.core.connection;

/**
 * A callee's open reply slots: found by (caller id, serial) in O(1) and walked in opening order.
 *
 * Open addressing with linear probing over a power-of-two table kept at most half full; the key
 * is mixed (a 64-bit finalizer over both halves) so that many callers with small, dense serials
 * spread evenly. Removal shifts the following run back (no tombstones). The table is allocated
 * on the first slot and dropped when the last one closes: most connections never owe a reply.
 * Lookups allocate nothing.
 */
final class ReplySlotIndex {
    private static final int MIN_CAPACITY = 16;
    private ReplySlot[] table;
    private int size;
    private ReplySlot head, tail;

    int size() { return size; }
    ReplySlot first() { return head; }

    static int hash(long callerId, long serial) {
        long h = callerId * 0x9E3779B97F4A7C15L + serial;
        h ^= h >>> 33;
        h *= 0xFF51AFD7ED558CCDL;
        h ^= h >>> 33;
        h *= 0xC4CEB9FE1A85EC53L;
        h ^= h >>> 33;
        return (int) h;
    }

    ReplySlot find(long callerId, long serial) {
        ReplySlot[] t = table;
        if (t == null) {
            return null;
        }
        int mask = t.length - 1;
        for (int i = hash(callerId, serial) & mask; ; i = (i + 1) & mask) {
            ReplySlot s = t[i];
            if (s == null) {
                return null;
            }
            if (s.serial == serial && s.callerId == callerId) {
                return s;
            }
        }
    }

    /** Adds a slot whose key is not present (the caller checked). */
    void add(ReplySlot s) {
        if (table == null) {
            table = new ReplySlot[MIN_CAPACITY];
        } else if ((size + 1) * 2 > table.length) {
            rehash(table.length * 2);
        }
        insert(table, s);
        size++;
        s.prevIn = tail;
        s.nextIn = null;
        if (tail == null) {
            head = s;
        } else {
            tail.nextIn = s;
        }
        tail = s;
    }

    private static void insert(ReplySlot[] t, ReplySlot s) {
        int mask = t.length - 1;
        int i = hash(s.callerId, s.serial) & mask;
        while (t[i] != null) {
            i = (i + 1) & mask;
        }
        t[i] = s;
    }

    private void rehash(int capacity) {
        ReplySlot[] t = new ReplySlot[capacity];
        for (ReplySlot s = head; s != null; s = s.nextIn) {
            insert(t, s);
        }
        table = t;
    }

    /** Removes a slot that is in this index. */
    void remove(ReplySlot s) {
        ReplySlot[] t = table;
        int mask = t.length - 1;
        int i = hash(s.callerId, s.serial) & mask;
        while (t[i] != s) {
            i = (i + 1) & mask;
        }
        // Shift back every later entry of the run that may sit at i (its home is not in (i, j]).
        for (int j = (i + 1) & mask; t[j] != null; j = (j + 1) & mask) {
            int home = hash(t[j].callerId, t[j].serial) & mask;
            if (((j - home) & mask) >= ((j - i) & mask)) {
                t[i] = t[j];
                i = j;
            }
        }
        t[i] = null;
        size--;
        if (s.prevIn == null) {
            head = s.nextIn;
        } else {
            s.prevIn.nextIn = s.nextIn;
        }
        if (s.nextIn == null) {
            tail = s.prevIn;
        } else {
            s.nextIn.prevIn = s.prevIn;
        }
        s.prevIn = s.nextIn = null;
        if (size == 0) {
            table = null;
        } else if (t.length > MIN_CAPACITY && size * 8 < t.length) {
            rehash(t.length / 2); // a burst of calls does not pin its table for the connection's life
        }
    }

    /**
     * Checks the index of {@code owner}: the table exists iff a slot is open, is a power of two
     * of at least {@link #MIN_CAPACITY} slots at most half full, holds exactly the slots of the
     * opening-order list (each reachable from its home slot, so each found by its own key, which
     * also means no key is there twice), and the list is doubly linked, open and owed by owner.
     */
    void checkInvariants(Connection owner) {
        if ((table == null) != (size == 0) || (head == null) != (size == 0) || (tail == null) != (size == 0)) {
            throw new IllegalStateException(owner + ": " + size + " slots but table " + (table == null ? "absent" : "present")
                    + ", head " + head + ", tail " + tail);
        }
        if (table == null) {
            return;
        }
        int cap = table.length;
        if ((cap & (cap - 1)) != 0 || cap < MIN_CAPACITY || size * 2 > cap) {
            throw new IllegalStateException(owner + ": " + size + " slots in a table of " + cap);
        }
        java.util.Set<ReplySlot> listed = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        ReplySlot prev = null;
        for (ReplySlot s = head; s != null; s = s.nextIn) {
            if (s.prevIn != prev || !listed.add(s)) {
                throw new IllegalStateException(owner + ": incoming slot " + s.serial + " is linked wrongly");
            }
            if (!s.open || s.callee != owner) {
                throw new IllegalStateException(owner + ": incoming slot " + s.serial + " is closed or owed by " + s.callee);
            }
            if (find(s.callerId, s.serial) != s) {
                throw new IllegalStateException(owner + ": slot (" + s.callerId + ", " + s.serial + ") is not found by its key");
            }
            prev = s;
        }
        if (prev != tail || listed.size() != size) {
            throw new IllegalStateException(owner + ": " + listed.size() + " listed slots but size " + size);
        }
        int inTable = 0;
        for (ReplySlot s : table) {
            if (s != null) {
                inTable++;
                if (!listed.contains(s)) {
                    throw new IllegalStateException(owner + ": table holds unlisted slot " + s.serial);
                }
            }
        }
        if (inTable != size) {
            throw new IllegalStateException(owner + ": " + inTable + " slots in the table but size " + size);
        }
    }

    /** Forgets every slot (their callers unlinked them already). */
    void clear() {
        table = null;
        size = 0;
        head = tail = null;
    }
}
