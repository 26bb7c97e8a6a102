package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * Our bus as a drop-in for dbus-daemon, driven by the tools that spawn dbus-daemon:
 * dbus-run-session, GLib's GTestDBus (through bin/dbus-daemon first on PATH), our own
 * run-session, --fork, and the bus running as other users.
 */
class DropInTest {
    static final Path ROOT = Path.of(System.getProperty("kdbus.repo.root", "..")).toAbsolutePath().normalize();
    static final String BIN = ROOT.resolve("bin").toString();

    private static Map<String, String> envWithOurBinFirst() {
        Map<String, String> env = new HashMap<>();
        env.put("PATH", BIN + ":" + System.getenv("PATH"));
        return env;
    }

    private static Cmd.Result sh(String script, Map<String, String> env) {
        return Cmd.run(List.of("sh", "-c", script), env, Buses.T);
    }

    /** The process name of the bus, as the bus itself reports its pid. */
    private static final String BUS_COMM = "cat /proc/$(dbus-send --session --print-reply --dest=org.freedesktop.DBus "
            + "/org/freedesktop/DBus org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.DBus"
            + " | awk '/uint32/ {print $2}')/comm";

    @Test
    void dbusRunSessionWithOurDaemon() {
        Cmd.Result r = sh("dbus-run-session --dbus-daemon=" + BIN + "/dbus-daemon -- sh -c '"
                + "gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus "
                + "--method org.freedesktop.DBus.ListNames && busctl --user --no-pager list && "
                + "dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus "
                + "org.freedesktop.DBus.GetId && " + BUS_COMM.replace("'", "'\\''") + "'", Map.of());
        assertTrue(r.ok(), r.describe());
        assertTrue(r.stdout().contains("'org.freedesktop.DBus'"), r.describe());
        assertTrue(r.stdout().matches("(?s).*string \"[0-9a-f]{32}\".*"), r.describe());
        assertTrue(r.stdout().trim().endsWith("java"), "the bus is ours (a JVM)\n" + r.describe());
    }

    @Test
    void gtestDbusSpawnsOurDaemonFromPath() {
        String py = String.join("\n",
                "from gi.repository import Gio, GLib",
                "td = Gio.TestDBus.new(Gio.TestDBusFlags.NONE)",
                "td.up()",
                "addr = td.get_bus_address()",
                "flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION",
                "c = Gio.DBusConnection.new_for_address_sync(addr, flags, None, None)",
                "r = c.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',",
                "    'GetConnectionUnixProcessID', GLib.Variant('(s)', ('org.freedesktop.DBus',)), None, 0, -1, None)",
                "pid = r.unpack()[0]",
                "print('comm', open('/proc/%d/comm' % pid).read().strip())",
                "print('unique', c.get_unique_name())",
                "c.close_sync(None)",
                "td.down()",
                "print('down')");
        Cmd.Result r = Cmd.run(List.of("/usr/bin/python3", "-c", py), envWithOurBinFirst(), Buses.T);
        assertTrue(r.ok(), r.describe());
        assertTrue(r.stdout().contains("comm java"), "GTestDBus started our bus\n" + r.describe());
        assertTrue(r.stdout().contains("unique :1."), r.describe());
        assertTrue(r.stdout().contains("down"), r.describe());
    }

    @Test
    void unmodifiedSessionBusAppUnderOurRunSession() {
        String py = String.join("\n",
                "import dbus",
                "b = dbus.SessionBus()",
                "print('unique', b.get_unique_name())",
                "print('name', b.request_name('com.example.DropIn'))",
                "print('owner', b.get_name_owner('com.example.DropIn') == b.get_unique_name())");
        Cmd.Result r = Cmd.run(List.of(BIN + "/kdbus-bridge-run-session", "/usr/bin/python3", "-c", py), Map.of(), Buses.T);
        assertTrue(r.ok(), r.describe());
        assertTrue(r.stdout().contains("unique :1."), r.describe());
        assertTrue(r.stdout().contains("name 1"), r.describe());
        assertTrue(r.stdout().contains("owner True"), r.describe());
    }

