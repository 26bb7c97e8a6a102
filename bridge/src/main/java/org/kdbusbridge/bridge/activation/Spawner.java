// Invariants: no method blocks its caller: spawn() only copies its arguments and queues the
// fork/exec on the spawner's own single worker thread, so it is safe to call on the event loop.
// Listener callbacks come from the spawner's worker thread (never the caller's), exactly one
// terminal callback per spawn(): onExecFailed, or onSpawned followed later by onExited or
// onSignaled. Children are reaped by the JDK (Process.onExit). After shutdown() no callback
// starts; running children are left alone (dbus-daemon does not kill its services either).
package org.kdbusbridge.bridge.activation;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.kdbusbridge.bridge.transport.LibC;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starts activated services the way dbus-daemon's traditional (non-systemd, no launch helper)
 * activation does, off the event loop.
 *
 * <p>Environment: the bus's own environment (see {@link #busEnvironment}) overlaid with the
 * activation environment (UpdateActivationEnvironment), overlaid with
 * {@code DBUS_STARTER_ADDRESS}, {@code DBUS_STARTER_BUS_TYPE} and, for "session"/"system",
 * {@code DBUS_SESSION_BUS_ADDRESS}/{@code DBUS_SYSTEM_BUS_ADDRESS}, the same precedence as
 * dbus-daemon. stdin is /dev/null, stdout and stderr are inherited.
 *
 * <p>argv[0] is executed as a path like dbus-daemon's execve(): it is NOT looked up in PATH; a
 * name without '/' is relative to the working directory (run as {@code ./name}, so the child
 * sees that as argv[0]). {@code User=} is not used here: on the session bus dbus-daemon ignores it,
 * and the system bus's setuid launch helper is not implemented.
 *
 * <p>Signal vs exit: Java reports a child killed by signal N as exit value 128+N and reaps it
 * itself, so the two can't be told apart exactly. Heuristic: an exit value in 129..192 (128 + a
 * Linux signal 1..64) is reported as {@link Listener#onSignaled}. A service that really calls
 * exit(129..192) is therefore reported as signalled; shells report a child killed by a signal
 * the same way, so that case reads naturally.
 */
public final class Spawner {

    public static final String ERROR_EXEC_FAILED = "org.freedesktop.DBus.Error.Spawn.ExecFailed";
    public static final String ERROR_CHILD_EXITED = "org.freedesktop.DBus.Error.Spawn.ChildExited";
    public static final String ERROR_CHILD_SIGNALED = "org.freedesktop.DBus.Error.Spawn.ChildSignaled";

    /**
     * Variables dbus-daemon removes from its own environment before passing it on, and two of our
     * launcher's that describe this bus only: KDBUS_BRIDGE_LAUNCHER (what a hand-over execs) and
     * _JAVA_SR_SIGNUM (which moves this JVM's thread suspend/resume signal off SIGUSR2,
     * docs/handover.md section 1; a Java service keeps its own JVM's default).
     */
    public static final List<String> NOT_INHERITED = List.of(
            "JOURNAL_STREAM", "LISTEN_FDNAMES", "LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET", "INVOCATION_ID",
            "KDBUS_BRIDGE_LAUNCHER", "_JAVA_SR_SIGNUM");

    private static final Logger LOG = LoggerFactory.getLogger(Spawner.class);
    /** JDK 17: "...: error=2, No such file or directory"; JDK 25: "...: Exec failed, error: 2 (No such file or directory) ". */
    private static final Pattern JAVA_ERRNO = Pattern.compile("error=(\\d+), (.*)$|error: (\\d+) \\((.*)\\)\\s*$");
    private static final File DEV_NULL = new File("/dev/null");

    /** Outcome callbacks, called on the spawner's thread; hop to the loop with EventLoop.execute. */
    public interface Listener {
        /** The process started. */
        void onSpawned(String name, long pid);

        /**
         * It could not be started: reply {@link #ERROR_EXEC_FAILED} with {@code message}
         * ("Failed to execute program NAME: REASON").
         */
        void onExecFailed(String name, String message);

        /**
         * It exited. A 0 status is not a failure (the service may have daemonised); otherwise
         * reply {@link #ERROR_CHILD_EXITED} with {@link Spawner#childExitedMessage}.
         */
        void onExited(String name, long pid, int exitCode);

        /** It was killed: reply {@link #ERROR_CHILD_SIGNALED} with {@link Spawner#childSignaledMessage}. */
        void onSignaled(String name, long pid, int signal);
    }

    private final String busAddress;
    private final String busType;
    private final Map<String, String> busEnvironment;
    private final File directory;
    private final ProcessBuilder.Redirect stdout;
    private final ProcessBuilder.Redirect stderr;
    private final ChildStdio stdio;
    private final Listener listener;
    private final ExecutorService worker;
    private volatile boolean shutdown;
    private volatile Thread workerThread;

    /**
     * @param busAddress     the address services should connect to (DBUS_STARTER_ADDRESS)
     * @param busType        the config's {@code <type>} ("session", "system", other) or null
     *                       (then DBUS_STARTER_BUS_TYPE is not set, like dbus-daemon)
     * @param busEnvironment the bus's inherited environment, usually
     *                       {@code busEnvironment(System.getenv())}; copied
     * @param listener       receives the outcomes
     */
    public Spawner(String busAddress, String busType, Map<String, String> busEnvironment, Listener listener) {
        this(busAddress, busType, busEnvironment, null, ProcessBuilder.Redirect.INHERIT, ProcessBuilder.Redirect.INHERIT,
                listener);
    }

    /**
     * As above, the children started in {@code directory} (null: this process's) with stdout and
     * stderr sent to {@code stdout} and {@code stderr} (a hosted bus: its front's descriptors).
     */
    public Spawner(String busAddress, String busType, Map<String, String> busEnvironment, File directory,
                   ProcessBuilder.Redirect stdout, ProcessBuilder.Redirect stderr, Listener listener) {
        this(busAddress, busType, busEnvironment, directory, stdout, stderr, null, listener);
    }

    /**
     * As above; with {@code stdio} (a hosted bus) the children get those very descriptors as
     * stdout and stderr through the native spawn, {@code stdout}/{@code stderr} only where it is
     * missing (jnr-ffi).
     */
    public Spawner(String busAddress, String busType, Map<String, String> busEnvironment, File directory,
                   ProcessBuilder.Redirect stdout, ProcessBuilder.Redirect stderr, ChildStdio stdio,
                   Listener listener) {
        this.stdio = stdio;
        this.directory = directory;
        this.stdout = Objects.requireNonNull(stdout, "stdout");
        this.stderr = Objects.requireNonNull(stderr, "stderr");
        this.busAddress = Objects.requireNonNull(busAddress, "busAddress");
        this.busType = busType;
        this.busEnvironment = Map.copyOf(busEnvironment);
        this.listener = Objects.requireNonNull(listener, "listener");
        this.worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "activation-spawner");
            t.setDaemon(true);
            workerThread = t;
            return t;
        });
    }

    /** {@code env} without the variables that describe dbus-daemon itself ({@link #NOT_INHERITED}). */
    public static Map<String, String> busEnvironment(Map<String, String> env) {
        Map<String, String> m = new HashMap<>(env);
        NOT_INHERITED.forEach(m::remove);
        return Map.copyOf(m);
    }

    /** dbus-daemon's text for {@link #ERROR_EXEC_FAILED}. */
    public static String execFailedMessage(String name, String reason) {
        return "Failed to execute program " + name + ": " + reason;
    }

    /** dbus-daemon's text for {@link #ERROR_CHILD_EXITED}. */
    public static String childExitedMessage(String name, int exitCode) {
        return "Process " + name + " exited with status " + exitCode;
    }

    /** dbus-daemon's text for {@link #ERROR_CHILD_SIGNALED}. */
    public static String childSignaledMessage(String name, int signal) {
        return "Process " + name + " received signal " + signal;
    }

    /** The environment a service started now would get (for tests and diagnostics). */
    public Map<String, String> environmentFor(Map<String, String> activationEnvironment) {
        Map<String, String> env = new HashMap<>(busEnvironment);
        env.putAll(activationEnvironment);
        env.put("DBUS_STARTER_ADDRESS", busAddress);
        if (busType != null) {
            env.put("DBUS_STARTER_BUS_TYPE", busType);
            if (busType.equals("session")) {
                env.put("DBUS_SESSION_BUS_ADDRESS", busAddress);
            } else if (busType.equals("system")) {
                env.put("DBUS_SYSTEM_BUS_ADDRESS", busAddress);
            }
        }
        return env;
    }

    /**
     * Starts {@code argv} for the service {@code name} (used in messages, like dbus-daemon's
     * log name). Returns at once; the outcome goes to the listener. Thread-safe.
     *
     * @throws IllegalStateException after {@link #shutdown()}
     */
    public void spawn(String name, List<String> argv, Map<String, String> activationEnvironment) {
        Objects.requireNonNull(name, "name");
        List<String> args = List.copyOf(argv);
        if (args.isEmpty()) {
            throw new IllegalArgumentException("empty argv");
        }
        Map<String, String> env = environmentFor(activationEnvironment);
        try {
            worker.execute(() -> start(name, args, env));
        } catch (RejectedExecutionException e) {
            throw new IllegalStateException("spawner is shut down", e);
        }
    }

    private void start(String name, List<String> argv, Map<String, String> env) {
        if (shutdown) {
            return;
        }
        String program = argv.get(0);
        if (program.isEmpty()) {
            report(() -> listener.onExecFailed(name, execFailedMessage(name, "No such file or directory")));
            return;
        }
        List<String> cmd = new ArrayList<>(argv);
        if (program.indexOf('/') < 0) {
            cmd.set(0, "./" + program); // execve semantics: no PATH search
        }
        if (stdio != null && startInheriting(name, cmd, env)) {
            return;
        }
        ProcessBuilder pb = new ProcessBuilder(cmd)
                .redirectInput(ProcessBuilder.Redirect.from(DEV_NULL))
                .redirectOutput(stdout)
                .redirectError(stderr)
                .directory(directory);
        Map<String, String> penv = pb.environment();
        penv.clear();
        penv.putAll(env);
        Process p;
        try {
            p = pb.start();
        } catch (IOException | RuntimeException e) {
            String reason = reason(e);
            LOG.info("Failed to activate service {}: {}", name, reason);
            report(() -> listener.onExecFailed(name, execFailedMessage(name, reason)));
            return;
        }
        long pid = p.pid();
        LOG.debug("activation: started {} as pid {}: {}", name, pid, argv);
        report(() -> listener.onSpawned(name, pid));
        p.onExit().whenComplete((proc, err) -> {
            int code = proc != null ? proc.exitValue() : -1;
            try {
                worker.execute(() -> exited(name, pid, code));
            } catch (RejectedExecutionException e) {
                // shut down: no more callbacks
            }
        });
    }

    /**
     * A hosted bus's service, started natively with its front's descriptors as stdout/stderr and
     * reaped through a pidfd, so exit status and signal are told apart exactly. False when the
     * native spawn is missing here (the caller uses ProcessBuilder).
     */
    private boolean startInheriting(String name, List<String> cmd, Map<String, String> env) {
        int[] fds = stdio.acquire();
        if (fds == null) {
            // the bus has ended: its front's descriptors are gone, nothing starts
            report(() -> listener.onExecFailed(name, execFailedMessage(name, "the bus has ended")));
            return true;
        }
        List<String> envList = new ArrayList<>(env.size());
        env.forEach((k, v) -> envList.add(k + "=" + v));
        int pid;
        try {
            pid = LibC.Native.spawn(cmd.get(0), cmd, envList, directory == null ? null : directory.getPath(), fds[0],
                    fds[1]);
        } finally {
            stdio.release();
        }
        if (pid == -LibC.ENOSYS) {
            return false;
        }
        if (pid < 0) {
            String reason = errnoText(-pid);
            LOG.info("Failed to activate service {}: {}", name, reason);
            report(() -> listener.onExecFailed(name, execFailedMessage(name, reason)));
            return true;
        }
        int pidfd = LibC.Native.pidfdOpen(pid); // not reaped by anyone else: a zombie still has one
        LOG.debug("activation: started {} as pid {}: {}", name, pid, cmd);
        report(() -> listener.onSpawned(name, pid));
        if (pidfd < 0) {
            LOG.warn("activation: no pidfd for {} (pid {}): {}; its end is not reported", name, pid, errnoText(-pidfd));
            return true;
        }
        Thread reaper = new Thread(null, () -> reap(name, pid, pidfd), "activation-reaper", 64 * 1024);
        reaper.setDaemon(true);
        reaper.start();
        return true;
    }

    /** On the child's own thread, as the JDK reaps its children: waits, then reports on the worker. */
    private void reap(String name, long pid, int pidfd) {
        int[] info = new int[3];
        int r;
        do {
            r = LibC.Native.waitidPidfd(pidfd, 0, info);
        } while (r == -LibC.EINTR);
        LibC.INSTANCE.close(pidfd);
        if (r != 0) {
            return;
        }
        boolean signaled = info[0] == CLD_KILLED || info[0] == CLD_DUMPED;
        int status = info[1];
        try {
            worker.execute(() -> {
                if (signaled) {
                    LOG.debug("activation: {} (pid {}) killed by signal {}", name, pid, status);
                    report(() -> listener.onSignaled(name, pid, status));
                } else {
                    LOG.debug("activation: {} (pid {}) exited with status {}", name, pid, status);
                    report(() -> listener.onExited(name, pid, status));
                }
            });
        } catch (RejectedExecutionException e) {
            // shut down: no more callbacks
        }
    }

    private static final int CLD_KILLED = 2;
    private static final int CLD_DUMPED = 3;

    /** strerror's text for errno (dbus-daemon's messages carry it bare). */
    static String errnoText(int errno) {
        jnr.constants.platform.Errno e = jnr.constants.platform.Errno.valueOf(errno);
        if (e == null || e == jnr.constants.platform.Errno.__UNKNOWN_CONSTANT__) {
            return "errno " + errno;
        }
        return e.description();
    }

    private void exited(String name, long pid, int code) {
        if (code > 128 && code <= 128 + 64) {
            LOG.debug("activation: {} (pid {}) killed by signal {}", name, pid, code - 128);
            report(() -> listener.onSignaled(name, pid, code - 128));
        } else {
            LOG.debug("activation: {} (pid {}) exited with status {}", name, pid, code);
            report(() -> listener.onExited(name, pid, code));
        }
    }

    private void report(Runnable callback) {
        if (shutdown) {
            return;
        }
        try {
            callback.run();
        } catch (RuntimeException e) {
            LOG.error("activation listener threw", e);
        }
    }

    /** strerror text from Java's "Cannot run program ..." message (JDK 17's and JDK 25's forms). */
    static String reason(Exception e) {
        String msg = e.getMessage();
        if (msg != null) {
            Matcher m = JAVA_ERRNO.matcher(msg);
            if (m.find()) {
                return m.group(2) != null ? m.group(2) : m.group(4);
            }
            return msg;
        }
        return e.toString();
    }

    /**
     * Stops reporting and the worker thread. Children already running keep running and are still
     * reaped by the JDK. Waits briefly for an in-flight fork to finish. Idempotent.
     */
    public void shutdown() {
        shutdown = true;
        worker.shutdown();
        if (Thread.currentThread() == workerThread) {
            return; // called from a listener: can't wait for ourselves
        }
        try {
            worker.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
