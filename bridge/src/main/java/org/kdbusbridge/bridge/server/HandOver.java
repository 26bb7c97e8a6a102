package org.kdbusbridge.bridge.server;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.driver.DBusErrors;
import org.kdbusbridge.bridge.driver.Driver;
import org.kdbusbridge.bridge.handover.FdTable;
import org.kdbusbridge.bridge.handover.Snapshot;
import org.kdbusbridge.bridge.handover.SnapshotReader;
import org.kdbusbridge.bridge.handover.SnapshotWriter;
import org.kdbusbridge.bridge.memfd.SealedMemfd;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.core.connection.Connection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Live hand-over (docs/handover.md sections 1, 5 and 8, steps 2 and 3): Extensions1.Reexec or
 * SIGUSR2 snapshots an idle bus, runs the new program in check mode on a trial copy of that
 * snapshot (a child process, waited for off the loop, which keeps serving), and only if the
 * check passes snapshots again into a sealed memfd and execs the launcher in place (same PID)
 * with the original argv and {@code --kdbus-resume=FD}; only the carried fds and the memfd cross.
 * {@link #resume} is the new program's half, {@link #check} the check's. Every failure before
 * execve is one abort path ({@link #fail}): an error reply to the requester, one log line, and
 * the old bus goes on serving. Nothing was paused to undo: each snapshot, and the real one with
 * its execve, is one loop task, so the loop never stops reading or accepting before the point
 * of no return.
 */
public final class HandOver {
    private static final Logger LOG = LoggerFactory.getLogger(HandOver.class);
    /** The launcher exports its own path here (bin/kdbus-bridge): what Reexec execs. */
    public static final String LAUNCHER_ENV = "KDBUS_BRIDGE_LAUNCHER";
    /** The hidden option the new program gets: the snapshot memfd's number. */
    public static final String RESUME_OPTION = "--kdbus-resume=";
    /** The hidden option of the check run: the trial snapshot on stdin, a verdict on stdout/stderr. */
    public static final String CHECK_OPTION = "--kdbus-handover-check";
    /** What a passed check prints on stdout, then the snapshot format it read. */
    public static final String CHECK_OK = "ok ";
    /** How a failed check's one line on stderr begins. */
    public static final String CHECK_FAILED = "kdbus-bridge hand-over check: ";
    private static final long RETRY_MS = 10;
    /** Variables of this bus the check run does not get: it binds, adopts and notifies nothing. */
    private static final List<String> NOT_FOR_CHECK = List.of("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET");

    /** Who asked: a Reexec call owed the answer, or {@link #SIGNAL} (nobody: the result is only logged). */
    public record Requester(Connection caller, long serial, String reason) {
        /** SIGUSR2. */
        public static final Requester SIGNAL = new Requester(null, 0, "signal");

        static Requester reexec(Connection caller, long serial) {
            return new Requester(caller, serial, "reexec");
        }

        Snapshot.Request asRequest(long checkMs) {
            return new Snapshot.Request(caller == null ? 0 : caller.id(), serial, reason, checkMs);
        }
    }

    private final String launcher;
    private final List<String> argv;
    private final HandOverSettings settings;
    private boolean running;

    /** {@code launcher}: null when this process was not started by the launcher (Reexec then refuses). */
    public HandOver(String launcher, List<String> argv, HandOverSettings settings) {
        this.launcher = launcher;
        this.argv = List.copyOf(argv);
        this.settings = settings;
    }

    /** The launcher from the environment, with this process's argv (without any resume option). */
    public static HandOver fromEnvironment(String[] argv, HandOverSettings settings) {
        List<String> args = new ArrayList<>();
        for (String a : argv) {
            if (!a.startsWith(RESUME_OPTION) && !a.equals(CHECK_OPTION)) {
                args.add(a);
            }
        }
        String l = System.getenv(LAUNCHER_ENV);
        return new HandOver(l == null || l.isEmpty() ? null : l, args, settings);
    }

    /** Whether this bus was started by the launcher at all (else Reexec refuses, and SIGUSR2 is left alone). */
    public boolean possible() {
        return launcher != null;
    }

    /** Loop thread (Reexec, or SIGUSR2 through the loop): null when started, else why not. */
    String request(BusServer server, Requester who) {
        if (running) {
            return Driver.HAND_OVER_BUSY;
        }
        if (launcher == null) {
            return "this bus was not started by the kdbus-bridge launcher (" + LAUNCHER_ENV + " is not set)";
        }
        if (!Files.isExecutable(Path.of(launcher))) {
            return "the launcher " + launcher + " is not an executable file";
        }
        String unsupported = LibC.Native.handOverUnsupported();
        if (unsupported != null) {
            return unsupported;
        }
        running = true;
        long until = System.nanoTime() + settings.settleMs() * 1_000_000;
        // A later task: the step that read the call finishes (and flushes) first.
        server.loop().execute(() -> trial(server, who, until));
        return null;
    }

    /** Loop thread, Q0: the trial snapshot (retried while refused), then the check on a thread of its own. */
    private void trial(BusServer server, Requester who, long until) {
        Snapshot snap = capture(server, who, "", until, () -> trial(server, who, until));
        if (snap == null) {
            return;
        }
        int memfd;
        try {
            if (settings.fails(HandOverSettings.FAULT_TRIAL)) {
                throw new IOException("fault injected (kdbus.handOverFault=trial)");
            }
            memfd = SealedMemfd.create("kdbus-handover-trial", SnapshotWriter.write(snap.withRequest(who.asRequest(-1))), true);
        } catch (IOException | RuntimeException e) {
            fail(server, who, "cannot write the trial snapshot: " + e.getMessage());
            return;
        }
        long t0 = System.nanoTime();
        Thread t = new Thread(() -> {
            String failure = runCheck(memfd);
            long checkMs = (System.nanoTime() - t0) / 1_000_000;
            server.loop().execute(() -> {
                if (failure != null) {
                    fail(server, who, failure);
                } else {
                    long again = System.nanoTime() + settings.settleMs() * 1_000_000;
                    attempt(server, who, again, checkMs);
                }
            });
        }, "kdbus-handover-check");
        t.setDaemon(true);
        t.start();
    }

    /**
     * Check thread: runs {@code <launcher> <argv> --kdbus-handover-check} with the trial snapshot
     * on stdin (the memfd, opened again read-only; closed here once the child has it) and waits
     * for it, at most {@link HandOverSettings#checkTimeoutMs}. Null if it printed "ok FORMAT" for
     * this writer's format and exited 0; else why not, with the last line of its stderr.
     */
    private String runCheck(int memfd) {
        List<String> cmd = new ArrayList<>(argv.size() + 2);
        cmd.add(launcher);
        cmd.addAll(argv);
        cmd.add(CHECK_OPTION);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        NOT_FOR_CHECK.forEach(pb.environment()::remove);
        pb.redirectInput(new File("/proc/self/fd/" + memfd));
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            return "cannot run the check " + launcher + ": " + e.getMessage();
        } finally {
            LibC.INSTANCE.close(memfd);
        }
        TailReader out = new TailReader(p.getInputStream(), "stdout");
        TailReader err = new TailReader(p.getErrorStream(), "stderr");
        out.start();
        err.start();
        try {
            if (!p.waitFor(settings.checkTimeoutMs(), TimeUnit.MILLISECONDS)) {
                // The launcher's JVM, or a wrapper's children, too: whatever holds its pipes.
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                p.waitFor();
                return "the check " + launcher + " did not finish in " + settings.checkTimeoutMs() + " ms";
            }
            // Its output ends with it (a grandchild holding the pipes open is given the same time).
            out.join(settings.checkTimeoutMs());
            err.join(settings.checkTimeoutMs());
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            return "interrupted while the check ran";
        }
        int status = p.exitValue();
        String said = out.lastLine();
        if (status == 0 && said.startsWith(CHECK_OK)) {
            // "ok N": the new program writes format N, so it reads N and N - 1 (section 7).
            int n;
            try {
                n = Integer.parseInt(said.substring(CHECK_OK.length()).trim());
            } catch (NumberFormatException e) {
                n = -1;
            }
            if (n == SnapshotWriter.FORMAT || n == SnapshotWriter.FORMAT + 1) {
                return null;
            }
            if (n > SnapshotWriter.FORMAT) {
                return "the new program writes snapshot format " + n + " and reads formats " + n + " and " + (n - 1)
                        + " only, not this bus's format " + SnapshotWriter.FORMAT;
            }
        }
        String why = err.lastLine();
        if (why.startsWith(CHECK_FAILED)) {
            why = why.substring(CHECK_FAILED.length());
        }
        if (status == 0) {
            return "the new program's check said '" + said + "'" + ", this bus writes " + SnapshotWriter.FORMAT
                    + (why.isEmpty() ? "" : ": " + why);
        }
        return "the new program's check failed (exit status " + status + ")" + (why.isEmpty() ? "" : ": " + why);
    }

    /** Reads a child's stdout or stderr to its end, keeping the last non-empty line (bounded). */
    private static final class TailReader extends Thread {
        private final InputStream in;
        private volatile String last = "";

        TailReader(InputStream in, String what) {
            super("kdbus-handover-check-" + what);
            setDaemon(true);
            this.in = in;
        }

        @Override
        public void run() {
            try (var r = new java.io.BufferedReader(new java.io.InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String l = r.readLine(); l != null; l = r.readLine()) {
                    if (!l.isBlank()) {
                        last = l.length() > 1000 ? l.substring(0, 1000) : l.strip();
                    }
                }
            } catch (IOException e) {
                // the child is gone: what was read stands
            }
        }

        String lastLine() {
            return last;
        }
    }

    /**
     * Loop thread: a snapshot, or null after scheduling {@code retry} (refused, within the settle
     * time) or failing the hand-over (refused past it, or broken).
     */
    private Snapshot capture(BusServer server, Requester who, String prefix, long until, Runnable retry) {
        try {
            return HandOverRestore.capture(server);
        } catch (Snapshot.Refused r) {
            if (System.nanoTime() < until) {
                server.loop().schedule(RETRY_MS, retry);
            } else {
                fail(server, who, prefix + "the bus is not idle enough to hand over yet: " + String.join("; ", r.reasons()));
            }
        } catch (RuntimeException e) {
            fail(server, who, prefix + "snapshot failed: " + e);
        }
        return null;
    }

    /** Loop thread, after a passed check: snapshot, memfd, execve; returns only if one of them failed. */
    private void attempt(BusServer server, Requester who, long until, long checkMs) {
        String passed = "the check passed in " + checkMs + " ms, then ";
        Snapshot snap = capture(server, who, passed, until, () -> attempt(server, who, until, checkMs));
        if (snap == null) {
            return;
        }
        snap = snap.withRequest(who.asRequest(checkMs));
        int memfd;
        try {
            if (settings.fails(HandOverSettings.FAULT_SNAPSHOT)) {
                throw new IOException("fault injected (kdbus.handOverFault=snapshot)");
            }
            memfd = SnapshotWriter.toSealedMemfd(snap);
        } catch (IOException | RuntimeException e) {
            fail(server, who, passed + "cannot write the snapshot memfd: " + e.getMessage());
            return;
        }
        int[] keep = new int[snap.fds().size() + 1];
        for (int i = 0; i < snap.fds().size(); i++) {
            keep[i] = snap.fds().get(i).fd();
        }
        keep[keep.length - 1] = memfd;
        List<String> args = new ArrayList<>(argv.size() + 2);
        args.add(launcher);
        args.addAll(argv);
        args.add(RESUME_OPTION + memfd);
        // No line before the exec: a successful one is logged by the new program (with checkMs,
        // carried in REQUEST), a failed one below; either way the hand-over is one line.
        System.out.flush();
        System.err.flush();
        int r = LibC.Native.execveKeeping(launcher, args, keep);
        // Still here: execve failed, and execveKeeping put CLOEXEC, the mask and the signals back.
        LibC.INSTANCE.close(memfd);
        fail(server, who, passed + "execve " + launcher + " failed: " + LibC.Native.strerror(-r));
    }

    /**
     * The abort path, loop thread: the hand-over is over, the requester (if any, and still
     * connected) gets HandOverFailed with {@code why}, and one line is logged. The memfds are
     * closed by the phase that made them; the loop kept reading and accepting throughout.
     */
    private void fail(BusServer server, Requester who, String why) {
        running = false;
        LOG.warn("hand-over ({}) failed, this bus keeps serving: {}", who.reason(), why);
        if (who.caller() != null && !who.caller().isClosed()) {
            server.driver().emitter().error(who.caller(), who.serial(), DBusErrors.HAND_OVER_FAILED, why);
        }
    }

    /**
     * Check mode (the child, docs/handover.md section 5): decodes the trial snapshot
     * {@code bytes} with this program's reader (magic, format, CRC, every section) and restores it
     * into a bus of its own without sockets ({@link HandOverRestore#restoreOffline}: policy
     * compiled from {@code config}, the core's invariants). Returns the line to print on success;
     * throws {@link IllegalArgumentException} or {@link IllegalStateException} naming the failure.
     */
    public static String check(byte[] bytes, BusConfig config) {
        Snapshot snap;
        try {
            snap = SnapshotReader.read(bytes);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("snapshot: " + e.getMessage(), e);
        }
        try {
            HandOverRestore.restoreOffline(snap, config);
        } catch (RuntimeException e) {
            throw new IllegalStateException("restore: " + e.getMessage(), e);
        }
        return CHECK_OK + SnapshotWriter.FORMAT;
    }

    /**
     * The new program (--kdbus-resume=FD): reads the snapshot from the memfd, checks that this
     * is the same process (execve keeps the PID), rebuilds the bus over the inherited fds
     * ({@code configure} runs on the new server before it serves), makes the carried fds
     * close-on-exec again so no later child inherits them, runs {@code ready} (signal handlers),
     * and only then answers the Reexec call with {@code ()}.
     */
    public static BusServer resume(int memfd, BusConfig config, TransportSettings transport, String[] argv,
            HandOverSettings settings, Consumer<BusServer> configure, Consumer<BusServer> ready) throws IOException {
        long t0 = System.nanoTime();
        Snapshot snap;
        try {
            snap = SnapshotReader.readSealedMemfd(memfd);
        } catch (IllegalArgumentException e) {
            throw new IOException("hand-over snapshot: " + e.getMessage(), e);
        }
        long pid = ProcessHandle.current().pid();
        if (snap.bus().busPid() != pid) {
            throw new IOException("hand-over snapshot was written by pid " + snap.bus().busPid() + ", this is " + pid);
        }
        BusServer server = HandOverRestore.restore(snap, config, transport, s -> {
            configure.accept(s);
            s.setHandOver(fromEnvironment(argv, settings));
        });
        LibC.INSTANCE.close(memfd);
        for (FdTable.Entry e : snap.fds()) {
            LibC.INSTANCE.fcntl(e.fd(), LibC.F_SETFD, LibC.FD_CLOEXEC);
        }
        ready.accept(server);
        Snapshot.Request req = snap.request();
        long pauseMs = (System.nanoTime() - snap.bus().writtenAtMonotonicNs()) / 1_000_000;
        server.loop().execute(() -> {
            if (req != null) {
                Connection c = byId(server, req.connectionId());
                if (c != null) {
                    server.driver().emitter().replyEmpty(c, req.serial());
                }
            }
            // The one line of a successful hand-over (HandOverRestore logs none of its own).
            int entries = 0;
            for (Snapshot.Pool p : snap.pools()) {
                entries += p.messages().length;
            }
            // Step 5: the partial I/O that crossed (input bytes, connections before Hello, fds, output bytes).
            long input = 0;
            long committed = 0;
            int beforeHello = 0;
            int fds = 0;
            for (Snapshot.Session x : snap.sessions()) {
                input += x.io().input().length;
                committed += x.committed().length;
                fds += x.io().pendingFdIndexes().length + x.io().committedFdIndexes().length;
            }
            for (Snapshot.Conn x : snap.connections()) {
                beforeHello += x.uniqueName() == null ? 1 : 0;
            }
            LOG.info("hand-over ({}) from {} done: {} connections, {} names, check {} ms, pause {} ms (restore {} ms);"
                    + " carried {} queued messages in {} pool entries, {} reply slots; partial I/O: {} bytes of input,"
                    + " {} connections before Hello, {} unclaimed or unsent fds, {} bytes of committed output",
                    req == null ? "?" : req.reason(), snap.bus().writerVersion(), snap.connections().size(),
                    snap.names().size(), req == null ? -1 : req.checkMs(), pauseMs, (System.nanoTime() - t0) / 1_000_000,
                    snap.messages().size(), entries, snap.replySlots().size(), input, beforeHello, fds, committed);
        });
        return server;
    }

    private static Connection byId(BusServer server, long id) {
        for (Connection c : server.bus().activeConnections()) {
            if (c.id() == id) {
                return c;
            }
        }
        return null;
    }
}
