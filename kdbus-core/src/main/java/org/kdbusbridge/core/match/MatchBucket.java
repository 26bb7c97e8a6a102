package org.kdbusbridge.core.match;

import java.util.Arrays;

/**
 * Two or more entries under one key; removal moves the last one into the gap. A map slot holds
 * null, a lone {@link MatchEntry} or a MatchBucket: {@link #with} and {@link #without} move a
 * slot between those forms.
 *
 * Invariants: slots [0, size) hold the entries, each knowing its index; the rest are null.
 */
final class MatchBucket {
    MatchEntry[] entries = new MatchEntry[2];
    int size;

    void add(MatchEntry e) {
        if (size == entries.length) {
            entries = Arrays.copyOf(entries, size * 2);
        }
        e.setIndex(size);
        entries[size++] = e;
    }

    void remove(MatchEntry e) {
        int i = e.index();
        if (i >= size || entries[i] != e) {
            throw new IllegalStateException("match rule entry is not in its bucket");
        }
        MatchEntry last = entries[--size];
        entries[i] = last;
        last.setIndex(i);
        entries[size] = null;
        if (size >= 4 && size * 4 <= entries.length) {
            entries = Arrays.copyOf(entries, entries.length / 2);
        }
    }

    static Object step(Object slot, MatchEntry e, boolean add) {
        return add ? with(slot, e) : without(slot, e);
    }

    /** A slot plus one entry. */
    static Object with(Object slot, MatchEntry e) {
        if (slot == null) {
            return e;
        }
        MatchBucket b;
        if (slot instanceof MatchEntry first) {
            b = new MatchBucket();
            b.add(first);
        } else {
            b = (MatchBucket) slot;
        }
        b.add(e);
        return b;
    }

    /** A slot less one entry; null once empty, the remaining entry itself once one is left. */
    static Object without(Object slot, MatchEntry e) {
        if (slot == e) {
            return null;
        }
        if (!(slot instanceof MatchBucket b)) {
            throw new IllegalStateException("match rule entry is not in its bucket");
        }
        b.remove(e);
        return b.size == 1 ? b.entries[0] : b;
    }
}
