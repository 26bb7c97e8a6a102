package org.kdbusbridge.core.bus;

import java.util.function.Consumer;
import java.util.function.LongSupplier;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;

/**
 * The uid quota's refusals and the reply budget: whether a charge fits, the LimitsExceeded
 * texts, and their rate-limited log lines.
 *
 * Invariants: a call that expects a reply is charged to its caller's uid
 * ({@link UserQuota#REPLY_SLOT_COST}) exactly while it counts against
 * max_replies_per_connection (queued on an activator, or its reply slot open): every such
 * change goes through {@link #expectReply} and {@link #replyNoLongerExpected}, and over budget
 * the call is refused as that limit refuses it ({@link Delivery#TOO_MANY_REPLIES}); a refusal
 * by quota is logged at most once per uid per interval, and its text is built only when it is
 * returned or logged.
 */
final class QuotaGate {
    private final BusLimits limits;
    private final UserQuotas quotas;
    private final LongSupplier clock;
    private Consumer<String> quotaLog = text -> { };

    QuotaGate(BusLimits limits, UserQuotas quotas, LongSupplier clock) {
        this.limits = limits;
        this.quotas = quotas;
        this.clock = clock;
    }

    void setLog(Consumer<String> log) {
        this.quotaLog = log;
    }

    /** The quota log as it is set now (the queue ledger logs through it). */
    void log(String text) {
        quotaLog.accept(text);
    }

    static long uidOf(Connection c) {
        Credentials cred = c.credentials();
        return cred == null ? -1 : cred.uid();
    }

    /** The LimitsExceeded text of a refusal by quota; logs it once per uid per interval. */
    String overQuota(Connection c, long cost, String what, String method) {
        long uid = uidOf(c);
        String text = "Connection \"" + c.uniqueName() + "\" " + what + " (the match rules, names and pending replies of uid "
                + uid + " reached " + quotaReached(uid, cost) + ")";
        if (quotas.shouldLog(uid, clock.getAsLong())) {
            logQuota(uid, text, method);
        }
        return text;
    }

    /** Which budget a charge of {@code cost} for {@code uid} does not fit. */
    private String quotaReached(long uid, long cost) {
        UserQuota q = quotas.quota();
        boolean busWide = quotas.used(uid) + cost <= q.perUserBytes(); // its own budget had room
        return busWide ? "the bus's memory quota of " + q.busBytes() + " bytes for all users"
                : "its memory quota of " + q.perUserBytes() + " bytes";
    }

    /** The log line of a refusal by quota (callers log one per uid per interval). */
    private void logQuota(long uid, String text, String refused) {
        quotaLog.accept(text + "; refusing " + refused + " for this uid, uid holds " + quotas.used(uid)
                + " bytes, all uids " + quotas.total() + " (logged once a minute per uid)");
    }

    /**
     * Whether {@code caller} may make one more call that expects a reply: max_replies_per_connection,
     * then its uid's quota for the reply slot (a refusal by quota is logged, rate-limited).
     */
    boolean mayExpectReply(Connection caller) {
        if (caller.pendingOutgoingReplies() >= limits.maxRepliesPerConnection) {
            return false;
        }
        long uid = uidOf(caller);
        long cost = UserQuota.REPLY_SLOT_COST;
        if (quotas.fits(uid, cost)) {
            return true;
        }
        if (quotas.shouldLog(uid, clock.getAsLong())) { // the text is built only when logged
            logQuota(uid, "Connection \"" + caller.uniqueName() + "\" (uid=" + uid + ") reached " + quotaReached(uid, cost),
                    "method calls that expect a reply (LimitsExceeded)");
        }
        return false;
    }

    /** {@code caller} is owed one more reply: counted and charged to its uid. */
    void expectReply(Connection caller) {
        caller.addPendingOutgoing(1);
        quotas.charge(uidOf(caller), UserQuota.REPLY_SLOT_COST);
    }

    /** {@code n} replies {@code caller} was owed will not come: the count and the charge go back. */
    void replyNoLongerExpected(Connection caller, int n) {
        caller.addPendingOutgoing(-n);
        quotas.release(uidOf(caller), n * UserQuota.REPLY_SLOT_COST);
    }
}
