package org.kdbusbridge.compat.harness;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/** A bus started as a child process that printed its address on stdout. */
public final class ProcessBus implements BusUnderTest {
    private final BusKind kind;
    private final Path dir;
    private final Process process;
    private final LineReader stdout;
    private final Path stderrLog;
    private final String address;

    private ProcessBus(BusKind kind, Path dir, Process process, LineReader stdout, Path stderrLog, String address) {
        this.kind = kind;
        this.dir = dir;
        this.process = process;
        this.stdout = stdout;
        this.stderrLog = stderrLog;
        this.address = address;
    }

    static ProcessBus start(BusKind kind, Path dir) throws IOException {
        return start(kind, dir, kind.command(dir.resolve("bus")));
    }

    static ProcessBus start(BusKind kind, Path dir, List<String> argv) throws IOException {
        Path err = dir.resolve(kind.label() + ".stderr.log");
        ProcessBuilder pb = new ProcessBuilder(argv)
                .redirectError(err.toFile())
                .redirectInput(ProcessBuilder.Redirect.PIPE);
        pb.environment().remove("DBUS_SESSION_BUS_ADDRESS");
        pb.environment().remove("DBUS_STARTER_ADDRESS");
        Process p = pb.start();
        LineReader out = new LineReader(p.getInputStream(), kind.label() + "-stdout");
        String line = out.awaitLine(l -> !l.isBlank(), BusKind.STARTUP_DEADLINE);
        if (line == null) {
            boolean closedStdout = out.awaitEof(Duration.ZERO);
            boolean exited = false;
            try {
                exited = closedStdout && p.waitFor(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            String why = exited ? "exited with status " + p.exitValue() + " before printing its address"
                    : closedStdout ? "closed stdout without printing its address"
                    : "did not print its address within " + BusKind.STARTUP_DEADLINE;
            destroy(p);
            throw new IllegalStateException(kind.label() + " " + why + "; argv=" + argv
                    + "\n--- stderr (" + err + ") ---\n" + readQuietly(err));
        }
        line = line.trim();
        if (!line.startsWith("unix:")) {
            destroy(p);
            throw new IllegalStateException(kind.label() + " printed an unexpected address line: '" + line + "'\n--- stderr ---\n" + readQuietly(err));
        }
        return new ProcessBus(kind, dir, p, out, err, line);
    }

    @Override
    public String address() {
        return address;
    }

    @Override
    public long pid() {
        return process.pid();
    }

    @Override
    public String name() {
        return kind.label();
    }

    public BusKind kind() {
        return kind;
    }

    @Override
    public Path stderrLog() {
        return stderrLog;
    }

    @Override
    public boolean isAlive() {
        return process.isAlive();
    }

    /** Bus stderr so far (for failure messages). */
    public String stderr() {
        return readQuietly(stderrLog);
    }

    @Override
    public void close() {
        destroy(process);
        stdout.close();
        if (!Boolean.getBoolean("compat.keepTemp")) {
            try (Stream<Path> s = Files.walk(dir)) {
                s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            } catch (IOException ignored) {
                // best effort
            }
        }
    }

    private static void destroy(Process p) {
        // A bus launched through a wrapper (script, jar that execs) must not leave its children behind.
        List<ProcessHandle> children = p.descendants().toList();
        p.destroy();
        children.forEach(ProcessHandle::destroy);
        try {
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
            }
            for (ProcessHandle c : children) {
                c.onExit().get(5, TimeUnit.SECONDS);
            }
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            children.forEach(ProcessHandle::destroyForcibly);
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    static String readQuietly(Path f) {
        try {
            return Files.readString(f, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "<" + e + ">";
        }
    }

    @Override
    public String toString() {
        return kind.label() + "[pid=" + pid() + ", " + address + "]";
    }

    /** For callers that want Duration-based helpers. */
    public static Duration startupDeadline() {
        return BusKind.STARTUP_DEADLINE;
    }
}
