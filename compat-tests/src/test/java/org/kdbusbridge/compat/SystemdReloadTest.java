package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * {@code systemctl --user reload dbus} as dist/systemd/user/dbus.service says it (issue 19):
 * our bus socket-activated by systemd-socket-activate (LISTEN_FDS, no systemd instance here),
 * then the unit's {@code ExecReload=} command line, read from the unit file with {@code @BINDIR@}
 * replaced as the install does, run with the environment a user manager gives its services
 * ({@code XDG_RUNTIME_DIR}; then {@code DBUS_SESSION_BUS_ADDRESS}, which dbus.socket sets). It
 * must exit 0 once the new program serves: the same PID, the listening socket passed by systemd
 * carried across the exec (the same socket inode at the same fd), no LISTEN_* variables in the
 * resumed program's environment (it never reads them again), a client connected before still
 * connected and answered, its name still owned and its match rule still matching, and a new
 * client connects to the socket path.
 */
class SystemdReloadTest {

    private static final Path ACTIVATE = Path.of("/usr/bin/systemd-socket-activate");
    private static final Path UNIT = DropInTest.ROOT.resolve("dist/systemd/user/dbus.service");
    private static final String NAME = "com.example.SystemdReload";
    /** JVM start-up is part of the first client's wait; a hand-over is a check run plus a JVM start. */
    private static final Duration FIRST_CLIENT = Duration.ofSeconds(60);
    private static final Duration RELOAD = Duration.ofSeconds(150);

    @TempDir
    Path dir;

    /**
     * The unit's ExecReload= lines as argv, the way systemd splits them (whitespace; the
     * {@code -@:+!} prefixes dropped) after {@code @BINDIR@} is replaced. The unit must not need what this
     * split would get wrong: quotes, specifiers, variables.
     */
    static List<List<String>> execReload(Path unit, String bindir) throws IOException {
        List<List<String>> out = new ArrayList<>();
        boolean service = false;
        for (String raw : Files.readAllLines(unit, StandardCharsets.UTF_8)) {
            String line = raw.strip();
            if (line.startsWith("[")) {
                service = line.equals("[Service]");
                continue;
            }
            if (!service || !line.startsWith("ExecReload=")) {
                continue;
            }
            // The install's sed first, then systemd reads the line.
            String value = line.substring("ExecReload=".length()).replace("@BINDIR@", bindir).strip();
            assertFalse(value.endsWith("\\"), "a continued ExecReload= line: " + raw);
            while (!value.isEmpty() && "-@:+!".indexOf(value.charAt(0)) >= 0) {
                value = value.substring(1);
            }
            for (String bad : List.of("\"", "'", "%", "$", ";")) {
                assertFalse(value.contains(bad), "ExecReload= needs systemd's full parser (" + bad + "): " + raw);
            }
            List<String> argv = Arrays.asList(value.split("\\s+"));
            assertTrue(argv.get(0).startsWith("/"), "systemd wants an absolute path: " + raw);
            out.add(argv);
        }
        return out;
    }

    private static Path config(Path dir) throws IOException {
        Path conf = dir.resolve("bus.conf");
        // The <listen> is never used: --address=systemd: replaces it, as in the unit.
        Files.writeString(conf, "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                + " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n"
                + "  <type>session</type>\n  <listen>unix:path=" + dir.resolve("unused") + "</listen>\n"
                + "  <auth>EXTERNAL</auth>\n"
                + "  <policy context=\"default\">\n    <allow user=\"*\"/>\n    <allow own=\"*\"/>\n"
                + "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow eavesdrop=\"true\"/>\n  </policy>\n</busconfig>\n");
        return conf;
    }

    private static String reply(RawClient c, String member, String sig, Object... args) throws IOException {
        Message r = c.callBus(member, Buses.T, sig, args);
        assertNotNull(r, member + ": no reply");
        assertEquals(Message.METHOD_RETURN, r.type, member + ": " + r);
        return r.args().isEmpty() ? "" : String.valueOf(r.arg(0));
    }

    /** The NUL-separated environment the process was exec'd with (after a hand-over: what execve got). */
    private static List<String> environ(long pid) throws IOException {
        byte[] b = Files.readAllBytes(Path.of("/proc/" + pid + "/environ"));
        return Arrays.asList(new String(b, StandardCharsets.UTF_8).split("\0"));
    }

    private static String fdLink(long pid, int fd) throws IOException {
        return Files.readSymbolicLink(Path.of("/proc/" + pid + "/fd/" + fd)).toString();
    }

    private static long lines(Background bus, String what) {
        return bus.stderr().all().stream().filter(l -> l.contains(what)).count();
    }

