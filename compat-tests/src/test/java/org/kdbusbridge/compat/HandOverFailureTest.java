package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Hand-over failure safety (docs/handover.md section 5, step 3): a new program that cannot take
 * over is found out by its check run, before the point of no return, and the old bus keeps
 * serving. The bus runs from a staging install whose launcher (the path Reexec execs) the test
 * swaps for a broken one: one that exits 1, one whose check says it writes an unknown future
 * snapshot format, one that hands the real check a snapshot of a future format, a configuration
 * that no longer parses, a launcher that is gone by the time of the execve, and (through the
 * test-only -Dkdbus.handOverFault) a trial or real snapshot that cannot be written. Each time:
 * the same pid serves, its clients are still connected and answered, a new client connects, the
 * requester gets HandOverFailed naming why (and --replace exits 1 with that text), the bus logs
 * one line, and it holds no fd more than before. Then the good launcher hands over, by --replace
 * and by SIGUSR2: same pid, same GUID, clients still connected. And --replace against
 * dbus-daemon fails with UnknownMethod and leaves it alone.
 */
class HandOverFailureTest {
    static final String EXT = "org.kdbusbridge.Extensions1";
    static final String FAILED = "org.kdbusbridge.Extensions1.Error.HandOverFailed";
    static final String NAME = "com.example.HandOverFailure";
    static final Duration REEXEC = Duration.ofSeconds(120);

    /** A staging install: bin/launcher.sh is the real launcher, bin/kdbus-bridge the one the test swaps. */
    private record Stage(Path bin, Path launcher) implements AutoCloseable {
        /** Removes the links into the source tree (JUnit would warn about them when it cleans up). */
        @Override
        public void close() throws IOException {
            Files.deleteIfExists(bin.getParent().resolve("bridge/target"));
            Files.deleteIfExists(bin.getParent().resolve("dist"));
        }

        /** Replaces the launcher Reexec execs, in one rename (never seen half-written). */
        void install(String script) throws IOException {
            Path tmp = bin.resolve("kdbus-bridge.tmp");
            Files.writeString(tmp, "#!/bin/sh\n" + script);
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
            Files.move(tmp, launcher, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }

        /** The good one: the real launcher of this install. */
        void good() throws IOException {
            install("exec " + bin.resolve("launcher.sh") + " \"$@\"\n");
        }

        /** Only the check run differs ({@code check} gets the argv as "$@"); everything else is the good one. */
        void checkRuns(String check) throws IOException {
            install("case \" $* \" in *\" --kdbus-handover-check \"*)\n" + check + "\n;;\nesac\nexec "
                    + bin.resolve("launcher.sh") + " \"$@\"\n");
        }
    }

    /** The source tree's launcher, jar (with the JNI library next to it) and jvm.options, under {@code dir}/stage. */
    private static Stage stage(Path dir) throws IOException {
        Path root = dir.resolve("stage");
        Path bin = Files.createDirectories(root.resolve("bin"));
        Files.createDirectories(root.resolve("bridge"));
        Files.createSymbolicLink(root.resolve("bridge/target"), DropInTest.ROOT.resolve("bridge/target"));
        Files.createSymbolicLink(root.resolve("dist"), DropInTest.ROOT.resolve("dist"));
        Path real = bin.resolve("launcher.sh");
        Files.copy(Path.of(DropInTest.BIN, "kdbus-bridge"), real);
        Files.setPosixFilePermissions(real, PosixFilePermissions.fromString("rwxr-xr-x"));
        Stage s = new Stage(bin, bin.resolve("kdbus-bridge"));
        s.good();
        return s;
    }

    private static Path config(Path dir, Path socket) throws IOException {
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                + " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n"
                + "  <type>session</type>\n  <listen>unix:path=" + socket + "</listen>\n  <auth>EXTERNAL</auth>\n"
                + "  <policy context=\"default\">\n    <allow user=\"*\"/>\n    <allow own=\"*\"/>\n"
                + "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow eavesdrop=\"true\"/>\n  </policy>\n</busconfig>\n");
        return conf;
    }

