package org.kdbusbridge.compat.harness;

import java.nio.file.Path;

/** A running message bus that the compat tests and the benchmark talk to. */
public interface BusUnderTest extends AutoCloseable {
    /** The address the bus printed, e.g. {@code unix:path=/tmp/x/bus,guid=...}. */
    String address();

    /** The bus process id (for /proc/PID/stat CPU accounting). */
    long pid();

    /** A short human name: "dbus-daemon" or "kdbus-bridge". */
    String name();

    /** The socket path of the address ({@code unix:path=} only). */
    default Path socketPath() {
        return Path.of(Addresses.unixPath(address()));
    }

    /** The file that holds the bus's stderr, for diagnostics. */
    Path stderrLog();

    /** True while the bus process is alive. */
    boolean isAlive();

    /** SIGTERM (Process.destroy), wait, then SIGKILL on timeout. */
    @Override
    void close();
}
