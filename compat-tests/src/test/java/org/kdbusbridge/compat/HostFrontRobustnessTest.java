package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Await;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.LineReader;

/**
 * The warm host's C front (bridge/src/main/c/kdbus_front.c) where its caller is unusual: closed
 * stdio, a closed print fd, ignored signals, a wedged host, many first starts at once, another
 * pid namespace, a planted symlink, a dead host's leftovers. Each is held against what
 * /usr/bin/dbus-daemon does in the same situation where that is observable. Hosts of this
 * class live in private KDBUS_BRIDGE_HOST_DIRs, without warm-up, and leave 2 s after their last bus.
 */
class HostFrontRobustnessTest {
    static final int SIGINT = 2;
    static final int SIGKILL = 9;
    static final int SIGTERM = 15;
    static final String FRONT = BusHostTest.FRONT;
    static final String DBUS_DAEMON = "/usr/bin/dbus-daemon";
    private static final int UID = (int) new com.sun.security.auth.module.UnixSystem().getUid();
    private static Path shared;
    private static final List<Path> hostDirs = new ArrayList<>();
    private final List<WaitedBus> keepers = new ArrayList<>();

    @org.junit.jupiter.api.AfterEach
    void stopKeepers() {
        keepers.forEach(k -> {
            k.kill(SIGTERM);
            k.close();
        });
    }

    @BeforeAll
    static void sharedHost() throws IOException {
        shared = newHostDir();
    }

    /** Every host of this class leaves when idle; then its directory goes. */
    @AfterAll
    static void hostsLeave() throws IOException {
        for (Path base : hostDirs) {
            assertTrue(Await.exited(hostPids(base), Duration.ofSeconds(60)), "a host still runs in " + base);
            try (var s = Files.walk(base)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    private static Path newHostDir() throws IOException {
        Path base = Files.createTempDirectory("hostfront-");
        hostDirs.add(base);
        return base;
    }

    private static Map<String, String> env(Path base) {
        Map<String, String> e = new HashMap<>();
        e.put("KDBUS_BRIDGE_HOST", "1");
        e.put("KDBUS_BRIDGE_HOST_DIR", base.toString());
        e.put("XDG_RUNTIME_DIR", base.toString());
        e.put("KDBUS_BRIDGE_HOST_IDLE_MS", "2000");
        e.put("KDBUS_BRIDGE_HOST_WARMUP", "0");
        e.put("KDBUS_BRIDGE_FRONT_DEBUG", "1");
        e.put("PATH", DropInTest.BIN + ":" + System.getenv("PATH"));
        return e;
    }

    private static Map<String, String> env(Path base, String... kv) {
        Map<String, String> e = env(base);
        for (int i = 0; i < kv.length; i += 2) {
            e.put(kv[i], kv[i + 1]);
        }
        return e;
    }

    private static Path socketDir(Path base) {
        return base.resolve("kdbus-bridge-host-" + UID);
    }

    /** The host JVMs (or their launcher sh) serving base: "... host BASE/kdbus-bridge-host-UID/KEY". */
    static Set<Long> hostPids(Path base) {
        String marker = " host " + socketDir(base) + "/";
        Set<Long> out = new java.util.TreeSet<>();
        try (var s = Files.list(Path.of("/proc"))) {
            s.filter(p -> p.getFileName().toString().matches("\\d+")).forEach(p -> {
                try {
                    String cmd = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8)
                            .replace('\0', ' ');
                    // A JVM only: the launcher script's own forks (subshells, the background
                    // class-data training of a fresh checkout) carry the same command line.
                    long pid = Long.parseLong(p.getFileName().toString());
                    if (cmd.contains(marker) && exe(pid).endsWith("/java")) {
                        out.add(pid);
                    }
                } catch (IOException | RuntimeException e) {
                    // gone meanwhile
                }
            });
        } catch (IOException e) {
            // no /proc: nothing found
        }
        return out;
    }


    static String exe(long pid) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/" + pid + "/exe")).toString();
        } catch (IOException e) {
            return "?";
        }
    }

