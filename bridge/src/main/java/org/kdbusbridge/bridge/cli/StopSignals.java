package org.kdbusbridge.bridge.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.kdbusbridge.bridge.transport.LibC;

import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * How the bus ends on SIGTERM and SIGINT, the way its parent sees dbus-daemon 1.14 end:
 * <ul>
 * <li>SIGTERM: dbus-daemon cleans up (socket files, pid file) and exits with status 0.</li>
 * <li>SIGINT: dbus-daemon has no handler, so the parent's waitpid sees it killed by signal 2.
 *     We clean up first (nothing is left behind), then die by the same signal.</li>
 * </ul>
 * The JVM's own handling (shutdown hooks, then exit status 128+n) would show neither. The
 * handlers replace it and only record the signal; the main thread does the work.
 */
@SuppressWarnings("restriction")
final class StopSignals {
    static final String TERM = "TERM";
    static final String INT = "INT";
    private static final int SIGINT = 2;
    private static final int SIGTERM = 15;

    private final CountDownLatch received = new CountDownLatch(1);
    private volatile String name;
    /** While set, a stop signal ends the process at once by that signal ({@link #dieAtOnce}). */
    private volatile boolean dieAtOnce;

    private StopSignals() { }

    /** Installs the handlers. A signal the bus was started with ignored stays ignored (the JVM's rule). */
    static StopSignals install() {
        StopSignals s = new StopSignals();
        SignalHandler h = sig -> s.stop(sig.getName());
        for (String sig : new String[] {TERM, INT}) {
            try {
                Signal.handle(new Signal(sig), h);
            } catch (IllegalArgumentException e) {
                System.err.println("kdbus-bridge: SIG" + sig + " unavailable: " + e.getMessage());
            }
        }
        return s;
    }

    /** The launcher's variable that moves HotSpot's thread suspend/resume signal (SR_signum) off SIGUSR2. */
    static final String SR_SIGNUM_ENV = "_JAVA_SR_SIGNUM";

    /**
     * SIGUSR2 runs {@code handOver} (docs/handover.md section 1), but only where this JVM's own
     * suspend/resume signal is elsewhere: HotSpot takes SIGUSR2 for it unless {@code _JAVA_SR_SIGNUM}
     * names another signal, and {@code Signal.handle} would then take it over silently (measured
     * on JDK 17 and 25: JFR's execution sampler got no samples and every sampling attempt ran
     * the handler). bin/kdbus-bridge exports one. Otherwise, or if the JVM refuses the handler,
     * one line on stderr, and Reexec and --replace still hand over. Returns whether it is installed.
     */
    static boolean onHandOverSignal(Runnable handOver) {
        String why = usr2Taken(System.getenv(SR_SIGNUM_ENV));
        if (why == null) {
            try {
                Signal.handle(new Signal("USR2"), sig -> handOver.run());
                return true;
            } catch (IllegalArgumentException e) {
                why = e.getMessage();
            }
        }
        System.err.println("kdbus-bridge: SIGUSR2 does not hand over (Reexec and --replace do): " + why);
        return false;
    }

    /** Null if {@code srSignum} (the variable's value) moves the JVM's SR signal off SIGUSR2; else why not. */
    static String usr2Taken(String srSignum) {
        if (srSignum == null) {
            return SR_SIGNUM_ENV + " is not set, so the JVM suspends threads with SIGUSR2";
        }
        int n;
        try {
            n = Integer.parseInt(srSignum.trim());
        } catch (NumberFormatException e) {
            n = -1;
        }
        // HotSpot (17 and 25) takes 12..64 and falls back to SIGUSR2 (12) for anything else.
        if (n < 13 || n > 64) {
            return SR_SIGNUM_ENV + "=" + srSignum + " leaves the JVM's thread suspend signal on SIGUSR2";
        }
        return null;
    }

    private void stop(String signal) {
        if (name == null) {
            name = signal;
        }
        received.countDown();
        if (dieAtOnce) {
            dieBy(signal);
        }
    }

    /**
     * From now until {@link #deferToCaller()}: a stop signal ends the process at once, killed by
     * that signal (nothing of ours exists yet that needs cleaning up); one caught already does
     * so now. The proxy front, while it probes the buses and may still become the real proxy.
     */
    void dieAtOnce() {
        dieAtOnce = true;
        String caught = name;
        if (caught != null) {
            dieBy(caught);
        }
    }