    @Test
    void runSessionPassesOnExitStatus() {
        assertEquals(7, Cmd.run(List.of(BIN + "/kdbus-bridge-run-session", "--", "sh", "-c", "exit 7"), Map.of(), Buses.T).exitCode());
        assertEquals(128 + 15, Cmd.run(List.of(BIN + "/kdbus-bridge-run-session", "sh", "-c", "kill -TERM $$"), Map.of(), Buses.T).exitCode());
        Cmd.Result none = Cmd.run(List.of(BIN + "/kdbus-bridge-run-session"), Map.of(), Buses.T);
        assertEquals(127, none.exitCode(), none.describe());
        assertTrue(none.stderr().contains("a non-option argument is required"), none.describe());
        Cmd.Result missing = Cmd.run(List.of(BIN + "/kdbus-bridge-run-session", "/nonexistent/program"), Map.of(), Buses.T);
        assertEquals(127, missing.exitCode(), missing.describe());
    }

    @Test
    void forkDetachesAfterPrintingAddressAndPid() throws Exception {
        Cmd.Result r = Cmd.run(List.of(BIN + "/kdbus-bridge", "--session", "--fork", "--print-address", "--print-pid"), Map.of(), Buses.T);
        assertTrue(r.ok(), r.describe());
        String[] lines = r.stdout().trim().split("\n");
        assertEquals(2, lines.length, r.describe());
        long pid = Long.parseLong(lines[1].trim());
        ProcessHandle bus = ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("bus pid " + pid + " is not running"));
        try {
            String[] stat = Files.readString(Path.of("/proc/" + pid + "/stat")).split("\\) ")[1].split(" ");
            assertEquals(String.valueOf(pid), stat[3], "the forked bus leads its own session (field 6: session id)");
            Cmd.Result list = Cmd.run(List.of("busctl", "--address=" + lines[0], "--no-pager", "list"), Buses.T);
            assertTrue(list.ok(), list.describe());
            assertTrue(list.stdout().contains("org.freedesktop.DBus"), list.describe());
            String socket = lines[0].replaceFirst("^unix:path=([^,]*),.*$", "$1");
            assertTrue(Files.exists(Path.of(socket)), socket);
            bus.destroy();
            assertTrue(bus.onExit().get(Buses.T.toSeconds(), java.util.concurrent.TimeUnit.SECONDS) != null);
            assertFalse(Files.exists(Path.of(socket)), "SIGTERM removes the socket file");
        } finally {
            bus.destroyForcibly();
        }
    }

    @Test
    void badOptionsExitLikeDbusDaemon() {
        for (String bin : List.of("/usr/bin/dbus-daemon", BIN + "/kdbus-bridge")) {
            Cmd.Result unknown = Cmd.run(List.of(bin, "--no-such-option"), Buses.T);
            assertEquals(1, unknown.exitCode(), unknown.describe());
            Cmd.Result none = Cmd.run(List.of(bin, "--nofork"), Buses.T);
            assertEquals(1, none.exitCode(), none.describe());
            assertTrue(none.stderr().contains("No configuration file specified."), none.describe());
            Cmd.Result twice = Cmd.run(List.of(bin, "--session", "--system"), Buses.T);
            assertEquals(1, twice.exitCode(), twice.describe());
        }
    }

    /** A session bus started by an unprivileged user serves that user (and only that user). */
    @Test
    void runsAsUnprivilegedUser(@TempDir Path dir) throws Exception {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
        assumeRoot();
        String sock = dir.resolve("bus").toString();
        // A copy of the jar, so the test does not depend on nobody being able to read the checkout.
        Path jar = dir.resolve("kdbus-bridge.jar");
        Files.copy(Path.of(System.getProperty("kdbus.bridge.jar")), jar);
        Files.setPosixFilePermissions(jar, PosixFilePermissions.fromString("rw-r--r--"));
        String javaBin = ProcessHandle.current().info().command().orElse("java");
        Process bus = new ProcessBuilder("runuser", "-u", "nobody", "--", javaBin, "-jar", jar.toString(), "--session",
                "--nofork", "--print-address", "--address=unix:path=" + sock).start();
        try {
            String address = new java.io.BufferedReader(new java.io.InputStreamReader(bus.getInputStream())).readLine();
            assertTrue(address != null && address.startsWith("unix:path=" + sock), "address: " + address);
            Cmd.Result asNobody = Cmd.run(List.of("runuser", "-u", "nobody", "--", "dbus-send", "--bus=" + address,
                    "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.GetConnectionUnixUser", "string:org.freedesktop.DBus"), Buses.T);
            assertTrue(asNobody.ok(), asNobody.describe());
            assertTrue(asNobody.stdout().contains("uint32 65534"), asNobody.describe());
            Cmd.Result asRoot = Cmd.run(List.of("dbus-send", "--bus=" + address, "--print-reply", "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus", "org.freedesktop.DBus.GetId"), Buses.T);
            assertFalse(asRoot.ok(), "another uid is refused at auth on a session bus\n" + asRoot.describe());
        } finally {
            bus.destroy();
            bus.waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
            bus.destroyForcibly();
        }
    }

    /** A system-bus style config with {@code <user>messagebus</user>}: started as root, runs as messagebus. */
    @Test
    void systemBusDropsToMessagebus(@TempDir Path dir) throws Exception {
        assumeRoot();
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
        Path conf = dir.resolve("system.conf");
        Files.writeString(conf, String.join("\n",
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"",
                " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">",
                "<busconfig>",
                "  <type>system</type>",
                "  <user>messagebus</user>",
                "  <listen>unix:path=" + dir.resolve("system_bus_socket") + "</listen>",
                "  <auth>EXTERNAL</auth>",
                // Without send/receive rules every message would be denied, as in dbus-daemon.
                "  <policy context=\"default\"><allow user=\"*\"/>",
                "    <allow send_destination=\"org.freedesktop.DBus\"/><allow receive_sender=\"org.freedesktop.DBus\"/>",
                "  </policy>",
                "</busconfig>", ""));
        Process bus = new ProcessBuilder(BIN + "/kdbus-bridge", "--config-file=" + conf, "--nofork", "--print-address",
                "--print-pid").start();
        try {
            java.io.BufferedReader out = new java.io.BufferedReader(new java.io.InputStreamReader(bus.getInputStream()));
            String address = out.readLine();
            long pid = Long.parseLong(out.readLine().trim());
            String status = Files.readString(Path.of("/proc/" + pid + "/status"));
            assertTrue(status.matches("(?s).*\\nUid:\\s+100\\s+100\\s+100\\s+100\\n.*"), status);
            for (List<String> user : List.of(List.<String>of(), List.of("runuser", "-u", "nobody", "--"))) {
                List<String> argv = new ArrayList<>(user);
                argv.addAll(List.of("dbus-send", "--bus=" + address, "--print-reply", "--dest=org.freedesktop.DBus",
                        "/org/freedesktop/DBus", "org.freedesktop.DBus.GetConnectionUnixUser", "string:org.freedesktop.DBus"));
                Cmd.Result r = Cmd.run(argv, Buses.T);
                assertTrue(r.ok(), r.describe());
                assertTrue(r.stdout().contains("uint32 100"), r.describe());
            }
        } finally {
            bus.destroy();
            bus.waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
            bus.destroyForcibly();
        }
    }

    private static void assumeRoot() throws IOException {
        org.junit.jupiter.api.Assumptions.assumeTrue(
                Files.readString(Path.of("/proc/self/status")).matches("(?s).*\\nUid:\\s+0\\s.*"),
                "needs root to run processes as other users");
    }

}
