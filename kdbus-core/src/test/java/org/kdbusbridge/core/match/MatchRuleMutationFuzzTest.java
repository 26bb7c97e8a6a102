package org.kdbusbridge.core.match;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Mutation fuzzing of {@link MatchRule#parse} with a fixed seed and a bounded count, so every CI run
 * exercises mutation. -Dkdbus.fuzz.scale=N multiplies the count, -Dkdbus.fuzz.seed=S changes the seed.
 */
class MatchRuleMutationFuzzTest {
    static final long SEED = Long.getLong("kdbus.fuzz.seed", 0x6b646275735fL);
    static final long INPUTS = 20_000 * Math.max(1, Long.getLong("kdbus.fuzz.scale", 1));
    static final long MAX_INPUT_NANOS = Long.getLong("kdbus.fuzz.maxInputMillis", 2000) * 1_000_000L;

    @Test
    @Timeout(value = 10, unit = java.util.concurrent.TimeUnit.MINUTES)
    void parseSurvivesMutation() {
        Random r = new Random(SEED);
        int parsed = 0;
        long slowest = 0;
        for (long i = 0; i < INPUTS; i++) {
            String text = MatchRuleFuzzTarget.next(r);
            long t0 = System.nanoTime();
            try {
                if (MatchRuleFuzzTarget.run(text)) parsed++;
            } catch (AssertionError e) {
                throw new AssertionError("seed " + SEED + " input #" + i + ": " + e.getMessage(), e);
            }
            long dt = System.nanoTime() - t0;
            slowest = Math.max(slowest, dt);
            assertTrue(dt < MAX_INPUT_NANOS, "input #" + i + " took " + dt / 1_000_000 + " ms");
        }
        System.out.printf("match rule fuzz: seed=%d inputs=%d parsed=%d slowest=%.2f ms%n", SEED, INPUTS, parsed, slowest / 1e6);
        assertTrue(parsed > INPUTS / 20 && parsed < INPUTS - INPUTS / 20, "parsed " + parsed + " of " + INPUTS);
    }

    /** Inputs kept from fuzzing runs, one rule per line of fuzz-regressions.txt (\\uXXXX escapes allowed). */
    @Test
    void regressionInputsStayFixed() throws IOException {
        int n = 0;
        try (InputStream in = getClass().getResourceAsStream("fuzz-regressions.txt")) {
            assertTrue(in != null, "fuzz-regressions.txt missing");
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (line.startsWith("#") || line.isEmpty()) continue;
                MatchRuleFuzzTarget.run(unescape(line));
                n++;
            }
        }
        assertTrue(n > 0);
    }

    /** Found by the fuzzer: Character.isDigit took non-ASCII digits, so "arg\u0663" was arg3. */
    @Test
    void argNumbersAreAsciiDigitsOnly() {
        assertThrows(MatchRuleException.class, () -> MatchRule.parse("arg\u0663='x'"));
        assertThrows(MatchRuleException.class, () -> MatchRule.parse("arg\uff11path='/x'"));
    }

    static String unescape(String s) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 5 < s.length() + 0 && s.charAt(i + 1) == 'u') {
                sb.append((char) Integer.parseInt(s.substring(i + 2, i + 6), 16));
                i += 5;
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }
}
