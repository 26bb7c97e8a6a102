package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

import org.kdbusbridge.core.bus.DisconnectReason;
import org.kdbusbridge.bridge.protocol.SaslServer;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Who gets a session: max_incomplete_connections at accept, the SASL set-up from the current
 * config, and at authentication the uid's compiled policy and its loginfo.
 *
 * Loop thread only. Invariants: a session is in {@code sessions} from its accept until
 * {@link BusServer#onClosed}; while max_incomplete_connections is reached an accept first
 * drops the oldest incomplete connection, or refuses if there is none to drop; nothing here
 * makes a lambda per connection (see uidCheck).
 */
final class ConnectionAdmission {
    private static final Logger LOG = LoggerFactory.getLogger(BusServer.class);

    private final BusServer server;
    private final BusLimits limits;
    /** The server's live sessions, oldest first. */
    private final Set<ClientSession> sessions;

    /**
     * Made once: under C1 (what we ship) a capturing lambda or method reference allocates
     * through a slow runtime call each time it is evaluated, and this one ran per connection.
     */
    private final java.util.function.LongPredicate uidCheck = this::uidMayConnect;

    /** The groups of a uid from the current config's table (made once, as uidCheck). */
    private final java.util.function.LongFunction<long[]> groupsOfUid;

    ConnectionAdmission(BusServer server, Set<ClientSession> sessions) {
        this.server = server;
        this.limits = server.limits();
        this.sessions = sessions;
        this.groupsOfUid = uid -> server.config().groupsOf(uid);
    }

    /**
     * Connections that have not completed Hello (authenticating, authenticated, or refused at
     * Hello by a connection limit), as dbus-daemon's incomplete list.
     */
    private int incompleteConnections() {
        return server.bus().connectionCount() - server.bus().completedConnectionCount();
    }

    /** {@code guid}: the server guid of the listener the connection came through (SASL OK). */
    void onAccept(SocketConnection socket, String guid) {
        onAccept(socket, null, guid);
    }

    /**
     * As {@link #onAccept(SocketConnection, String)} for a connection that came in through a custom
     * endpoint ({@code endpoint} non-null): it carries the endpoint's filter from its first byte.
     */
    void onAccept(SocketConnection socket, org.kdbusbridge.core.endpoint.EndpointPolicy endpoint, String guid) {
        if (incompleteConnections() >= limits.maxIncompleteConnections) {
            // As dbus-daemon (bus/connection.c): room is made by dropping the OLDEST incomplete
            // connection. Refusing the new one instead let a client that opens sockets and never
            // authenticates lock every other client out until auth_timeout.
            // Through an endpoint only its own incomplete connections make room: a sandboxed client
            // opening sockets must not push the host's clients out mid-handshake.
            ClientSession oldest = oldestIncomplete(endpoint);
            if (oldest == null) {
                LOG.warn("Refusing connection from pid {}: max_incomplete_connections={} reached",
                        socket.peer().pid(), limits.maxIncompleteConnections);
                socket.close();
                return;
            }
            LOG.warn("max_incomplete_connections={} reached: dropping the oldest incomplete connection {}",
                    limits.maxIncompleteConnections, oldest);
            oldest.close(DisconnectReason.LIMITS, "max_incomplete_connections");
        }
        Credentials creds = new Credentials(socket.peer().uid(), socket.peer().gid(), socket.peer().pid());
        var config = server.config();
        SaslServer sasl = new SaslServer(new SaslServer.Config(config.allowsExternal(), config.allowsAnonymous(),
                socket.peer().uid(), uidCheck, guid, true));
        ClientSession[] holder = new ClientSession[1];
        Connection conn = server.bus().connect(creds, new org.kdbusbridge.core.connection.ConnectionSink() {
            @Override
            public void onQueued(Connection c) {
                holder[0].onQueued(c);
            }

            @Override
            public void onIncomingDrained(Connection c) {
                holder[0].onIncomingDrained(c);
            }

            @Override
            public void onDropped(Connection c) {
                holder[0].onDropped(c);
            }
        });
        conn.setPeerDetails(new SocketPeerDetails(socket, groupsOfUid));
        if (endpoint != null) {
            conn.setEndpoint(endpoint); // before SASL and Hello, as Connection requires
        }
        ClientSession session = new ClientSession(server, socket, conn, sasl);
        holder[0] = session;
        conn.attach(session);
        sessions.add(session);
        session.start(server.loop(), limits.authTimeout);
        // Clients write AUTH right after connect(), usually before we accept: read it now
        // instead of after another trip through epoll_wait (nothing there costs one EAGAIN).
        session.onReady(socket.fd(), EventLoop.READ);
    }

    /**
     * Hand-over (step 5): the SASL exchange of a connection that was authenticating in the bus
     * this one replaces, going on from {@code p} with the set-up {@link #onAccept} gives (the
     * current config's mechanisms and uid rule, the peer's uid, the guid its OK names).
     */
    SaslServer resumeSasl(SocketConnection socket, SaslServer.Progress p) {
        var config = server.config();
        return SaslServer.resume(new SaslServer.Config(config.allowsExternal(), config.allowsAnonymous(),
                socket.peer().uid(), uidCheck, p.serverGuid(), true), p);
    }

    /** The oldest incomplete connection, of {@code endpoint} only if it is non-null. */
    private ClientSession oldestIncomplete(org.kdbusbridge.core.endpoint.EndpointPolicy endpoint) {
        for (ClientSession s : sessions) { // insertion order: oldest first
            if (s.connection().uniqueName() == null && !s.isClosed()
                    && (endpoint == null || s.connection().endpoint() == endpoint)) {
                return s;
            }
        }
        return null;
    }

    private boolean uidMayConnect(long uid) {
        return server.config().isUidAllowed(uid, server.busUid());
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
        c.setPolicy(server.config().compilePolicy(uid));
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
}
