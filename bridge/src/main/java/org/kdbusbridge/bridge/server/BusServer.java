package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.kdbusbridge.bridge.activation.ActivationManager;
import org.kdbusbridge.bridge.activation.ServiceDir;
import org.kdbusbridge.bridge.capture.CaptureSink;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.driver.DBusErrors;
import org.kdbusbridge.bridge.driver.Driver;
import org.kdbusbridge.bridge.driver.RoutingErrors;
import org.kdbusbridge.bridge.protocol.SaslServer;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.bridge.transport.SystemdSockets;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.bridge.transport.UnixListener;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.bus.DeadReply;
import org.kdbusbridge.core.bus.Disconnect;
import org.kdbusbridge.core.bus.UserQuota;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One running bus: listeners, the event loop, the core and the driver, wired together.
 *
 * Threading: everything after {@link #start()} runs on one event-loop thread; no thread per
 * connection, no blocking I/O. Other threads talk to it only through {@link EventLoop#execute}.
 * Invariants: connection counters match the live sessions; a closed session's name changes
 * and NoReply errors are emitted in the same loop step as its close; every authenticated
 * connection holds the policy compiled from the current config for its uid (compiled at
 * authentication, recompiled for all in the reload step that swaps the config).
 */
public final class BusServer implements Driver.Host {
    private static final Logger LOG = LoggerFactory.getLogger(BusServer.class);

    /** Replaced as a whole on reload; listeners keep their original addresses, as in dbus-daemon. */
    private volatile BusConfig config;
    private java.util.function.Supplier<BusConfig> reloader;
    private final BusLimits limits;
    private final Bus bus;
    /** Heap held by sessions' input outside the shared buffers (carries, heap frames, SASL lines). */
    private final InputHeap inputHeap;
    private final Driver driver;
    /** The D-Bus error for each refused routing result (the driver's texts). */
    private final RoutingErrors routingErrors;
    private final String guid;
    /** Transport tuning for this bus (its loop and every session), fixed for its life. */
    private final TransportSettings transport;
    private final EventLoop loop;
    private final List<UnixListener> listeners = new ArrayList<>();
    private final ArrayDeque<ClientSession> dirty = new ArrayDeque<>();
    private final java.util.Set<ClientSession> sessions = new java.util.LinkedHashSet<>();
    private final long busPid = ProcessHandle.current().pid();
    private volatile String address;
    private ActivationManager activation;
    private CaptureSink capture;

    /** A server with {@link TransportSettings#fromSystemProperties()} (see the next constructor). */
    public BusServer(BusConfig config) {
        this(config, TransportSettings.fromSystemProperties());
    }

    /**
     * A server whose per-uid quotas come from this JVM's heap and the process's fd limit, the
     * per-uid parts overridable by {@code -Dkdbus.userQuotaBytes} (rules, names, reply slots) and
     * {@code -Dkdbus.queueQuotaBytes} (queued messages); see {@link UserQuota#forHeap(long, String, String, long)}.
     */
    public BusServer(BusConfig config, TransportSettings transport) {
        this(config, UserQuota.forHeap(Runtime.getRuntime().maxMemory(),
                System.getProperty(UserQuota.PER_USER_PROPERTY), System.getProperty(UserQuota.QUEUE_PER_USER_PROPERTY),
                fdLimit()), transport);
    }

    /** RLIMIT_NOFILE as the JVM sees it (it raises the soft limit to the hard one at start), or 0 if unknown. */
    private static long fdLimit() {
        return ProcessFacts.openFilesLimit();
    }

    public BusServer(BusConfig config, UserQuota quota, TransportSettings transport) {
        this(config, quota, new DirectBuffers(transport.ioBuffers()), transport);
    }

    /**
     * {@code buffers}: the bus's direct buffers, with their bounds and budget (DirectBuffers());
     * {@code transport}: the loop's and the sessions' tuning.
     */
    BusServer(BusConfig config, UserQuota quota, DirectBuffers buffers, TransportSettings transport) {
        this.transport = transport;
        this.loop = new EventLoop("kdbus-bridge", transport);
        this.buffers = buffers;
        this.payloadRecycler = buffers::give;
        this.config = config;
        this.limits = new BusLimits();
        this.limits.copyFrom(config.limits());
        this.bus = new Bus(limits, quota);
        this.inputHeap = new InputHeap(quota.framePerUserBytes(), quota.frameBusBytes());
        String overcommit = quota.overcommitNote(limits);
        if (overcommit != null) {
            LOG.info(overcommit);
        }
        this.bus.setQuotaLog(LOG::warn); // the core logs a uid's refusals once a minute
        this.guid = randomHex(16);
        this.driver = new Driver(bus, guid, machineId(guid), this);
        this.routingErrors = new RoutingErrors(bus, driver.emitter(), queueFullLog);
        // dbus-daemon logs every denied unicast; a flood of them is cut to 10 lines a second.
        this.bus.setPolicyLog(new RateLimitedLog(10, TimeUnit.SECONDS.toNanos(1), System::nanoTime, LOG::warn));
    }

    /** Full-queue refusals, one line per message in dbus-daemon; cut to 10 a second here, like denials. */
    private final RateLimitedLog queueFullLog = new RateLimitedLog(10, TimeUnit.SECONDS.toNanos(1), System::nanoTime,
            LOG::warn);

    RoutingErrors routingErrors() { return routingErrors; }

    TransportSettings transport() { return transport; }

    /**
     * Our extension: also write every message to {@code sink}'s pcapng file from the moment
     * the loop starts. Call before {@link #start()}; {@link #stop()} flushes and closes it.
     */
    public void setCapture(CaptureSink sink) {
        this.capture = sink;
    }

    InputHeap inputHeap() { return inputHeap; }

    /** Binds every listen address and starts the loop; returns the connect address(es). */
    public String start() throws IOException {
        List<String> connect = new ArrayList<>();
        try {
            for (String listen : config.listen()) {
                for (UnixAddress a : UnixAddress.parseList(listen)) {
                    if (a.kind() == UnixAddress.Kind.SYSTEMD) {
                        adoptSystemdSockets(connect);
                        continue;
                    }
                    if (a.kind() == UnixAddress.Kind.RUNTIME) {
                        a = a.resolveRuntime(System::getenv);
                    }
                    UnixListener l = UnixListener.bind(a, guid).processFds(transport.processFd());
                    listeners.add(l);
                    connect.add(l.connectAddress());
                }
            }
        } catch (IOException | RuntimeException e) {
            for (UnixListener l : listeners) {
                l.close();
            }
            listeners.clear();
            loop.shutdown(); // never started: closes its epoll and eventfd descriptors
            throw e;
        }
        address = String.join(";", connect);
        loop.start();
        // Service files are read before the first client is accepted, so activatable names are
        // there from the start (the scan runs here, off the loop).
        activation = new ActivationManager(bus, loop, driver.emitter(), serviceDirs(config), address,
                config.type(), driver::activationEnvironment);
        activation.setSystemdActivation(config.systemdActivation());
        bus.setActivationListener(activation);
        driver.setActivationHooks(activation);
        activation.start();
        CompletableFuture<Void> started = new CompletableFuture<>();
        loop.execute(() -> {
            if (capture != null) {
                capture.attach(bus, new Credentials(currentUid(), -1, busPid));
            }
            for (UnixListener l : listeners) {
                l.start(loop, this::onAccept);
            }
            loop.schedule(MemoryReclaimer.CHECK_INTERVAL_MILLIS, this::checkMemory);
            started.complete(null);
        });
        started.join();
        return address;
    }

    /** The config's service directories with dbus-daemon's flags (the transient one: strict, unwatched). */
    private static List<ServiceDir> serviceDirs(BusConfig c) {
        List<ServiceDir> out = new ArrayList<>();
        for (String d : c.serviceDirs()) {
            java.nio.file.Path p = java.nio.file.Path.of(d);
            out.add(c.isTransientServiceDir(d) ? new ServiceDir(p, true, false) : ServiceDir.of(p));
        }
        return out;
    }

    /**
     * {@code systemd:}: one listener per socket systemd passed (LISTEN_FDS), as dbus-daemon does.
     * The variables are consumed, so a second {@code systemd:} entry finds no sockets.
     */
    private void adoptSystemdSockets(List<String> connect) throws IOException {
        List<Integer> fds;
        try {
            fds = SystemdSockets.take();
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage(), e);
        }
        if (fds.isEmpty()) {
            throw new IOException("No socket received (systemd: needs LISTEN_FDS and LISTEN_PID set for this process).");
        }
        int i = 0;
        try {
            for (; i < fds.size(); i++) {
                UnixListener l = UnixListener.adopt(fds.get(i), guid).processFds(transport.processFd());
                listeners.add(l);
                connect.add(l.connectAddress());
            }
        } catch (IOException e) {
            for (int j = i; j < fds.size(); j++) { // the ones not adopted yet; start() closes the rest
                org.kdbusbridge.bridge.transport.LibC.INSTANCE.close(fds.get(j));
            }
            throw e;
        }
    }

    public String address() {
        return address;
    }

    public String guid() {
        return guid;
    }

    /**
     * Before the process drops to another user: hands the socket files this bus created to it,
     * so {@link #stop()} can still unlink them from a sticky directory. Call after {@link #start()}.
     */
    public void giveSocketFilesTo(int uid, int gid) {
        for (UnixListener l : listeners) {
            try {
                l.giveSocketFileTo(uid, gid);
            } catch (IOException | RuntimeException e) {
                LOG.warn("Could not hand socket file {} to uid {}: {}; it will stay after exit", l.socketFile(), uid,
                        e.toString());
            }
        }
    }

    /** Stops accepting, closes every connection and the listeners (removing socket files). */
    public void stop() {
        if (!loop.isRunning()) {
            return;
        }
        CompletableFuture<Void> done = new CompletableFuture<>();
        loop.execute(() -> {
            for (UnixListener l : listeners) {
                l.close();
            }
            for (ClientSession s : new ArrayList<>(sessions)) {
                s.close("bus shutting down");
            }
            if (capture != null) {
                capture.detach();
            }
            done.complete(null);
        });
        try {
            done.get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.warn("Listeners did not close cleanly: {}", e.toString());
        }
        if (activation != null) {
            activation.shutdown();
        }
        loop.shutdown();
        try {
            loop.awaitTermination(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (capture != null) {
            capture.close(10_000); // off the loop: waits for the writer to empty its queue
        }
    }



    private final DirectBuffers buffers;
    /** Large payloads come from the pool; their free() hands the buffer back. */
    private final java.util.function.Consumer<java.nio.ByteBuffer> payloadRecycler;

    DirectBuffers buffers() { return buffers; }

    /** Sum of {@link ClientSession#heldBufferBytes} over live sessions (tests; loop thread only). */
    long sessionBufferBytes() {
        long n = 0;
        for (ClientSession s : sessions) {
            n += s.heldBufferBytes();
        }
        return n;
    }

    /** Sum of {@link ClientSession#carriedInputBytes} over live sessions (tests; loop thread only). */
    long carriedInputBytes() {
        long n = 0;
        for (ClientSession s : sessions) {
            n += s.carriedInputBytes();
        }
        return n;
    }

    /** At most this much is reserved at once for large frames read in place (half-arrived ones included). */
    static final long LARGE_FRAMES_RESERVE = 64L * 1024 * 1024;
    private long largeFramesReserved;

    /**
     * Reserves room for a large frame read straight into its payload buffer; false when frames in
     * flight already hold {@link #LARGE_FRAMES_RESERVE}, and the frame takes the ordinary path
     * (a buffer that grows only as data arrives), so clients that claim big frames and send
     * them slowly cannot make the bus allocate more than that.
     */
    boolean reserveLargeFrame(long len) {
        if (largeFramesReserved + len > LARGE_FRAMES_RESERVE) {
            return false;
        }
        largeFramesReserved += len;
        return true;
    }

    void releaseLargeFrame(long len) {
        largeFramesReserved -= len;
    }

    long largeFramesReserved() { return largeFramesReserved; }

    java.util.function.Consumer<java.nio.ByteBuffer> payloadRecycler() { return payloadRecycler; }

    Bus bus() { return bus; }
    Driver driver() { return driver; }
    BusLimits limits() { return limits; }
    EventLoop loop() { return loop; }

    /**
     * Connections that have not completed Hello (authenticating, authenticated, or refused at
     * Hello by a connection limit), as dbus-daemon's incomplete list.
     */
    private int incompleteConnections() {
        return bus.connectionCount() - bus.completedConnectionCount();
    }

    private void onAccept(SocketConnection socket) {
        if (incompleteConnections() >= limits.maxIncompleteConnections) {
            // As dbus-daemon (bus/connection.c): room is made by dropping the OLDEST incomplete
            // connection. Refusing the new one instead let a client that opens sockets and never
            // authenticates lock every other client out until auth_timeout.
            ClientSession oldest = oldestIncomplete();
            if (oldest == null) {
                LOG.warn("Refusing connection from pid {}: max_incomplete_connections={} reached",
                        socket.peer().pid(), limits.maxIncompleteConnections);
                socket.close();
                return;
            }
            LOG.warn("max_incomplete_connections={} reached: dropping the oldest incomplete connection {}",
                    limits.maxIncompleteConnections, oldest);
            oldest.close("max_incomplete_connections");
        }
        Credentials creds = new Credentials(socket.peer().uid(), socket.peer().gid(), socket.peer().pid());
        SaslServer sasl = new SaslServer(new SaslServer.Config(config.allowsExternal(), config.allowsAnonymous(),
                socket.peer().uid(), uidCheck, guid, true));
        ClientSession[] holder = new ClientSession[1];
        Connection conn = bus.connect(creds, new org.kdbusbridge.core.connection.ConnectionSink() {
            @Override
            public void onQueued(Connection c) {
                holder[0].onQueued(c);
            }

            @Override
            public void onIncomingDrained(Connection c) {
                holder[0].onIncomingDrained(c);
            }
        });
        conn.setPeerDetails(new SocketPeerDetails(socket, groupsOfUid));
        ClientSession session = new ClientSession(this, socket, conn, sasl);
        holder[0] = session;
        conn.attach(session);
        sessions.add(session);
        session.start(loop, limits.authTimeout);
        // Clients write AUTH right after connect(), usually before we accept: read it now
        // instead of after another trip through epoll_wait (nothing there costs one EAGAIN).
        session.onReady(socket.fd(), EventLoop.READ);
    }

    private ClientSession oldestIncomplete() {
        for (ClientSession s : sessions) { // insertion order: oldest first
            if (s.connection().uniqueName() == null && !s.isClosed()) {
                return s;
            }
        }
        return null;
    }

    /**
     * Made once: under C1 (what we ship) a capturing lambda or method reference allocates
     * through a slow runtime call each time it is evaluated, and this one ran per connection.
     */
    private final java.util.function.LongPredicate uidCheck = this::uidMayConnect;

    /** The groups of a uid from the current config's table (made once, as uidCheck). */
    private final java.util.function.LongFunction<long[]> groupsOfUid = uid -> config.groupsOf(uid);

    private boolean uidMayConnect(long uid) {
        return config.isUidAllowed(uid, busUid());
    }

    /**
     * The client authenticated as {@code uid} (-1: ANONYMOUS): its rules are compiled now.
     * max_completed_connections and max_connections_per_user are checked later, at Hello (in
     * the core), as dbus-daemon does: a refused client gets LimitsExceeded instead of a
     * closed socket.
     */
    void onAuthenticated(ClientSession s, long uid) {
        Connection c = s.connection();
        c.setAuthenticatedUid(uid);
        c.setPolicy(config.compilePolicy(uid));
        long pid = c.credentials() == null ? -1 : c.credentials().pid();
        // Read when first needed (a denial or a log line), not per connection: the procfs read
        // was 3 syscalls on every connect. A peer gone by then gets an empty comm.
        c.setLogInfo(new LogInfo(uid, pid)); // a class, not a lambda: see uidCheck
    }

    /** A connection's loginfo, computed when first asked for. */
    private static final class LogInfo implements java.util.function.Supplier<String> {
        private final long uid;
        private final long pid;

        LogInfo(long uid, long pid) {
            this.uid = uid;
            this.pid = pid;
        }

        @Override
        public String get() {
            return logInfo(uid, pid);
        }
    }

    /**
     * dbus-daemon's loginfo: {@code uid=U pid=P comm="the first 50 bytes of its command line"},
     * read once per connection (procfs, on first use) for denial texts and logs.
     */
    static String logInfo(long uid, long pid) {
        StringBuilder b = new StringBuilder();
        if (uid >= 0) {
            b.append("uid=").append(uid);
        }
        if (pid > 0) {
            if (b.length() > 0) {
                b.append(' ');
            }
            b.append("pid=").append(pid).append(" comm=\"");
            try (java.io.InputStream in = Files.newInputStream(Path.of("/proc/" + pid + "/cmdline"))) {
                byte[] cmd = in.readNBytes(50);
                int len = cmd.length;
                if (len > 0 && cmd[len - 1] == 0) {
                    len--;
                }
                for (int i = 0; i < len; i++) {
                    int ch = cmd[i] & 0xff;
                    b.append(ch == 0 ? ' ' : (ch < 0x20 || ch > 127) ? '?' : (char) ch);
                }
            } catch (IOException e) {
                // no command line (the process is gone or hidden): an empty comm, as dbus-daemon
            }
            b.append('"');
        }
        return b.toString();
    }

    void onClosed(ClientSession s) {
        sessions.remove(s);
        dirty.remove(s);
        Disconnect d = bus.disconnect(s.connection());
        driver.emitter().emit(d.nameChanges());
        for (DeadReply r : d.deadReplies()) {
            driver.emitter().error(r.caller(), r.serial(), DBusErrors.NO_REPLY,
                    "Message recipient disconnected from message bus without replying");
        }
        flushDirty();
    }

    /**
     * Queues a session for writing. Socket handlers flush at the end of their own step; output
     * produced by timers and cross-thread tasks (activation results, reload) gets a flush task.
     */
    void markDirty(ClientSession s) {
        dirty.add(s);
        if (!inIo && !flushScheduled) {
            flushScheduled = true;
            loop.execute(() -> {
                flushScheduled = false;
                flushDirty();
            });
        }
    }

    /** True while a socket handler runs; it flushes before returning. Loop thread only. */
    private boolean inIo;
    private boolean flushScheduled;

    void enterIo() {
        inIo = true;
        ioEvents++;
    }

    void leaveIo() {
        inIo = false;
        flushDirty();
    }

    /** Writes out every session that has something queued. */
    void flushDirty() {
        ClientSession s;
        while ((s = dirty.poll()) != null) {
            s.clearDirty();
            if (s.isClosed()) {
                continue;
            }
            try {
                s.flush();
            } catch (IOException e) {
                s.close(e.getMessage());
            }
        }
        armReplyTimer();
    }

    // --- memory goes back after a burst (MemoryReclaimer) ------------------------------------

    /** Bumped on every socket event: the reclaimer's sign that the loop is busy. */
    private long ioEvents;
    private final MemoryReclaimer reclaimer = new MemoryReclaimer(
            MemoryReclaimer.DEFAULT_QUIET_NANOS, MemoryReclaimer.DEFAULT_GROWTH_BYTES,
            MemoryReclaimer.DEFAULT_QUIET_EVENTS);

    /** What the core's ledgers hold for clients: rules, names, reply slots and queued messages. */
    private long accounted() {
        return bus.quotaUsedTotal() + bus.queued().totalBytes();
    }

    /** Loop thread, every CHECK_INTERVAL_MILLIS: trim and collect once the loop is quiet after a burst. */
    private void checkMemory() {
        Runtime rt = Runtime.getRuntime();
        if (reclaimer.shouldReclaim(System.nanoTime(), ioEvents, rt.totalMemory(), buffers.heldBytes(), accounted())) {
            buffers.trimSpares();
            System.gc(); // uncommits the heap's free part (-XX:-ShrinkHeapInSteps); the loop is idle
            reclaimer.reclaimed(rt.totalMemory(), buffers.heldBytes(), accounted());
        }
        loop.schedule(MemoryReclaimer.CHECK_INTERVAL_MILLIS, this::checkMemory);
    }

    // --- reply_timeout: one timer for the oldest open reply slot -----------------------------

    static final String REPLY_TIMEOUT_TEXT = "Message did not receive a reply (timeout by message bus)";
    private EventLoop.Timer replyTimer;
    private long replyTimerDeadline = -1;

    /** Arms the timer for the core's earliest reply deadline if none is armed for it. */
    private void armReplyTimer() {
        long next = bus.nextReplyDeadline();
        if (next < 0 || (replyTimer != null && replyTimerDeadline <= next)) {
            return;
        }
        if (replyTimer != null) {
            replyTimer.cancel();
        }
        replyTimerDeadline = next;
        replyTimer = loop.schedule(Math.max(0, next - System.nanoTime() / 1_000_000), () -> {
            replyTimer = null;
            replyTimerDeadline = -1;
            for (DeadReply r : bus.expireReplies()) {
                driver.emitter().error(r.caller(), r.serial(), DBusErrors.NO_REPLY, REPLY_TIMEOUT_TEXT);
            }
            flushDirty(); // re-arms for the next deadline
        });
    }

    /**
     * Where a reload reads the configuration from; it throws IllegalStateException with a
     * readable reason when the new files are unusable.
     */
    public void setReloader(java.util.function.Supplier<BusConfig> reloader) {
        this.reloader = reloader;
    }

    /** SIGHUP: reload on the loop thread. */
    public void requestReload() {
        loop.execute(() -> {
            String failure = reloadConfig();
            if (failure != null) {
                LOG.error("Unable to reload configuration: {}", failure);
            }
        });
    }

    /**
     * Reloads atomically: the new configuration replaces the old one only if it parsed
     * completely; otherwise the old one stays and the reason is returned. Loop thread only.
     */
    @Override
    public String reloadConfig() {
        if (reloader == null) {
            return null; // nothing to reload from (embedded bus)
        }
        BusConfig fresh;
        try {
            fresh = reloader.get();
        } catch (IllegalStateException e) {
            return e.getMessage();
        }
        limits.copyFrom(fresh.limits());
        fresh.setSystemdActivation(config.systemdActivation());
        config = fresh;
        // Same step as the swap, so no message is checked against a mix of old and new rules.
        for (ClientSession s : sessions) {
            if (s.isAuthenticated() && !s.isClosed()) {
                s.connection().setPolicy(fresh.compilePolicy(s.authenticatedUid()));
            }
        }
        if (activation != null) {
            activation.setServiceDirs(serviceDirs(fresh));
        }
        LOG.info("Reloaded configuration");
        return null;
    }

    /** Read each time: the bus may have dropped to its configured {@code <user>} after start. */
    @Override
    public long busUid() {
        return currentUid();
    }

    @Override
    public List<String> features() {
        return config.systemdActivation() ? List.of("HeaderFiltering", "SystemdActivation") : List.of("HeaderFiltering");
    }

    @Override
    public void closeWhenFlushed(Connection c) {
        if (c.attachment() instanceof ClientSession s) {
            s.closeAfterFlush();
        }
    }

    @Override
    public long busPid() {
        return busPid;
    }

    private static long currentUid() {
        // getuid(2), not UnixSystem: that one resolves the user name per call (an NSS look-up
        // per connection on the auth path).
        return Integer.toUnsignedLong(org.kdbusbridge.bridge.transport.LibC.INSTANCE.getuid());
    }

    private static String randomHex(int bytes) {
        return org.kdbusbridge.bridge.transport.Urandom.hex(bytes);
    }

    /** /etc/machine-id or /var/lib/dbus/machine-id, as dbus-daemon reads it. */
    private static String machineId(String fallback) {
        for (String p : new String[] {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
            try {
                String id = Files.readString(Path.of(p)).trim();
                if (id.matches("[0-9a-fA-F]{32}")) {
                    return id;
                }
            } catch (IOException e) {
                // try the next one
            }
        }
        LOG.warn("No machine id found in /etc/machine-id or /var/lib/dbus/machine-id; using the bus id");
        return fallback;
    }
}
