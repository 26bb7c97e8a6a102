package org.kdbusbridge.bridge.server;

/**
 * How a live hand-over runs (docs/handover.md section 5), read from {@code -D} properties in one
 * place ({@link #fromSystemProperties()}) and passed to {@link HandOver}, never read from a
 * static elsewhere.
 *
 * @param settleMs how long a refused snapshot is tried again (output being flushed, a reply on
 *        its way) before the refusal is the answer
 * @param checkTimeoutMs how long the new program's check run may take
 *        ({@code -Dkdbus.handOverCheckTimeoutMs}); past it the check is killed and the hand-over fails
 * @param fault TEST ONLY ({@code -Dkdbus.handOverFault}): a phase that fails on purpose, so a test
 *        can reach the abort path from it: {@code trial} (the trial snapshot's memfd) or
 *        {@code snapshot} (the real snapshot's memfd, after a passed check); null: none
 */
public record HandOverSettings(long settleMs, long checkTimeoutMs, String fault) {
    public static final long SETTLE_MS = 500;
    public static final long CHECK_TIMEOUT_MS = 30_000;
    public static final String FAULT_TRIAL = "trial";
    public static final String FAULT_SNAPSHOT = "snapshot";

    public static final HandOverSettings DEFAULTS = new HandOverSettings(SETTLE_MS, CHECK_TIMEOUT_MS, null);

    public HandOverSettings {
        if (fault != null && !fault.equals(FAULT_TRIAL) && !fault.equals(FAULT_SNAPSHOT)) {
            throw new IllegalArgumentException("kdbus.handOverFault: " + fault + " (trial or snapshot)");
        }
    }

    /** The defaults, each overridden by its {@code -D} property when set. */
    public static HandOverSettings fromSystemProperties() {
        String fault = System.getProperty("kdbus.handOverFault");
        return new HandOverSettings(SETTLE_MS, Long.getLong("kdbus.handOverCheckTimeoutMs", CHECK_TIMEOUT_MS),
                fault == null || fault.isEmpty() ? null : fault);
    }

    boolean fails(String phase) {
        return phase.equals(fault);
    }
}
