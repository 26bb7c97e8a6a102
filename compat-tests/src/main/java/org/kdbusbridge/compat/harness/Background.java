package org.kdbusbridge.compat.harness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** A long-running client (e.g. gdbus monitor) whose stdout is read line by line with deadlines. */
public final class Background implements AutoCloseable {
    private final List<String> argv;
    private final Process process;
    private final LineReader out;
    private final LineReader err;

    private Background(List<String> argv, Process process) {
        this.argv = argv;
        this.process = process;
        this.out = new LineReader(process.getInputStream(), "bg-out");
        this.err = new LineReader(process.getErrorStream(), "bg-err");
    }

    public static Background start(List<String> argv, Map<String, String> env) {
        ProcessBuilder pb = new ProcessBuilder(argv);
        Cmd.sanitize(pb.environment());
        if (env != null) {
            pb.environment().putAll(env);
        }
        try {
            return new Background(List.copyOf(argv), pb.start());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + argv, e);
        }
    }

    public LineReader stdout() {
        return out;
    }

    public LineReader stderr() {
        return err;
    }

    public Process process() {
        return process;
    }

    public String describe() {
        return "$ " + String.join(" ", argv) + (process.isAlive() ? " (running)" : " exit=" + process.exitValue())
                + "\n--- stdout ---\n" + out.text() + "\n--- stderr ---\n" + err.text();
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
