package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.kdbusbridge.core.bus.DisconnectReason;
import org.kdbusbridge.bridge.driver.EndpointInfo;
import org.kdbusbridge.bridge.driver.EndpointRequest;
import org.kdbusbridge.bridge.driver.LiveEndpoint;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.bridge.transport.UnixListener;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.endpoint.EndpointCaps;
import org.kdbusbridge.core.endpoint.EndpointFilter;
import org.kdbusbridge.core.endpoint.EndpointPolicy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The bus's custom endpoints (issue 18): one extra unix listener each, whose connections carry
 * the endpoint's filter (set before SASL, so before Hello) and go through the same admission as
 * any other connection (same uid rules and limits). Each is also a Containers1 container
 * instance, which lives while it listens or has connections.
 *
 * Loop thread only. Invariants: an endpoint is listed (ListEndpoints) from a successful
 * {@link #add} while it listens; it exists as an instance until it neither listens nor has a
 * connection, and then the gone listener hears its id exactly once (not at {@link #closeAll});
 * stopping closes its listener (a socket file is unlinked, an abstract name is free again) and
 * then every connection that
 * came in through it; a connection belongs to the endpoint whose id its filter carries; a
 * lifetime fd is the bus's own dup, watched for hang-up only (never read), closed when the
 * endpoint goes.
 */
final class EndpointListeners {
    private static final Logger LOG = LoggerFactory.getLogger(BusServer.class);

    /** One endpoint; {@code creator} null: nobody's (removed only explicitly or at stop). */
    private static final class Endpoint {
        final String id;
        final UnixListener listener;
        final EndpointFilter filter;
        final EndpointPolicy policy;
        final List<String> options;
        final Connection creator;
        /** The one uid that may connect, or -1: the bus's usual rules. */
        final long onlyUid;
        /** The creator's disconnect only stops the listener (Containers1), else it stops the endpoint. */
        final boolean creatorStopsListening;
        /** Which caps it is held to. */
        final EndpointCaps.Kind kind;
        /** Its own connection cap, or -1: the bus's current limit for its kind. */
        final int maxConnections;
        /** The bus's dup of the lifetime fd, or -1. */
        int lifetimeFd = -1;
        boolean listening = true;
        /** Stopped (RemoveEndpoint, StopInstance, lifetime fd): its connections are being closed. */
        boolean stopped;

        Endpoint(String id, UnixListener listener, EndpointFilter filter, List<String> options, Connection creator,
                long onlyUid, boolean creatorStopsListening, EndpointCaps.Kind kind, int maxConnections) {
            this.id = id;
            this.listener = listener;
            this.filter = filter;
            this.policy = new EndpointPolicy(filter);
            this.options = List.copyOf(options);
            this.creator = creator;
            this.onlyUid = onlyUid;
            this.creatorStopsListening = creatorStopsListening;
            this.kind = kind;
            this.maxConnections = maxConnections;
        }
    }

    private final TransportSettings transport;
    private final ConnectionAdmission admission;
    /** The server's live sessions (to find an endpoint's connections). */
    private final Set<ClientSession> sessions;
    private final BusServer server;
    /** Every endpoint that still exists as an instance, oldest first. */
    private final Map<String, Endpoint> endpoints = new LinkedHashMap<>();
    /** Whether a path is one of the bus's own socket files. */
    private final java.util.function.Predicate<java.nio.file.Path> busSocket;
    /** Whether an abstract name (without its leading NUL) is one the bus's own listeners hold. */
    private final java.util.function.Predicate<String> busAbstract;
    /** Hears the id of each endpoint that is gone. */
    private java.util.function.Consumer<String> gone = id -> { };
    /** Where AddServer's sockets go when the caller names no path; null: the default (see containerDir). */
    private java.nio.file.Path containerDir;

    EndpointListeners(BusServer server, TransportSettings transport, ConnectionAdmission admission,
            Set<ClientSession> sessions, java.util.function.Predicate<java.nio.file.Path> busSocket,
            java.util.function.Predicate<String> busAbstract) {
        this.busSocket = busSocket;
        this.busAbstract = busAbstract;
        this.server = server;
        this.transport = transport;
        this.admission = admission;
        this.sessions = sessions;
    }

    void onGone(java.util.function.Consumer<String> listener) {
        this.gone = listener;
    }

    void setContainerDir(java.nio.file.Path dir) {
        this.containerDir = dir;
    }

    /**
     * Binds {@code where} (a {@code unix:path=} or {@code unix:abstract=} address, or a bare
     * absolute path) and starts accepting on it; returns the connect address. The filter's
     * endpoint id names the endpoint and must be new. Endpoints1's form: no uid restriction,
     * removed with its creator.
     */
    String add(String where, EndpointFilter filter, List<String> options, Connection creator) throws IOException {
        return add(new EndpointRequest(where, filter, options, creator, -1, false, -1)).address();
    }

    /** As {@link #add(String, EndpointFilter, List, Connection)} with everything a request can say. */
    EndpointRequest.Bound add(EndpointRequest r) throws IOException {
        String id = r.filter().endpointId();
        if (endpoints.containsKey(id)) {
            throw new IllegalArgumentException("Endpoint " + id + " already exists");
        }
        EndpointCaps.Refusal over = overCap(r);
        if (over != null) {
            LOG.warn("{}", over.message());
            throw new EndpointRequest.LimitExceeded(over);
        }
        UnixAddress a = r.where() == null ? UnixAddress.path(containerSocket().toString(), null) : parseWhere(r.where());
        if (a.kind() == UnixAddress.Kind.PATH) {
            // Binding unlinks a socket file already there: never one of ours that is in use.
            java.nio.file.Path p = java.nio.file.Path.of(a.value());
            if (busSocket.test(p) || endpoints.values().stream().anyMatch(e -> sameFile(p, e.listener.socketFile()))) {
                throw new IllegalArgumentException("Socket path " + p + " is in use by this bus");
            }
        } else if (busAbstract.test(a.value()) || endpoints.values().stream()
                .anyMatch(e -> e.listening && sameAbstract(a, e.listener.boundAddress()))) {
            // The kernel would refuse it too (EADDRINUSE); ours are told apart as a path of ours is.
            // A name some other process holds fails in bind: AddressInUse (UnixListener.AddressInUseException).
            throw new IllegalArgumentException("Abstract socket name '" + a.value() + "' is in use by this bus");
        }
        int lifetime = -1;
        if (r.lifetimeFd() >= 0) {
            lifetime = LibC.INSTANCE.fcntl(r.lifetimeFd(), LibC.F_DUPFD_CLOEXEC, 0);
            if (lifetime < 0) {
                throw new IllegalArgumentException("Cannot keep the lifetime fd: " + LibC.Native.strerror(LibC.Native.errno()));
            }
        }
        UnixListener l;
        try {
            // Its own server guid, new and random, as each of dbus-daemon's Containers1 servers has
            // (AddServer makes a new DBusServer). Not derived as the bus's listeners' are (BusIds):
            // endpoints are not carried by a hand-over (Classification refuses), and a new endpoint
            // on a path a removed one used must not answer to the old address's guid.
            l = UnixListener.bind(a, BusIds.newGuid()).processFds(transport.processFd());
        } catch (IOException | RuntimeException e) {
            closeFd(lifetime);
            throw e;
        }
        Endpoint ep = new Endpoint(id, l, r.filter(), r.options(), r.creator(), r.onlyUid(), r.creatorStopsListening(),
                r.kind(), r.maxConnections());
        if (lifetime >= 0) {
            int fd = lifetime;
            try {
                // Interest 0: only hang-up and error are reported; the fd is never read.
                server.loop().register(fd, 0, (ready, events) -> lifetimeEvent(ep, events));
            } catch (IllegalStateException e) {
                l.close();
                closeFd(fd);
                throw new IllegalArgumentException("The lifetime fd cannot be watched (" + e.getMessage() + ")");
            }
            ep.lifetimeFd = fd;
        }
        try {
            l.start(server.loop(), socket -> accept(ep, socket));
        } catch (RuntimeException e) { // nothing half-registered stays listed
            l.close();
            if (ep.lifetimeFd >= 0) {
                server.loop().unregister(ep.lifetimeFd);
                closeFd(ep.lifetimeFd);
            }
            throw e;
        }
        endpoints.put(id, ep);
        LOG.info("Endpoint {} listening on {} (app id {}, instance id {})", id, l.connectAddress(), r.filter().appId(),
                r.filter().instanceId());
        return new EndpointRequest.Bound(l.connectAddress(), a.kind() == UnixAddress.Kind.PATH ? a.value() : "");
    }

    /**
     * The caps a new endpoint is held to (EndpointCaps decides), counted here where the endpoints
     * are: every instance on the bus, the AddServer instances of the asking uid (the bus owner's
     * uid and root are not held to that one), and the AddEndpoint endpoints the creator still
     * holds. Null: there is room.
     */
    private EndpointCaps.Refusal overCap(EndpointRequest r) {
        var limits = server.limits();
        int ofUid = 0;
        int ofCreator = 0;
        for (Endpoint ep : endpoints.values()) {
            if (ep.kind == EndpointCaps.Kind.CONTAINER && ep.onlyUid == r.onlyUid()) {
                ofUid++;
            }
            if (ep.kind == EndpointCaps.Kind.ENDPOINT && r.creator() != null && ep.creator == r.creator() && !ep.stopped) {
                ofCreator++;
            }
        }
        Connection c = r.creator();
        String who = c == null ? "The bus" : "Connection \"" + c.uniqueName() + "\" (" + c.logInfo() + ")";
        boolean uidHeld = r.onlyUid() != server.busUid() && r.onlyUid() != 0;
        return new EndpointCaps(limits.maxContainers, limits.maxContainersPerUser, limits.maxContainerMetadataBytes,
                limits.maxEndpointsPerConnection)
                .create(who, r.kind(), r.onlyUid(), uidHeld, r.metadataBytes(), endpoints.size(), ofUid, ofCreator);
    }

    private int connectionsOf(Endpoint ep) {
        int n = 0;
        for (ClientSession s : sessions) {
            if (!s.isClosed() && s.connection().endpoint() == ep.policy) {
                n++;
            }
        }
        return n;
    }

    /**
     * The refusal of one more connection through {@code ep}, or null: an AddServer instance takes
     * max_connections_per_container, an AddEndpoint endpoint its own cap or
     * max_connections_per_endpoint. Counted from accept, authenticated or not, as dbus-daemon.
     */
    private EndpointCaps.Refusal connectionCap(Endpoint ep) {
        var limits = server.limits();
        boolean container = ep.kind == EndpointCaps.Kind.CONTAINER;
        int limit = container ? limits.maxConnectionsPerContainer
                : ep.maxConnections > 0 ? ep.maxConnections : limits.maxConnectionsPerEndpoint;
        int n = connectionsOf(ep);
        if (EndpointCaps.hasRoom(n, limit)) {
            return null; // the common case builds no text
        }
        String appId = ep.filter.appId() == null ? "" : ep.filter.appId();
        String instance = container ? "container server /org/freedesktop/DBus/Containers1/" + ep.id + " (\"" + appId
                + "\")" : "endpoint " + ep.id + " (app id \"" + appId + "\")";
        String name = container ? "max_connections_per_container"
                : ep.maxConnections > 0 ? "max-connections" : "max_connections_per_endpoint";
        return EndpointCaps.connection(instance, n, limit, name);
    }

    private void accept(Endpoint ep, org.kdbusbridge.bridge.transport.SocketConnection socket) {
        EndpointCaps.Refusal full = connectionCap(ep);
        if (full != null) {
            // As dbus-daemon: the new connection cannot be told (it has not authenticated), so it is closed and logged.
            LOG.warn("{}", full.message());
            socket.close();
            return;
        }
        if (ep.onlyUid >= 0 && socket.peer().uid() != ep.onlyUid) {
            // As dbus-daemon's container servers: only the uid that asked for it may connect.
            LOG.warn("Endpoint {}: refusing a connection from uid {} (only uid {} may connect)", ep.id,
                    socket.peer().uid(), ep.onlyUid);
            socket.close();
            return;
        }
        admission.onAccept(socket, ep.policy, ep.listener.guid());
    }

    private void lifetimeEvent(Endpoint ep, int events) {
        if ((events & (EventLoop.HUP | EventLoop.ERROR)) == 0) {
            return;
        }
        unwatch(ep); // level-triggered: a hang-up would fire again on every wait until the endpoint is gone
        if (!ep.stopped && endpoints.get(ep.id) == ep) {
            stop(ep, "its lifetime fd hung up");
        }
    }

    /**
     * A fresh socket path for a container server: {@code dbus-} and 16 random hex digits in the
     * configured directory, else (as dbus-daemon) /run/dbus/containers for root,
     * $XDG_RUNTIME_DIR/dbus-1/containers (made if missing), or the temporary directory.
     */
    private java.nio.file.Path containerSocket() throws IOException {
        java.nio.file.Path dir = containerDir;
        if (dir == null) {
            String runtime = System.getenv("XDG_RUNTIME_DIR");
            if (server.busUid() == 0) {
                dir = java.nio.file.Path.of("/run/dbus/containers");
            } else if (runtime != null && !runtime.isEmpty()) {
                dir = java.nio.file.Path.of(runtime, "dbus-1", "containers");
                java.nio.file.Files.createDirectories(dir);
            } else {
                dir = java.nio.file.Path.of(System.getProperty("java.io.tmpdir"));
            }
        }
        return dir.resolve("dbus-" + org.kdbusbridge.bridge.transport.Urandom.hex(8));
    }

    /**
     * Whether two paths name the same file (device and inode, so "a//b", "a/./b" and a path
     * through a symlinked directory match too); as text when either does not exist.
     */
    static boolean sameFile(java.nio.file.Path a, java.nio.file.Path b) {
        if (b == null) {
            return false;
        }
        try {
            return java.nio.file.Files.isSameFile(a, b);
        } catch (IOException | RuntimeException e) {
            return a.normalize().equals(b.normalize());
        }
    }

    private static boolean sameAbstract(UnixAddress a, UnixAddress bound) {
        return bound != null && bound.kind() == UnixAddress.Kind.ABSTRACT && bound.value().equals(a.value());
    }

    /**
     * The address to bind: path or abstract only (an endpoint is one concrete socket). An abstract
     * name is reachable from every process in the bus's network namespace (a sandbox that shares
     * it included) and has no file mode: whoever can reach it may connect, and only the endpoint's
     * filter and the bus's auth rules stand in the way (docs/extensions.md). A path, bare or as
     * {@code unix:path=}, must be absolute: the bus's working directory is nobody's business
     * (the CLI makes a relative word absolute against its caller's, EndpointCommand.where).
     */
    static UnixAddress parseWhere(String where) {
        if (where == null || where.isEmpty()) {
            throw new UnixAddress.BadAddressException("Empty socket path");
        }
        UnixAddress a = where.startsWith("unix:") ? UnixAddress.parse(where) : UnixAddress.path(where, null);
        if (a.kind() != UnixAddress.Kind.PATH && a.kind() != UnixAddress.Kind.ABSTRACT) {
            throw new UnixAddress.BadAddressException("An endpoint needs a unix:path= or unix:abstract= address, not '"
                    + where + "'");
        }
        if (a.kind() == UnixAddress.Kind.PATH && !a.value().startsWith("/")) {
            throw new UnixAddress.BadAddressException("Socket path '" + a.value() + "' is not absolute");
        }
        return a;
    }

    /**
     * Endpoints1.RemoveEndpoint: stops the listening endpoint {@code id} (listener closed,
     * socket file gone, its connections closed); false if there is none.
     */
    boolean remove(String id, String reason) {
        Endpoint ep = endpoints.get(id);
        if (ep == null || !ep.listening) {
            return false;
        }
        stop(ep, reason);
        return true;
    }

    /** Containers1.StopInstance: as remove, also for an endpoint that stopped listening; false if none. */
    boolean stopInstance(String id) {
        Endpoint ep = endpoints.get(id);
        if (ep == null || ep.stopped) {
            return false;
        }
        stop(ep, "instance stopped by request");
        return true;
    }

    /** Containers1.StopListening: no new connections, those there stay; false if no such instance. */
    boolean stopListening(String id) {
        Endpoint ep = endpoints.get(id);
        if (ep == null || ep.stopped) {
            return false;
        }
        stopListening(ep, "stopped listening by request");
        return true;
    }

    /** The endpoint {@code id} while it is an instance nobody stopped, else null. */
    LiveEndpoint live(String id) {
        Endpoint ep = endpoints.get(id);
        return ep == null || ep.stopped ? null : new LiveEndpoint(ep.id, ep.filter, ep.creator, ep.listening);
    }

    private void stopListening(Endpoint ep, String reason) {
        if (ep.listening) {
            ep.listening = false;
            ep.listener.close(); // no new connection from here on; the socket file (or abstract name) is gone now
            LOG.info("Endpoint {} stopped listening ({})", ep.id, reason);
        }
        if (!hasConnections(ep)) {
            forget(ep);
        }
    }

    private void stop(Endpoint ep, String reason) {
        ep.stopped = true;
        if (ep.listening) {
            ep.listening = false;
            ep.listener.close();
        }
        LOG.info("Endpoint {} removed ({})", ep.id, reason);
        if (!hasConnections(ep)) {
            forget(ep);
            return;
        }
        // Its connections are closed in a step of their own: this runs inside a driver call or
        // another connection's close, and the caller's reply goes out first. The last one's
        // close forgets the endpoint (connectionGone).
        server.loop().execute(() -> disconnect(ep));
    }

    private void disconnect(Endpoint ep) {
        for (ClientSession s : new ArrayList<>(sessions)) {
            if (!s.isClosed() && ep.policy == s.connection().endpoint()) {
                s.close(DisconnectReason.BUS, "endpoint " + ep.id + " removed");
            }
        }
    }

    private boolean hasConnections(Endpoint ep) {
        for (ClientSession s : sessions) {
            if (!s.isClosed() && ep.policy == s.connection().endpoint()) {
                return true;
            }
        }
        return false;
    }

    /** The endpoint is no instance any more: its lifetime fd closed, the gone listener told. */
    private void forget(Endpoint ep) {
        if (endpoints.remove(ep.id) != ep) {
            return;
        }
        unwatch(ep);
        gone.accept(ep.id);
    }

    private void unwatch(Endpoint ep) {
        if (ep.lifetimeFd >= 0) {
            server.loop().unregister(ep.lifetimeFd);
            closeFd(ep.lifetimeFd);
            ep.lifetimeFd = -1;
        }
    }

    private static void closeFd(int fd) {
        if (fd >= 0) {
            LibC.INSTANCE.close(fd);
        }
    }

    /**
     * {@code c} left the bus (its session is out of the live set): an endpoint it came in
     * through that no longer listens may be gone now; the endpoints it created without a
     * lifetime fd go with it (Containers1's only stop listening).
     */
    void connectionGone(Connection c) {
        if (endpoints.isEmpty()) {
            return;
        }
        if (c.endpoint() != null) {
            Endpoint ep = endpoints.get(c.endpoint().filter().endpointId());
            if (ep != null && ep.policy == c.endpoint() && !ep.listening && !hasConnections(ep)) {
                forget(ep);
            }
        }
        for (Endpoint ep : new ArrayList<>(endpoints.values())) {
            if (ep.creator == c && ep.lifetimeFd < 0 && !ep.stopped) {
                if (ep.creatorStopsListening) {
                    stopListening(ep, "its creator disconnected");
                } else {
                    stop(ep, "its creator disconnected");
                }
            }
        }
    }

    /** Every listening endpoint, in creation order. */
    List<EndpointInfo> list() {
        List<EndpointInfo> out = new ArrayList<>(endpoints.size());
        for (Endpoint ep : endpoints.values()) {
            if (ep.listening) {
                out.add(new EndpointInfo(ep.id, ep.listener.connectAddress(), ep.filter.appId(),
                        ep.filter.instanceId(), ep.options));
            }
        }
        return out;
    }

    /** At stop: every listener and lifetime fd closed (socket files unlinked); connections are the server's to close. */
    void closeAll() {
        for (Endpoint ep : endpoints.values()) {
            if (ep.listening) {
                ep.listener.close();
            }
            unwatch(ep);
        }
        endpoints.clear();
    }
}
