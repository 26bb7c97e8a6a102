package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.kdbusbridge.bridge.driver.EndpointInfo;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.bridge.transport.UnixListener;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.endpoint.EndpointFilter;
import org.kdbusbridge.core.endpoint.EndpointPolicy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The bus's custom endpoints (issue 18): one extra unix listener each, whose connections carry
 * the endpoint's filter (set before SASL, so before Hello) and go through the same admission as
 * any other connection (same uid rules and limits).
 *
 * Loop thread only. Invariants: an endpoint is listed from a successful {@link #add} until
 * {@link #remove}, its creator's disconnect or {@link #closeAll}; removing closes its listener
 * (the socket file is unlinked) and then every connection that came in through it; a
 * connection belongs to the endpoint whose id its filter carries.
 */
final class EndpointListeners {
    private static final Logger LOG = LoggerFactory.getLogger(BusServer.class);

    /** One live endpoint; {@code creator} null: nobody's (removed only explicitly or at stop). */
    private record Endpoint(String id, UnixListener listener, EndpointFilter filter, EndpointPolicy policy,
            List<String> options, Connection creator) { }

    private final String guid;
    private final TransportSettings transport;
    private final ConnectionAdmission admission;
    /** The server's live sessions (to find an endpoint's connections). */
    private final Set<ClientSession> sessions;
    private final BusServer server;
    private final Map<String, Endpoint> endpoints = new LinkedHashMap<>();
    /** Whether a path is one of the bus's own socket files. */
    private final java.util.function.Predicate<java.nio.file.Path> busSocket;

    EndpointListeners(BusServer server, String guid, TransportSettings transport, ConnectionAdmission admission,
            Set<ClientSession> sessions, java.util.function.Predicate<java.nio.file.Path> busSocket) {
        this.busSocket = busSocket;
        this.server = server;
        this.guid = guid;
        this.transport = transport;
        this.admission = admission;
        this.sessions = sessions;
    }

    /**
     * Binds {@code where} (a {@code unix:path=} or {@code unix:abstract=} address, or a bare
     * absolute path) and starts accepting on it; returns the connect address. The filter's
     * endpoint id names the endpoint and must be new.
     */
    String add(String where, EndpointFilter filter, List<String> options, Connection creator) throws IOException {
        String id = filter.endpointId();
        if (endpoints.containsKey(id)) {
            throw new IllegalArgumentException("Endpoint " + id + " already exists");
        }
        UnixAddress a = parseWhere(where);
        if (a.kind() == UnixAddress.Kind.PATH) {
            // Binding unlinks a socket file already there: never one of ours that is in use.
            java.nio.file.Path p = java.nio.file.Path.of(a.value());
            if (busSocket.test(p) || endpoints.values().stream().anyMatch(e -> p.equals(e.listener().socketFile()))) {
                throw new IllegalArgumentException("Socket path " + p + " is in use by this bus");
            }
        }
        UnixListener l = UnixListener.bind(a, guid).processFds(transport.processFd());
        EndpointPolicy policy = new EndpointPolicy(filter);
        Endpoint ep = new Endpoint(id, l, filter, policy, List.copyOf(options), creator);
        endpoints.put(id, ep);
        l.start(server.loop(), socket -> admission.onAccept(socket, policy));
        LOG.info("Endpoint {} listening on {} (app id {}, instance id {})", id, l.connectAddress(), filter.appId(),
                filter.instanceId());
        return l.connectAddress();
    }

    /** The address to bind: path or abstract only (an endpoint is one concrete socket). */
    static UnixAddress parseWhere(String where) {
        if (where == null || where.isEmpty()) {
            throw new UnixAddress.BadAddressException("Empty socket path");
        }
        if (!where.startsWith("unix:")) {
            if (!where.startsWith("/")) {
                throw new UnixAddress.BadAddressException("Socket path '" + where + "' is not absolute");
            }
            return UnixAddress.path(where, null);
        }
        UnixAddress a = UnixAddress.parse(where);
        if (a.kind() != UnixAddress.Kind.PATH && a.kind() != UnixAddress.Kind.ABSTRACT) {
            throw new UnixAddress.BadAddressException("An endpoint needs a unix:path= or unix:abstract= address, not '"
                    + where + "'");
        }
        return a;
    }

    /** Removes the endpoint {@code id}: listener closed, socket file gone, its connections closed; false if unknown. */
    boolean remove(String id, String reason) {
        Endpoint ep = endpoints.remove(id);
        if (ep == null) {
            return false;
        }
        ep.listener().close(); // no new connection from here on; the socket file is gone now
        // Its connections are closed in a step of their own: this runs inside a driver call or
        // another connection's close, and the caller's reply goes out first.
        server.loop().execute(() -> disconnect(ep));
        LOG.info("Endpoint {} removed ({})", id, reason);
        return true;
    }

    private void disconnect(Endpoint ep) {
        for (ClientSession s : new ArrayList<>(sessions)) {
            if (!s.isClosed() && ep.policy() == s.connection().endpoint()) {
                s.close("endpoint " + ep.id() + " removed");
            }
        }
    }

    /** {@code c} left the bus: the endpoints it created go with it. */
    void creatorGone(Connection c) {
        if (endpoints.isEmpty()) {
            return;
        }
        for (Endpoint ep : new ArrayList<>(endpoints.values())) {
            if (ep.creator() == c) {
                remove(ep.id(), "its creator disconnected");
            }
        }
    }

    /** Every endpoint, in creation order. */
    List<EndpointInfo> list() {
        List<EndpointInfo> out = new ArrayList<>(endpoints.size());
        for (Endpoint ep : endpoints.values()) {
            out.add(new EndpointInfo(ep.id(), ep.listener().connectAddress(), ep.filter().appId(),
                    ep.filter().instanceId(), ep.options()));
        }
        return out;
    }

    /** At stop: every listener closed (socket files unlinked); connections are the server's to close. */
    void closeAll() {
        for (Endpoint ep : endpoints.values()) {
            ep.listener().close();
        }
        endpoints.clear();
    }
}
