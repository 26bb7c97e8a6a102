package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.kdbusbridge.core.bus.DisconnectReason;
import org.kdbusbridge.bridge.activation.ActivationManager;
import org.kdbusbridge.bridge.activation.ServiceDir;
import org.kdbusbridge.bridge.capture.CaptureSink;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.driver.DBusErrors;
import org.kdbusbridge.bridge.driver.Driver;
import org.kdbusbridge.bridge.driver.RoutingErrors;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.bridge.transport.TransportSettings;
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
    /** Derived on first use (GetId, Debug tools): a bus nobody asks saves the hash at start. */
    private volatile String busId;
    /** Transport tuning for this bus (its loop and every session), fixed for its life. */
    private final TransportSettings transport;
    private final EventLoop loop;
    private final Listeners listeners;
    private final java.util.Set<ClientSession> sessions = new java.util.LinkedHashSet<>();
    /** accept, SASL set-up and authentication (max_incomplete_connections, policy, loginfo). */
    private final ConnectionAdmission admission;
    /** Custom endpoints (org.kdbusbridge.Endpoints1): extra listeners whose connections are filtered. */
    private final EndpointListeners endpoints;
    /** Sessions with output queued this step; also re-arms the reply timer. */
    private final SessionFlusher flusher;
    private final MemoryWatch memoryWatch;
    /** The pid the bus answers for itself: this process's, or a hosted bus's front (setHostedIdentity). */
    private volatile long busPid = ProcessHandle.current().pid();
    /** What activated services inherit (bridge.host: the front's environment, directory, streams). */
    private org.kdbusbridge.bridge.activation.ServiceProcessContext children =
            org.kdbusbridge.bridge.activation.ServiceProcessContext.inherited();
    private volatile String address;
    private ActivationManager activation;
    private CaptureSink capture;
    /** --kdbus-monitor-metadata: AttachMetadata items every monitor and the capture get (MessageFacts bits), 0: none. */
    private int monitorMetadata;
    /** --kdbus-metrics: the OpenMetrics socket, or null. */
    private org.kdbusbridge.bridge.metrics.MetricsListener metrics;
    /** --kdbus-metrics=http://...: the same dump over HTTP on loopback, or null. */
    private org.kdbusbridge.bridge.metrics.HttpMetricsListener metricsHttp;

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
        this(config, quota, buffers, transport, null);
    }

    /** As above with {@code guid}: the hand-over's new bus keeps the old one's (null: a new one). */
    BusServer(BusConfig config, UserQuota quota, DirectBuffers buffers, TransportSettings transport, String carriedGuid) {
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
        // A hand-over's new bus (carried GUID) does not repeat the start's note: a successful
        // hand-over logs exactly one line (HandOver.resume's).
        if (overcommit != null && carriedGuid == null) {
            LOG.info(overcommit);
        }
        this.bus.setQuotaLog(LOG::warn); // the core logs a uid's refusals once a minute
        this.bus.setDemandListener(this::metadataNoLongerWanted);
        // The one GUID a hand-over carries; GetId's bus ID and each listener's guid are derived
        // from it (BusIds), so they survive a hand-over without a snapshot format change.
        this.guid = carriedGuid != null ? carriedGuid : BusIds.newGuid();
        this.driver = new Driver(bus, this::busId, machineId(this::busId), this);
        this.routingErrors = new RoutingErrors(bus, driver.emitter(), queueFullLog);
        // dbus-daemon logs every denied unicast; a flood of them is cut to 10 lines a second.
        this.bus.setPolicyLog(new RateLimitedLog(10, TimeUnit.SECONDS.toNanos(1), System::nanoTime, LOG::warn));
        this.listeners = new Listeners(guid, transport);
        this.admission = new ConnectionAdmission(this, sessions);
        this.endpoints = new EndpointListeners(this, transport, admission, sessions, listeners::hasSocketFile,
                listeners::hasAbstractName);
        this.endpoints.onGone(id -> endpointGone.accept(id)); // the driver registered while it was made
        this.flusher = new SessionFlusher(this);
        this.memoryWatch = new MemoryWatch(this, flusher);
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

    /**
     * Our extension ({@code --kdbus-monitor-metadata}): every BecomeMonitor connection, and the
     * capture, also gets these AttachMetadata items (MessageFacts bits; see
     * {@link Driver#monitorMetadataItems}). Call before {@link #start()}.
     */
    public void setMonitorMetadata(int items) {
        this.monitorMetadata = items;
    }

    /** See {@link #setMetrics(org.kdbusbridge.bridge.transport.UnixAddress, org.kdbusbridge.bridge.metrics.HttpAddress, int)}. */
    public void setMetrics(org.kdbusbridge.bridge.transport.UnixAddress where, int topConnections) {
        setMetrics(where, null, topConnections);
    }

    /**
     * Our extension ({@code --kdbus-metrics=unix:path=PATH}, {@code --kdbus-metrics=http://127.0.0.1:PORT}):
     * serve the counters in the OpenMetrics text format on that socket and/or over HTTP (either may
     * be null), per-connection series for the {@code topConnections} busiest connections. The
     * loop then keeps its busy time. Call before {@link #start()}.
     */
    public void setMetrics(org.kdbusbridge.bridge.transport.UnixAddress where,
                           org.kdbusbridge.bridge.metrics.HttpAddress http, int topConnections) {
        if (where == null && http == null) {
            return;
        }
        loop.accountBusyTime();
        org.kdbusbridge.bridge.metrics.OpenMetricsWriter writer =
                new org.kdbusbridge.bridge.metrics.OpenMetricsWriter(topConnections, loop);
        // Rendered again when the bus's state changed, and at most once a second otherwise (the
        // loop's busy time and the GC totals move on their own).
        org.kdbusbridge.bridge.metrics.MetricsDump dump = new org.kdbusbridge.bridge.metrics.MetricsDump(
                () -> writer.render(bus),
                () -> (bus.lastSequence() * 31 + bus.connectionCount()) * 31 + System.nanoTime() / 1_000_000_000L);
        long own = currentUid();
        if (where != null) {
            this.metrics = new org.kdbusbridge.bridge.metrics.MetricsListener(where, dump, uid -> uid == own || uid == 0);
        }
        if (http != null) {
            this.metricsHttp = new org.kdbusbridge.bridge.metrics.HttpMetricsListener(http, dump);
        }
    }

    /** The HTTP metrics listener's port (the one bound, for port 0), or -1 without one. */
    public int metricsHttpPort() {
        return metricsHttp == null ? -1 : metricsHttp.port();
    }

    /**
     * A bus hosted in a shared JVM (bridge.host): it answers {@code pid} as its own process id
     * (the front that plays the dbus-daemon process) and starts services with {@code children}'s
     * environment, directory and streams. Call before {@link #start()}.
     */
    public void setHostedIdentity(long pid, org.kdbusbridge.bridge.activation.ServiceProcessContext children) {
        this.busPid = pid;
        this.children = java.util.Objects.requireNonNull(children, "children");
    }

    @Override
    public int monitorMetadata() {
        return monitorMetadata;
    }

    InputHeap inputHeap() { return inputHeap; }

    /** Binds every listen address and starts the loop; returns the connect address(es). */
    public String start() throws IOException {
        List<String> connect;
        try {
            connect = listeners.bindAll(config.listen());
            if (metrics != null) {
                metrics.bind();
            }
            if (metricsHttp != null) {
                metricsHttp.bind();
            }
        } catch (IOException | RuntimeException e) {
            loop.shutdown(); // never started: closes its epoll and eventfd descriptors
            throw e;
        }
        return serve(connect, null);
    }

    /**
     * Starts the loop, the activation manager, the capture and the listeners; {@code first} runs
     * on the loop before any listener accepts (the hand-over's restore).
     */
    private String serve(List<String> connect, Runnable first) {
        address = String.join(";", connect);
        loop.start();
        // Service files are read before the first client is accepted, so activatable names are
        // there from the start (the scan runs here, off the loop).
        activation = new ActivationManager(bus, loop, driver.emitter(), serviceDirs(config), address,
                config.type(), driver::activationEnvironment, children);
        activation.setSystemdActivation(config.systemdActivation());
        bus.setActivationListener(activation);
        driver.setActivationHooks(activation);
        activation.start();
        CompletableFuture<Void> started = new CompletableFuture<>();
        loop.execute(() -> {
            if (first != null) {
                try {
                    first.run();
                } catch (RuntimeException | Error e) {
                    started.completeExceptionally(e);
                    return;
                }
            }
            if (capture != null) {
                // With monitor metadata the capture's copies carry the field, rendered as a monitor's are.
                capture.attach(bus, new Credentials(currentUid(), -1, busPid), monitorMetadata,
                        monitorMetadata == 0 ? null : new MetadataRenderer()::render);
            }
            listeners.startAll(loop, admission::onAccept);
            if (metrics != null) {
                metrics.start(loop);
            }
            if (metricsHttp != null) {
                metricsHttp.start(loop);
            }
            memoryWatch.start();
            started.complete(null);
        });
        started.join();
        return address;
    }

    // --- hand-over (issue 19, docs/handover.md section 8 step 1) ------------------------------

    /**
     * Hand-over: in one loop step, takes a snapshot of this idle bus and lets go of every client
     * and listening socket without closing it, so that a new bus (here: in the same JVM,
     * {@link HandOverRestore#restore}) can adopt them; then stops the loop. Refused, with nothing
     * changed and the bus still serving, if the bus holds what step 1 cannot carry.
     */
    public org.kdbusbridge.bridge.handover.Snapshot detachForHandOver() throws org.kdbusbridge.bridge.handover.Snapshot.Refused {
        if (!loop.isRunning()) {
            throw new org.kdbusbridge.bridge.handover.Snapshot.Refused(List.of("the bus is not running"));
        }
        CompletableFuture<org.kdbusbridge.bridge.handover.Snapshot> done = new CompletableFuture<>();
        loop.execute(() -> {
            try {
                org.kdbusbridge.bridge.handover.Snapshot s = HandOverRestore.capture(this);
                for (ClientSession session : sessions) {
                    session.detachForHandOver();
                }
                sessions.clear();
                listeners.detachAll();
                done.complete(s);
            } catch (Throwable e) {
                done.completeExceptionally(e);
            }
        });
        org.kdbusbridge.bridge.handover.Snapshot s;
        try {
            s = done.get(10, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof org.kdbusbridge.bridge.handover.Snapshot.Refused r) {
                throw r;
            }
            throw new IllegalStateException("hand-over snapshot failed", e.getCause());
        } catch (InterruptedException | java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException("hand-over snapshot did not finish", e);
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
        return s;
    }

    /** Hand-over: serves the adopted listeners, restoring the snapshot first on the loop (HandOverRestore). */
    String resume(List<org.kdbusbridge.bridge.transport.UnixListener> adopted, Runnable restore) {
        List<String> connect = new ArrayList<>();
        for (org.kdbusbridge.bridge.transport.UnixListener l : adopted) {
            listeners.adopt(l);
            connect.add(l.connectAddress());
        }
        return serve(connect, restore);
    }

    /** Extensions1.Reexec's executor (the launcher and argv to exec); null: Reexec refuses. */
    private HandOver handOver;

    /** Before start: lets Reexec hand this bus over by exec'ing {@code h}'s launcher. */
    public void setHandOver(HandOver h) {
        this.handOver = h;
    }

    /** Loop thread (the driver's Reexec). */
    @Override
    public String handOver(Connection caller, long serial) {
        return handOver == null ? Driver.Host.super.handOver(caller, serial)
                : handOver.request(this, HandOver.Requester.reexec(caller, serial));
    }

    /**
     * Any thread (SIGUSR2): the same hand-over as Reexec with nobody to answer; a refusal and
     * the result are only logged.
     */
    public void requestHandOver() {
        loop.execute(() -> {
            String why = handOver == null ? "this bus cannot hand over (it was not started by the kdbus-bridge launcher)"
                    : handOver.request(this, HandOver.Requester.SIGNAL);
            if (why != null) {
                LOG.warn("hand-over (signal) refused: {}", why);
            }
        });
    }

    java.util.Collection<ClientSession> sessions() { return sessions; }
    ConnectionAdmission admission() { return admission; }
    Listeners listeners() { return listeners; }
    boolean hasCapture() { return capture != null; }
    boolean hasMetrics() { return metrics != null; }
    int endpointCount() { return endpoints.list().size(); }

    /** The config's service directories with dbus-daemon's flags (the transient one: strict, unwatched). */
    private static List<ServiceDir> serviceDirs(BusConfig c) {
        List<ServiceDir> out = new ArrayList<>();
        for (String d : c.serviceDirs()) {
            java.nio.file.Path p = java.nio.file.Path.of(d);
            out.add(c.isTransientServiceDir(d) ? new ServiceDir(p, true, false) : ServiceDir.of(p));
        }
        return out;
    }

    public String address() {
        return address;
    }

    /**
     * The bus's secret GUID: what a hand-over carries and what {@link #busId()} and every
     * listener's guid are derived from (BusIds). No client sees it.
     */
    public String guid() {
        return guid;
    }

    /** The bus ID: what GetId returns; related to none of the listeners' guids, as in dbus-daemon. */
    public String busId() {
        String id = busId;
        if (id == null) {
            id = BusIds.busId(guid); // the same value whichever thread computes it
            busId = id;
        }
        return id;
    }

    /** The server guid of each listening address, in listen order (the guid= of {@link #address()}'s entries). */
    public List<String> listenerGuids() {
        return listeners.guids();
    }

    /**
     * Before the process drops to another user: hands the socket files this bus created to it,
     * so {@link #stop()} can still unlink them from a sticky directory. Call after {@link #start()}.
     */
    public void giveSocketFilesTo(int uid, int gid) {
        listeners.giveSocketFilesTo(uid, gid);
    }

    /** Stops accepting, closes every connection and the listeners (removing socket files). */
    public void stop() {
        CompletableFuture<Void> closed = closeOnLoop(true);
        if (closed == null) {
            return;
        }
        awaitClosed(closed);
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

    /**
     * The part of {@link #stop()} a process about to _exit needs: listeners closed (socket files
     * unlinked) and the service-directory watcher closed, the two at once. Connections and the
     * loop are left to the kernel, which closes their fds at exit as it does dbus-daemon's: a
     * peer sees the same end of stream, and stopping them costs hand-offs between threads (about
     * 1 ms each on a busy machine). The watcher is closed here rather than at exit: the kernel
     * releases an inotify fd after an RCU grace period, measured 0.5-20 ms on an explicit close
     * but 15-20 ms almost every time when the exit closes it.
     */
    public void stopForExit() {
        if (capture != null) {
            stop(); // the capture holds every message routed: connections close before it ends
            return;
        }
        CompletableFuture<Void> closed = closeOnLoop(false);
        if (closed == null) {
            return;
        }
        if (activation != null) {
            activation.shutdown();
        }
        awaitClosed(closed);
    }

    /** Has the loop close the listeners (and connections if asked) and detach the capture; null if the loop is not running. */
    private CompletableFuture<Void> closeOnLoop(boolean connections) {
        if (!loop.isRunning()) {
            return null;
        }
        CompletableFuture<Void> done = new CompletableFuture<>();
        loop.execute(() -> {
            listeners.closeAll();
            endpoints.closeAll();
            if (metrics != null) {
                metrics.close();
            }
            if (metricsHttp != null) {
                metricsHttp.close();
            }
            if (connections) {
                for (ClientSession s : new ArrayList<>(sessions)) {
                    s.close(DisconnectReason.BUS, "bus shutting down");
                }
            }
            if (capture != null) {
                capture.detach();
            }
            done.complete(null);
        });
        return done;
    }

    private static void awaitClosed(CompletableFuture<Void> closed) {
        try {
            closed.get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.warn("Listeners did not close cleanly: {}", e.toString());
        }
    }

    private final DirectBuffers buffers;
    /** Large payloads come from the pool; their free() hands the buffer back. */
    private final java.util.function.Consumer<java.nio.ByteBuffer> payloadRecycler;

    DirectBuffers buffers() { return buffers; }

    /** When memory goes back after a burst (tests; loop thread). */
    MemoryWatch memoryWatch() { return memoryWatch; }

    /**
     * Nobody wants {@code items} any more (the core says so in the step that made it so): with
     * {@code pidfd} among them, every sender's cached pidfds close now (queued messages keep
     * theirs until written or dropped), so an idle sender holds no fd for a demand that is gone.
     */
    private void metadataNoLongerWanted(int items) {
        if ((items & org.kdbusbridge.core.message.MessageFacts.PIDFD) != 0 && !pidfdHolders.isEmpty()) {
            // Only the sessions that cached something: a client toggling pidfd on and off costs
            // the senders it made cache, not every connection.
            for (ClientSession s : pidfdHolders) {
                s.dropCachedPidfds();
            }
            pidfdHolders.clear();
        }
    }

    /** Sessions whose pidfd cache is not empty (loop thread). */
    private final java.util.Set<ClientSession> pidfdHolders = new java.util.HashSet<>();

    /** {@code s}'s pidfd cache got its first entry since it was last cleared (ClientSession). */
    void pidfdsCached(ClientSession s) {
        pidfdHolders.add(s);
    }

    /** How many sessions have a non-empty pidfd cache (tests; loop thread only). */
    int sessionsCachingPidfds() {
        return pidfdHolders.size();
    }

    /** Sum of {@link ClientSession#openPidfds} over live sessions (tests; loop thread only). */
    int openSenderPidfds() {
        int n = 0;
        for (ClientSession s : sessions) {
            n += s.openPidfds();
        }
        return n;
    }

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

    BusConfig config() { return config; }

    void onAuthenticated(ClientSession s, long uid) {
        admission.onAuthenticated(s, uid);
    }

    void onClosed(ClientSession s) {
        sessions.remove(s);
        pidfdHolders.remove(s);
        flusher.forget(s);
        Disconnect d = bus.disconnect(s.connection());
        driver.emitter().emit(d.nameChanges());
        for (DeadReply r : d.deadReplies()) {
            driver.emitter().error(r.caller(), r.serial(), DBusErrors.NO_REPLY,
                    "Message recipient disconnected from message bus without replying");
        }
        endpoints.connectionGone(s.connection());
        flushDirty();
    }

    /** See {@link SessionFlusher#markDirty}. */
    void markDirty(ClientSession s) {
        flusher.markDirty(s);
    }

    void enterIo() {
        flusher.enterIo();
    }

    void leaveIo() {
        flusher.leaveIo();
    }

    /** Writes out every session that has something queued. */
    void flushDirty() {
        flusher.flushDirty();
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

    /** Whether the driver offers org.freedesktop.DBus.Containers1 (--kdbus-containers). */
    private volatile boolean containers;

    /**
     * Offers the Containers1 draft interface (off by default: Debian's dbus-daemon has none, and
     * its own tests check that the interface is absent). Endpoints1 works either way.
     */
    public void setContainers(boolean on) {
        this.containers = on;
    }

    @Override
    public boolean containers() {
        return containers;
    }

    /** Large driver replies (ListNames of 100k names) go into the payload pool, off the heap. */
    @Override
    public org.kdbusbridge.bridge.driver.DriverEmitter.LargeReplies largeReplies() {
        return new org.kdbusbridge.bridge.driver.DriverEmitter.LargeReplies(transport.zeroCopyThreshold(),
                buffers::take, payloadRecycler);
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

    /** Loop thread (a driver call). */
    @Override
    public String addEndpoint(String where, org.kdbusbridge.core.endpoint.EndpointFilter filter, List<String> options,
            Connection creator) throws IOException {
        return endpoints.add(where, filter, options, creator);
    }

    /** Containers1's driver hears of gone endpoints (set while the driver is made, in the constructor). */
    private java.util.function.Consumer<String> endpointGone = id -> { };

    @Override
    public void onEndpointGone(java.util.function.Consumer<String> listener) {
        this.endpointGone = listener;
    }

    /**
     * Where Containers1.AddServer puts its sockets when the caller names no path (default: as
     * dbus-daemon, /run/dbus/containers for root, else $XDG_RUNTIME_DIR/dbus-1/containers, else
     * the temporary directory). Call before {@link #start()}.
     */
    public void setContainerSocketDir(Path dir) {
        endpoints.setContainerDir(dir);
    }

    /** Loop thread (a driver call). */
    @Override
    public org.kdbusbridge.bridge.driver.EndpointRequest.Bound addEndpoint(
            org.kdbusbridge.bridge.driver.EndpointRequest request) throws IOException {
        return endpoints.add(request);
    }

    /** Loop thread (a driver call). */
    @Override
    public org.kdbusbridge.bridge.driver.LiveEndpoint liveEndpoint(String id) {
        return endpoints.live(id);
    }

    /** Loop thread (a driver call). */
    @Override
    public boolean stopListening(String id) {
        return endpoints.stopListening(id);
    }

    /** Loop thread (a driver call). */
    @Override
    public boolean stopEndpoint(String id) {
        return endpoints.stopInstance(id);
    }

    /** Loop thread (a driver call). */
    @Override
    public boolean removeEndpoint(String id) {
        return endpoints.remove(id, "removed by request");
    }

    /** Loop thread (a driver call). */
    @Override
    public List<org.kdbusbridge.bridge.driver.EndpointInfo> endpoints() {
        return endpoints.list();
    }

    @Override
    public void closeWhenFlushed(Connection c) {
        if (c.attachment() instanceof ClientSession s) {
            s.closeAfterFlush(DisconnectReason.HANG_UP); // BYEBYE: the peer asked to go
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

    /** /etc/machine-id or /var/lib/dbus/machine-id, as dbus-daemon reads it. */
    private static String machineId(java.util.function.Supplier<String> fallback) {
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
        return fallback.get();
    }
}
