package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Tap;

/**
 * dbus-daemon's own tests (Debian's dbus-tests package: dbus 1.14's installed-tests) against
 * our bus. Each program runs twice in the same way, first with /usr/bin/dbus-daemon as the
 * reference and then with our bin/dbus-daemon, and every case must pass on ours or be skipped
 * for the same reason as on the reference. The programs start a bus per case themselves
 * through DBUS_TEST_DAEMON, so this also covers how the bus starts and how it ends.
 */
class UpstreamDbusTestsTest {
    static final Path TESTS = Path.of("/usr/lib/dbus-1.0/installed-tests/dbus");
    static final Path ROOT = Path.of(System.getProperty("kdbus.repo.root", "..")).toAbsolutePath().normalize();
    static final Path OURS = ROOT.resolve("bin/dbus-daemon");
    static final Path REFERENCE = Path.of("/usr/bin/dbus-daemon");
    static final Duration PROGRAM_DEADLINE = Duration.ofMinutes(5);
    static final Path LOGS = ROOT.resolve("compat-tests/target/upstream-dbus-tests");

    @ParameterizedTest
    @ValueSource(strings = {"test-dbus-daemon", "test-dbus-daemon-eavesdrop", "test-monitor", "test-sd-activation",
            "test-uid-permissions", "test-header-fields", "test-containers", "test-dbus-daemon-fork.sh"})
    void everyCasePassesAsOnTheReference(String program) throws IOException {
        Path exe = TESTS.resolve(program);
        assertTrue(Files.isExecutable(exe), exe + " is missing: install Debian's dbus-tests package (.ci/run does)");
        Files.createDirectories(LOGS);

        Cmd.Result refRun = run(exe, REFERENCE, "reference");
        Tap ref = Tap.parse(refRun.stdout());
        List<String> refProblems = ref.failuresAgainst(ref);
        assertTrue(refRun.ok() && refProblems.isEmpty(),
                "the reference dbus-daemon must pass its own tests here: " + refProblems + "\n" + tail(refRun));

        Cmd.Result ourRun = run(exe, OURS, "ours", Map.of());
        Tap ours = Tap.parse(ourRun.stdout());
        List<String> failures = ours.failuresAgainst(ref);
        assertTrue(failures.isEmpty(), program + " on our bus: " + failures + "\n" + tail(ourRun));
        assertTrue(ourRun.ok(), program + " exited " + ourRun.exitCode() + " on our bus\n" + tail(ourRun));

        // The same through the warm bus host, as anyone running this suite against bin/dbus-daemon
        // gets it by default (this module's surefire turns it off for every other test); a host of
        // this run's own, ended with the run by its marker.
        Path hostDir = Files.createTempDirectory("upstream-host-");
        try {
            Cmd.Result hosted = run(exe, OURS, "ours-hosted",
                    Map.of("KDBUS_BRIDGE_HOST", "1", "KDBUS_BRIDGE_HOST_DIR", hostDir.toString()));
            Tap h = Tap.parse(hosted.stdout());
            List<String> hostedFailures = h.failuresAgainst(ref);
            assertTrue(hostedFailures.isEmpty(), program + " on our bus through the host: " + hostedFailures + "\n" + tail(hosted));
            assertTrue(hosted.ok(), program + " exited " + hosted.exitCode() + " through the host\n" + tail(hosted));
        } finally {
            try (var files = Files.walk(hostDir)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    private static Cmd.Result run(Path exe, Path daemon, String label) throws IOException {
        return run(exe, daemon, label, Map.of());
    }

    private static Cmd.Result run(Path exe, Path daemon, String label, Map<String, String> extra) throws IOException {
        String marker = "KDBUS_UPSTREAM_RUN=" + UUID.randomUUID();
        Map<String, String> env = new java.util.HashMap<>(extra);
        env.putAll(Map.of(
                "DBUS_TEST_DAEMON", daemon.toString(),
                "DBUS_TEST_DATA", TESTS.resolve("data").toString(),
                "DBUS_TEST_EXEC", TESTS.toString(),
                marker.substring(0, marker.indexOf('=')), marker.substring(marker.indexOf('=') + 1)));
        Cmd.Result r;
        try {
            r = Cmd.run(List.of(exe.toString(), "--tap"), env, PROGRAM_DEADLINE);
        } finally {
            reapLeftovers(marker);
        }
        String name = exe.getFileName() + "." + label;
        Files.writeString(LOGS.resolve(name + ".tap"), r.stdout());
        Files.writeString(LOGS.resolve(name + ".stderr"), r.stderr());
        return r;
    }

    /**
     * A program that bails out leaves the buses it started running (it never gets to kill
     * them). Every process that inherited this run's marker is ended, whichever bus it is.
     */
    private static void reapLeftovers(String marker) {
        byte[] needle = (marker + "\0").getBytes(StandardCharsets.UTF_8);
        List<ProcessHandle> left = ProcessHandle.allProcesses().filter(p -> {
            try {
                byte[] environ = Files.readAllBytes(Path.of("/proc", Long.toString(p.pid()), "environ"));
                return indexOf(environ, needle) >= 0;
            } catch (IOException | RuntimeException e) {
                return false; // gone, or not ours to read
            }
        }).toList();
        for (ProcessHandle p : left) {
            p.destroyForcibly();
        }
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    private static String tail(Cmd.Result r) {
        String out = r.stdout();
        String err = r.stderr();
        return "exit=" + r.exitCode() + (r.timedOut() ? " (timed out)" : "")
                + "\n--- stdout (end) ---\n" + out.substring(Math.max(0, out.length() - 3000))
                + "\n--- stderr (end) ---\n" + err.substring(Math.max(0, err.length() - 4000));
    }
}
