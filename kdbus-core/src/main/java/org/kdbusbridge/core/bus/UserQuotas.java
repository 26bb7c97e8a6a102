package org.kdbusbridge.core.bus;

import java.util.HashMap;
import java.util.Map;

import org.kdbusbridge.core.connection.UidLedger;

/**
 * What each uid holds now against its {@link UserQuota}, and when a refusal was last logged.
 *
 * Invariants: {@link #used(long)} is the sum of the charges of the uid's match rules and name
 * entries that exist (a uid holding nothing has no entry); {@link #total()} is the sum over all
 * uids; a charge is only ever made after {@link #fits} said yes, so neither budget is exceeded
 * (charges made by callers that bypass the check, tests, are still counted).
 */
final class UserQuotas {
    /** A uid's refusals are logged at most once in this many milliseconds: a flood is one line. */
    static final long LOG_INTERVAL_MILLIS = 60_000;

    private final UserQuota quota;
    /** Bytes held per uid; keyed by the primitive uid so a charge on the call path never boxes. */
    private final UidLedger byUid = new UidLedger();
    /** Uids refused recently, kept after their usage drops to zero so the log stays rate-limited. */
    private final Map<Long, Long> loggedAt = new HashMap<>();
    private long total;

    UserQuotas(UserQuota quota) {
        this.quota = quota;
    }

    UserQuota quota() {
        return quota;
    }

    boolean fits(long uid, long cost) {
        return byUid.get(uid) + cost <= quota.perUserBytes() && total + cost <= quota.busBytes();
    }

    void charge(long uid, long cost) {
        byUid.add(uid, cost);
        total += cost;
    }

    void release(long uid, long cost) {
        long used = byUid.get(uid);
        assert used >= cost : "uid " + uid + " releases " + cost + " bytes but holds " + used;
        if (used == 0) {
            return;
        }
        // Never below zero (with assertions off), even if a caller released more than it charged.
        long drop = Math.min(used, cost);
        byUid.add(uid, -drop);
        total -= drop;
    }

    long used(long uid) {
        return byUid.get(uid);
    }

    /** How many uids hold something (test hook: a uid holding nothing has no entry). */
    int holders() {
        return byUid.size();
    }

    long total() {
        return total;
    }

    /** Whether a refusal for {@code uid} at {@code now} should be logged (then remembers it). */
    boolean shouldLog(long uid, long now) {
        Long last = loggedAt.get(uid);
        if (last != null && now - last < LOG_INTERVAL_MILLIS) {
            return false;
        }
        if (loggedAt.size() > 4096) {
            loggedAt.values().removeIf(t -> now - t >= LOG_INTERVAL_MILLIS);
        }
        loggedAt.put(uid, now);
        return true;
    }
}
