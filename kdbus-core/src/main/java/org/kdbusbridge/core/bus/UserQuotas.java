package org.kdbusbridge.core.bus;

import java.util.HashMap;
import java.util.Map;

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

    private static final class Usage {
        long bytes;
    }

    private final UserQuota quota;
    private final Map<Long, Usage> byUid = new HashMap<>();
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
        Usage u = byUid.get(uid);
        long used = u == null ? 0 : u.bytes;
        return used + cost <= quota.perUserBytes() && total + cost <= quota.busBytes();
    }

    void charge(long uid, long cost) {
        byUid.computeIfAbsent(uid, k -> new Usage()).bytes += cost;
        total += cost;
    }

    void release(long uid, long cost) {
        Usage u = byUid.get(uid);
        if (u == null) {
            return;
        }
        u.bytes -= cost;
        total -= cost;
        if (u.bytes <= 0) {
            total -= u.bytes; // never below zero, even if a caller released more than it charged
            byUid.remove(uid);
        }
    }

    long used(long uid) {
        Usage u = byUid.get(uid);
        return u == null ? 0 : u.bytes;
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
