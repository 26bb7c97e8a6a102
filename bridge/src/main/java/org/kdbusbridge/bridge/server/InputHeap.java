package org.kdbusbridge.bridge.server;

import org.kdbusbridge.core.connection.UidLedger;

/**
 * Heap bytes that sessions hold for I/O outside the shared buffers, per peer uid (SO_PEERCRED,
 * known from accept, before SASL) and in all: a partial frame's carry array, a large frame read
 * into the heap because no direct buffer could be had, the SASL line being read, and SASL replies
 * the socket did not take yet (the session's output carry; queued messages are never copied to
 * the heap: what a slow reader's socket does not take stays in its pool). Without a bound, many
 * connections each sending a big frame into the heap could fill it.
 *
 * Invariants: {@link #used(long)} is the sum of the holds of that uid's open sessions and
 * {@link #total()} the sum over uids (a uid holding nothing has no entry); a hold only grows
 * when both budgets allow it ({@link #resize}), so neither is ever exceeded; a session gives all
 * of its hold back when it closes. Primitive tables: nothing is allocated per change. Loop
 * thread only. The budgets are UserQuota's framePerUserBytes / frameBusBytes.
 */
final class InputHeap {
    /** A uid's refusals are logged at most once in this many milliseconds. */
    static final long LOG_INTERVAL_MILLIS = 60_000;

    private final long perUserBytes;
    private final long busBytes;
    private final UidLedger byUid = new UidLedger();
    /** When each uid's refusal was last logged (millis + 1, so a time of 0 still makes an entry). */
    private final UidLedger loggedAt = new UidLedger();
    private long total;

    InputHeap(long perUserBytes, long busBytes) {
        this.perUserBytes = perUserBytes;
        this.busBytes = busBytes;
    }

    /**
     * Changes {@code uid}'s hold from {@code from} to {@code to} bytes. A shrink always happens;
     * a growth only if the uid's and the bus's budgets allow it, else nothing changes and false.
     */
    boolean resize(long uid, long from, long to) {
        long delta = to - from;
        if (delta > 0 && (byUid.get(uid) + delta > perUserBytes || total + delta > busBytes)) {
            return false;
        }
        assert byUid.get(uid) + delta >= 0 : "uid " + uid + " gives back more than it holds";
        byUid.add(uid, delta);
        total += delta;
        return true;
    }

    /** Whether a refusal for {@code uid} at {@code now} should be logged (then remembers it). */
    boolean shouldLog(long uid, long now) {
        long last = loggedAt.get(uid);
        if (last != 0 && now + 1 - last < LOG_INTERVAL_MILLIS) {
            return false;
        }
        loggedAt.add(uid, now + 1 - last);
        return true;
    }

    long used(long uid) {
        return byUid.get(uid);
    }

    long total() {
        return total;
    }

    long perUserBytes() {
        return perUserBytes;
    }

    long busBytes() {
        return busBytes;
    }
}
