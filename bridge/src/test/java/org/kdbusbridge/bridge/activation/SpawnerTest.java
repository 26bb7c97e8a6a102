package org.kdbusbridge.bridge.activation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SpawnerTest {

    private static final String ADDRESS = "unix:path=/tmp/test-bus,guid=0123456789abcdef0123456789abcdef";

    /** Every callback as a string, in order. */
    private final LinkedBlockingQueue<String> events = new LinkedBlockingQueue<>();
    private final Map<String, Thread> callbackThreads = new HashMap<>();
    private Spawner spawner;

    private final Spawner.Listener listener = new Spawner.Listener() {
        @Override
        public void onSpawned(String name, long pid) {
            assertTrue(pid > 0);
            events.add("spawned " + name);
        }

        @Override
        public void onExecFailed(String name, String message) {
            events.add("execfailed " + name + " " + message);
        }

        @Override
        public void onExited(String name, long pid, int exitCode) {
            synchronized (callbackThreads) {
                callbackThreads.put(name, Thread.currentThread());
            }
            events.add("exited " + name + " " + exitCode);
        }

        @Override
        public void onSignaled(String name, long pid, int signal) {
            events.add("signaled " + name + " " + signal);
        }
    };

    private Spawner spawner(String type, Map<String, String> busEnv) {
        spawner = new Spawner(ADDRESS, type, busEnv, listener);
        return spawner;
    }

    @AfterEach
    void stop() {
        if (spawner != null) {
            spawner.shutdown();
        }
    }

    private String next() throws InterruptedException {
        String e = events.poll(20, TimeUnit.SECONDS);
        assertNotNull(e, "no callback before the deadline");
        return e;
    }

    @Test
    void exitStatusIsReported() throws Exception {
        spawner("session", Map.of()).spawn("org.example.Three", List.of("/bin/sh", "-c", "exit 3"), Map.of());
        assertEquals("spawned org.example.Three", next());
        assertEquals("exited org.example.Three 3", next());
        assertFalse(callbackThreads.get("org.example.Three") == Thread.currentThread());
        assertEquals("Process org.example.Three exited with status 3", Spawner.childExitedMessage("org.example.Three", 3));
    }

    @Test
    void zeroExitIsReportedToo() throws Exception {
        spawner("session", Map.of()).spawn("org.example.Zero", List.of("/bin/true"), Map.of());
        assertEquals("spawned org.example.Zero", next());
        assertEquals("exited org.example.Zero 0", next());
    }

    @Test
    void signalIsReported() throws Exception {
        spawner("session", Map.of()).spawn("org.example.Killed", List.of("/bin/sh", "-c", "kill -KILL $$"), Map.of());
        assertEquals("spawned org.example.Killed", next());
        assertEquals("signaled org.example.Killed 9", next());
        assertEquals("Process org.example.Killed received signal 9", Spawner.childSignaledMessage("org.example.Killed", 9));
    }

    @Test
    void execFailures(@TempDir Path tmp) throws Exception {
        Spawner s = spawner("session", Map.of());
        s.spawn("org.example.Missing", List.of(tmp.resolve("no-such-binary").toString()), Map.of());
        assertEquals("execfailed org.example.Missing Failed to execute program org.example.Missing: "
                + "No such file or directory", next());

        Path notExec = Files.writeString(tmp.resolve("not-executable"), "#!/bin/sh\n");
        s.spawn("org.example.NoPerm", List.of(notExec.toString()), Map.of());
        assertEquals("execfailed org.example.NoPerm Failed to execute program org.example.NoPerm: "
                + "Permission denied", next());

        // execve semantics: no PATH lookup ("sh" is not in the working directory)
        s.spawn("org.example.NoPath", List.of("sh", "-c", "exit 0"), Map.of());
        assertTrue(next().startsWith("execfailed org.example.NoPath Failed to execute program org.example.NoPath: "));

        s.spawn("org.example.Empty", List.of(""), Map.of());
        assertEquals("execfailed org.example.Empty Failed to execute program org.example.Empty: "
                + "No such file or directory", next());
    }

    @Test
    void environment(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("env.txt");
        Path script = tmp.resolve("print-env.sh");
        Files.writeString(script, "#!/bin/sh\nenv > \"$1\"\nread line || echo stdin-eof >> \"$1\"\n");
        script.toFile().setExecutable(true);
        Map<String, String> busEnv = Spawner.busEnvironment(Map.of("PATH", "/usr/bin:/bin", "KEEP", "bus",
                "OVERRIDE", "bus", "NOTIFY_SOCKET", "/run/notify", "LISTEN_FDS", "3", "INVOCATION_ID", "x",
                "DBUS_STARTER_ADDRESS", "stale"));
        Spawner s = spawner("session", busEnv);
        s.spawn("org.example.Env", List.of(script.toString(), out.toString()),
                Map.of("OVERRIDE", "activation", "FROM_UPDATE", "yes", "DBUS_STARTER_BUS_TYPE", "ignored"));
        assertEquals("spawned org.example.Env", next());
        assertEquals("exited org.example.Env 0", next());

        Map<String, String> env = new HashMap<>();
        List<String> lines = Files.readAllLines(out);
        for (String l : lines) {
            int eq = l.indexOf('=');
            if (eq > 0) {
                env.put(l.substring(0, eq), l.substring(eq + 1));
            }
        }
        assertEquals(ADDRESS, env.get("DBUS_STARTER_ADDRESS"));
        assertEquals("session", env.get("DBUS_STARTER_BUS_TYPE"));
        assertEquals(ADDRESS, env.get("DBUS_SESSION_BUS_ADDRESS"));
        assertFalse(env.containsKey("DBUS_SYSTEM_BUS_ADDRESS"));
        assertEquals("bus", env.get("KEEP"));
        assertEquals("activation", env.get("OVERRIDE"));
        assertEquals("yes", env.get("FROM_UPDATE"));
        assertFalse(env.containsKey("NOTIFY_SOCKET"));
        assertFalse(env.containsKey("LISTEN_FDS"));
        assertFalse(env.containsKey("INVOCATION_ID"));
        assertTrue(lines.contains("stdin-eof"), "stdin is /dev/null");
    }

    @Test
    void environmentForOtherBusTypes() {
        Map<String, String> system = spawner("system", Map.of()).environmentFor(Map.of());
        assertEquals("system", system.get("DBUS_STARTER_BUS_TYPE"));
        assertEquals(ADDRESS, system.get("DBUS_SYSTEM_BUS_ADDRESS"));
        assertFalse(system.containsKey("DBUS_SESSION_BUS_ADDRESS"));
        spawner.shutdown();

        Map<String, String> untyped = spawner(null, Map.of()).environmentFor(Map.of());
        assertEquals(Map.of("DBUS_STARTER_ADDRESS", ADDRESS), untyped);
    }

    @Test
    void shutdownRefusesNewWork() {
        Spawner s = spawner("session", Map.of());
        s.shutdown();
        s.shutdown();
        assertThrows(IllegalStateException.class, () -> s.spawn("org.example.Late", List.of("/bin/true"), Map.of()));
        assertTrue(events.isEmpty());
    }

    @Test
    void errorNames() {
        assertEquals("org.freedesktop.DBus.Error.Spawn.ExecFailed", Spawner.ERROR_EXEC_FAILED);
        assertEquals("org.freedesktop.DBus.Error.Spawn.ChildExited", Spawner.ERROR_CHILD_EXITED);
        assertEquals("org.freedesktop.DBus.Error.Spawn.ChildSignaled", Spawner.ERROR_CHILD_SIGNALED);
        assertEquals("Failed to execute program a.b: why", Spawner.execFailedMessage("a.b", "why"));
    }
    /** A file opened as a caller's 2>FILE would be (no O_APPEND), as a raw fd; -1 without JNI. */
    private static int openForWrite(Path f) {
        if (!org.kdbusbridge.bridge.transport.LibC.Native.spawnSupported()) {
            return -1;
        }
        return org.kdbusbridge.bridge.transport.JniLibC.open0(
                org.kdbusbridge.bridge.transport.JniLibC.cString(f.toString()), 01 | 0100 | 01000 | 02000000);
    }

    private Spawner inheriting(ChildStdio stdio, Path dir) {
        spawner = new Spawner(ADDRESS, "session", Map.of("PATH", "/usr/bin:/bin"), dir.toFile(),
                ProcessBuilder.Redirect.DISCARD, ProcessBuilder.Redirect.DISCARD, stdio, listener);
        return spawner;
    }

    /**
     * With a hosted bus's descriptors the child writes through the very same open file: at its
     * offset, after what the bus wrote, and the bus's next write comes after the child's.
     */
    @Test
    void aHostedBusesChildrenShareItsOpenFiles(@TempDir Path tmp) throws Exception {
        Path file = tmp.resolve("out");
        int out = openForWrite(file);
        org.junit.jupiter.api.Assumptions.assumeTrue(out >= 0, "needs the JNI native spawn");
        int err = org.kdbusbridge.bridge.transport.LibC.INSTANCE.fcntl(out, org.kdbusbridge.bridge.transport.LibC.F_DUPFD_CLOEXEC, 3);
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocateDirect(16);
        b.put("bus-1\n".getBytes()).flip();
        org.kdbusbridge.bridge.transport.LibC.INSTANCE.write(out, org.kdbusbridge.bridge.transport.LibC.Native.address(b), 6);
        ChildStdio stdio = new ChildStdio(out, err);
        inheriting(stdio, tmp).spawn("org.example.Writer",
                List.of("/bin/sh", "-c", "echo child-out; echo child-err >&2; pwd >&2; exit 130"), Map.of());
        assertEquals("spawned org.example.Writer", next());
        assertEquals("exited org.example.Writer 130", next()); // an exit status, told apart from a signal
        b.clear().put("bus-2\n".getBytes()).flip();
        org.kdbusbridge.bridge.transport.LibC.INSTANCE.write(out, org.kdbusbridge.bridge.transport.LibC.Native.address(b), 6);
        assertEquals("bus-1\nchild-out\nchild-err\n" + tmp.toRealPath() + "\nbus-2\n", Files.readString(file));
        stdio.close();
        assertTrue(stdio.descriptorsClosed());
    }

    @Test
    void aHostedBusesChildKilledByASignalIsReportedSo(@TempDir Path tmp) throws Exception {
        int out = openForWrite(tmp.resolve("out"));
        org.junit.jupiter.api.Assumptions.assumeTrue(out >= 0, "needs the JNI native spawn");
        int err = org.kdbusbridge.bridge.transport.LibC.INSTANCE.fcntl(out, org.kdbusbridge.bridge.transport.LibC.F_DUPFD_CLOEXEC, 3);
        ChildStdio stdio = new ChildStdio(out, err);
        Spawner s = inheriting(stdio, tmp);
        s.spawn("org.example.Killed", List.of("/bin/sh", "-c", "kill -TERM $$"), Map.of());
        assertEquals("spawned org.example.Killed", next());
        assertEquals("signaled org.example.Killed 15", next());
        s.spawn("org.example.Missing", List.of(tmp.resolve("nothing").toString()), Map.of());
        assertEquals("execfailed org.example.Missing Failed to execute program org.example.Missing: "
                + "No such file or directory", next());
        // after the bus's end nothing gets its descriptors: the numbers may be another's by then
        stdio.close();
        assertTrue(stdio.descriptorsClosed());
        s.spawn("org.example.Late", List.of("/bin/true"), Map.of());
        assertEquals("execfailed org.example.Late Failed to execute program org.example.Late: the bus has ended", next());
    }
}
