package org.kdbusbridge.core.match;

/**
 * An open-addressing map from String to a non-null value (linear probing, at most half
 * full, backward-shift deletion): about 20 bytes an entry where a HashMap takes about 40,
 * and lookups by a prefix of a string without making the substring. {@code put(k, null)}
 * removes {@code k}. Keys and values share one array: key at 2i, value at 2i + 1.
 *
 * <p>Invariants: the table is empty or a power of two of slots, at most half full; size is the
 * number of keys; a key has a value and an empty slot has none; every key is reachable from its
 * home slot without crossing an empty slot; no key is there twice.
 */
final class StringMap {
    private static final Object[] EMPTY = new Object[0];
    private Object[] table = EMPTY;
    private int size;

    int size() {
        return size;
    }

    boolean isEmpty() {
        return size == 0;
    }

    /** Slots, for walking with keyAt/valueAt. */
    int capacity() {
        return table.length >> 1;
    }

    String keyAt(int slot) {
        return (String) table[slot << 1];
    }

    Object valueAt(int slot) {
        return table[(slot << 1) + 1];
    }

    Object get(String key) {
        if (size == 0) {
            return null;
        }
        Object[] t = table;
        int h = key.hashCode();
        int mask = (t.length >> 1) - 1;
        for (int i = spread(h) & mask; ; i = (i + 1) & mask) {
            Object k = t[i << 1];
            if (k == null) {
                return null;
            }
            if (k == key || (k.hashCode() == h && k.equals(key))) {
                return t[(i << 1) + 1];
            }
        }
    }

    /** The value of the key equal to {@code s.substring(0, len)}, whose String hash is {@code hash}. */
    Object getPrefix(String s, int len, int hash) {
        if (size == 0) {
            return null;
        }
        Object[] t = table;
        int mask = (t.length >> 1) - 1;
        for (int i = spread(hash) & mask; ; i = (i + 1) & mask) {
            Object k = t[i << 1];
            if (k == null) {
                return null;
            }
            String ks = (String) k;
            if (ks.length() == len && ks.hashCode() == hash && s.regionMatches(0, ks, 0, len)) {
                return t[(i << 1) + 1];
            }
        }
    }

    /** Sets (value non-null) or removes (value null) the key's value. */
    void put(String key, Object value) {
        if (value == null) {
            remove(key);
            return;
        }
        if ((size + 1) * 2 > capacity()) {
            resize(Math.max(4, capacity() * 2));
        }
        Object[] t = table;
        int h = key.hashCode();
        int mask = (t.length >> 1) - 1;
        for (int i = spread(h) & mask; ; i = (i + 1) & mask) {
            Object k = t[i << 1];
            if (k == null) {
                t[i << 1] = key;
                t[(i << 1) + 1] = value;
                size++;
                return;
            }
            if (k == key || (k.hashCode() == h && k.equals(key))) {
                t[(i << 1) + 1] = value;
                return;
            }
        }
    }

    private void remove(String key) {
        if (size == 0) {
            return;
        }
        Object[] t = table;
        int h = key.hashCode();
        int mask = (t.length >> 1) - 1;
        int i = spread(h) & mask;
        while (true) {
            Object k = t[i << 1];
            if (k == null) {
                return;
            }
            if (k == key || (k.hashCode() == h && k.equals(key))) {
                break;
            }
            i = (i + 1) & mask;
        }
        // Shift back every later key of the run whose probe sequence passes the gap.
        for (int j = (i + 1) & mask; ; j = (j + 1) & mask) {
            Object k = t[j << 1];
            if (k == null) {
                break;
            }
            int home = spread(k.hashCode()) & mask;
            if (((j - home) & mask) >= ((j - i) & mask)) {
                t[i << 1] = k;
                t[(i << 1) + 1] = t[(j << 1) + 1];
                i = j;
            }
        }
        t[i << 1] = null;
        t[(i << 1) + 1] = null;
        size--;
        if (size == 0) {
            table = EMPTY;
        } else if (capacity() > 8 && size * 8 < capacity()) {
            resize(capacity() / 2);
        }
    }

    private void resize(int slots) {
        Object[] old = table;
        Object[] t = new Object[slots << 1];
        int mask = slots - 1;
        for (int s = 0; s < old.length; s += 2) {
            Object k = old[s];
            if (k != null) {
                int i = spread(k.hashCode()) & mask;
                while (t[i << 1] != null) {
                    i = (i + 1) & mask;
                }
                t[i << 1] = k;
                t[(i << 1) + 1] = old[s + 1];
            }
        }
        table = t;
    }


    /** Checks the invariants above (O(capacity); for tests). */
    void checkInvariants() {
        int slots = capacity();
        if (slots != 0 && (slots & (slots - 1)) != 0) {
            throw new IllegalStateException("capacity " + slots + " is not a power of two");
        }
        if (size * 2 > slots) {
            throw new IllegalStateException(size + " keys in " + slots + " slots");
        }
        int mask = slots - 1;
        int keys = 0;
        java.util.Set<Object> seen = new java.util.HashSet<>();
        for (int i = 0; i < slots; i++) {
            Object k = table[i << 1];
            Object v = table[(i << 1) + 1];
            if ((k == null) != (v == null)) {
                throw new IllegalStateException("slot " + i + ": key " + k + " with value " + v);
            }
            if (k == null) {
                continue;
            }
            keys++;
            if (!seen.add(k)) {
                throw new IllegalStateException("key " + k + " is there twice");
            }
            for (int j = spread(k.hashCode()) & mask; j != i; j = (j + 1) & mask) {
                if (table[j << 1] == null) {
                    throw new IllegalStateException("key " + k + " at " + i + " is cut off from its home by empty slot " + j);
                }
            }
        }
        if (keys != size) {
            throw new IllegalStateException("size " + size + " but " + keys + " keys");
        }
    }

    /** String hashes of similar keys are close together; linear probing needs them scattered. */
    private static int spread(int h) {
        h ^= h >>> 16;
        h *= 0x85ebca6b;
        h ^= h >>> 13;
        h *= 0xc2b2ae35;
        return h ^ (h >>> 16);
    }
}
