package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.LineReader;

/**
 * A bus started under a small python3 parent that reports how the bus ended as waitpid(2) saw
 * it: {@code signal N} (WIFSIGNALED, WTERMSIG) or {@code status N}. Java's Process API reports
 * a death by signal N as exit value 128+N, so it can't tell the two apart.
 */
final class WaitedBus implements AutoCloseable {
    // The child restores the default action of the signals tested (a parent may have ignored
    // them: sh ignores SIGINT for background jobs), then ignores those in WAITED_BUS_IGNORE and
    // blocks those in WAITED_BUS_BLOCK (numbers; both taken out of the bus's environment), prints
    // its pid, then execs the bus. A line of signal numbers on stdin sends them in that order.
    private static final String WAITER = String.join("\n",
            "import os, signal, sys",
            "ignore = [int(s) for s in os.environ.pop('WAITED_BUS_IGNORE', '').split()]",
            "block = [int(s) for s in os.environ.pop('WAITED_BUS_BLOCK', '').split()]",
            "pid = os.fork()",
            "if pid == 0:",
            "    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):",
            "        signal.signal(s, signal.SIG_DFL)",
            "    for s in ignore:",
            "        signal.signal(s, signal.SIG_IGN)",
            "    signal.pthread_sigmask(signal.SIG_BLOCK, block)",
            "    null = os.open('/dev/null', os.O_RDONLY)",
            "    os.dup2(null, 0)",
            "    os.write(1, b'pid %d\\n' % os.getpid())",
            "    os.execv(sys.argv[1], sys.argv[1:])",
            "line = sys.stdin.readline()",
            "for s in line.split():",
            "    os.kill(pid, int(s))",
            "_, st = os.waitpid(pid, 0)",
            "how = 'signal %d' % os.WTERMSIG(st) if os.WIFSIGNALED(st) else 'status %d' % os.WEXITSTATUS(st)",
            "print(how, flush=True)");

    private final List<String> argv;
    private final Process waiter;
    private final LineReader out;
    private final Path stderrLog;
    private final long pid;
    private final String address;

    private WaitedBus(List<String> argv, Process waiter, LineReader out, Path stderrLog, long pid, String address) {
        this.argv = argv;
        this.waiter = waiter;
        this.out = out;
        this.stderrLog = stderrLog;
        this.pid = pid;
        this.address = address;
    }

    /** Starts argv (a bus that prints its address on stdout) and waits until it answers a call. */
    static WaitedBus start(List<String> argv, Map<String, String> env, Path dir) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", "-c", WAITER));
        cmd.addAll(argv);
        Path err = Files.createTempFile(dir, "bus-", ".stderr");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(err.toFile());
        Cmd.sanitize(pb.environment());
        if (env != null) {
            pb.environment().putAll(env);
        }
        Process p = pb.start();
        LineReader out = new LineReader(p.getInputStream(), "waited-bus");
        String pidLine = out.awaitLine(l -> l.startsWith("pid "), Buses.T);
        String address = out.awaitLine(l -> l.startsWith("unix:"), Buses.T);
        WaitedBus bus = new WaitedBus(List.copyOf(argv), p, out, err,
                pidLine == null ? -1 : Long.parseLong(pidLine.substring(4).trim()), address);
        try {
            assertNotNull(address, "no address\n" + bus.describe());
            // dbus-daemon installs its SIGTERM handler after printing the address: a call
            // answered means its main loop runs, so the handler is in place.
            Cmd.Result r = getId(address);
            assertTrue(r.ok(), r.describe() + "\n" + bus.describe());
            return bus;
        } catch (RuntimeException | Error e) {
            bus.close();
            throw e;
        }
    }

    /** One registered call to the bus (dbus-send --bus= says Hello first). */
    static Cmd.Result getId(String address) {
        return Cmd.run(List.of("dbus-send", "--bus=" + address, "--print-reply",
                "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.GetId"), Buses.T);
    }

    String address() {
        return address;
    }

    long pid() {
        return pid;
    }

    /** Sends the signals to the bus, in this order; returns how it ended: "signal N" or "status N". */
    String kill(int... sigs) {
        try {
            OutputStream in = waiter.getOutputStream();
            StringBuilder line = new StringBuilder();
            for (int sig : sigs) {
                line.append(sig).append(' ');
            }
            in.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            in.flush();
            in.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        String how = out.awaitLine(l -> l.startsWith("signal ") || l.startsWith("status "), Buses.T);
        assertNotNull(how, "the bus did not end\n" + describe());
        return how;
    }

    /** True once the bus printed a line {@code p} accepts on stdout (woken by the reader), false at the deadline. */
    boolean awaitStdout(java.util.function.Predicate<String> p, java.time.Duration limit) {
        return out.awaitLine(p, limit) != null;
    }

    String stderr() {
        try {
            return Files.readString(stderrLog);
        } catch (IOException e) {
            return "<" + e + ">";
        }
    }

    String describe() {
        return "$ " + String.join(" ", argv) + "\n--- stdout ---\n" + out.text() + "\n--- stderr ---\n" + stderr();
    }

    /** Kills the bus if it still runs (the waiter reaps it, so its pid can't have been reused). */
    @Override
    public void close() {
        if (waiter.isAlive()) {
            if (pid > 0) {
                ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            }
            waiter.destroy();
            try {
                waiter.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        out.close();
    }
}
