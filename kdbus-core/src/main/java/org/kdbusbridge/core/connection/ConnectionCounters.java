package org.kdbusbridge.core.connection;

import org.kdbusbridge.core.message.Message;

/**
 * One connection's cumulative traffic counters (the metrics exposition, issue 20): messages and
 * bytes it sent that the bus admitted ("in") and that were queued to its receive pool ("out"), by
 * message type; its unicasts the bus refused, by kind; broadcasts it was skipped for, by cause.
 *
 * Two tiers, because every peer has one and most stay small (issue 14's per-peer cost: four
 * {@code long[5]} and six longs were ~300 B of each idle peer's ~2.5 KiB). A connection starts
 * with {@link #small}: messages and bytes in and out for the four real message types, as
 * unsigned 32-bit counts (80 B). The first count that does not fit there (a total past 4 Gi, a
 * message type outside 1..4, any refusal or skip, or {@link #add}) moves everything to
 * {@link #wide}, 64-bit counters for all of it, once; the small tier is dropped then. Counts are
 * never lost or narrowed: what the accessors return is exactly what the single 64-bit layout
 * returned. Plain fields touched on the bus thread only: an increment allocates nothing (except
 * that one promotion).
 */
public final class ConnectionCounters {
    // The small tier: [in messages t1..t4, in bytes t1..t4, out messages t1..t4, out bytes t1..t4].
    private static final int S_IN = 0;
    private static final int S_OUT = 8;
    private static final long U32 = 0xFFFF_FFFFL;

    // The wide tier: by type slot 0..4 (0: anything else), then the refusals and skips.
    private static final int MESSAGES_IN = 0;
    private static final int BYTES_IN = 5;
    private static final int MESSAGES_OUT = 10;
    private static final int BYTES_OUT = 15;
    private static final int REFUSED_LIMITS = 20;
    private static final int REFUSED_ACCESS = 21;
    private static final int REFUSED_OTHER = 22;
    private static final int SKIPPED_FULL = 23;
    private static final int SKIPPED_POLICY = 24;
    private static final int SKIPPED_OTHER = 25;
    private static final int WIDE = 26;

    /** Null once promoted. */
    private int[] small = new int[16];
    /** Null until promoted. */
    private long[] wide;
    private boolean folded;

    private static int slot(int type) {
        return type >= 1 && type <= 4 ? type : 0;
    }

    /** A message it sent was admitted (routed or handled by the driver). */
    public void countIn(int type, long bytes) {
        count(S_IN, MESSAGES_IN, BYTES_IN, type, bytes);
    }

    /** A message was queued to its receive pool. */
    void countOut(Message m) {
        count(S_OUT, MESSAGES_OUT, BYTES_OUT, m.type(), m.size());
    }

    private void count(int smallBase, int wideMessages, int wideBytes, int type, long bytes) {
        int[] s = small;
        if (s != null && type >= 1 && type <= 4 && bytes >= 0) {
            int m = smallBase + type - 1;
            long messages = (s[m] & U32) + 1;
            long total = (s[m + 4] & U32) + bytes;
            if (messages <= U32 && total <= U32) {
                s[m] = (int) messages;
                s[m + 4] = (int) total;
                return;
            }
        }
        long[] w = wide();
        int t = slot(type);
        w[wideMessages + t]++;
        w[wideBytes + t] += bytes;
    }

    /** The 64-bit tier, made from the small one the first time. */
    private long[] wide() {
        long[] w = wide;
        if (w == null) {
            w = new long[WIDE];
            int[] s = small;
            for (int t = 1; t <= 4; t++) {
                w[MESSAGES_IN + t] = s[S_IN + t - 1] & U32;
                w[BYTES_IN + t] = s[S_IN + 4 + t - 1] & U32;
                w[MESSAGES_OUT + t] = s[S_OUT + t - 1] & U32;
                w[BYTES_OUT + t] = s[S_OUT + 4 + t - 1] & U32;
            }
            wide = w;
            small = null;
        }
        return w;
    }

    /** One of its unicasts was refused with a LimitsExceeded-type answer. */
    public void refusedLimits() { wide()[REFUSED_LIMITS]++; }

    /** One of its unicasts was refused with an AccessDenied-type answer. */
    public void refusedAccess() { wide()[REFUSED_ACCESS]++; }

    /** One of its unicasts was refused otherwise (no owner, fds not supported, ...). */
    public void refusedOther() { wide()[REFUSED_OTHER]++; }

    /** A broadcast skipped it because its pool (or the sender's queue share) was full. */
    void skippedFull() { wide()[SKIPPED_FULL]++; }

    /** A broadcast skipped it because the policy or its endpoint refused it. */
    public void skippedPolicy() { wide()[SKIPPED_POLICY]++; }

    /** A broadcast skipped it for another reason (it did not negotiate unix fds). */
    public void skippedOther() { wide()[SKIPPED_OTHER]++; }

    private long typed(int smallIndex, int wideIndex, int type) {
        int[] s = small;
        if (s != null) {
            return type >= 1 && type <= 4 ? s[smallIndex + type - 1] & U32 : 0;
        }
        return wide[wideIndex + slot(type)];
    }

    private long other(int wideIndex) {
        return wide == null ? 0 : wide[wideIndex];
    }

    public long messagesIn(int type) { return typed(S_IN, MESSAGES_IN, type); }
    public long bytesIn(int type) { return typed(S_IN + 4, BYTES_IN, type); }
    public long messagesOut(int type) { return typed(S_OUT, MESSAGES_OUT, type); }
    public long bytesOut(int type) { return typed(S_OUT + 4, BYTES_OUT, type); }
    public long refusedLimitsCount() { return other(REFUSED_LIMITS); }
    public long refusedAccessCount() { return other(REFUSED_ACCESS); }
    public long refusedOtherCount() { return other(REFUSED_OTHER); }
    public long skippedFullCount() { return other(SKIPPED_FULL); }
    public long skippedPolicyCount() { return other(SKIPPED_POLICY); }
    public long skippedOtherCount() { return other(SKIPPED_OTHER); }

    /** Every message in and out, all types: what the exposition ranks connections by. */
    public long totalMessages() {
        long n = 0;
        for (int t = 0; t < 5; t++) {
            n += messagesIn(t) + messagesOut(t);
        }
        return n;
    }

    /** Adds {@code c}'s counts to these (the bus's departed totals, the exposition's "other" series). */
    public void add(ConnectionCounters c) {
        long[] w = wide(); // a sum of connections outgrows 32 bits soon: no point staying small
        for (int t = 0; t < 5; t++) {
            w[MESSAGES_IN + t] += c.messagesIn(t);
            w[BYTES_IN + t] += c.bytesIn(t);
            w[MESSAGES_OUT + t] += c.messagesOut(t);
            w[BYTES_OUT + t] += c.bytesOut(t);
        }
        w[REFUSED_LIMITS] += c.refusedLimitsCount();
        w[REFUSED_ACCESS] += c.refusedAccessCount();
        w[REFUSED_OTHER] += c.refusedOtherCount();
        w[SKIPPED_FULL] += c.skippedFullCount();
        w[SKIPPED_POLICY] += c.skippedPolicyCount();
        w[SKIPPED_OTHER] += c.skippedOtherCount();
    }

    /** True the first time only: a connection's counts go into the departed totals once. */
    public boolean foldOnce() {
        if (folded) {
            return false;
        }
        folded = true;
        return true;
    }
}
