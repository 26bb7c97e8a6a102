package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
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
 * The warm bus host (bridge.host) through the real front: bin/dbus-daemon execs
 * bridge/target/kdbus-bridge-front, which hands a hostable start to a long-lived host JVM. Every
 * other compat test runs with KDBUS_BRIDGE_HOST=0 (compat-tests/pom.xml), so they test the bus
 * as a process of its own; these turn the host on, with a private XDG_RUNTIME_DIR (so a private
 * host) and a short idle time, and check that a hosted bus looks like a dbus-daemon process to
 * its caller.
 */
class BusHostTest {
    static final int SIGINT = 2;
    static final int SIGTERM = 15;
    static final String FRONT = "kdbus-bridge-front";
    private static Path runtime;
    private static Map<String, String> env;

    @BeforeAll
    static void privateHost() throws IOException {
        runtime = Files.createTempDirectory("bushost-xdg-");
        env = new HashMap<>();
        env.put("KDBUS_BRIDGE_HOST", "1");
        env.put("XDG_RUNTIME_DIR", runtime.toString());
        env.put("KDBUS_BRIDGE_HOST_DIR", runtime.toString()); // a host of this class's own
        env.put("KDBUS_BRIDGE_HOST_IDLE_MS", "3000");
        env.put("KDBUS_BRIDGE_FRONT_DEBUG", "1"); // why a start took the JVM path, in the failure text
        env.put("PATH", DropInTest.BIN + ":" + System.getenv("PATH"));
    }