    @Test
    void theUnitsExecReloadHandsTheSocketActivatedBusOverInPlace() throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(ACTIVATE), "needs " + ACTIVATE);
        List<List<String>> reloads = execReload(UNIT, DropInTest.BIN);
        // The hand-over, then ReloadConfig (which re-reads the configuration if the hand-over was refused).
        assertEquals(2, reloads.size(), "two ExecReload= in " + UNIT);
        List<String> reload = reloads.get(0);
        assertTrue(reload.contains("--replace"), "the unit's reload hands over: " + reload);
        List<String> reloadConfig = reloads.get(1);
        assertTrue(reloadConfig.contains("ReloadConfig"), "then ReloadConfig: " + reloadConfig);

        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        Path sock = dir.resolve("bus"); // %t/bus, with XDG_RUNTIME_DIR = dir
        Path conf = config(dir);
        List<String> argv = new ArrayList<>(List.of(ACTIVATE.toString(), "--listen=" + sock,
                "--setenv=LC_ALL=C.UTF-8", "--setenv=KDBUS_BRIDGE_HOST=0", "--setenv=XDG_RUNTIME_DIR=" + dir));
        // systemd-socket-activate passes only what it is told: the launcher needs java and its cache dir.
        for (String v : List.of("PATH", "HOME", "JAVA_HOME", "XDG_CACHE_HOME", "KDBUS_BRIDGE_CDS_DIR")) {
            if (System.getenv(v) != null) {
                argv.add("--setenv=" + v + "=" + System.getenv(v));
            }
        }
        argv.add("--");
        argv.addAll(List.of(DropInTest.BIN + "/kdbus-bridge", "--address=systemd:", "--config-file=" + conf, "--nofork"));
        String address = "unix:path=" + sock;
        try (Background bus = Background.start(argv, Map.of())) {
            assertNotNull(bus.stderr().awaitLine(l -> l.startsWith("Listening on"), Buses.T),
                    "systemd-socket-activate did not listen\n" + bus.describe());
            long pid = bus.process().pid(); // systemd-socket-activate execs the launcher, which execs java
            // The first client makes systemd-socket-activate exec the bus; it waits in the backlog meanwhile.
            try (RawClient client = RawClient.connectHello(address, FIRST_CLIENT);
                 RawClient other = RawClient.connectHello(address, Buses.T)) {
                assertEquals(String.valueOf(pid), reply(client, "GetConnectionUnixProcessID", "s", "org.freedesktop.DBus"));
                String guid = reply(client, "GetId", "");
                assertEquals("1", reply(client, "RequestName", "su", NAME, 0L));
                reply(client, "AddMatch", "s", "type='signal',interface='" + NAME + "',member='Tick'");
                assertTrue(environ(pid).contains("LISTEN_FDS=1"), "started by socket activation: " + environ(pid));
                String listener = fdLink(pid, 3); // SD_LISTEN_FDS_START
                assertTrue(listener.startsWith("socket:"), listener);

                List<Map<String, String>> envs = new ArrayList<>();
                envs.add(Map.of("XDG_RUNTIME_DIR", dir.toString())); // Cmd.run drops DBUS_SESSION_BUS_ADDRESS
                envs.add(Map.of("XDG_RUNTIME_DIR", dir.resolve("elsewhere").toString(), "DBUS_SESSION_BUS_ADDRESS", address));
                List<String> figures = new ArrayList<>();
                for (int round = 1; round <= envs.size(); round++) {
                    int linesBefore = bus.stderr().all().size();
                    long t0 = System.nanoTime();
                    Cmd.Result r = Cmd.run(reload, envs.get(round - 1), RELOAD);
                    long ms = (System.nanoTime() - t0) / 1_000_000;
                    assertTrue(r.ok(), "ExecReload " + reload + "\n" + r.describe() + "\n" + bus.describe());
                    figures.add("reload " + round + " " + ms + " ms");
                    // It returned once the new program serves; the reply and its one line are one loop task.
                    assertNotNull(bus.stderr().awaitLine(l -> l.contains("hand-over (reexec) from"), Buses.T), bus.describe());
                    assertEquals(round, lines(bus, "hand-over (reexec) from"), bus.describe());
                    // The same process, over the same listening socket; LISTEN_* never reached it.
                    assertTrue(bus.process().isAlive(), bus.describe());
                    assertEquals(String.valueOf(pid), reply(client, "GetConnectionUnixProcessID", "s", "org.freedesktop.DBus"));
                    assertEquals(guid, reply(client, "GetId", ""));
                    assertEquals(listener, fdLink(pid, 3), "the passed listener is carried at its fd");
                    List<String> env = environ(pid);
                    assertTrue(env.stream().noneMatch(e -> e.startsWith("LISTEN_")), "resumed with " + env);
                    assertTrue(env.stream().anyMatch(e -> e.startsWith("KDBUS_BRIDGE_LAUNCHER=")), env.toString());
                    assertFalse(bus.stderr().all().stream().anyMatch(l -> l.contains("No socket received")), bus.describe());
                    // The client from before: answered, its name, its match rule.
                    assertEquals(client.uniqueName(), reply(other, "GetNameOwner", "s", NAME));
                    Message tick = Message.call(null, "/t", NAME, "Tick").body("s", "round" + round);
                    tick.type = Message.SIGNAL;
                    other.send(tick);
                    String want = "round" + round;
                    Message sig = client.await(m -> m.type == Message.SIGNAL && "Tick".equals(m.member)
                            && want.equals(m.arg(0)), Buses.T, true);
                    assertNotNull(sig, "the match rule after reload " + round + "\n" + client.transcript());
                    // A new client, on the socket path systemd bound.
                    try (RawClient fresh = RawClient.connectHello(address, Buses.T)) {
                        assertEquals(client.uniqueName(), reply(fresh, "GetNameOwner", "s", NAME));
                        assertEquals(String.valueOf(pid), reply(fresh, "GetConnectionUnixProcessID", "s", "org.freedesktop.DBus"));
                    }
                    // A successful hand-over logs exactly one line: nothing else reached the bus's stderr.
                    assertEquals(linesBefore + 1, bus.stderr().all().size(), bus.describe());
                    // The unit's second line: ReloadConfig answered by the new program, same process.
                    Cmd.Result rc = Cmd.run(reloadConfig, envs.get(round - 1), RELOAD);
                    assertTrue(rc.ok(), "ExecReload " + reloadConfig + "\n" + rc.describe() + "\n" + bus.describe());
                    assertEquals(String.valueOf(pid), reply(client, "GetConnectionUnixProcessID", "s", "org.freedesktop.DBus"));
                }
                System.out.println("SYSTEMD-RELOAD (load " + Files.readString(Path.of("/proc/loadavg")).trim() + "): "
                        + String.join("; ", figures));
            }
        }
    }
}
