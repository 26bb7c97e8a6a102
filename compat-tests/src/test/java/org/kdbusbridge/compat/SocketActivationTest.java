package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * {@code --address=systemd:} under real socket activation: systemd-socket-activate binds the
 * socket, waits for the first client, then execs the bus with LISTEN_FDS/LISTEN_PID set (so the
 * bus has the launcher's pid). The client that triggered the start must be served on the
 * already-queued connection, and --print-address must name the passed socket.
 */
class SocketActivationTest {

    private static final Path ACTIVATE = Path.of("/usr/bin/systemd-socket-activate");
    /** JVM start-up is part of the first client's wait. */
    private static final Duration FIRST_CLIENT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    private static List<String> busArgv(BusKind kind, String... args) {
        List<String> argv = new ArrayList<>();
        if (kind == BusKind.DBUS_DAEMON) {
            argv.add(System.getProperty("compat.dbus-daemon", "/usr/bin/dbus-daemon"));
        } else {
            String jar = System.getProperty(BusKind.JAR_PROPERTY);
            assertNotNull(jar, "system property " + BusKind.JAR_PROPERTY + " is not set");
            assertTrue(Files.isRegularFile(Path.of(jar)), "bus jar missing: " + jar);
            argv.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            argv.add("-jar");
            argv.add(Path.of(jar).toAbsolutePath().normalize().toString());
        }
        argv.addAll(List.of(args));
        return argv;
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void activatedBusServesTheTriggeringClientOnThePassedSocket(BusKind kind) throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(ACTIVATE), "needs " + ACTIVATE);
        Path sock = dir.resolve("sock");
        List<String> argv = new ArrayList<>(List.of(ACTIVATE.toString(), "--listen=" + sock,
                // systemd-socket-activate passes only a few variables on; these keep output stable.
                "--setenv=LC_ALL=C.UTF-8", "--setenv=HOME=" + dir, "--"));
        argv.addAll(busArgv(kind, "--session", "--nofork", "--print-address", "--address=systemd:"));
        try (Background bus = Background.start(argv, Map.of())) {
            String listening = bus.stderr().awaitLine(l -> l.startsWith("Listening on"), Buses.T);
            assertNotNull(listening, "systemd-socket-activate did not listen\n" + bus.describe());
            assertTrue(Files.exists(sock), bus.describe());

            // The first connection makes systemd-socket-activate exec the bus.
            Cmd.Result list = Cmd.run(List.of("busctl", "--address=unix:path=" + sock, "--no-pager", "list"),
                    FIRST_CLIENT);
            assertTrue(list.ok(), list.describe() + "\n" + bus.describe());
            long busPid = bus.process().pid(); // exec'd in place: the launcher's pid is the bus's
            assertTrue(Pattern.compile("(?m)^org\\.freedesktop\\.DBus\\s+" + busPid + "\\s").matcher(list.stdout()).find(),
                    "driver row with the activated pid " + busPid + "\n" + list.describe());

            String printed = bus.stdout().awaitLine(l -> !l.isBlank(), Buses.T);
            assertNotNull(printed, "no address printed\n" + bus.describe());
            Matcher m = Pattern.compile("unix:path=" + Pattern.quote(sock.toString()) + ",guid=([0-9a-f]{32})")
                    .matcher(printed.trim());
            assertTrue(m.matches(), "printed address '" + printed + "' must name the passed socket");

            // A second client, through the printed address, after activation.
            Cmd.Result id = Cmd.run(List.of("dbus-send", "--bus=" + printed.trim(), "--print-reply=literal",
                    "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.GetId"), Buses.T);
            assertTrue(id.ok(), id.describe());
            assertTrue(id.stdout().strip().matches("[0-9a-f]{32}"), id.describe());
            assertTrue(bus.process().isAlive(), bus.describe());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void systemdAddressWithoutActivationIsRefused(BusKind kind) throws IOException {
        List<String> argv = busArgv(kind, "--session", "--nofork", "--print-address", "--address=systemd:");
        // LISTEN_PID for some other process: the sockets are not ours, as if none were passed.
        Cmd.Result r = Cmd.run(argv, Map.of("LISTEN_FDS", "1", "LISTEN_PID", "1"), FIRST_CLIENT);
        assertEquals(1, r.exitCode(), r.describe());
        assertTrue(r.stderr().contains("No socket received"), r.describe());
        assertTrue(r.stdout().isEmpty(), r.describe());
    }
}
