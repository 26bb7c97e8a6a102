// Invariants: implements the receiving side of systemd's socket-passing protocol: the passed fds
// are LISTEN_FDS consecutive descriptors starting at 3, valid only if LISTEN_PID names this
// process. take() consumes the protocol: after it the variables are gone from the C environment,
// so nothing exec'd later inherits them. The JVM's own System.getenv() snapshot cannot be changed;
// code that starts children through ProcessBuilder must remove ENV_VARS from the child's
// environment itself.
package org.kdbusbridge.bridge.transport;

import java.util.List;
import java.util.function.Function;

/** The listening sockets passed by systemd socket activation ({@code LISTEN_FDS}/{@code LISTEN_PID}). */
public final class SystemdSockets {

    /** The first passed descriptor (SD_LISTEN_FDS_START). */
    public static final int FIRST_FD = 3;
    /** The variables of the protocol; all are removed by {@link #take()}. */
    public static final List<String> ENV_VARS = List.of("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES");

    private SystemdSockets() {
    }

    /**
     * The passed descriptors, or an empty list if the variables are absent or meant for another
     * process. Pure: reads the environment through getenv and changes nothing.
     *
     * @throws IllegalArgumentException if the variables are present for us but malformed
     */
    public static List<Integer> listenFds(Function<String, String> getenv, long ownPid) {
        String pid = getenv.apply("LISTEN_PID");
        String fds = getenv.apply("LISTEN_FDS");
        if (pid == null || fds == null) {
            return List.of();
        }
        long p;
        try {
            p = Long.parseLong(pid.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Failed to acquire systemd socket: LISTEN_PID='" + pid + "' is not a pid");
        }
        if (p != ownPid) {
            return List.of(); // meant for a parent that exec'd something else
        }
        int n;
        try {
            n = Integer.parseInt(fds.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Failed to acquire systemd socket: LISTEN_FDS='" + fds + "' is not a number");
        }
        if (n < 0 || n > 4096) {
            throw new IllegalArgumentException("Failed to acquire systemd socket: LISTEN_FDS=" + n + " is out of range");
        }
        Integer[] out = new Integer[n];
        for (int i = 0; i < n; i++) {
            out[i] = FIRST_FD + i;
        }
        return List.of(out);
    }

    /**
     * The descriptors systemd passed to this process (see {@link #listenFds}); removes the
     * variables from the C environment whatever the outcome, as sd_listen_fds(unset=1) does.
     */
    public static List<Integer> take() {
        try {
            return listenFds(System::getenv, ProcessHandle.current().pid());
        } finally {
            for (String v : ENV_VARS) {
                LibC.INSTANCE.unsetenv(v);
            }
        }
    }
}
