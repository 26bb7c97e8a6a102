package org.kdbusbridge.bridge.protocol;

import java.util.Random;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing with Jazzer. A plain {@code mvn test} replays the seed corpus in
 * {@code ProtocolJazzerFuzzTestInputs/<method>/} (regression mode); the {@code fuzz} Maven profile
 * sets JAZZER_FUZZ and runs each method for a bounded time (see docs/security.md). Crashes Jazzer
 * finds land in that directory and are then replayed by every build. The properties are
 * {@link FrameFuzzTarget}'s and {@link SaslFuzzTarget}'s, the same as the fixed-seed mutation fuzzers.
 */
class ProtocolJazzerFuzzTest {
    private final FrameFuzzTarget frames = new FrameFuzzTarget();

    @FuzzTest(maxDuration = "10s")
    void frames(byte[] data) {
        // Both buffer byte orders and an odd offset: neither may change the outcome.
        FrameFuzzTarget.Outcome a = frames.run(data, 0, false);
        FrameFuzzTarget.Outcome b = frames.run(data, 3, true);
        org.junit.jupiter.api.Assertions.assertEquals(a, b, "outcome depends on buffer offset/order");
    }

    @FuzzTest(maxDuration = "10s")
    void sasl(byte[] data) {
        // The target asserts its properties (clean result or clean reject, split feeding agrees).
        org.junit.jupiter.api.Assertions.assertDoesNotThrow(() -> SaslFuzzTarget.check(data, new Random(data.length)));
    }
}
