// Invariants: a workload is run once per bus, with nothing but the bus address differing
// between the runs; it returns an exit status (0 = success) that the comparison includes.
package org.kdbusbridge.bridge.migration;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.kdbusbridge.bridge.client.SessionEnvironment;

/** What a differential run does on each bus: a program, or Java code given the address. */
@FunctionalInterface
public interface Workload {
    /** Runs against the bus at {@code address}; returns an exit status. */
    int run(String address, Path workDir) throws Exception;

    /** Exit status reported when a command exceeded its time limit (as timeout(1) does). */
    int TIMED_OUT = 124;

    /**
     * A command run with DBUS_SESSION_BUS_ADDRESS set (and the DBUS_STARTER_* variables
     * removed), stdout and stderr to {@code NAME.out} in the work directory; killed with its
     * children after {@code timeout}.
     */
    static Workload command(List<String> argv, Map<String, String> extraEnv, Duration timeout) {
        return (address, dir) -> {
            ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true)
                    .redirectOutput(dir.resolve("command.out").toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            Map<String, String> env = pb.environment();
            env.putAll(extraEnv);
            SessionEnvironment.apply(env, address);
            Process p;
            try {
                p = pb.start();
            } catch (IOException e) {
                throw new IOException("cannot run " + argv.get(0) + ": " + e.getMessage(), e);
            }
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                p.waitFor();
                return TIMED_OUT;
            }
            return p.exitValue();
        };
    }
}
