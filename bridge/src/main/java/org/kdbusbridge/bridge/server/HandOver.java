package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.driver.DBusErrors;
import org.kdbusbridge.bridge.driver.Driver;
import org.kdbusbridge.bridge.handover.FdTable;
import org.kdbusbridge.bridge.handover.Snapshot;
import org.kdbusbridge.bridge.handover.SnapshotReader;
import org.kdbusbridge.bridge.handover.SnapshotWriter;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.core.connection.Connection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Live hand-over, step 2 of docs/handover.md section 8: Extensions1.Reexec snapshots an idle
 * bus into a sealed memfd and execs the launcher again in place (same PID) with the original
 * argv and {@code --kdbus-resume=FD}; only the carried fds and the memfd cross. {@link #resume}
 * is the new program's half. A failure before execve is an error reply and the old bus goes on
 * serving: nothing was stopped, because snapshot and execve happen in one loop task.
 */
public final class HandOver {
    private static final Logger LOG = LoggerFactory.getLogger(HandOver.class);
    /** The launcher exports its own path here (bin/kdbus-bridge): what Reexec execs. */
    public static final String LAUNCHER_ENV = "KDBUS_BRIDGE_LAUNCHER";
    /** The hidden option the new program gets: the snapshot memfd's number. */
    public static final String RESUME_OPTION = "--kdbus-resume=";
    /** How long a refused snapshot is tried again (output being flushed, a reply on its way) before the refusal is the answer. */
    private static final long SETTLE_MS = 500;
    private static final long RETRY_MS = 10;

    private final String launcher;
    private final List<String> argv;
    private boolean running;

    /** {@code launcher}: null when this process was not started by the launcher (Reexec then refuses). */
    public HandOver(String launcher, List<String> argv) {
        this.launcher = launcher;
        this.argv = List.copyOf(argv);
    }

    /** The launcher from the environment, with this process's argv (without any resume option). */
    public static HandOver fromEnvironment(String[] argv) {
        List<String> args = new ArrayList<>();
        for (String a : argv) {
            if (!a.startsWith(RESUME_OPTION)) {
                args.add(a);
            }
        }
        String l = System.getenv(LAUNCHER_ENV);
        return new HandOver(l == null || l.isEmpty() ? null : l, args);
    }

    /** Loop thread (the driver's Reexec): null when started, else why not. */
    String request(BusServer server, Connection caller, long serial) {
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
        long until = System.nanoTime() + SETTLE_MS * 1_000_000;
        // A later task: the step that read the call finishes (and flushes) first.
        server.loop().execute(() -> attempt(server, caller, serial, until));
        return null;
    }

    /** Loop thread: snapshot, memfd, execve; returns only if one of them failed. */
    private void attempt(BusServer server, Connection caller, long serial, long until) {
        Snapshot snap;
        try {
            snap = HandOverRestore.capture(server);
        } catch (Snapshot.Refused r) {
            if (System.nanoTime() < until) {
                server.loop().schedule(RETRY_MS, () -> attempt(server, caller, serial, until));
            } else {
                fail(server, caller, serial, "the bus is not idle enough to hand over yet: " + String.join("; ", r.reasons()));
            }
            return;
        } catch (RuntimeException e) {
            fail(server, caller, serial, "snapshot failed: " + e);
            return;
        }
        snap = snap.withRequest(new Snapshot.Request(caller.id(), serial, "reexec"));
        int memfd;
        try {
            memfd = SnapshotWriter.toSealedMemfd(snap);
        } catch (IOException | RuntimeException e) {
            fail(server, caller, serial, "cannot write the snapshot memfd: " + e.getMessage());
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
        LOG.info("hand-over: exec {} with {} connections, {} fds carried", launcher, snap.connections().size(), keep.length);
        System.out.flush();
        System.err.flush();
        int r = LibC.Native.execveKeeping(launcher, args, keep);
        // Still here: execve failed, and execveKeeping put CLOEXEC, the mask and the signals back.
        LibC.INSTANCE.close(memfd);
        fail(server, caller, serial, "execve " + launcher + " failed: " + LibC.Native.strerror(-r));
    }

    private void fail(BusServer server, Connection caller, long serial, String why) {
        running = false;
        LOG.warn("hand-over failed, this bus keeps serving: {}", why);
        if (!caller.isClosed()) {
            server.driver().emitter().error(caller, serial, DBusErrors.HAND_OVER_FAILED, why);
        }
    }

    /**
     * The new program (--kdbus-resume=FD): reads the snapshot from the memfd, checks that this
     * is the same process (execve keeps the PID), rebuilds the bus over the inherited fds
     * ({@code configure} runs on the new server before it serves), makes the carried fds
     * close-on-exec again so no later child inherits them, runs {@code ready} (signal handlers),
     * and only then answers the Reexec call with {@code ()}.
     */
    public static BusServer resume(int memfd, BusConfig config, TransportSettings transport, String[] argv,
            Consumer<BusServer> configure, Consumer<BusServer> ready) throws IOException {
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
            s.setHandOver(fromEnvironment(argv));
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
            LOG.info("hand-over from {} done: {} connections, pause {} ms (restore {} ms)", snap.bus().writerVersion(),
                    snap.connections().size(), pauseMs, (System.nanoTime() - t0) / 1_000_000);
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
