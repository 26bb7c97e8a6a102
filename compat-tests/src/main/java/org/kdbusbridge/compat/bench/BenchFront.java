package org.kdbusbridge.compat.bench;

import java.io.File;
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

/**
 * The "endpoint" workload's sandbox front: {@code xdg-dbus-proxy} or our {@code bin/kdbus-bridge-proxy},
 * started with xdg-dbus-proxy's command line {@code --fd=3 ADDRESS PATH --filter RULES...}.
 *
 * <p>Its readiness and lifetime protocol: one byte on fd 3 once PATH listens, exit when fd 3's
 * other end closes. ProcessBuilder passes no extra fds, so {@code /bin/sh} moves the child's
 * stdout pipe to fd 3 (and stdout to the log) before it execs the front; the read end is ours.
 * {@link #pid()} stays the front's through the execs (sh, our launcher script, java).
 */
final class BenchFront implements AutoCloseable {
    static final Duration READY = Duration.ofSeconds(60);
    static final Duration EXIT = Duration.ofSeconds(10);

    private final Process process;
    private final InputStream syncPipe;
    private final Path socket;
    private final Path log;

    private BenchFront(Process process, InputStream syncPipe, Path socket, Path log) {
        this.process = process;
        this.syncPipe = syncPipe;
        this.socket = socket;
        this.log = log;
    }

    /** Starts {@code front --fd=3 busAddress dir/front.sock --filter rules...} and waits for its ready byte. */
    static BenchFront start(Path front, String busAddress, Path dir, List<String> rules) throws IOException {
        if (!Files.isExecutable(front)) {
            throw new IllegalStateException("sandbox front not installed: " + front);
        }
        Path socket = dir.resolve("front.sock");
        Path log = dir.resolve("front.log");
        List<String> argv = new ArrayList<>(List.of("/bin/sh", "-c", "exec 3>&1 1>&2; exec \"$@\"", "sh",
                front.toString(), "--fd=3", busAddress, socket.toString(), "--filter"));
        argv.addAll(rules);
        ProcessBuilder pb = new ProcessBuilder(argv)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectError(log.toFile());
        pb.environment().remove("DBUS_SESSION_BUS_ADDRESS");
        pb.environment().remove("DBUS_STARTER_ADDRESS");
        // Our front is a JVM behind bin/kdbus-bridge: no class-data cache training in the
        // background (it would be the front's child and eat CPU inside the measured window).
        pb.environment().put("KDBUS_BRIDGE_CDS", "0");
        Process p = pb.start();
        BenchFront f = new BenchFront(p, p.getInputStream(), socket, log);
        CompletableFuture<Integer> ready = CompletableFuture.supplyAsync(() -> {
            try {
                return f.syncPipe.read();
            } catch (IOException e) {
                return -1;
            }
        });
        int b;
        try {
            b = ready.get(READY.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException | ExecutionException e) {
            f.kill();
            throw new IllegalStateException("front not ready within " + READY + ": " + f.logText());
        } catch (InterruptedException e) {
            f.kill();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        if (b < 0 || !Files.exists(socket)) {
            f.kill();
            throw new IllegalStateException("front closed --fd without readiness or made no socket: " + f.logText());
        }
        return f;
    }

    /** Where the sandboxed caller connects. */
    String address() {
        return "unix:path=" + socket;
    }

    long pid() {
        return process.pid();
    }

    boolean isAlive() {
        return process.isAlive();
    }

    String logText() {
        try {
            return Files.readString(log, StandardCharsets.UTF_8).lines().limit(5).reduce((a, c) -> a + " / " + c).orElse("");
        } catch (IOException e) {
            return "<no log: " + e.getMessage() + ">";
        }
    }

    /** The lifetime protocol: close our end of --fd; kill the tree only if it does not exit by itself. */
    @Override
    public void close() {
        try {
            syncPipe.close();
        } catch (IOException ignored) {
            // already closed
        }
        try {
            if (!process.waitFor(EXIT.toMillis(), TimeUnit.MILLISECONDS)) {
                System.out.println("front did not exit when --fd closed; killing it");
                kill();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            kill();
        }
    }

    private void kill() {
        List<ProcessHandle> children = process.descendants().toList();
        process.destroyForcibly();
        children.forEach(ProcessHandle::destroyForcibly);
        try {
            process.waitFor(EXIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