    /** Our bus through the staging launcher; {@code javaOpts} for KDBUS_BRIDGE_JAVA_OPTS, or null. */
    private static WaitedBus start(Path dir, Stage stage, String javaOpts) throws IOException {
        Map<String, String> env = new HashMap<>();
        env.put("KDBUS_BRIDGE_HOST", "0");
        env.put("KDBUS_BRIDGE_CDS", "0"); // a new jar path would start a class-data training run
        if (javaOpts != null) {
            env.put("KDBUS_BRIDGE_JAVA_OPTS", javaOpts);
        }
        Path conf = config(dir, dir.resolve("bus"));
        return WaitedBus.start(List.of(stage.launcher().toString(), "--config-file=" + conf, "--nofork",
                "--print-address"), env, dir);
    }

    /** What one broken phase did to the bus (the clients that must survive it). */
    private record Clients(RawClient owner, RawClient watcher, String guid, long pid) { }

    private static String reply(RawClient c, String member, String sig, Object... args) throws IOException {
        Message r = c.callBus(member, Buses.T, sig, args);
        assertNotNull(r, member + ": no reply");
        assertEquals(Message.METHOD_RETURN, r.type, member + ": " + r);
        return r.args().isEmpty() ? "" : String.valueOf(r.arg(0));
    }

    /** The bus's open fds: all of them, or only those that are not sockets (clients come and go meanwhile). */
    private static int fdCount(long pid, boolean sockets) throws IOException {
        int n = 0;
        try (var s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            for (Path fd : (Iterable<Path>) s::iterator) {
                String link;
                try {
                    link = Files.readSymbolicLink(fd).toString();
                } catch (IOException e) {
                    continue; // closed meanwhile
                }
                if (sockets || !link.startsWith("socket:")) {
                    n++;
                }
            }
        }
        return n;
    }

    private static int fdCountOrMinus(long pid) {
        try {
            return fdCount(pid, true);
        } catch (IOException e) {
            return -1;
        }
    }

    private static long logLines(WaitedBus bus, String what) {
        return bus.stderr().lines().filter(l -> l.contains(what)).count();
    }

    private static Message reexec(RawClient c) throws IOException {
        return c.call(Message.call(RawClient.BUS, RawClient.BUS_PATH, EXT, "Reexec"), REEXEC);
    }

    private static Cmd.Result replace(String address) {
        return Cmd.run(List.of(DropInTest.BIN + "/kdbus-bridge", "--replace", "--address=" + address), Map.of(), REEXEC);
    }

