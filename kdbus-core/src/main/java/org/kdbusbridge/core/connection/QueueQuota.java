package org.kdbusbridge.core.connection;

/**
 * How many bytes and unix fds the messages queued in the bus (every receive pool, monitors
 * and activators included) may hold on behalf of one sending uid, and of all uids together.
 * The busconfig per-connection limits (max_outgoing_bytes, max_incoming_bytes and their fd
 * counterparts) still apply; where they allow more than this, this wins (see {@link QueueLedger}).
 *
 * @param perUserBytes bytes the messages of one uid may hold while queued
 * @param busBytes     bytes the messages of all uids together may hold
 * @param perUserFds   unix fds the queued messages of one uid may hold
 * @param busFds       unix fds the queued messages of all uids together may hold
 */
public record QueueQuota(long perUserBytes, long busBytes, long perUserFds, long busFds) {
    /** No bound beyond the busconfig limits (tests, and buses built without a budget). */
    public static final QueueQuota UNLIMITED = new QueueQuota(Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE,
            Long.MAX_VALUE);

    /**
     * Below this a receiver's queue counts as short: it still takes messages from a uid past
     * its budget, up to the ledger's ceiling ({@link QueueLedger#SHORT_QUEUE_BYTES} at most, and
     * a sixty-fourth of a uid's budget, so small budgets keep the rule meaningful).
     */
    public long shortQueueBytes() {
        return Math.min(QueueLedger.SHORT_QUEUE_BYTES, perUserBytes / 64);
    }

    /**
     * Budgets from the heap and the fd limit: one uid an eighth, all uids a quarter of each
     * (fds: {@code fdLimit <= 0} means unknown, then unbounded). The rest is a reserve no sender
     * can take: room for the driver's replies, for accepting, refusing and disconnecting.
     */
    public static QueueQuota forLimits(long maxMemory, long fdLimit) {
        long perUserFds = fdLimit > 0 ? fdLimit / 8 : Long.MAX_VALUE;
        long busFds = fdLimit > 0 ? fdLimit / 4 : Long.MAX_VALUE;
        return new QueueQuota(maxMemory / 8, maxMemory / 4, perUserFds, busFds);
    }
}
