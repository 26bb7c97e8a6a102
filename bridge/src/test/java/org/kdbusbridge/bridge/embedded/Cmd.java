// Test helper: runs a real D-Bus client (dbus-send, busctl, gdbus) with a deadline and captures
// its output. A command that overruns the deadline is killed and reported as a failure.
package org.kdbusbridge.bridge.embedded;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

final class Cmd {
    static final Duration TIMEOUT = Duration.ofSeconds(20);

    record Result(List<String> command, int exit, boolean timedOut, String stdout, String stderr) {
        boolean ok() {
            return !timedOut && exit == 0;
        }

        String describe() {
            return String.join(" ", command) + "\n exit=" + exit + (timedOut ? " (timed out)" : "")
                    + "\n stdout: " + stdout + "\n stderr: " + stderr;
        }
    }

    private Cmd() {
    }

    static Result run(List<String> command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> drain(p.getInputStream()));
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> drain(p.getErrorStream()));
        boolean finished = p.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        if (!finished) {
            p.destroyForcibly();
            p.waitFor(5, TimeUnit.SECONDS);
        }
        return new Result(command, finished ? p.exitValue() : -1, !finished, out.join(), err.join());
    }

    /** dbus-send ... org.freedesktop.DBus.ListNames against address. */
    static Result listNames(String address) throws IOException, InterruptedException {
        return run(List.of("dbus-send", "--bus=" + address, "--print-reply", "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus", "org.freedesktop.DBus.ListNames"));
    }

    private static String drain(InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