    /**
     * One failed hand-over, asked by the owner's Reexec or by --replace ({@code byReplace}): its
     * error text contains {@code why}; then the bus is the same and serves as before.
     */
    private static void failsAndKeepsServing(WaitedBus bus, Clients c, String why, boolean byReplace)
            throws IOException {
        int fdsBefore = fdCount(c.pid(), false);
        int allBefore = fdCount(c.pid(), true);
        long linesBefore = logLines(bus, "hand-over");
        long allLinesBefore = bus.stderr().lines().count();
        String text;
        if (byReplace) {
            Cmd.Result r = replace(bus.address());
            assertEquals(1, r.exitCode(), r.describe() + "\n" + bus.describe());
            assertTrue(r.stderr().contains(FAILED), r.describe());
            text = r.stderr();
        } else {
            Message r = reexec(c.owner());
            assertNotNull(r, "no Reexec reply\n" + bus.describe());
            assertEquals(FAILED, r.errorName, r + "\n" + bus.describe());
            text = String.valueOf(r.arg(0));
        }
        assertTrue(text.contains(why), "the error names why (" + why + "): " + text);
        // One log line, naming the same.
        assertEquals(linesBefore + 1, logLines(bus, "hand-over"), bus.describe());
        assertEquals(allLinesBefore + 1, bus.stderr().lines().count(), "one line in all\n" + bus.describe());
        List<String> failures = bus.stderr().lines().filter(l -> l.contains("hand-over (reexec) failed, this bus keeps serving"))
                .toList();
        assertTrue(!failures.isEmpty() && failures.get(failures.size() - 1).contains(why), bus.describe());
        // The same process, the same connections, still answered; a new client connects.
        assertTrue(Files.isDirectory(Path.of("/proc/" + c.pid())), bus.describe());
        assertEquals(String.valueOf(c.pid()), reply(c.watcher(), "GetConnectionUnixProcessID", "s", "org.freedesktop.DBus"));
        assertEquals(c.guid(), reply(c.watcher(), "GetId", ""));
        assertEquals(c.owner().uniqueName(), reply(c.watcher(), "GetNameOwner", "s", NAME));
        // Nothing held on to: the trial memfd, the check's pipes, the snapshot memfd all closed,
        // and no socket more (the --replace client's is gone once the bus has seen it leave).
        assertEquals(fdsBefore, fdCount(c.pid(), false), "non-socket fds of the bus before and after a failed hand-over");
        await(() -> fdCountOrMinus(c.pid()) == allBefore, "all fds as before (" + allBefore + ")", bus);
        try (RawClient fresh = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(c.owner().uniqueName(), reply(fresh, "GetNameOwner", "s", NAME));
        }
        await(() -> fdCountOrMinus(c.pid()) == allBefore, "the new client's socket closed again", bus);
    }

    private static Clients clients(WaitedBus bus) throws IOException {
        RawClient owner = RawClient.connectHello(bus.address(), Buses.T);
        RawClient watcher = RawClient.connectHello(bus.address(), Buses.T);
        assertEquals("1", reply(owner, "RequestName", "su", NAME, 0L));
        reply(watcher, "AddMatch", "s", "type='signal',interface='" + NAME + "'");
        return new Clients(owner, watcher, reply(watcher, "GetId", ""), bus.pid());
    }

    /** After a hand-over: the same pid and GUID, the clients with their names and match rules. */
    private static void sameBus(WaitedBus bus, Clients c, String round) throws IOException {
        assertTrue(Files.isDirectory(Path.of("/proc/" + c.pid())), bus.describe());
        assertEquals(String.valueOf(c.pid()), reply(c.watcher(), "GetConnectionUnixProcessID", "s", "org.freedesktop.DBus"));
        assertEquals(c.guid(), reply(c.watcher(), "GetId", ""), bus.describe());
        assertEquals(c.owner().uniqueName(), reply(c.watcher(), "GetNameOwner", "s", NAME));
        Message tick = Message.call(null, "/t", NAME, "Tick").body("s", round);
        tick.type = Message.SIGNAL;
        c.owner().send(tick);
        Message sig = c.watcher().await(m -> m.type == Message.SIGNAL && "Tick".equals(m.member)
                && round.equals(m.arg(0)), Buses.T, true);
        assertNotNull(sig, "the watcher's match rule after the hand-over\n" + c.watcher().transcript());
    }

    private static void await(Supplier<Boolean> condition, String what, WaitedBus bus) {
        long deadline = System.nanoTime() + REEXEC.toNanos();
        while (!condition.get() && System.nanoTime() < deadline) {
            LockSupport.parkNanos(20_000_000L); // polling the bus's log file, with a deadline
        }
        assertTrue(condition.get(), what + "\n" + bus.describe());
    }

