package org.kdbusbridge.compat.endpoint;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.kdbusbridge.compat.harness.Cmd;

/**
 * One sandbox front process: {@code xdg-dbus-proxy} or our {@code bin/kdbus-bridge-proxy}, started with
 * xdg-dbus-proxy's own command line {@code --fd=3 ADDRESS PATH [rules...]}.
 *
 * <p>The readiness and lifetime protocol is xdg-dbus-proxy's (dbus-proxy.c, as Flatpak uses it): the
 * front writes one byte to the {@code --fd} once its socket listens, and exits when the other end of
 * that fd closes. The fd is the write end of a pipe whose read end this object holds: the child's
 * stdout pipe, moved to fd 3 by {@code /bin/sh} before it execs the front (so the front's own stdout
 * goes to its log, and only the front holds the pipe's write end).
 */
final class SandboxFront implements AutoCloseable {
    static final Duration READY_DEADLINE = Duration.ofSeconds(20);
    static final Duration EXIT_DEADLINE = Duration.ofSeconds(10);
    static final int SYNC_FD = 3;
    static final int ARGS_FD = 4;

    private final List<String> argv;
    private final Process process;
    private final InputStream syncPipe;
    private final Path socket;
    private final Path log;

    private SandboxFront(List<String> argv, Process process, InputStream syncPipe, Path socket, Path log) {
        this.argv = argv;
        this.process = process;
        this.syncPipe = syncPipe;
        this.socket = socket;
        this.log = log;
    }

    /** The real proxy, for dbus-daemon. */
    static Path xdgDbusProxy() {
        return Path.of(System.getProperty("compat.xdg-dbus-proxy", "/usr/bin/xdg-dbus-proxy"));
    }

    /** Our front, from the project root. */
    static Path ourFront() {
        return Path.of(System.getProperty("kdbus.repo.root", ".."), "bin", "kdbus-bridge-proxy").toAbsolutePath().normalize();
    }

    /**
     * Starts {@code front --fd=3 busAddress dir/socket rules...} and waits (with a deadline) for the
     * readiness byte. Throws with the front's log if it exits or stays silent.
     */
    static SandboxFront start(Path front, String busAddress, Path dir, String name, List<String> rules) throws IOException {
        return start(front, busAddress, dir, name, rules, false);
    }

    /**
     * As {@link #start(Path, String, Path, String, List)}; with {@code viaArgsFd} the whole command
     * line after the program goes NUL-separated through {@code --args=4}, as {@code flatpak run} passes it.
     */
    static SandboxFront start(Path front, String busAddress, Path dir, String name, List<String> rules, boolean viaArgsFd)
            throws IOException {
        if (!Files.isExecutable(front)) {
            throw new IllegalStateException("sandbox front not found or not executable: " + front
                    + (front.equals(xdgDbusProxy()) ? " (install the Debian package xdg-dbus-proxy; .ci/run does)" : ""));
        }
        Path socket = dir.resolve(name + ".sock");
        Path log = dir.resolve(name + ".log");
        List<String> frontArgv = new ArrayList<>();
        frontArgv.add(front.toString());
        frontArgv.add("--fd=" + SYNC_FD);
        frontArgv.add(busAddress);
        frontArgv.add(socket.toString());
        frontArgv.addAll(rules);
        String redirections = "exec " + SYNC_FD + ">&1 1>&2";
        List<String> argv = new ArrayList<>(List.of("/bin/sh", "-c", "", "sh"));
        if (viaArgsFd) {
            Path args = dir.resolve(name + ".args");
            Files.writeString(args, String.join("\0", frontArgv.subList(1, frontArgv.size())) + "\0", StandardCharsets.UTF_8);
            redirections += " " + ARGS_FD + "<'" + args + "'";
            frontArgv = List.of(front.toString(), "--args=" + ARGS_FD);
        }
        argv.set(2, redirections + "; exec \"$@\"");
        argv.addAll(frontArgv);
        ProcessBuilder pb = new ProcessBuilder(argv)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectError(log.toFile());
        Cmd.sanitize(pb.environment());
        Process p = pb.start();
        InputStream pipe = p.getInputStream();
        SandboxFront f = new SandboxFront(List.copyOf(frontArgv), p, pipe, socket, log);
        CompletableFuture<Integer> ready = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                ready.complete(pipe.read());
            } catch (IOException e) {
                ready.complete(-1);
            }
        }, "front-ready-" + name);
        t.setDaemon(true);
        t.start();
        int b;
        try {
            b = ready.get(READY_DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            f.kill();
            throw new IllegalStateException("front wrote no readiness byte within " + READY_DEADLINE + ": " + f.describe());
        } catch (InterruptedException | ExecutionException e) {
            f.kill();
            throw new IOException("interrupted while waiting for " + f.describe(), e);
        }
        if (b < 0) {
            f.waitExit();
            throw new IllegalStateException("front closed --fd=" + SYNC_FD + " without the readiness byte: " + f.describe());
        }
        if (!Files.exists(socket)) {
            f.kill();
            throw new IllegalStateException("front said ready but " + socket + " does not exist: " + f.describe());
        }
        return f;
    }

    /** The address a sandboxed client connects to. */
    String clientAddress() {
        return "unix:path=" + socket;
    }

    Path socket() {
        return socket;
    }

    boolean isAlive() {
        return process.isAlive();
    }

    int exitValue() {
        return process.exitValue();
    }

    /**
     * The lifetime protocol: closes our end of the --fd pipe and waits for the front to exit by itself.
     * Returns true if it did within the deadline; otherwise kills it and returns false.
     */
    boolean closeSyncFdAndAwaitExit() {
        try {
            syncPipe.close();
        } catch (IOException ignored) {
            // already closed
        }
        if (waitExit()) {
            return true;
        }
        kill();
        return false;
    }

    String describe() {
        String status = process.isAlive() ? "running" : "exit=" + process.exitValue();
        String text;
        try {
            text = Files.readString(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            text = "<" + e + ">";
        }
        return "$ " + String.join(" ", argv) + " (" + status + ")\n--- log ---\n" + text;
    }

    private boolean waitExit() {
        try {
            return process.waitFor(EXIT_DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private void kill() {
        // The front may run children of its own (a JVM behind a script): none may outlive the test.
        List<ProcessHandle> children = process.descendants().toList();
        process.destroyForcibly();
        children.forEach(ProcessHandle::destroyForcibly);
        waitExit();
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            closeSyncFdAndAwaitExit();
        }
    }
}