    static String fdTarget(long pid, int fd) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/" + pid + "/fd/" + fd)).toString();
        } catch (IOException e) {
            return "?";
        }
    }

    private static Path config(Path dir, String extra) throws IOException {
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, "<busconfig><type>session</type><listen>unix:tmpdir=" + dir + "</listen>" + extra
                + "<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
                + "<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>");
        return conf;
    }

    private static List<String> daemon(String binary, Path conf, String... more) {
        List<String> argv = new ArrayList<>(List.of(binary, "--config-file=" + conf, "--nofork"));
        argv.addAll(List.of(more));
        return argv;
    }

    private static List<String> ours(Path conf, String... more) {
        return daemon(DropInTest.BIN + "/dbus-daemon", conf, more);
    }

    /** A bus the host of base runs (the first start of a host takes the JVM path: repeated until hosted). */
    private static WaitedBus hosted(Path base, Path conf, Map<String, String> e, Path dir) throws IOException {
        long deadline = System.nanoTime() + 90_000_000_000L;
        while (true) {
            WaitedBus bus = WaitedBus.start(ours(conf, "--print-address", "--print-pid"), e, dir);
            if (exe(bus.pid()).endsWith(FRONT)) {
                return bus;
            }
            bus.kill(SIGTERM);
            bus.close();
            assertTrue(System.nanoTime() < deadline, "no host answered\n" + bus.describe());
            Await.files(() -> hasSocket(base), Duration.ofSeconds(60), socketDir(base));
        }
    }

    private static boolean hasSocket(Path base) {
        try (var s = Files.list(socketDir(base))) {
            return s.anyMatch(p -> p.getFileName().toString().matches("[0-9a-f]{16}"));
        } catch (IOException e) {
            return false;
        }
    }

    /** A hosted bus, kept for the test's length: the host does not leave when idle meanwhile. */
    private static WaitedBus hostUp(Path base, Path dir) throws IOException {
        return hosted(base, config(dir, ""), env(base), dir);
    }

    /** Item 1: a closed fd 2 or 1 at exec: /dev/null there (as dbus-daemon), the bus in a JVM of its own. */
    @Test
    void closedStdioGetsDevNullAndAJvmBusThatStopsOnItsSignals(@TempDir Path dir) throws IOException {
        keepers.add(hostUp(shared, Files.createDirectories(dir.resolve("keep"))));
        Path conf = config(dir, "");
        List<String> closeStderr = new ArrayList<>(List.of("/bin/sh", "-c", "exec \"$@\" 2>&-", "sh"));
        List<String> real = new ArrayList<>(closeStderr);
        real.addAll(daemon(DBUS_DAEMON, conf, "--print-address"));
        try (WaitedBus bus = WaitedBus.start(real, env(shared), dir)) {
            assertEquals("/dev/null", fdTarget(bus.pid(), 2), "dbus-daemon's own fd 2");
            assertEquals("status 0", bus.kill(SIGTERM));
        }
        List<String> argv = new ArrayList<>(closeStderr);
        argv.addAll(ours(conf, "--print-address"));
        try (WaitedBus bus = WaitedBus.start(argv, env(shared), dir)) {
            assertTrue(exe(bus.pid()).endsWith("/java"), exe(bus.pid()) + "\n" + bus.describe());
            assertEquals("/dev/null", fdTarget(bus.pid(), 2), bus.describe());
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
        // fd 1 closed, the address on fd 3 (the same pipe); SIGKILL takes the bus along
        argv = new ArrayList<>(List.of("/bin/sh", "-c", "exec \"$@\" 3>&1 1>&-", "sh"));
        argv.addAll(ours(conf, "--print-address=3"));
        try (WaitedBus bus = WaitedBus.start(argv, env(shared), dir)) {
            assertTrue(exe(bus.pid()).endsWith("/java"), exe(bus.pid()) + "\n" + bus.describe());
            assertEquals("/dev/null", fdTarget(bus.pid(), 1), bus.describe());
            assertEquals("signal 9", bus.kill(SIGKILL), bus.describe());
            assertFalse(WaitedBus.getId(bus.address()).ok(), "the bus outlived its process\n" + bus.describe());
        }
    }

    /** Item 2: a --print-address/--print-pid fd that is not open: status 1 and dbus-daemon's text, no hang. */
    @Test
    void aClosedPrintFdFailsTheStartAsInDbusDaemon(@TempDir Path dir) throws IOException {
        keepers.add(hostUp(shared, Files.createDirectories(dir.resolve("keep"))));
        Path conf = config(dir, "");
        Map<String, String> jvm = env(shared, "KDBUS_BRIDGE_HOST", "0");
        for (List<String> print : List.of(List.of("--print-address=9"), List.of("--print-pid=9"),
                List.of("--print-pid=9", "--print-address"))) {
            String[] p = print.toArray(new String[0]);
            Cmd.Result real = Cmd.run(daemon(DBUS_DAEMON, conf, p), env(shared), Buses.T);
            Cmd.Result viaHost = Cmd.run(ours(conf, p), env(shared), Buses.T);
            Cmd.Result viaJvm = Cmd.run(ours(conf, p), jvm, Buses.T);
            String expected = failure(real);
            assertEquals(1, real.exitCode(), real.describe());
            assertEquals("Failed to start message bus: Writing to pipe: Bad file descriptor", expected, real.describe());
            for (Cmd.Result r : List.of(viaHost, viaJvm)) {
                assertFalse(r.timedOut(), r.describe());
                assertEquals(1, r.exitCode(), r.describe());
                assertEquals(expected, failure(r), r.describe());
                assertEquals(real.stdout().isEmpty(), r.stdout().isEmpty(), r.describe() + real.describe());
            }
            assertFalse(viaHost.stderr().contains("running the bus in a JVM"), "not hosted\n" + viaHost.describe());
        }
    }

    /** The "Failed to start" line, without dbus-daemon's "dbus-daemon[PID]: " log prefix. */
    private static String failure(Cmd.Result r) {
        for (String line : r.stderr().split("\n")) {
            int i = line.indexOf("Failed to start message bus:");
            if (i >= 0) {
                return line.substring(i);
            }
        }
        return "<none>";
    }

    /**
     * Item 3: dbus-daemon leaves an inherited SIG_IGN of SIGINT alone (SIGINT then SIGTERM: it
     * exits 0 on the SIGTERM), and handles SIGTERM whatever it inherited. So do the hosted front
     * and the JVM path.
     */
    @Test
    void ignoredSignalsAreTreatedAsDbusDaemonTreatsThem(@TempDir Path dir) throws IOException {
        keepers.add(hostUp(shared, Files.createDirectories(dir.resolve("keep"))));
        Path conf = config(dir, "");
        Map<String, String> ignoreInt = env(shared, "WAITED_BUS_IGNORE", "2");
        Map<String, String> ignoreTerm = env(shared, "WAITED_BUS_IGNORE", "15");
        try (WaitedBus bus = WaitedBus.start(daemon(DBUS_DAEMON, conf, "--print-address"), ignoreInt, dir)) {
            assertEquals("status 0", bus.kill(SIGINT, SIGTERM), bus.describe());
        }
        try (WaitedBus bus = WaitedBus.start(daemon(DBUS_DAEMON, conf, "--print-address"), ignoreTerm, dir)) {
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
        try (WaitedBus bus = hosted(shared, conf, ignoreInt, dir)) {
            assertEquals("status 0", bus.kill(SIGINT, SIGTERM), bus.describe());
        }
        try (WaitedBus bus = hosted(shared, conf, ignoreTerm, dir)) {
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
        // the JVM path (a <pidfile> is not hostable; and with the host turned off)
        Path jvmConf = config(dir, "<pidfile>" + dir.resolve("bus.pid") + "</pidfile>");
        Map<String, String> ignoreTermNoHost = new HashMap<>(ignoreTerm);
        ignoreTermNoHost.put("KDBUS_BRIDGE_HOST", "0");
        for (Map<String, String> e : List.of(ignoreInt, ignoreTerm, ignoreTermNoHost)) {
            try (WaitedBus bus = WaitedBus.start(ours(jvmConf, "--print-address"), e, dir)) {
                assertTrue(exe(bus.pid()).endsWith("/java"), exe(bus.pid()) + "\n" + bus.describe());
                int[] sigs = e == ignoreInt ? new int[] {SIGINT, SIGTERM} : new int[] {SIGTERM};
                assertEquals("status 0", bus.kill(sigs), bus.describe());
            }
        }
    }

    /**
     * Items 3 and 7: a new host gets default signal dispositions, an empty mask and a minimal
     * environment, whatever its first front's caller had; later buses get their own front's.
     */
    @Test
    void aNewHostInheritsNeitherSignalsNorEnvironmentOfItsFirstCaller(@TempDir Path dir) throws Exception {
        Path base = newHostDir();
        Path conf = config(dir, "");
        Map<String, String> first = env(base, "WAITED_BUS_IGNORE", "2 15", "WAITED_BUS_BLOCK", "10",
                "FIRST_CALLER_ONLY", "leaked");
        try (WaitedBus bus = WaitedBus.start(ours(conf, "--print-address"), first, dir)) {
            assertTrue(exe(bus.pid()).endsWith("/java"), "the first start of a host is a JVM's\n" + bus.describe());
            assertTrue(Await.files(() -> hasSocket(base), Duration.ofSeconds(60), socketDir(base)), "no host started\n" + bus.describe());
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
        Set<Long> hosts = hostPids(base);
        assertEquals(1, hosts.size(), hosts.toString());
        long host = hosts.iterator().next();
        String status = Files.readString(Path.of("/proc/" + host + "/status"));
        assertEquals(0L, sigField(status, "SigBlk"), status);
        assertEquals(0L, sigField(status, "SigIgn") & ((1L << (SIGINT - 1)) | (1L << (SIGTERM - 1))), status);
        String environ = new String(Files.readAllBytes(Path.of("/proc/" + host + "/environ")), StandardCharsets.UTF_8);
        List<String> vars = List.of(environ.split("\0"));
        assertFalse(environ.contains("FIRST_CALLER_ONLY"), vars.toString());
        assertTrue(vars.stream().anyMatch(v -> v.startsWith("PATH=")), vars.toString());
        // a later bus's activated service sees its own front's environment only
        Path services = Files.createDirectories(dir.resolve("services"));
        Path out = dir.resolve("probe.out");
        Files.writeString(services.resolve("org.example.EnvProbe.service"), "[D-BUS Service]\n"
                + "Name=org.example.EnvProbe\nExec=/bin/sh -c 'echo \"[$FIRST_CALLER_ONLY][$SECOND_CALLER]\" > " + out
                + "'\n");
        Path activating = config(dir, "<servicedir>" + services + "</servicedir>");
        try (WaitedBus bus = hosted(base, activating, env(base, "SECOND_CALLER", "own"), dir)) {
            Cmd.run(List.of("dbus-send", "--bus=" + bus.address(), "--print-reply", "--dest=org.example.EnvProbe",
                    "/", "org.example.Probe.Ping"), Buses.T); // fails: the service exits without the name
            assertTrue(Await.files(() -> size(out) > 0, Duration.ofSeconds(20), out.getParent()), bus.describe());
            assertEquals("[][own]\n", Files.readString(out));
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
    }

    private static long sigField(String status, String field) {
        for (String line : status.split("\n")) {
            if (line.startsWith(field + ":")) {
                return Long.parseUnsignedLong(line.substring(field.length() + 1).trim(), 16);
            }
        }
        throw new AssertionError(field + " not in\n" + status);
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return 0;
        }
    }

    /**
     * Item 4: a host that accepts but never answers (SIGSTOPped) costs a front its deadline:
     * before anything is printed it falls back to a JVM bus; a stop the host never confirms ends
     * the front with a log line and status 1.
     */
    @Test
    void aWedgedHostCostsAFrontItsDeadlineOnly(@TempDir Path dir) throws Exception {
        Path base = newHostDir();
        Path conf = config(dir, "");
        Map<String, String> e = env(base, "KDBUS_BRIDGE_HOST_WAIT_MS", "1500");
        try (WaitedBus before = hosted(base, conf, e, dir)) {
            Set<Long> hosts = hostPids(base);
            assertEquals(1, hosts.size(), hosts.toString());
            String host = hosts.iterator().next().toString();
            assertTrue(Cmd.run(List.of("kill", "-STOP", host), Buses.T).ok());
            try {
                long t0 = System.nanoTime();
                try (WaitedBus late = WaitedBus.start(ours(conf, "--print-address", "--print-pid"), e, dir)) {
                    assertTrue(exe(late.pid()).endsWith("/java"), exe(late.pid()) + "\n" + late.describe());
                    assertTrue(late.stderr().contains("did not answer in time"), late.describe());
                    assertTrue(System.nanoTime() - t0 >= 1_500_000_000L, "fell back before the deadline");
                    assertEquals("status 0", late.kill(SIGTERM), late.describe());
                }
                assertEquals("status 1", before.kill(SIGTERM), before.describe());
                assertTrue(before.stderr().contains("the bus host did not stop the bus within 1500 ms"),
                        before.describe());
            } finally {
                // Not CONT alone: woken, the host would still serve the late front's request it read
                // before, and start a bus whose socket lands in dir while JUnit deletes it.
                Cmd.run(List.of("kill", "-KILL", host), Buses.T);
                Cmd.run(List.of("kill", "-CONT", host), Buses.T);
                assertTrue(Await.exited(List.of(Long.parseLong(host)), Buses.T), "host " + host + " still there");
            }
        }
    }

    /** Item 5: fronts started together with no host: one starts it (and runs a JVM bus), the others wait for it. */
    @Test
    void concurrentFirstStartsStartOneHost(@TempDir Path dir) throws Exception {
        Path base = newHostDir();
        Path conf = config(dir, "");
        Map<String, String> e = env(base, "KDBUS_BRIDGE_HOST_WAIT_MS", "60000");
        Set<Long> seen = ConcurrentHashMap.newKeySet();
        // A host makes its socket and lock files there: sample the JVMs at each change (a second
        // host would live for its JVM start at least).
        Files.createDirectories(socketDir(base), java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"))); // as the front makes it
        java.nio.file.WatchService sampler = Await.onChanges(socketDir(base), () -> seen.addAll(hostPids(base)));
        int n = 4;
        ExecutorService pool = Executors.newFixedThreadPool(n);
        List<Future<WaitedBus>> starts = new ArrayList<>();
        List<WaitedBus> buses = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                starts.add(pool.submit(() -> WaitedBus.start(ours(conf, "--print-address", "--print-pid"), e, dir)));
            }
            for (Future<WaitedBus> f : starts) {
                buses.add(f.get());
            }
            sampler.close();
            seen.addAll(hostPids(base));
            long jvms = buses.stream().filter(b -> exe(b.pid()).endsWith("/java")).count();
            long fronts = buses.stream().filter(b -> exe(b.pid()).endsWith(FRONT)).count();
            StringBuilder all = new StringBuilder();
            buses.forEach(b -> all.append(b.describe()).append('\n'));
            assertEquals(1, jvms, all.toString());
            assertEquals(n - 1, fronts, all.toString());
            assertEquals(1, seen.size(), "hosts started: " + seen);
            for (WaitedBus b : buses) {
                assertEquals("status 0", b.kill(SIGTERM), b.describe());
            }
        } finally {
            sampler.close();
            buses.forEach(WaitedBus::close);
            pool.shutdownNow();
        }
    }

    /**
     * Item 6: a front in another pid namespace (unshare --pid) must not use the host, whose pids
     * it cannot name: the bus is its own process there, and answers pid 1 for itself as
     * dbus-daemon does in the same namespace.
     */
    @Test
    void aFrontInAnotherPidNamespaceRunsItsOwnBus(@TempDir Path dir) throws Exception {
        assumeTrue(Cmd.run(List.of("unshare", "--pid", "--fork", "true"), Buses.T).ok(), "unshare --pid needs root");
        keepers.add(hostUp(shared, Files.createDirectories(dir.resolve("keep"))));
        Path conf = config(dir, "");
        for (String binary : List.of(DBUS_DAEMON, DropInTest.BIN + "/dbus-daemon")) {
            List<String> argv = new ArrayList<>(List.of("unshare", "--pid", "--fork", "--kill-child"));
            argv.addAll(daemon(binary, conf, "--print-address=1", "--print-pid=1"));
            ProcessBuilder pb = new ProcessBuilder(argv).redirectError(dir.resolve("ns.err").toFile());
            Cmd.sanitize(pb.environment());
            pb.environment().putAll(env(shared));
            Process p = pb.start();
            try (LineReader out = new LineReader(p.getInputStream(), "unshared-bus")) {
                String address = out.awaitLine(l -> l.startsWith("unix:"), Buses.T);
                String pid = out.awaitLine(l -> l.matches("\\d+"), Buses.T);
                String err = Files.readString(dir.resolve("ns.err"));
                assertNotNull(address, binary + "\n" + out.text() + err);
                assertEquals("1", pid, binary + "\n" + out.text() + err);
                Cmd.Result r = Cmd.run(List.of("dbus-send", "--bus=" + address, "--print-reply",
                        "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.GetConnectionUnixProcessID", "string:org.freedesktop.DBus"), Buses.T);
                assertTrue(r.ok() && r.stdout().contains("uint32 1\n"), binary + "\n" + r.describe() + err);
                if (!binary.equals(DBUS_DAEMON)) {
                    assertTrue(err.contains("the host is in another pid namespace"), err);
                }
            } finally {
                p.destroyForcibly(); // unshare ignores SIGTERM; --kill-child then SIGKILLs the bus
                assertTrue(p.waitFor(20, java.util.concurrent.TimeUnit.SECONDS), "unshare did not end");
            }
        }
    }

    /** Item 6: a front in another user namespace (unshare --user --map-root-user) does not use the host either. */
    @Test
    void aFrontInAnotherUserNamespaceRunsItsOwnBus(@TempDir Path dir) throws Exception {
        assumeTrue(Cmd.run(List.of("unshare", "--user", "--map-root-user", "true"), Buses.T).ok(), "no user namespaces");
        keepers.add(hostUp(shared, Files.createDirectories(dir.resolve("keep"))));
        List<String> argv = new ArrayList<>(List.of("/usr/bin/unshare", "--user", "--map-root-user"));
        argv.addAll(ours(config(dir, ""), "--print-address", "--print-pid"));
        try (WaitedBus bus = WaitedBus.start(argv, env(shared), dir)) {
            assertTrue(exe(bus.pid()).endsWith("/java"), exe(bus.pid()) + "\n" + bus.describe());
            assertTrue(bus.stderr().contains("running the bus in a JVM: the host"), bus.describe());
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
    }

    /** Item 8: the spawn lock is opened relative to the checked directory, never through a symlink. */
    @Test
    void aSymlinkedSpawnLockIsNotFollowed(@TempDir Path dir) throws Exception {
        Path base = newHostDir();
        Path sockets = Files.createDirectory(socketDir(base),
                java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                        java.nio.file.attribute.PosixFilePermissions.fromString("rwx------")));
        Path target = dir.resolve("elsewhere");
        Files.createSymbolicLink(sockets.resolve("spawn.lock"), target);
        try (WaitedBus bus = WaitedBus.start(ours(config(dir, ""), "--print-address"), env(base), dir)) {
            assertTrue(exe(bus.pid()).endsWith("/java"), bus.describe());
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
        assertFalse(Files.exists(target, LinkOption.NOFOLLOW_LINKS), "the lock went through the symlink");
        assertTrue(hostPids(base).isEmpty(), "a host was started without its spawn lock");
    }

    /** Item 9: what dead hosts left (a socket file and a lock file nobody holds) goes when a host is started. */
    @Test
    void aDeadHostsLeftoversGoWhenAHostIsStarted(@TempDir Path dir) throws Exception {
        Path base = newHostDir();
        Path sockets = Files.createDirectory(socketDir(base),
                java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                        java.nio.file.attribute.PosixFilePermissions.fromString("rwx------")));
        Path staleSocket = sockets.resolve("0123456789abcdef");
        Path staleLock = sockets.resolve("0123456789abcdef.lock");
        Files.writeString(staleSocket, "");
        Files.writeString(staleLock, "");
        try (WaitedBus bus = WaitedBus.start(ours(config(dir, ""), "--print-address"), env(base), dir)) {
            assertFalse(Files.exists(staleSocket, LinkOption.NOFOLLOW_LINKS), bus.describe());
            assertFalse(Files.exists(staleLock, LinkOption.NOFOLLOW_LINKS), bus.describe());
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
        try (WaitedBus bus = hosted(base, config(dir, ""), env(base), dir)) {
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
    }
}
