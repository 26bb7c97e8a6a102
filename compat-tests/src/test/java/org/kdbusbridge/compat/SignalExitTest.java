package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Message;

/**
 * How a bus ends on SIGTERM and SIGINT, as its parent's waitpid sees it (test harnesses that
 * start a bus per test check this). dbus-daemon 1.14 handles SIGTERM: it removes its socket
 * file and exits with status 0. It has no SIGINT handler, so SIGINT kills it (signal 2). We
 * end the same way; on SIGINT we also clean up first (docs/compatibility.md).
 */
class SignalExitTest {
    static final int SIGINT = 2;
    static final int SIGTERM = 15;

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void sigtermRemovesTheSocketFileAndExitsWithStatusZero(BusKind kind, @TempDir Path dir) throws Exception {
        Path socket = dir.resolve("bus");
        try (WaitedBus bus = WaitedBus.start(kind.command(socket), null, dir)) {
            assertTrue(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), bus.describe());
            assertEquals("status 0", bus.kill(SIGTERM), bus.describe());
            assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "socket file left behind\n" + bus.describe());
            assertFalse(Files.exists(Path.of("/tmp/hsperfdata_" + System.getProperty("user.name"), "" + bus.pid())),
                    "a JVM perf-data file in /tmp\n" + bus.describe());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void sigintKillsTheBus(BusKind kind, @TempDir Path dir) throws Exception {
        Path socket = dir.resolve("bus");
        try (WaitedBus bus = WaitedBus.start(kind.command(socket), null, dir)) {
            assertEquals("signal 2", bus.kill(SIGINT), bus.describe());
            // dbus-daemon dies without cleaning up; we remove the socket first
            assertEquals(kind == BusKind.DBUS_DAEMON, Files.exists(socket, LinkOption.NOFOLLOW_LINKS), bus.describe());
        }
    }

    static Stream<Integer> signals() {
        return Stream.of(SIGTERM, SIGINT);
    }

    /** Ours only: --kdbus-capture's file is complete however the bus was stopped. */
    @ParameterizedTest
    @MethodSource("signals")
    void captureFileIsCompleteAfterTheSignal(int sig, @TempDir Path dir) throws Exception {
        Path socket = dir.resolve("bus");
        Path file = dir.resolve("bus.pcapng");
        List<String> argv = BusKind.KDBUS_BRIDGE.command(List.of("--session", "--nofork", "--print-address",
                "--address=unix:path=" + socket, "--kdbus-capture=" + file));
        try (WaitedBus bus = WaitedBus.start(argv, null, dir)) {
            MonitorTest.Traffic t = MonitorTest.traffic(bus.address());
            assertEquals(sig == SIGTERM ? "status 0" : "signal 2", bus.kill(sig), bus.describe());
            assertTrue(bus.stderr().contains("Capture to " + file + " closed"), bus.describe());
            assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), bus.describe());
            byte[] bytes = Files.readAllBytes(file);
            assertNotNull(PcapStream.header(bytes), "pcapng header");
            List<Message> msgs = PcapStream.messages(bytes);
            String text = PcapStream.describe(msgs);
            assertTrue(PcapStream.hasMember(msgs, Message.METHOD_CALL, "Hello"), text);
            assertTrue(msgs.stream().anyMatch(m -> m.type == Message.METHOD_RETURN && m.replySerial == t.callSerial()
                    && t.service().equals(m.sender)), text);
            assertEquals(bytes.length, wholeBlocksLength(bytes), "the file ends with a whole block\n" + text);
        }
    }

    /** The length of the pcapng file's leading whole blocks (each: type, total length, ..., length). */
    private static int wholeBlocksLength(byte[] f) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(f).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int off = 0;
        while (off + 12 <= f.length) {
            int len = b.getInt(off + 4);
            if (len < 12 || off + len > f.length || b.getInt(off + len - 4) != len) {
                break;
            }
            off += len;
        }
        return off;
    }

    /**
     * Ours only, through bin/kdbus-bridge: the first start (no class-data cache yet) ends like
     * every other, by SIGINT itself: the cache is trained by a process of its own in the
     * background, not by the caller's bus at its exit. The next start maps the cache.
     */
    @Test
    void launcherFirstStartDiesBySignalWhileTheCacheIsTrainedApart(@TempDir Path dir) throws Exception {
        Path cds = Files.createDirectory(dir.resolve("cds"));
        Map<String, String> env = Map.of("KDBUS_BRIDGE_CDS_DIR", cds.toString());
        List<String> argv = List.of(DropInTest.BIN + "/kdbus-bridge", "--session", "--nofork", "--print-address",
                "--address=unix:path=" + dir.resolve("bus"));
        try (WaitedBus first = WaitedBus.start(argv, env, dir)) {
            assertEquals("signal 2", first.kill(SIGINT), first.describe());
        }
        String suffix = Runtime.version().feature() >= 25 ? ".aot" : ".jsa";
        assertTrue(TrainedCache.await(cds, suffix, java.time.Duration.ofSeconds(60)), "one cache trained");
        try (Stream<Path> s = Files.list(cds)) {
            assertEquals(1, s.filter(f -> f.toString().endsWith(suffix)).count(), "one cache written");
        }
        try (WaitedBus trained = WaitedBus.start(argv, env, dir)) {
            assertEquals("signal 2", trained.kill(SIGINT), trained.describe());
        }
        try (WaitedBus trained = WaitedBus.start(argv, env, dir)) {
            assertEquals("status 0", trained.kill(SIGTERM), trained.describe());
        }
        assertFalse(Files.exists(dir.resolve("bus"), LinkOption.NOFOLLOW_LINKS));
    }

    /** --fork: the bus runs in a second process; SIGTERM to the pid it printed still cleans up. */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void forkedBusRemovesItsSocketOnSigterm(BusKind kind, @TempDir Path dir) throws Exception {
        Path socket = dir.resolve("bus");
        List<String> argv = kind.command(List.of("--session", "--fork", "--print-address=1",
                "--print-pid=1", "--address=unix:path=" + socket));
        org.kdbusbridge.compat.harness.Cmd.Result r = org.kdbusbridge.compat.harness.Cmd.run(argv, Buses.T);
        assertTrue(r.ok(), r.describe());
        String[] lines = r.stdout().trim().split("\n");
        assertEquals(2, lines.length, r.describe());
        long pid = Long.parseLong(lines[1].trim());
        ProcessHandle bus = ProcessHandle.of(pid).orElseThrow();
        assertTrue(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), r.describe());
        String address = lines[0].trim();
        assertTrue(WaitedBus.getId(address).ok(), "the bus answers (dbus-daemon's SIGTERM handler is set)");
        assertTrue(bus.destroy(), "SIGTERM sent"); // ProcessHandle.destroy() is SIGTERM
        bus.onExit().get(Buses.T.toSeconds(), java.util.concurrent.TimeUnit.SECONDS);
        assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), r.describe());
    }
}
