package org.kdbusbridge.core.bus;

import org.kdbusbridge.core.connection.ConnectionCounters;

/**
 * The bus-wide counters: what departed connections counted (so bus totals never go down when a
 * peer leaves: live connections' counters plus these), disconnects by reason, the messages the
 * bus itself originated, and service activations by outcome with their start durations. Bus
 * thread only; plain fields, nothing allocated per count.
 */
public final class BusCounters {
    /** How an activation start ended; whoever decides it (the bridge's ActivationManager) says which. */
    public enum Activation {
        /** The service took the name. */
        ACQUIRED,
        /** The service could not be executed (exec failed, or its Exec= line did not parse). */
        EXEC_FAILED,
        /** The child exited with a non-zero status before taking the name. */
        EXITED,
        /** The child was killed by a signal before taking the name. */
        SIGNALED,
        /** service_start_timeout passed first. */
        TIMEOUT,
        /** No service file provides the name (any more). */
        SERVICE_UNKNOWN,
        /** systemd reported ActivationFailure for the unit. */
        SYSTEMD_FAILED,
        /** A bus limit refused the start (max_pending_service_starts towards systemd). */
        LIMITS
    }

    /**
     * Upper bounds of the start-duration histogram's buckets, in ns (then +Inf): fixed, so the
     * series are the same on every bus and every scrape.
     */
    public static final long[] ACTIVATION_BUCKET_NANOS = {
        10_000_000L, 25_000_000L, 50_000_000L, 100_000_000L, 250_000_000L, 500_000_000L,
        1_000_000_000L, 2_500_000_000L, 5_000_000_000L, 10_000_000_000L, 25_000_000_000L, 60_000_000_000L,
    };

    private final ConnectionCounters departed = new ConnectionCounters();
    private final long[] disconnects = new long[DisconnectReason.values().length];
    private long busOriginated;
    private long activationsStarted;
    private final long[] activations = new long[Activation.values().length];
    /** [0] successful starts, [1] failed ones: per bucket (not cumulative; the last is +Inf). */
    private final long[][] activationBuckets = new long[2][ACTIVATION_BUCKET_NANOS.length + 1];
    private final long[] activationNanos = new long[2];

    /** What connections that left counted, summed. */
    public ConnectionCounters departed() { return departed; }

    /** Closed connections with this reason. */
    public long disconnects(DisconnectReason r) { return disconnects[r.ordinal()]; }

    /** Messages the bus originated (driver replies, errors, signals), before delivery. */
    public long busOriginated() { return busOriginated; }

    void noteDisconnect(DisconnectReason r) { disconnects[r.ordinal()]++; }

    void noteBusOriginated() { busOriginated++; }

    void fold(ConnectionCounters c) {
        if (c.foldOnce()) {
            departed.add(c);
        }
    }

    /** A service start began (one per start, however many callers wait for it). */
    public void noteActivationStarted() { activationsStarted++; }

    /** A start that began ended this way after {@code nanos}. */
    public void noteActivationEnded(Activation outcome, long nanos) {
        activations[outcome.ordinal()]++;
        int r = outcome == Activation.ACQUIRED ? 0 : 1;
        long d = Math.max(0, nanos);
        activationNanos[r] += d;
        int b = 0;
        while (b < ACTIVATION_BUCKET_NANOS.length && d > ACTIVATION_BUCKET_NANOS[b]) {
            b++;
        }
        activationBuckets[r][b]++;
    }

    public long activationsStarted() { return activationsStarted; }

    /** Starts that ended this way. */
    public long activations(Activation outcome) { return activations[outcome.ordinal()]; }

    /**
     * Ended starts (successful ones if {@code success}, else failed) that took more than the
     * previous bucket's bound and at most {@code ACTIVATION_BUCKET_NANOS[bucket]} ({@code bucket
     * == ACTIVATION_BUCKET_NANOS.length}: longer than the last bound).
     */
    public long activationBucket(boolean success, int bucket) { return activationBuckets[success ? 0 : 1][bucket]; }

    /** Their summed durations, ns. */
    public long activationNanos(boolean success) { return activationNanos[success ? 0 : 1]; }
}
