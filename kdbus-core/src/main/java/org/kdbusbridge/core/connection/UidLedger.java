package org.kdbusbridge.core.connection;

/**
 * Bytes held per uid: open addressing with linear probing over primitive arrays, kept at most
 * half full, so a lookup or a charge allocates nothing (a {@code Map<Long, ...>} boxes every uid
 * above 127 on each call). An entry is removed when it falls to zero (backward shift, no
 * tombstones), so a uid holding nothing has no entry.
 *
 * Invariants: the capacity is a power of two; {@code size} slots are used, at most half; every
 * used slot holds a distinct uid with bytes above zero, reachable from its home slot without
 * crossing an unused slot.
 */
public final class UidLedger {
    private static final int MIN_CAPACITY = 16;
    private long[] uids = new long[MIN_CAPACITY];
    private long[] bytes = new long[MIN_CAPACITY];
    /** Whether a slot is in use (a uid may be any long, -1 for unknown credentials included). */
    private boolean[] used = new boolean[MIN_CAPACITY];
    private int size;

    public int size() { return size; }

    private static int home(long uid, int mask) {
        long h = uid * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 32)) & mask;
    }

    private int indexOf(long uid) {
        int mask = uids.length - 1;
        for (int i = home(uid, mask); used[i]; i = (i + 1) & mask) {
            if (uids[i] == uid) {
                return i;
            }
        }
        return -1;
    }

    public long get(long uid) {
        int i = indexOf(uid);
        return i < 0 ? 0 : bytes[i];
    }

    /** Adds {@code delta} to the uid's bytes; an entry that reaches zero or less goes. */
    public void add(long uid, long delta) {
        int i = indexOf(uid);
        if (i < 0) {
            if (delta <= 0) {
                return;
            }
            if ((size + 1) * 2 > uids.length) {
                resize(uids.length * 2);
            }
            int mask = uids.length - 1;
            i = home(uid, mask);
            while (used[i]) {
                i = (i + 1) & mask;
            }
            used[i] = true;
            uids[i] = uid;
            bytes[i] = delta;
            size++;
            return;
        }
        bytes[i] += delta;
        if (bytes[i] <= 0) {
            remove(i);
        }
    }

    private void remove(int i) {
        int mask = uids.length - 1;
        // Shift back every later entry of the run whose home is not in (i, j].
        for (int j = (i + 1) & mask; used[j]; j = (j + 1) & mask) {
            int h = home(uids[j], mask);
            if (((j - h) & mask) >= ((j - i) & mask)) {
                uids[i] = uids[j];
                bytes[i] = bytes[j];
                i = j;
            }
        }
        used[i] = false;
        uids[i] = 0;
        bytes[i] = 0;
        size--;
    }

    private void resize(int capacity) {
        long[] oldUids = uids;
        long[] oldBytes = bytes;
        boolean[] oldUsed = used;
        uids = new long[capacity];
        bytes = new long[capacity];
        used = new boolean[capacity];
        int mask = capacity - 1;
        for (int k = 0; k < oldUids.length; k++) {
            if (oldUsed[k]) {
                int i = home(oldUids[k], mask);
                while (used[i]) {
                    i = (i + 1) & mask;
                }
                used[i] = true;
                uids[i] = oldUids[k];
                bytes[i] = oldBytes[k];
            }
        }
    }
}