    /** The host leaves when idle: its socket file goes; then the directory can go too. */
    @AfterAll
    static void hostExitsWhenIdle() throws IOException {
        Path dir = hostDir();
        boolean gone = waitFor(() -> socketFiles(dir).isEmpty(), 60_000, dir);
        if (gone) {
            try (var s = Files.walk(runtime)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        assertTrue(gone, "the idle host's socket is still there: " + socketFiles(dir));
    }

    private static Path hostDir() {
        return runtime.resolve("kdbus-bridge-host-" + new com.sun.security.auth.module.UnixSystem().getUid());
    }

    private static List<Path> socketFiles(Path dir) {
        List<Path> out = new ArrayList<>();
        try (var s = Files.list(dir)) {
            s.filter(p -> !p.toString().endsWith(".lock")).forEach(out::add);
        } catch (IOException e) {
            // no directory: no host
        }
        return out;
    }

    /** {@code condition} re-checked on each change to the files of {@code dirs}, up to {@code millis}. */
    private static boolean waitFor(BooleanSupplier condition, long millis, Path... dirs) {
        return Await.files(condition, Duration.ofMillis(millis), dirs);
    }

    private static String exe(long pid) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/" + pid + "/exe")).toString();
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

    private static List<String> daemon(Path conf, String... more) {
        List<String> argv = new ArrayList<>(List.of(DropInTest.BIN + "/dbus-daemon", "--config-file=" + conf,
                "--nofork", "--print-address"));
        argv.addAll(List.of(more));
        return argv;
    }

    /**
     * A bus started through the front that the host runs: the first start of a host takes the
     * JVM path (and starts the host in the background); it is stopped and the start repeated
     * until the host answers (the host may also have left when idle between two tests).
     */
    private static WaitedBus hosted(List<String> argv, Map<String, String> extraEnv, Path dir) throws IOException {
        Map<String, String> e = new HashMap<>(env);
        if (extraEnv != null) {
            e.putAll(extraEnv);
        }
        long deadline = System.nanoTime() + 90_000_000_000L;
        while (true) {
            WaitedBus bus = WaitedBus.start(argv, e, dir);
            if (exe(bus.pid()).endsWith(FRONT)) {
                return bus;
            }
            bus.kill(SIGTERM);
            bus.close();
            assertTrue(System.nanoTime() < deadline, "no host answered\n" + bus.describe());
            waitFor(() -> !socketFiles(hostDir()).isEmpty(), 60_000, hostDir());
        }
    }

    @Test
    void printAddressAndPidAreDbusDaemonsLinesAndThePidIsTheFronts(@TempDir Path dir) throws IOException {
        Path conf = config(dir, "");
        try (WaitedBus bus = hosted(daemon(conf, "--print-pid"), null, dir)) {
            assertTrue(bus.address().matches("unix:path=" + dir + "/dbus-[A-Za-z0-9]+,guid=[0-9a-f]{32}"), bus.describe());
            String stdout = bus.describe();
            assertTrue(stdout.contains("\n" + bus.address() + "\n" + bus.pid() + "\n"), stdout);
            // the bus answers the front's pid as its own, as dbus-daemon answers its own
            Cmd.Result r = Cmd.run(List.of("dbus-send", "--bus=" + bus.address(), "--print-reply",
                    "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.GetConnectionUnixProcessID", "string:org.freedesktop.DBus"), Buses.T);
            assertTrue(r.ok() && r.stdout().contains("uint32 " + bus.pid()), r.describe());
            Cmd.Result g = Cmd.run(List.of("gdbus", "call", "--address", bus.address(), "--dest",
                    "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus", "--method",
                    "org.freedesktop.DBus.ListNames"), Buses.T);
            assertTrue(g.ok() && g.stdout().contains("'org.freedesktop.DBus'"), g.describe());
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
    }

    @Test
    void printingToDescriptorsWritesTheSameLines(@TempDir Path dir) throws Exception {
        Path conf = config(dir, "");
        Path addr = dir.resolve("addr");
        Path pid = dir.resolve("pid");
        // the front's fd 4 (sh opens it, then execs bin/dbus-daemon); the address on stdout
        // (--print-pid=4 first: after a bare --print-address, dbus-daemon takes the next argument as its fd)
        List<String> argv = List.of("/bin/sh", "-c", "p=$1; shift; exec \"$@\" 4>\"$p\"", "sh", pid.toString(),
                DropInTest.BIN + "/dbus-daemon", "--config-file=" + conf, "--nofork", "--print-pid=4",
                "--print-address");
        try (WaitedBus bus = hosted(argv, null, dir)) {
            assertTrue(waitFor(() -> size(pid) > 0, 20_000, pid.getParent()), bus.describe());
            assertEquals(bus.pid() + "\n", Files.readString(pid));
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
        // --print-address=3: the address in the file, the pid alone on stdout; the script waits
        // (with a deadline) for the address, stops the bus and reports how it ended
        Cmd.Result r = Cmd.run(List.of("/bin/sh", "-c", "a=$1; shift; \"$@\" 3>\"$a\" & p=$!; i=0;"
                + " while [ ! -s \"$a\" ] && [ $i -lt 2000 ]; do i=$((i+1)); sleep 0.01; done;"
                + " kill -TERM $p; wait $p; echo \"exit $? pid $p\"", "sh", addr.toString(),
                DropInTest.BIN + "/dbus-daemon", "--config-file=" + conf, "--nofork", "--print-address=3",
                "--print-pid"), env, Buses.T);
        assertTrue(r.ok(), r.describe());
        String address = Files.readString(addr);
        assertTrue(address.matches("unix:path=[^\n]+,guid=[0-9a-f]{32}\n"), address);
        String[] lines = r.stdout().split("\n");
        assertEquals(2, lines.length, r.describe());
        assertEquals("exit 0 pid " + lines[0], lines[1], r.describe());
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return 0;
        }
    }

    @Test
    void sigtermExitsZeroAndRemovesTheSocket(@TempDir Path dir) throws IOException {
        try (WaitedBus bus = hosted(daemon(config(dir, "")), null, dir)) {
            Path socket = Path.of(bus.address().substring("unix:path=".length(), bus.address().indexOf(',')));
            assertTrue(Files.exists(socket, LinkOption.NOFOLLOW_LINKS));
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
            assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), bus.describe());
        }
    }

    @Test
    void sigintKillsTheFrontBySigint(@TempDir Path dir) throws IOException {
        try (WaitedBus bus = hosted(daemon(config(dir, "")), null, dir)) {
            Path socket = Path.of(bus.address().substring("unix:path=".length(), bus.address().indexOf(',')));
            assertEquals("signal 2", bus.kill(SIGINT), bus.describe());
            assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), bus.describe());
        }
    }

    @Test
    void aKilledFrontTakesItsBusAlong(@TempDir Path dir) throws IOException {
        try (WaitedBus bus = hosted(daemon(config(dir, "")), null, dir)) {
            Path socket = Path.of(bus.address().substring("unix:path=".length(), bus.address().indexOf(',')));
            assertEquals("signal 9", bus.kill(9), bus.describe());
            assertTrue(waitFor(() -> !Files.exists(socket, LinkOption.NOFOLLOW_LINKS), 10_000, socket.getParent()), bus.describe());
            assertFalse(WaitedBus.getId(bus.address()).ok(), "the bus still answers after its front died");
        }
    }

    @Test
    void aConfigErrorHasTheJvmPathsTextAndStatus(@TempDir Path dir) throws Exception {
        Path bad = dir.resolve("bad.conf");
        Files.writeString(bad, "<busconfig><listen>unix:tmpdir=/tmp</listen><bogus_element/></busconfig>");
        hosted(daemon(config(dir, "")), null, dir).close(); // a host is up
        Map<String, String> off = new HashMap<>(env);
        off.put("KDBUS_BRIDGE_HOST", "0");
        List<String> argv = List.of(DropInTest.BIN + "/dbus-daemon", "--config-file=" + bad, "--nofork", "--print-address");
        Cmd.Result viaHost = Cmd.run(argv, env, Buses.T);
        Cmd.Result viaJvm = Cmd.run(argv, off, Buses.T);
        assertEquals(viaJvm.exitCode(), viaHost.exitCode(), viaHost.describe() + viaJvm.describe());
        assertEquals(viaJvm.stderr().split("\n")[0], viaHost.stderr().split("\n")[0]);
        assertTrue(viaJvm.stderr().startsWith("Failed to start message bus:"), viaJvm.describe());
    }

    @Test
    void activatedServicesGetTheFrontsEnvironmentAndDirectory(@TempDir Path dir) throws Exception {
        Path services = Files.createDirectories(dir.resolve("services"));
        Path work = Files.createDirectories(dir.resolve("work"));
        Path out = dir.resolve("probe.out");
        Files.writeString(services.resolve("org.example.HostProbe.service"), "[D-BUS Service]\n"
                + "Name=org.example.HostProbe\nExec=/bin/sh -c 'echo \"$ONLY_IN_FRONT $(pwd)\" > " + out + "'\n");
        Path conf = config(dir, "<servicedir>" + services + "</servicedir>");
        List<String> argv = new ArrayList<>(List.of("/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", work.toString()));
        argv.addAll(daemon(conf));
        try (WaitedBus bus = hosted(argv, Map.of("ONLY_IN_FRONT", "marker-42"), dir)) {
            Cmd.run(List.of("dbus-send", "--bus=" + bus.address(), "--print-reply", "--dest=org.example.HostProbe",
                    "/", "org.example.Probe.Ping"), Buses.T); // fails: the service exits without the name
            assertTrue(waitFor(() -> size(out) > 0, 20_000, out.getParent()), bus.describe());
            assertEquals("marker-42 " + work.toRealPath() + "\n", Files.readString(out));
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
    }

    @Test
    void aConfigTheHostDoesNotRunFallsBackToAJvm(@TempDir Path dir) throws Exception {
        hosted(daemon(config(dir, "")), null, dir).close(); // a host is up
        Path pidFile = dir.resolve("bus.pid");
        Path conf = config(dir, "<pidfile>" + pidFile + "</pidfile>");
        try (WaitedBus bus = WaitedBus.start(daemon(conf, "--print-pid"), env, dir)) {
            assertTrue(exe(bus.pid()).endsWith("/java"), exe(bus.pid()) + "\n" + bus.describe());
            assertEquals(bus.pid() + "\n", Files.readString(pidFile));
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
    }

    /** --nopidfile drops the configuration's {@code <pidfile>} (as in dbus-daemon), so the start is hostable. */
    @Test
    void aPidfileConfigWithNopidfileRunsOnTheHostAndWritesNoPidFile(@TempDir Path dir) throws Exception {
        Path pidFile = dir.resolve("bus.pid");
        Path conf = config(dir, "<pidfile>" + pidFile + "</pidfile>");
        try (WaitedBus bus = hosted(daemon(conf, "--nopidfile"), null, dir)) {
            assertTrue(exe(bus.pid()).endsWith(FRONT), bus.describe());
            assertFalse(Files.exists(pidFile), bus.describe());
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
        }
    }

    @Test
    void twoHostedBusesDoNotSeeEachOther(@TempDir Path dir) throws Exception {
        Path a = Files.createDirectories(dir.resolve("a"));
        Path b = Files.createDirectories(dir.resolve("b"));
        try (WaitedBus busA = hosted(daemon(config(a, "")), null, a);
             WaitedBus busB = hosted(daemon(config(b, "")), null, b)) {
            ProcessBuilder pb = new ProcessBuilder("dbus-test-tool", "black-hole", "--name=org.example.OnlyOnA")
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD);
            Cmd.sanitize(pb.environment());
            pb.environment().put("DBUS_SESSION_BUS_ADDRESS", busA.address());
            Process hole = pb.start();
            try {
                assertTrue(Await.roundTrips(() -> hasOwner(busA.address(), "org.example.OnlyOnA"), Duration.ofSeconds(20)), busA.describe());
                assertFalse(hasOwner(busB.address(), "org.example.OnlyOnA"));
            } finally {
                hole.destroy();
            }
            assertEquals("status 0", busA.kill(SIGTERM));
            assertTrue(WaitedBus.getId(busB.address()).ok(), "B went down with A\n" + busB.describe());
            assertEquals("status 0", busB.kill(SIGTERM));
        }
    }

    /** The bus's socket file from its printed address. */
    private static Path socketOf(WaitedBus bus) {
        return Path.of(bus.address().substring("unix:path=".length(), bus.address().indexOf(',')));
    }

    /**
     * {@code n} connections, one after another, whose first byte is not NUL: the bus refuses
     * each with one log line on its stderr and closes it (read to EOF, so every refusal happened).
     */
    private static void refusedConnections(Path socket, int n) throws IOException {
        ByteBuffer in = ByteBuffer.allocate(256);
        for (int i = 0; i < n; i++) {
            try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                ch.connect(UnixDomainSocketAddress.of(socket));
                ch.write(ByteBuffer.wrap(new byte[] {'x', '\r', '\n'}));
                while (ch.read(in.clear()) >= 0) {
                    // until the bus hangs up
                }
            }
        }
    }

    /**
     * A hosted bus whose stderr is a pipe nobody reads, made to log thousands of lines, blocks
     * neither itself nor another hosted bus (they share the host's System.err and slf4j's lock):
     * its lines beyond the pipe and its bounded queue are dropped, and once the pipe is read
     * again one line says how many.
     */
    @Test
    void aBusWhoseStderrIsNotReadBlocksNoBus(@TempDir Path dir) throws Exception {
        Path a = Files.createDirectories(dir.resolve("a"));
        Path b = Files.createDirectories(dir.resolve("b"));
        Path fifo = dir.resolve("a.stderr");
        assertTrue(Cmd.run(List.of("mkfifo", fifo.toString()), Buses.T).ok());
        // O_RDWR: the open does not wait for a writer, and this end reads nothing until told to
        try (RandomAccessFile pipe = new RandomAccessFile(fifo.toFile(), "rw")) {
            List<String> argvA = new ArrayList<>(List.of("/bin/sh", "-c", "f=$1; shift; exec \"$@\" 2>\"$f\"", "sh",
                    fifo.toString()));
            argvA.addAll(daemon(config(a, "")));
            ExecutorService flood = Executors.newSingleThreadExecutor();
            try (WaitedBus busA = hosted(argvA, null, a);
                 WaitedBus busB = hosted(daemon(config(b, "")), null, b)) {
                // ~150 bytes a line: far more than the pipe (64 KiB) and the queue (64 KiB) hold
                Future<?> done = flood.submit(() -> {
                    refusedConnections(socketOf(busA), 6000);
                    return null;
                });
                try {
                    done.get(120, TimeUnit.SECONDS);
                } catch (TimeoutException e) {
                    throw new AssertionError("A stopped serving while its stderr was full\n" + busA.describe());
                }
                assertTrue(WaitedBus.getId(busA.address()).ok(), "A does not answer\n" + busA.describe());
                // B logs and answers while A's stderr is still full
                refusedConnections(socketOf(busB), 1);
                assertTrue(waitFor(() -> busB.stderr().contains("rejected during authentication"), 20_000, b),
                        "B's log line did not arrive\n" + busB.describe());
                assertTrue(WaitedBus.getId(busB.address()).ok(), "B does not answer\n" + busB.describe());
                // reading A's stderr again: A's lines, then one line for those dropped
                try (LineReader lines = new LineReader(new FileInputStream(pipe.getFD()), "bus-a-stderr")) {
                    String dropped = lines.awaitLine(l -> l.contains("log lines of this bus dropped"), Buses.T);
                    assertTrue(dropped != null && dropped.matches("kdbus-bridge: \\d+ log lines of this bus dropped: .*"),
                            "no line about the dropped ones: " + dropped);
                    long lost = Long.parseLong(dropped.split(" ")[1]);
                    assertTrue(lost > 0 && lost < 6000, dropped);
                    assertTrue(WaitedBus.getId(busA.address()).ok(), busA.describe());
                    assertEquals("status 0", busA.kill(SIGTERM), busA.describe());
                }
                assertEquals("status 0", busB.kill(SIGTERM), busB.describe());
            } finally {
                flood.shutdownNow();
            }
        }
    }

    /**
     * A front that connects and sends nothing, or half a request, does not hold a host thread
     * for ever: the host closes it after its request timeout (5 s), and still serves others.
     */
    @Test
    void aFrontThatSendsNoWholeRequestIsClosed(@TempDir Path dir) throws Exception {
        hosted(daemon(config(dir, "")), null, dir).close(); // a host is up
        List<Path> sockets = socketFiles(hostDir());
        assertEquals(1, sockets.size(), sockets.toString());
        ExecutorService readers = Executors.newFixedThreadPool(2);
        try (SocketChannel silent = SocketChannel.open(StandardProtocolFamily.UNIX);
             SocketChannel half = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            silent.connect(UnixDomainSocketAddress.of(sockets.get(0)));
            half.connect(UnixDomainSocketAddress.of(sockets.get(0)));
            // "KBH1", a body of 100 bytes announced, 10 sent
            ByteBuffer h = ByteBuffer.allocate(18).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            h.put("KBH1".getBytes(java.nio.charset.StandardCharsets.US_ASCII)).putInt(100).put(new byte[10]).flip();
            half.write(h);
            long start = System.nanoTime();
            Future<Integer> a = readers.submit(() -> silent.read(ByteBuffer.allocate(64)));
            Future<Integer> b = readers.submit(() -> half.read(ByteBuffer.allocate(64)));
            assertEquals(-1, a.get(30, TimeUnit.SECONDS), "the silent front was not closed");
            assertEquals(-1, b.get(30, TimeUnit.SECONDS), "the half-request front was not closed");
            long ms = (System.nanoTime() - start) / 1_000_000;
            assertTrue(ms >= 4_000, "closed after " + ms + " ms: before the timeout");
            // and the host still serves a front
            try (WaitedBus bus = hosted(daemon(config(dir, "")), null, dir)) {
                assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
            }
        } finally {
            readers.shutdownNow();
        }
    }

    /**
     * A caller that sends dbus-daemon's stderr to a regular file (sh's 2>FILE: no O_APPEND) gets
     * the bus's lines and its services' in one file, none overwritten: the services inherit the
     * front's very descriptors (one offset), as dbus-daemon's children inherit the daemon's. The
     * services' stdout is the front's too (here the waiter's pipe), and a service's exit status
     * comes back exactly.
     */
    @Test
    void servicesWriteToTheFrontsOwnStderrAndStdout(@TempDir Path dir) throws Exception {
        Path services = Files.createDirectories(dir.resolve("services"));
        Files.writeString(services.resolve("org.example.HostWriter.service"), "[D-BUS Service]\n"
                + "Name=org.example.HostWriter\n"
                + "Exec=/bin/sh -c 'echo service-stderr-line >&2; echo service-stdout-line; exit 3'\n");
        Path conf = config(dir, "<servicedir>" + services + "</servicedir>");
        Path log = dir.resolve("bus.log");
        List<String> argv = new ArrayList<>(List.of("/bin/sh", "-c", "f=$1; shift; exec \"$@\" 2>\"$f\"", "sh",
                log.toString()));
        argv.addAll(daemon(conf));
        try (WaitedBus bus = hosted(argv, null, dir)) {
            refusedConnections(socketOf(bus), 1); // the bus's first line
            assertTrue(waitFor(() -> read(log).contains("rejected during authentication"), 20_000, log.getParent()), read(log));
            Cmd.Result r = Cmd.run(List.of("dbus-send", "--bus=" + bus.address(), "--print-reply",
                    "--dest=org.example.HostWriter", "/", "org.example.Probe.Ping"), Buses.T);
            assertTrue(r.stderr().contains("Spawn.ChildExited") && r.stderr().contains("exited with status 3"),
                    r.describe());
            assertTrue(waitFor(() -> read(log).contains("service-stderr-line"), 20_000, log.getParent()), read(log));
            refusedConnections(socketOf(bus), 1); // the bus's second line, after the service's
            assertTrue(waitFor(() -> read(log).split("rejected during authentication", -1).length == 3, 20_000, log.getParent()),
                    read(log));
            String text = read(log);
            int first = text.indexOf("rejected during authentication");
            int service = text.indexOf("service-stderr-line\n");
            int second = text.lastIndexOf("rejected during authentication");
            assertTrue(first >= 0 && first < service && service < second, text);
            assertFalse(text.contains("\0"), "a hole in the file: something wrote at another offset\n" + text);
            assertTrue(bus.awaitStdout("service-stdout-line"::equals, Duration.ofSeconds(20)), bus.describe());
            long host = hostPid();
            assertTrue(host > 0 && !fdsOpenOn(host, log).isEmpty(), "the host holds the bus's stderr: " + host);
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
            // at its end the bus's descriptors are closed (the log's after its queue drained), so
            // nothing can write to their numbers once the host reuses them
            assertTrue(Await.yielding(() -> fdsOpenOn(host, log).isEmpty(), Duration.ofSeconds(20)), "still open: " + fdsOpenOn(host, log));
            String after = read(log);
            try (WaitedBus other = hosted(daemon(config(dir, "")), null, dir)) { // another bus, new fds
                refusedConnections(socketOf(other), 1);
                assertTrue(waitFor(() -> other.stderr().contains("rejected during authentication"), 20_000, dir),
                        other.describe());
                assertEquals("status 0", other.kill(SIGTERM), other.describe());
            }
            assertEquals(after, read(log), "the ended bus's file changed");
        }
    }

    /** The pid of this class's host: its command line names the host directory. */
    private static long hostPid() {
        try (var s = Files.list(Path.of("/proc"))) {
            return s.filter(p -> p.getFileName().toString().matches("\\d+")).filter(p -> {
                try {
                    String cmd = new String(Files.readAllBytes(p.resolve("cmdline")), java.nio.charset.StandardCharsets.UTF_8);
                    return cmd.contains("\0host\0" + hostDir() + "/");
                } catch (IOException e) {
                    return false;
                }
            }).mapToLong(p -> Long.parseLong(p.getFileName().toString())).findFirst().orElse(-1);
        } catch (IOException e) {
            return -1;
        }
    }

    /** The host's descriptors open on {@code file}. */
    private static List<String> fdsOpenOn(long pid, Path file) {
        List<String> out = new ArrayList<>();
        try (var s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            s.forEach(fd -> {
                try {
                    if (Files.readSymbolicLink(fd).equals(file)) {
                        out.add(fd.getFileName().toString());
                    }
                } catch (IOException e) {
                    // closed meanwhile
                }
            });
        } catch (IOException e) {
            // the host is gone: nothing open
        }
        return out;
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            return "<" + e + ">";
        }
    }

    private static boolean hasOwner(String address, String name) {
        Cmd.Result r = Cmd.run(List.of("dbus-send", "--bus=" + address, "--print-reply", "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:" + name), Buses.T);
        return r.ok() && r.stdout().contains("boolean true");
    }

    /**
     * GTestDBus (python3-gi) brings up, uses and takes down a hosted bus, cycle after cycle.
     * GTestDBus unsets XDG_RUNTIME_DIR (so that nothing finds the user's bus); the host's place
     * does not depend on it (KDBUS_BRIDGE_HOST_DIR, this class's private one): the script unsets
     * it from the start, runs one cycle (which may start the host), waits for the host's
     * socket, then counts.
     */
    @Test
    void gtestdbusCyclesRunOnTheHost() throws Exception {
        String script = String.join("\n",
                "import gc, os, sys, time",
                "import gi",
                "gi.require_version('Gio', '2.0')",
                "from gi.repository import Gio, GLib",
                "front = sys.argv[1]",
                "os.environ.pop('XDG_RUNTIME_DIR', None)",
                "def fronts():",
                "    n = 0",
                "    for p in os.listdir('/proc'):",
                "        try:",
                "            if p.isdigit() and os.readlink('/proc/%s/exe' % p).endswith(front):",
                "                n += 1",
                "        except OSError:",
                "            pass",
                "    return n",
                "def cycle():",
                "    bus = Gio.TestDBus.new(Gio.TestDBusFlags.NONE)",
                "    bus.up()",
                "    hosted = fronts() > 0",
                "    conn = Gio.bus_get_sync(Gio.BusType.SESSION, None)",
                "    reply = conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',",
                "        'ListNames', None, GLib.VariantType('(as)'), Gio.DBusCallFlags.NONE, 5000, None)",
                "    assert 'org.freedesktop.DBus' in reply.unpack()[0]",
                "    del conn, reply",
                "    gc.collect()",
                "    bus.down()",
                "    return hosted",
                "cycle()",
                "d = os.path.join(os.environ['KDBUS_BRIDGE_HOST_DIR'], 'kdbus-bridge-host-%d' % os.getuid())",
                "deadline = time.monotonic() + 60",
                "while not [f for f in os.listdir(d) if not f.endswith('.lock')] and time.monotonic() < deadline:",
                "    time.sleep(0.02)",
                "hosted = sum(1 for i in range(5) if cycle())",
                "print('cycles 5 hosted %d' % hosted)");
        Cmd.Result r = Cmd.run(List.of("/usr/bin/python3", "-c", script, FRONT), env, Buses.T.multipliedBy(3));
        assertTrue(r.ok(), r.describe());
        assertTrue(r.stdout().contains("cycles 5 hosted 5"), r.describe());
    }
}
