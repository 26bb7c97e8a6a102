// How long the mutation fuzzers run. CI: the fixed seed and the default counts (seconds in all).
// On demand: -Dkdbus.fuzz.scale=N multiplies every count, -Dkdbus.fuzz.seed=S picks another seed
// (the seed is printed, so a failure is reproducible), -Dkdbus.fuzz.maxInputMillis bounds one input.
package org.kdbusbridge.bridge.protocol;

final class FuzzBudget {
    private FuzzBudget() {}

    static final long SEED = Long.getLong("kdbus.fuzz.seed", 0x6b646275735fL);
    static final long SCALE = Math.max(1, Long.getLong("kdbus.fuzz.scale", 1));
    /** Generous: a single input is microseconds; this catches a hang or a quadratic blow-up, not GC noise. */
    static final long MAX_INPUT_NANOS = Long.getLong("kdbus.fuzz.maxInputMillis", 2000) * 1_000_000L;

    static long iterations(long ci) {
        return ci * SCALE;
    }
}
