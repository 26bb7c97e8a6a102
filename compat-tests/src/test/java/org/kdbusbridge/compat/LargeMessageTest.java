// Invariants under test: with --session (session.conf: max_message_size 1,000,000,000, which
// libdbus caps at the D-Bus maximum of 128 MiB) one ~100 MiB message, far past our per-uid queue
// budget (an eighth of the shipped -Xmx512m heap), is delivered whole on both buses, to a
// receiver and to a name that has no owner yet (it waits while the service starts); once it has
// gone the bus's RSS comes back; two such messages from one uid queued at once for a receiver
// that does not read: dbus-daemon queues both, ours the first only (a uid may hold one message
// beyond its budget) and answers the second with LimitsExceeded (docs/compatibility.md).
package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

class LargeMessageTest {
    private static final String PYTHON = System.getProperty("compat.python", "/usr/bin/python3");
    /** Payload bytes of the large call: 100 MiB (the message is 100 MiB + 148 bytes). */
    private static final int SIZE = 100 << 20;
    private static final String NAME = "org.example.Big";
    /** RSS may stay this far above where it was before the message (a leaked payload is 100 MiB). */
    private static final long RSS_SLACK_KIB = 40 << 10;
    private static final Duration SCRIPT = Duration.ofSeconds(120);

    @TempDir
    Path dir;

    private Path script() throws IOException {
        Path script = dir.resolve("large_message.py");
        if (!Files.exists(script)) {
            for (String name : List.of("large_message.py", "rawwire.py")) {
                try (InputStream in = LargeMessageTest.class.getResourceAsStream(name)) {
                    assertNotNull(in, "script resource " + name);
                    Files.copy(in, dir.resolve(name));
                }
            }
        }
        return script;
    }

    /** The bus with session.conf on a socket in {@code dir}; ours through bin/kdbus-bridge (the shipped jvm.options). */
    private Background startSession(BusKind kind, Map<String, String> env) {
        String exe = kind == BusKind.KDBUS_BRIDGE ? DropInTest.BIN + "/kdbus-bridge" : "/usr/bin/dbus-daemon";
        List<String> argv = List.of(exe, "--session", "--nofork", "--print-address",
                "--address=unix:path=" + dir.resolve("bus"));
        return Background.start(argv, env);
    }

    private Cmd.Result run(String mode) throws IOException {
        return Cmd.run(List.of(PYTHON, script().toString(), mode, dir.resolve("bus").toString(),
                String.valueOf(SIZE)), SCRIPT);
    }

    private static long statusKib(Background bus, String key) throws IOException {
        for (String l : Files.readAllLines(Path.of("/proc/" + bus.process().pid() + "/status"))) {
            if (l.startsWith(key + ":")) {
                return Long.parseLong(l.substring(key.length() + 1).trim().split("\\s+")[0]);
            }
        }
        throw new IllegalStateException("no " + key + " for the bus");
    }

    private static String timeOf(Cmd.Result r) {
        return r.stdout().lines().filter(l -> l.startsWith("time ")).findFirst().orElse("time ?");
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void aHundredMiBCallIsDeliveredAndTheMemoryComesBack(BusKind kind) throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of(PYTHON)), "no " + PYTHON);
        try (Background bus = startSession(kind, Map.of())) {
            assertNotNull(bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T), bus.describe());
            long before = statusKib(bus, "VmRSS");
            Cmd.Result r = run("echo");
            assertTrue(r.ok(), r.describe() + "\n" + bus.describe());
            assertTrue(r.stdout().contains("delivered " + SIZE + " crc ok"), r.describe());
            long peak = statusKib(bus, "VmHWM");
            // The payload's buffer goes back when the last receiver has it (not at some later GC).
            long deadline = System.nanoTime() + Buses.T.toNanos();
            long after = statusKib(bus, "VmRSS");
            while (after > before + RSS_SLACK_KIB && System.nanoTime() < deadline) {
                java.util.concurrent.locks.LockSupport.parkNanos(50_000_000L); // polled until the deadline
                after = statusKib(bus, "VmRSS");
            }
            System.out.println("LARGE-MESSAGE " + kind + ": " + SIZE + " bytes delivered, " + timeOf(r) + ", RSS before "
                    + before / 1024 + " MiB, peak " + peak / 1024 + " MiB, after " + after / 1024 + " MiB");
            assertTrue(after <= before + RSS_SLACK_KIB, "RSS " + after + " KiB after, " + before + " KiB before");
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void aHundredMiBCallWaitsForAnActivatedService(BusKind kind) throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of(PYTHON)), "no " + PYTHON);
        Path services = Files.createDirectories(dir.resolve("share/dbus-1/services"));
        Files.writeString(services.resolve(NAME + ".service"), "[D-BUS Service]\nName=" + NAME + "\nExec=" + PYTHON
                + " " + script() + " serve\n");
        try (Background bus = startSession(kind, Map.of("XDG_DATA_HOME", dir.resolve("share").toString()))) {
            assertNotNull(bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T), bus.describe());
            Cmd.Result r = run("activate");
            System.out.println("LARGE-MESSAGE " + kind + " to an activatable name: " + r.stdout().trim());
            assertTrue(r.ok() && r.stdout().contains("delivered " + SIZE + " crc ok"), r.describe() + "\n"
                    + bus.describe());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void twoHundredMiBCallsToANonReader(BusKind kind) throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of(PYTHON)), "no " + PYTHON);
        try (Background bus = startSession(kind, Map.of())) {
            assertNotNull(bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T), bus.describe());
            Cmd.Result r = run("hold");
            System.out.println("LARGE-MESSAGE " + kind + " held: " + r.stdout().trim().replace('\n', ';')
                    + "; bus peak RSS " + statusKib(bus, "VmHWM") / 1024 + " MiB");
            assertTrue(r.ok(), r.describe() + "\n" + bus.describe());
            List<String> lines = new ArrayList<>(r.stdout().lines().toList());
            assertEquals("call 1 queued", lines.get(0), r.describe());
            if (kind == BusKind.KDBUS_BRIDGE) {
                // One message beyond the uid's budget, not two: the second is refused as by a full queue.
                assertTrue(lines.get(1).matches("call 2 error org\\.freedesktop\\.DBus\\.Error\\.LimitsExceeded: "
                        + "The destination service \":1\\.[0-9]+\" has a full message queue"), r.describe());
                assertEquals("received 1 calls of " + SIZE + " bytes", lines.get(2), r.describe());
                assertEquals("call 1 delivered " + SIZE + " crc ok", lines.get(3), r.describe());
                assertEquals(1, bus.stderr().all().stream().filter(l -> l.contains("Queued messages of uid")).count(),
                        bus.describe());
            } else {
                assertEquals(List.of("call 1 queued", "call 2 queued", "received 2 calls of " + SIZE + " " + SIZE
                        + " bytes", "call 1 delivered " + SIZE + " crc ok", "call 2 delivered " + SIZE + " crc ok"),
                        lines, r.describe());
            }
        }
    }
}
