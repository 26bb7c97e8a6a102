package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Structure-aware mutation fuzzing of the frame parser and the SASL server with a fixed seed and
 * a bounded number of inputs, so every CI run exercises mutation (Jazzer's @FuzzTest only replays
 * its corpus in a plain {@code mvn test}). Properties: {@link FrameFuzzTarget}, {@link SaslFuzzTarget}.
 * Inputs that once failed are kept under {@code fuzz-regressions/} and replayed first.
 */
class ProtocolMutationFuzzTest {
    static final long FRAME_INPUTS = 50_000;
    static final long SASL_INPUTS = 20_000;

    @Test
    @Timeout(value = 10, unit = java.util.concurrent.TimeUnit.MINUTES)
    void framesSurviveMutation() {
        Random r = new Random(FuzzBudget.SEED);
        FrameFuzzTarget t = new FrameFuzzTarget();
        Map<FrameFuzzTarget.Outcome, Integer> counts = new EnumMap<>(FrameFuzzTarget.Outcome.class);
        long n = FuzzBudget.iterations(FRAME_INPUTS);
        long slowest = 0;
        for (long i = 0; i < n; i++) {
            byte[] in = FuzzMessages.next(r);
            long t0 = System.nanoTime();
            FrameFuzzTarget.Outcome o;
            try {
                o = t.run(in, r.nextInt(9), r.nextBoolean());
            } catch (AssertionError e) {
                throw new AssertionError("seed " + FuzzBudget.SEED + " input #" + i + ": " + e.getMessage(), e);
            }
            long dt = System.nanoTime() - t0;
            slowest = Math.max(slowest, dt);
            assertTrue(dt < FuzzBudget.MAX_INPUT_NANOS, "input #" + i + " took " + dt / 1_000_000 + " ms: " + FrameFuzzTarget.hex(in));
            counts.merge(o, 1, Integer::sum);
        }
        System.out.printf("frame fuzz: seed=%d inputs=%d %s slowest=%.2f ms%n", FuzzBudget.SEED, n, counts, slowest / 1e6);
        // The generator must reach deep: a useful share of inputs is accepted (and spliced) and rejected.
        assertTrue(counts.getOrDefault(FrameFuzzTarget.Outcome.ACCEPTED, 0) > n / 20, "too few accepted inputs: " + counts);
        assertTrue(counts.getOrDefault(FrameFuzzTarget.Outcome.REJECTED, 0) > n / 5, "too few rejected inputs: " + counts);
    }

    @Test
    void unmutatedMessagesAreAccepted() {
        Random r = new Random(FuzzBudget.SEED + 1);
        FrameFuzzTarget t = new FrameFuzzTarget();
        for (int i = 0; i < 2_000; i++) {
            byte[] in = FuzzMessages.randomValid(r).encode();
            assertEquals(FrameFuzzTarget.Outcome.ACCEPTED, t.run(in, r.nextInt(9), r.nextBoolean()), FrameFuzzTarget.hex(in));
        }
    }

    @Test
    @Timeout(value = 10, unit = java.util.concurrent.TimeUnit.MINUTES)
    void saslSurvivesMutation() {
        Random r = new Random(FuzzBudget.SEED);
        long n = FuzzBudget.iterations(SASL_INPUTS);
        Map<SaslServer.Result, Integer> counts = new EnumMap<>(SaslServer.Result.class);
        long slowest = 0;
        for (long i = 0; i < n; i++) {
            byte[] in = SaslFuzzTarget.next(r);
            long t0 = System.nanoTime();
            SaslFuzzTarget.Run run;
            try {
                run = SaslFuzzTarget.check(in, r);
            } catch (AssertionError e) {
                throw new AssertionError("seed " + FuzzBudget.SEED + " input #" + i + ": " + e.getMessage(), e);
            }
            long dt = System.nanoTime() - t0;
            slowest = Math.max(slowest, dt);
            assertTrue(dt < FuzzBudget.MAX_INPUT_NANOS, "SASL input #" + i + " took " + dt / 1_000_000 + " ms");
            counts.merge(run.result(), 1, Integer::sum);
        }
        System.out.printf("sasl fuzz: seed=%d inputs=%d %s slowest=%.2f ms%n", FuzzBudget.SEED, n, counts, slowest / 1e6);
        for (SaslServer.Result res : SaslServer.Result.values()) {
            assertTrue(counts.getOrDefault(res, 0) > n / 100, "outcome " + res + " barely reached: " + counts);
        }
    }

    /** Every input that ever failed, replayed (frames/*.bin and sasl/*.bin under fuzz-regressions). */
    @Test
    void regressionInputsStayFixed() throws Exception {
        List<Path> frames = resources("frames");
        List<Path> sasl = resources("sasl");
        FrameFuzzTarget t = new FrameFuzzTarget();
        for (Path p : frames) {
            byte[] in = Files.readAllBytes(p);
            for (int slack = 0; slack < 8; slack++) {
                t.run(in, slack, (slack & 1) == 0);
            }
        }
        for (Path p : sasl) {
            byte[] in = Files.readAllBytes(p);
            SaslFuzzTarget.check(in, new Random(p.getFileName().hashCode()));
        }
        assertTrue(frames.size() + sasl.size() > 0, "the regression corpus is empty");
    }

    static List<Path> resources(String dir) throws IOException, URISyntaxException {
        URL u = ProtocolMutationFuzzTest.class.getResource("fuzz-regressions/" + dir);
        if (u == null) fail("missing test resource directory fuzz-regressions/" + dir);
        List<Path> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(Path.of(u.toURI()))) {
            s.filter(p -> p.toString().endsWith(".bin")).sorted().forEach(out::add);
        }
        return out;
    }

    @SuppressWarnings("unused")
    private static byte[] read(InputStream in) throws IOException {
        return in.readAllBytes();
    }
}
