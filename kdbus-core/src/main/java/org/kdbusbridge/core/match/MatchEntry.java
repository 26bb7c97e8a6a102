package org.kdbusbridge.core.match;

import org.kdbusbridge.core.connection.Connection;

/**
 * One AddMatch: its owner, its rule, and where {@link MatchIndex} filed it.
 *
 * Invariants: {@code where} holds the kind of bucket (one of MatchIndex's kind constants) in its
 * low bits and, while the entry is in a {@link MatchBucket}, its index there in the high bits.
 */
final class MatchEntry {
    private static final int KIND_BITS = 4;
    private static final int KIND_MASK = (1 << KIND_BITS) - 1;

    final Connection owner;
    final MatchRule rule;
    /** The kind of bucket (low bits) and, in a Bucket, the index in it (high bits). */
    int where;

    MatchEntry(Connection owner, MatchRule rule) {
        this.owner = owner;
        this.rule = rule;
    }

    int kind() {
        return where & KIND_MASK;
    }

    int index() {
        return where >>> KIND_BITS;
    }

    void setIndex(int i) {
        where = (i << KIND_BITS) | (where & KIND_MASK);
    }
}
