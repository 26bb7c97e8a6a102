package org.kdbusbridge.compat.harness;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs a command with a timeout; a command that overruns is killed. */
public final class Cmd {
    private Cmd() {}

    /** The outcome of a command. {@code timedOut} means it was killed at the deadline. */
    public record Result(List<String> argv, int exitCode, String stdout, String stderr, boolean timedOut) {
        public boolean ok() {
            return !timedOut && exitCode == 0;
        }

        /** For assertion messages. */
        public String describe() {
            return "$ " + String.join(" ", argv) + "\nexit=" + exitCode + (timedOut ? " (TIMED OUT, killed)" : "")
                    + "\n--- stdout ---\n" + stdout + "\n--- stderr ---\n" + stderr;
        }
    }

    public static Result run(List<String> argv, Map<String, String> env, Duration timeout) {
        ProcessBuilder pb = new ProcessBuilder(argv).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        sanitize(pb.environment());
        if (env != null) {
            pb.environment().putAll(env);
        }
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + argv, e);
        }
        Slurp out = new Slurp(p.getInputStream());
        Slurp err = new Slurp(p.getErrorStream());
        boolean timedOut = false;
        try {
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                timedOut = true;
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
            }
            out.join(5000);
            err.join(5000);
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        return new Result(List.copyOf(argv), timedOut ? -1 : p.exitValue(), out.text(), err.text(), timedOut);
    }

    public static Result run(List<String> argv, Duration timeout) {
        return run(argv, Map.of(), timeout);
    }

    /** Keeps clients from finding a real session bus or a display by accident. */
    public static void sanitize(Map<String, String> env) {
        env.remove("DBUS_SESSION_BUS_ADDRESS");
        env.remove("DBUS_SYSTEM_BUS_ADDRESS");
        env.remove("DBUS_STARTER_ADDRESS");
        env.remove("DISPLAY");
        env.put("LC_ALL", "C.UTF-8");
        env.put("SYSTEMD_COLORS", "0");
        env.put("SYSTEMD_PAGER", "");
        env.put("PAGER", "cat");
    }

    private static final class Slurp extends Thread {
        private final InputStream in;
        private final ByteArrayOutputStream buf = new ByteArrayOutputStream();

        Slurp(InputStream in) {
            this.in = in;
            setDaemon(true);
            start();
        }

        @Override
        public void run() {
            byte[] b = new byte[8192];
            try {
                int n;
                while ((n = in.read(b)) >= 0) {
                    synchronized (buf) {
                        buf.write(b, 0, n);
                    }
                }
            } catch (IOException ignored) {
                // process gone
            }
        }

        String text() {
            synchronized (buf) {
                return buf.toString(StandardCharsets.UTF_8);
            }
        }
    }
}
