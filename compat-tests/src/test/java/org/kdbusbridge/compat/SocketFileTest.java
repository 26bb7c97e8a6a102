package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * {@code unix:tmpdir=}: since dbus 1.14.4 dbus-daemon makes a path socket there, as for
 * {@code dir=} (dbus#416: an abstract socket is reachable from every sandbox that shares the
 * network namespace), and prints {@code unix:path=DIR/dbus-XXXXXXXXXX,guid=...}. We do the same.
 * What a bus leaves in the directory: nothing after SIGTERM; its socket after SIGKILL (both).
 */
class SocketFileTest {
    static final int SIGTERM = 15;
    static final int SIGKILL = 9;

    private static List<String> tmpdirBus(BusKind kind, Path dir) {
        return kind.command(List.of("--session", "--nofork", "--print-address", "--address=unix:tmpdir=" + dir));
    }

    private static Path socketOf(String address, Path dir) {
        Matcher m = Pattern.compile("unix:path=(" + Pattern.quote(dir.toString()) + "/dbus-[A-Za-z0-9]{10}),guid=[0-9a-f]{32}")
                .matcher(address);
        assertTrue(m.matches(), address);
        return Path.of(m.group(1));
    }

    private static List<Path> entries(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.toList();
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void tmpdirIsAPathSocketRemovedOnSigterm(BusKind kind, @TempDir Path work) throws Exception {
        Path dir = Files.createDirectory(work.resolve("tmp"));
        try (WaitedBus bus = WaitedBus.start(tmpdirBus(kind, dir), null, work)) {
            Path socket = socketOf(bus.address(), dir);
            assertEquals(List.of(socket), entries(dir), bus.describe());
            int mode = (Integer) Files.getAttribute(socket, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            assertEquals(0140777, mode, Integer.toOctalString(mode));
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
            assertEquals(List.of(), entries(dir), bus.describe());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void sigkillLeavesOnlyTheSocketFile(BusKind kind, @TempDir Path work) throws Exception {
        Path dir = Files.createDirectory(work.resolve("tmp"));
        try (WaitedBus bus = WaitedBus.start(tmpdirBus(kind, dir), null, work)) {
            Path socket = socketOf(bus.address(), dir);
            assertEquals("signal 9", bus.kill(SIGKILL), bus.describe());
            // nobody can remove a path socket after SIGKILL; the next bus on a path= address replaces it
            assertEquals(List.of(socket), entries(dir), bus.describe());
            assertTrue(!Files.exists(Path.of("/tmp/hsperfdata_" + System.getProperty("user.name"), "" + bus.pid())),
                    "no JVM perf-data file left in /tmp");
        }
    }

    /** {@code unix:abstract=}: libdbus, GDBus and sd-bus clients connect; the name goes with the bus. */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void abstractSocketServesClientsAndGoesWithTheBus(BusKind kind, @TempDir Path work) throws Exception {
        String name = "kdbus-compat-" + java.util.UUID.randomUUID();
        List<String> argv = kind.command(List.of("--session", "--nofork", "--print-address",
                "--address=unix:abstract=" + name));
        try (WaitedBus bus = WaitedBus.start(argv, null, work)) { // WaitedBus.start calls with dbus-send
            assertTrue(bus.address().matches("unix:abstract=" + Pattern.quote(name) + ",guid=[0-9a-f]{32}"), bus.address());
            assertTrue(Files.readString(Path.of("/proc/net/unix")).contains(" @" + name + "\n"), "listed in /proc/net/unix");
            Cmd.Result gdbus = Cmd.run(List.of("gdbus", "call", "--address", bus.address(), "--dest", "org.freedesktop.DBus",
                    "--object-path", "/org/freedesktop/DBus", "--method", "org.freedesktop.DBus.GetId"), Buses.T);
            assertTrue(gdbus.ok(), gdbus.describe());
            Cmd.Result busctl = Cmd.run(List.of("busctl", "--address=" + bus.address(), "--no-pager", "call",
                    "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId"), Buses.T);
            assertTrue(busctl.ok(), busctl.describe());
            assertTrue(gdbus.stdout().matches("(?s).*'[0-9a-f]{32}'.*"), gdbus.describe());
            assertTrue(busctl.stdout().matches("(?s)s \"[0-9a-f]{32}\".*"), busctl.describe());
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
            assertTrue(!Files.readString(Path.of("/proc/net/unix")).contains(" @" + name + "\n"), "gone from /proc/net/unix");
        }
    }

    /**
     * {@code <user>}: the socket is made as root, then the bus drops to that user, who may not
     * unlink root's file from a sticky directory. dbus-daemon leaves it behind; we hand the file
     * to that user before dropping, so it goes at exit (docs/compatibility.md).
     */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void busThatDropsToAUserInAStickyDirectory(BusKind kind, @TempDir Path work) throws Exception {
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "switching users needs root");
        Path dir = Files.createDirectory(work.resolve("sticky"));
        Files.setAttribute(dir, "unix:mode", 01777);
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path conf = work.resolve("user.conf");
        Files.writeString(conf, String.join("\n",
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"",
                " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">",
                "<busconfig>",
                "  <type>session</type>",
                "  <user>nobody</user>",
                "  <listen>unix:tmpdir=" + dir + "</listen>",
                "  <auth>EXTERNAL</auth>",
                "  <policy context=\"default\">",
                "    <allow send_destination=\"*\" eavesdrop=\"true\"/>",
                "    <allow eavesdrop=\"true\"/>",
                "    <allow own=\"*\"/>",
                "    <allow user=\"*\"/>",
                "  </policy>",
                "</busconfig>", ""));
        List<String> argv = kind.command(List.of("--config-file=" + conf, "--nofork", "--print-address"));
        try (WaitedBus bus = WaitedBus.start(argv, null, work)) {
            Path socket = socketOf(bus.address(), dir);
            String status = Files.readString(Path.of("/proc/" + bus.pid() + "/status"));
            assertTrue(status.matches("(?s).*\nUid:\t65534\t.*"), "the bus runs as nobody\n" + status);
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
            assertEquals(kind == BusKind.DBUS_DAEMON ? List.of(socket) : List.of(), entries(dir), bus.describe());
        }
    }
}
