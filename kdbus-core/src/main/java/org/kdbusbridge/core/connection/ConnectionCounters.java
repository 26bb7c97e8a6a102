package org.kdbusbridge.core.connection;

import org.kdbusbridge.core.message.Message;

/**
 * One connection's cumulative traffic counters (the metrics exposition, issue 20): messages and
 * bytes it sent that the bus admitted ("in") and that were queued to its receive pool ("out"), by
 * message type; its unicasts the bus refused, by kind; broadcasts it was skipped for, by cause.
 *
 * Plain fields touched on the bus thread only: an increment allocates nothing. Arrays are indexed
 * by {@link Message#type()} (1..4; 0 holds anything else).
 */
public final class ConnectionCounters {
    final long[] messagesIn = new long[5];
    final long[] bytesIn = new long[5];
    final long[] messagesOut = new long[5];
    final long[] bytesOut = new long[5];
    long refusedLimits;
    long refusedAccess;
    long refusedOther;
    long skippedFull;
    long skippedPolicy;
    long skippedOther;
    private boolean folded;

    private static int slot(int type) {
        return type >= 1 && type <= 4 ? type : 0;
    }

    /** A message it sent was admitted (routed or handled by the driver). */
    public void countIn(int type, long bytes) {
        int t = slot(type);
        messagesIn[t]++;
        bytesIn[t] += bytes;
    }

    /** A message was queued to its receive pool. */
    void countOut(Message m) {
        int t = slot(m.type());
        messagesOut[t]++;
        bytesOut[t] += m.size();
    }

    /** One of its unicasts was refused with a LimitsExceeded-type answer. */
    public void refusedLimits() { refusedLimits++; }

    /** One of its unicasts was refused with an AccessDenied-type answer. */
    public void refusedAccess() { refusedAccess++; }

    /** One of its unicasts was refused otherwise (no owner, fds not supported, ...). */
    public void refusedOther() { refusedOther++; }

    /** A broadcast skipped it because its pool (or the sender's queue share) was full. */
    void skippedFull() { skippedFull++; }

    /** A broadcast skipped it because the policy or its endpoint refused it. */
    public void skippedPolicy() { skippedPolicy++; }

    /** A broadcast skipped it for another reason (it did not negotiate unix fds). */
    public void skippedOther() { skippedOther++; }

    public long messagesIn(int type) { return messagesIn[slot(type)]; }
    public long bytesIn(int type) { return bytesIn[slot(type)]; }
    public long messagesOut(int type) { return messagesOut[slot(type)]; }
    public long bytesOut(int type) { return bytesOut[slot(type)]; }
    public long refusedLimitsCount() { return refusedLimits; }
    public long refusedAccessCount() { return refusedAccess; }
    public long refusedOtherCount() { return refusedOther; }
    public long skippedFullCount() { return skippedFull; }
    public long skippedPolicyCount() { return skippedPolicy; }
    public long skippedOtherCount() { return skippedOther; }

    /** Every message in and out, all types: what the exposition ranks connections by. */
    public long totalMessages() {
        long n = 0;
        for (int t = 0; t < 5; t++) {
            n += messagesIn[t] + messagesOut[t];
        }
        return n;
    }

    /** Adds {@code c}'s counts to these (the bus's departed totals, the exposition's "other" series). */
    public void add(ConnectionCounters c) {
        for (int t = 0; t < 5; t++) {
            messagesIn[t] += c.messagesIn[t];
            bytesIn[t] += c.bytesIn[t];
            messagesOut[t] += c.messagesOut[t];
            bytesOut[t] += c.bytesOut[t];
        }
        refusedLimits += c.refusedLimits;
        refusedAccess += c.refusedAccess;
        refusedOther += c.refusedOther;
        skippedFull += c.skippedFull;
        skippedPolicy += c.skippedPolicy;
        skippedOther += c.skippedOther;
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