    @Test
    void brokenNewProgramsAreRefusedBeforeExecAndTheGoodOneTakesOver(@TempDir Path dir) throws Exception {
        try (Stage stage = stage(dir); WaitedBus bus = start(dir, stage, null)) {
            Clients c = clients(bus);
            try {
                List<String> figures = new ArrayList<>();
                // A broken install: the launcher exits 1 at once.
                stage.install("echo 'kdbus-bridge: broken install' >&2\nexit 1\n");
                failsAndKeepsServing(bus, c, "exit status 1): kdbus-bridge: broken install", false);
                // A new program whose check says it writes format 3 (so reads 3 and 2 only, not this bus's 1).
                stage.checkRuns("cat >/dev/null\necho 'ok 3'\nexit 0");
                failsAndKeepsServing(bus, c, "writes snapshot format 3 and reads formats 3 and 2 only, not this bus's format 1", true);
                // The real check, given a snapshot whose header says format 2: its reader refuses it.
                stage.checkRuns("python3 -c 'import sys; b = bytearray(sys.stdin.buffer.read()); "
                        + "b[8:12] = (2).to_bytes(4, \"little\"); sys.stdout.buffer.write(b)' | "
                        + stage.bin().resolve("launcher.sh") + " \"$@\"\nexit $?");
                failsAndKeepsServing(bus, c, "snapshot format 2 is newer than this program reads (format 1)", false);
                // The configuration no longer parses when the check reads it (the running bus keeps its own).
                stage.good();
                Path conf = dir.resolve("bus.conf");
                String good = Files.readString(conf);
                Files.writeString(conf, good.replace("</busconfig>", "<busconfig>"));
                failsAndKeepsServing(bus, c, "configuration " + conf, true);
                Files.writeString(conf, good);
                // The check passes, and the launcher is gone by the execve: ENOENT, and still serving.
                stage.checkRuns(stage.bin().resolve("launcher.sh") + " \"$@\"\nrc=$?\nrm -f \"$0\"\nexit $rc");
                failsAndKeepsServing(bus, c, "then execve " + stage.launcher() + " failed: No such file or directory", false);
                assertTrue(!Files.exists(stage.launcher()), "the staging launcher removed itself");

                // The good launcher again: --replace hands over, exit 0.
                stage.good();
                long allLines = bus.stderr().lines().count();
                long t0 = System.nanoTime();
                Cmd.Result r = replace(bus.address());
                assertTrue(r.ok(), r.describe() + "\n" + bus.describe());
                figures.add("--replace " + (System.nanoTime() - t0) / 1_000_000 + " ms");
                // The reply and the line are one loop task of the new program: wait for the line.
                await(() -> logLines(bus, "hand-over (reexec) from") == 1, "the --replace hand-over's line", bus);
                sameBus(bus, c, "replace");
                // A successful hand-over logs exactly one line: nothing else on the bus's stderr.
                assertEquals(allLines + 1, bus.stderr().lines().count(), bus.describe());
                assertEquals(1, logLines(bus, "hand-over (reexec) from"), bus.describe());
                // And SIGUSR2: the same hand-over, answered to nobody; its end is logged.
                t0 = System.nanoTime();
                assertTrue(Cmd.run(List.of("kill", "-USR2", String.valueOf(c.pid())), Buses.T).ok());
                await(() -> logLines(bus, "hand-over (signal) from") == 1, "the SIGUSR2 hand-over's end", bus);
                figures.add("SIGUSR2 " + (System.nanoTime() - t0) / 1_000_000 + " ms to the log line");
                sameBus(bus, c, "usr2");
                assertEquals(allLines + 2, bus.stderr().lines().count(), "one line per hand-over\n" + bus.describe());
                assertTrue(!bus.stderr().contains("SIGUSR2 does not hand over"), bus.describe());
                String check = bus.stderr().lines().filter(l -> l.contains(") from ") && l.contains(" done: "))
                        .map(l -> l.substring(l.indexOf("hand-over ("), l.indexOf(" (restore")))
                        .reduce((a, b) -> a + "; " + b).orElse("");
                System.out.println("HANDOVER-FAILURE (load " + Files.readString(Path.of("/proc/loadavg")).trim() + "): "
                        + String.join("; ", figures) + "; " + check);
                // Still a bus that stops as any does.
                assertEquals("status 0", bus.kill(15), bus.describe());
            } finally {
                c.owner().close();
                c.watcher().close();
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"trial", "snapshot", "timeout"})
    void aSnapshotThatCannotBeWrittenOrACheckThatHangsIsAnErrorAndTheBusServes(String fault, @TempDir Path dir)
            throws Exception {
        boolean hang = fault.equals("timeout");
        try (Stage stage = stage(dir);
             WaitedBus bus = start(dir, stage, hang ? "-Dkdbus.handOverCheckTimeoutMs=1500" : "-Dkdbus.handOverFault=" + fault)) {
            Clients c = clients(bus);
            try {
                String why = "fault injected (kdbus.handOverFault=" + fault + ")";
                if (hang) {
                    // A check that never ends: killed at the (shortened) limit; the bus served meanwhile.
                    stage.checkRuns("exec tail -f /dev/null");
                    why = "did not finish in 1500 ms";
                }
                if (hang) {
                    // The check runs off the loop: while it hangs the bus answers, accepts, and
                    // tells a second Reexec that one is running.
                    long first = c.owner().send(Message.call(RawClient.BUS, RawClient.BUS_PATH, EXT, "Reexec"));
                    await(() -> ProcessHandle.of(c.pid()).map(p -> p.children().anyMatch(
                            ch -> ch.info().commandLine().orElse("").contains("tail"))).orElse(false),
                            "the hanging check runs as the bus's child", bus);
                    assertEquals(c.guid(), reply(c.watcher(), "GetId", ""));
                    try (RawClient fresh = RawClient.connectHello(bus.address(), Buses.T)) {
                        Message busy = reexec(fresh);
                        assertEquals("org.kdbusbridge.Extensions1.Error.HandOverInProgress", busy.errorName, String.valueOf(busy));
                    }
                    Message r = c.owner().awaitReply(first, REEXEC);
                    assertNotNull(r, bus.describe());
                    assertEquals(FAILED, r.errorName, r + "\n" + bus.describe());
                    assertTrue(String.valueOf(r.arg(0)).contains(why), String.valueOf(r.arg(0)));
                    await(() -> ProcessHandle.of(c.pid()).map(p -> p.children().count() == 0).orElse(false),
                            "the killed check reaped", bus);
                }
                failsAndKeepsServing(bus, c, why, false);
                failsAndKeepsServing(bus, c, why, true);
                // The real snapshot is written only after the check passed; the trial one before it ran.
                assertEquals(fault.equals("snapshot") ? 2 : 0, logLines(bus, "the check passed in"), bus.describe());
            } finally {
                c.owner().close();
                c.watcher().close();
            }
        }
    }

    @Test
    void replaceAgainstDbusDaemonFailsWithUnknownMethodAndLeavesItAlone(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/dbus-daemon")), "needs /usr/bin/dbus-daemon");
        Path conf = config(dir, dir.resolve("bus"));
        try (WaitedBus bus = WaitedBus.start(List.of("/usr/bin/dbus-daemon", "--config-file=" + conf, "--nofork",
                "--print-address"), null, dir);
             RawClient before = RawClient.connectHello(bus.address(), Buses.T)) {
            String guid = reply(before, "GetId", "");
            Cmd.Result r = replace(bus.address());
            assertEquals(1, r.exitCode(), r.describe());
            // dbus-daemon 1.14 names the interface it does not know (UnknownInterface); older ones and
            // dbus-broker say UnknownMethod.
            assertTrue(r.stderr().contains("org.freedesktop.DBus.Error.UnknownInterface")
                    || r.stderr().contains("org.freedesktop.DBus.Error.UnknownMethod"), r.describe());
            assertTrue(r.stderr().contains("Reexec"), r.describe());
            assertTrue(Files.isDirectory(Path.of("/proc/" + bus.pid())), bus.describe());
            assertEquals(guid, reply(before, "GetId", ""));
            assertEquals(before.uniqueName(), reply(before, "GetNameOwner", "s", before.uniqueName()));
        }
    }
}
