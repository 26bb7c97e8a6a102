package org.kdbusbridge.core.match;

import java.nio.charset.StandardCharsets;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of {@link MatchRule#parse} with Jazzer: a plain {@code mvn test}
 * replays {@code MatchRuleJazzerFuzzTestInputs/parse/}; the {@code fuzz} profile fuzzes for a
 * bounded time (docs/security.md). Property: {@link MatchRuleFuzzTarget}.
 */
class MatchRuleJazzerFuzzTest {
    @FuzzTest(maxDuration = "10s")
    void parse(byte[] data) {
        // The target asserts its properties (parse or MatchRuleException, print/re-parse round trip).
        org.junit.jupiter.api.Assertions.assertDoesNotThrow(() -> MatchRuleFuzzTarget.run(new String(data, StandardCharsets.UTF_8)));
    }
}
