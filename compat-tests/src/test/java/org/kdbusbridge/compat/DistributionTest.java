package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Await;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * The tar.gz that {@code mvn package} builds in bridge/target: unpacked into an empty directory,
 * its launchers must run the bus with no source tree around (JAVA_HOME is this JVM's).
 */
class DistributionTest {

    /** Includes a JVM start. */
    private static final Duration START = Duration.ofSeconds(60);

    @TempDir
    Path tmp;

    private Path home;
    private Map<String, String> env;

    @BeforeEach
    void unpack() throws IOException {
        String tarball = System.getProperty("kdbus.dist.tarball");
        assertNotNull(tarball, "system property kdbus.dist.tarball is not set");
        assertTrue(Files.isRegularFile(Path.of(tarball)), "no distribution at " + tarball + " (mvn -B package builds it)");
        Path dest = Files.createDirectory(tmp.resolve("unpacked"));
        Cmd.Result untar = Cmd.run(List.of("tar", "-xzf", tarball, "-C", dest.toString()), Buses.T);
        assertTrue(untar.ok(), untar.describe());
        try (var top = Files.list(dest)) {
            List<Path> dirs = top.toList();
            assertEquals(1, dirs.size(), "one top-level directory: " + dirs);
            home = dirs.get(0);
        }
        assertTrue(home.getFileName().toString().startsWith("kdbus-bridge-"), home.toString());
        env = Map.of("JAVA_HOME", System.getProperty("java.home"),
                "XDG_CACHE_HOME", tmp.resolve("cache").toString());
    }

    @Test
    void layoutHasLaunchersJarOptionsAndUnits() {
        assertTrue(Files.isExecutable(home.resolve("bin/kdbus-bridge")));
        assertTrue(Files.isExecutable(home.resolve("bin/dbus-daemon")));
        // The xdg-dbus-proxy front (issue 18), also under the name flatpak runs.
        assertTrue(Files.isExecutable(home.resolve("bin/kdbus-bridge-proxy")));
        assertTrue(Files.isExecutable(home.resolve("bin/xdg-dbus-proxy")));
        assertTrue(Files.isRegularFile(home.resolve("lib/kdbus-bridge.jar")));
        assertTrue(Files.isRegularFile(home.resolve("conf/jvm.options")));
        assertTrue(Files.isRegularFile(home.resolve("conf/systemd/user/dbus.socket")));
        assertTrue(Files.isRegularFile(home.resolve("conf/systemd/user/dbus.service")));
    }

    @Test
    void versionRunsFromTheUnpackedTree() {
        Cmd.Result r = Cmd.run(List.of(home.resolve("bin/kdbus-bridge").toString(), "--version"), env, START);
        assertTrue(r.ok(), r.describe());
        assertTrue(r.stdout().startsWith("kdbus-bridge Message Bus Daemon "), r.describe());
        assertFalse(Files.exists(tmp.resolve("cache/kdbus-bridge")), "--version must not train the AppCDS archive");
    }

    @Test
    void dbusDaemonWrapperRunsTheBusWithConfiguredOptionsThenReusesTheArchive() throws Exception {
        Path archiveDir = tmp.resolve("cache/kdbus-bridge");
        boolean aot = Runtime.version().feature() >= 25; // the tests' JVM is the bus's (JAVA_HOME)
        String suffix = aot ? ".aot" : ".jsa";
        // First start: runs untrained; the cache is made by a training run in the background.
        String first = startListAndStop(tmp.resolve("bus1"));
        assertTrue(first.contains("-XX:+UseSerialGC"), "conf/jvm.options is applied: " + first);
        assertFalse(first.contains("-XX:ArchiveClassesAtExit") || first.contains("-XX:AOTCacheOutput"),
                "the caller's bus does not train: " + first);
        assertTrue(first.contains(home.resolve("lib/kdbus-bridge.jar").toString()), first);
        assertTrue(TrainedCache.await(archiveDir, suffix, START), "a " + suffix + " cache in " + archiveDir);
        // Second start maps it.
        String second = startListAndStop(tmp.resolve("bus2"));
        assertTrue(second.contains(aot ? "-XX:AOTCache=" : "-XX:SharedArchiveFile="), second);
    }

    @Test
    void theJniLibraryShipsBesideTheJar() {
        assertTrue(Files.isRegularFile(home.resolve("lib/libkdbus-bridge-native.so")));
    }

    /** The warm bus host's front (bridge.host), which bin/dbus-daemon execs for hostable starts. */
    @Test
    void theHostFrontShipsBesideTheJniLibrary() {
        assertTrue(Files.isExecutable(home.resolve("lib/kdbus-bridge-front")));
    }

    /**
     * The distribution's bin/dbus-daemon is the front itself (no shell before it): with the host
     * on, the first start runs in a JVM and starts the host, a later one is hosted (the pid it
     * prints is bin/dbus-daemon's own process); with KDBUS_BRIDGE_HOST=0 it execs the JVM.
     */
    @Test
    void theDistributionsDbusDaemonIsTheFrontAndFindsItsHost() throws Exception {
        Path runtime = Files.createDirectory(tmp.resolve("xdg"), java.nio.file.attribute.PosixFilePermissions
                .asFileAttribute(java.nio.file.attribute.PosixFilePermissions.fromString("rwx------")));
        Map<String, String> hostEnv = new java.util.HashMap<>(env);
        hostEnv.put("KDBUS_BRIDGE_HOST", "1");
        hostEnv.put("XDG_RUNTIME_DIR", runtime.toString());
        hostEnv.put("KDBUS_BRIDGE_HOST_DIR", runtime.toString()); // a host of this test's own
        hostEnv.put("KDBUS_BRIDGE_HOST_IDLE_MS", "2000");
        hostEnv.put("KDBUS_BRIDGE_HOST_WARMUP", "0");
        Path conf = tmp.resolve("bus.conf");
        Files.writeString(conf, "<busconfig><type>session</type><listen>unix:tmpdir=" + tmp + "</listen>"
                + "<policy context=\"default\"><allow send_destination=\"*\"/><allow receive_sender=\"*\"/>"
                + "<allow own=\"*\"/></policy></busconfig>");
        List<String> argv = List.of(home.resolve("bin/dbus-daemon").toString(), "--config-file=" + conf, "--nofork",
                "--print-address");
        Path hostDir = runtime.resolve("kdbus-bridge-host-" + new com.sun.security.auth.module.UnixSystem().getUid());
        long deadline = System.nanoTime() + START.toNanos() * 2;
        boolean hosted = false;
        while (!hosted && System.nanoTime() < deadline) {
            try (WaitedBus bus = WaitedBus.start(argv, hostEnv, tmp)) {
                String exe = Files.readSymbolicLink(Path.of("/proc/" + bus.pid() + "/exe")).toString();
                hosted = exe.equals(home.resolve("bin/dbus-daemon").toRealPath().toString());
                assertTrue(hosted || exe.endsWith("/java"), exe);
                assertEquals("status 0", bus.kill(15), bus.describe());
            }
            if (!hosted) {
                // the host is starting in the background: its socket appears
                Await.files(() -> hasSocket(hostDir), Duration.ofNanos(Math.max(0, deadline - System.nanoTime())), hostDir);
            }
        }
        assertTrue(hosted, "no start was hosted");
    }

    private static boolean hasSocket(Path dir) {
        try (var s = Files.list(dir)) {
            return s.anyMatch(p -> !p.toString().endsWith(".lock"));
        } catch (IOException e) {
            return false;
        }
    }

    /** Starts bin/dbus-daemon, checks busctl against it, stops it; returns the bus's command line. */
    private String startListAndStop(Path socket) throws Exception {
        List<String> argv = List.of(home.resolve("bin/dbus-daemon").toString(), "--session", "--nofork",
                "--print-address", "--address=unix:path=" + socket);
        String cmdline;
        try (Background bus = Background.start(argv, env)) {
            String address = bus.stdout().awaitLine(l -> !l.isBlank(), START);
            assertNotNull(address, "no address printed\n" + bus.describe());
            assertTrue(address.startsWith("unix:path=" + socket + ",guid="), address);
            long pid = bus.process().pid();
            // Both scripts exec: the pid we started is the JVM itself.
            cmdline = Files.readString(Path.of("/proc/" + pid + "/cmdline")).replace('\0', ' ');
            assertTrue(cmdline.contains(" -jar "), cmdline);

            Cmd.Result list = Cmd.run(List.of("busctl", "--address=" + address.trim(), "--no-pager", "list"), Buses.T);
            assertTrue(list.ok(), list.describe());
            assertTrue(Pattern.compile("(?m)^org\\.freedesktop\\.DBus\\s+" + pid + "\\s").matcher(list.stdout()).find(),
                    "driver row with the launcher's pid\n" + list.describe());
            bus.process().destroy();
            assertTrue(bus.process().waitFor(30, java.util.concurrent.TimeUnit.SECONDS), bus.describe());
            assertTrue(bus.stdout().awaitEof(Buses.T));
            assertEquals(List.of(address), bus.stdout().all(), "stdout carries the address and nothing else");
        }
        return cmdline;
    }
}