    /** Stop signals are recorded again for the caller to act on ({@link #await}). */
    void deferToCaller() {
        dieAtOnce = false;
    }

    /**
     * Before this process becomes another program (execv): SIGTERM and SIGINT get their default
     * action back, so one that comes from now on kills this process as it would kill that
     * program, and one caught before is raised again, so the caller never execs past it.
     * Returns -1 if none was caught (go on and exec), else the status to exit with should the
     * raised signal not have killed the process (128 + its number, as a shell reports a killed one).
     */
    int beforeExec() {
        for (String sig : new String[] {TERM, INT}) {
            try {
                Signal.handle(new Signal(sig), SignalHandler.SIG_DFL);
            } catch (IllegalArgumentException e) {
                // unavailable: it was never handled here either
            }
        }
        String caught = name;
        return caught == null ? -1 : dieBy(caught);
    }

    /**
     * Ends the process as killed by {@code signal} ("TERM" or "INT"): its default action back
     * (through the JVM), then raised through libc. Returns 128 + its number only if that did not
     * kill the process (the signal blocked).
     */
    private static int dieBy(String signal) {
        int n = INT.equals(signal) ? SIGINT : SIGTERM;
        System.out.flush();
        System.err.flush();
        try {
            Signal.handle(new Signal(signal), SignalHandler.SIG_DFL);
        } catch (IllegalArgumentException e) {
            // not handled here: its action is what it was
        }
        LibC.INSTANCE.raise(n);
        return 128 + n;
    }

    /** Blocks until SIGTERM or SIGINT arrived; returns "TERM" or "INT". */
    String await() throws InterruptedException {
        received.await();
        return name;
    }

    /**
     * Ends the process after the clean-up: SIGTERM with status 0, SIGINT by the signal itself.
     * Returns only when the JVM must exit normally (the status to exit with).
     *
     * <p>SIGTERM ends with _exit(0), not System.exit(0): the JVM's exit waits in 10 ms steps for
     * threads still in native code (the service-directory watcher's poll), which made a stop take
     * 10-20 ms. Nothing is left to do at that point: socket files and pid file are gone, the
     * capture file is closed, and the JVM runs with -XX:-UsePerfData (no hsperfdata file to
     * delete). Connections and the loop are not stopped first (BusServer.stopForExit): the
     * kernel closes their fds as the process ends.
     *
     * <p>Except in a JVM that writes a class-data archive or class list at exit (-XX:ArchiveClassesAtExit,
     * -XX:DumpLoadedClassList or
     * -XX:AOTCacheOutput given by hand; bin/kdbus-bridge trains in a run of its own, "train-cache",
     * and never passes them to a bus): the JVM writes it only on a normal exit, so such a start
     * returns and the JVM exits normally, with 0 on SIGTERM and 130 (128 + 2) on SIGINT.
     * {@code trainingCdsArchive}: {@link #trainingCdsArchive()}, read once by the caller.
     */
    static int end(String signal, boolean trainingCdsArchive) {
        boolean interrupt = INT.equals(signal);
        if (trainingCdsArchive) {
            return interrupt ? 130 : 0;
        }
        System.out.flush();
        System.err.flush();
        if (interrupt) {
            // Signal.raise refuses a signal with no Java handler, so the default action is
            // restored through the JVM and the signal raised through libc.
            Signal.handle(new Signal(INT), SignalHandler.SIG_DFL);
            LibC.INSTANCE.raise(SIGINT);
            return 130; // not reached unless SIGINT is blocked
        }
        LibC.INSTANCE._exit(0);
        return 0; // not reached
    }

    /** True if this JVM dumps a class-data archive at exit (only a normal exit writes it). */
    static boolean trainingCdsArchive() {
        String env = System.getenv("JDK_JAVA_OPTIONS") + " " + System.getenv("JAVA_TOOL_OPTIONS");
        if (env.contains("-XX:ArchiveClassesAtExit") || env.contains("-XX:AOTCacheOutput")
                || env.contains("-XX:DumpLoadedClassList")) {
            return true;
        }
        try {
            // NUL-separated argv; read at exit only, so a start pays nothing for it
            String cmdline = new String(Files.readAllBytes(Path.of("/proc/self/cmdline")), StandardCharsets.UTF_8);
            return cmdline.contains("-XX:ArchiveClassesAtExit") || cmdline.contains("-XX:AOTCacheOutput")
                    || cmdline.contains("-XX:DumpLoadedClassList");
        } catch (IOException e) {
            return false;
        }
    }
}
