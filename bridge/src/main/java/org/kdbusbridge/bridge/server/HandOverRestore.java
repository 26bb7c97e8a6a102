package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.handover.FdTable;
import org.kdbusbridge.bridge.handover.Snapshot;
import org.kdbusbridge.bridge.transport.PeerCredentials;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.bridge.transport.UnixListener;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.Restore;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.match.MatchRuleException;
import org.kdbusbridge.core.name.NameRegistry;
import org.kdbusbridge.core.bus.UserQuota;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Hand-over step 1 (docs/handover.md section 8): the bridge's half of a snapshot of an idle bus
 * ({@link #capture}, in the old bus's loop step that detaches it) and of its restore into a new
 * {@link BusServer} ({@link #restore}: R1 fd check, R3 listeners, R4 connections and sessions,
 * R5 the core through {@link Restore}, R9 reading again). No trigger, no execve: both buses live
 * in one JVM here; step 2 puts an execve between the two halves.
 */
public final class HandOverRestore {
    private static final Logger LOG = LoggerFactory.getLogger(BusServer.class);

    private HandOverRestore() { }

    /**
     * Loop thread of {@code server}: its state as a snapshot, or Refused naming everything step 1
     * cannot carry. Changes nothing.
     */
    static Snapshot capture(BusServer server) throws Snapshot.Refused {
        Bus bus = server.bus();
        List<String> refusals = new ArrayList<>(bus.handOverRefusals());
        if (server.hasCapture()) {
            refusals.add("--kdbus-capture is running (the capture is carried from step 6)");
        }
        if (server.hasMetrics()) {
            refusals.add("--kdbus-metrics is running (its listener is not carried yet)");
        }
        if (server.endpointCount() > 0) {
            refusals.add(server.endpointCount() + " custom endpoint(s) (endpoints are not carried yet)");
        }
        Map<Connection, ClientSession> sessionOf = new IdentityHashMap<>();
        for (ClientSession s : server.sessions()) {
            sessionOf.put(s.connection(), s);
            if (s.isClosed() || s.isClosing()) {
                refusals.add(s + " is closing");
            } else if (s.holdsPartialIo()) {
                refusals.add(s + " has partial input or unsent output (carried from step 5)");
            } else if (s.pendingFdCount() > 0) {
                refusals.add(s + " has " + s.pendingFdCount() + " received fds not yet claimed (carried from step 5)");
            } else if (!s.isAuthenticated()) {
                refusals.add(s + " has not authenticated (SASL is carried from step 5)");
            }
        }
        if (!refusals.isEmpty()) {
            throw new Snapshot.Refused(refusals);
        }
        Restore.Counts counts = bus.restoreCounts();
        FdTable fds = new FdTable();
        List<Snapshot.Listener> listeners = new ArrayList<>();
        for (UnixListener l : server.listeners().all()) {
            int index = fds.add(l.fd(), FdTable.Kind.LISTENER);
            Path file = l.socketFile();
            listeners.add(new Snapshot.Listener(index, l.requestedAddress().toString(), l.boundAddress().toString(),
                    file == null ? null : file.toString()));
        }
        Map<Connection, List<MatchRule>> monitors = bus.monitorRules();
        List<Connection> all = new ArrayList<>(bus.activeConnections());
        all.addAll(monitors.keySet());
        all.sort(Comparator.comparingLong(Connection::id));
        List<Snapshot.Conn> conns = new ArrayList<>();
        List<Snapshot.Session> sessions = new ArrayList<>();
        List<Snapshot.Matches> matches = new ArrayList<>();
        List<Snapshot.Matches> monitorRules = new ArrayList<>();
        java.util.LinkedHashSet<String> names = new java.util.LinkedHashSet<>();
        for (Connection c : all) {
            ClientSession s = sessionOf.get(c);
            if (s == null) {
                throw new Snapshot.Refused(List.of(c + " has no session (not a socket client)"));
            }
            SocketConnection sock = s.socket();
            int socketIndex = fds.add(sock.fd(), FdTable.Kind.CLIENT);
            int pidfd = sock.heldPeerPidfd();
            int pidfdIndex = pidfd >= 0 ? fds.add(pidfd, FdTable.Kind.PEER_PIDFD) : -1;
            Credentials cr = c.credentials();
            boolean monitor = monitors.containsKey(c);
            var drops = c.drops();
            conns.add(new Snapshot.Conn(c.id(), c.uniqueName(), cr == null ? -1 : cr.uid(), cr == null ? -1 : cr.gid(),
                    cr == null ? -1 : cr.pid(), c.authenticatedUid(), c.acceptsUnixFds(), c.requiresSealedMemfds(),
                    monitor, c.attachedMetadata(), drops != null, drops == null ? 0 : drops.count(),
                    drops == null ? 0 : drops.firstSeq(), drops == null ? 0 : drops.lastSeq(), c.peakIncomingBytes(),
                    c.peakIncomingFds(), c.peakMatchRules(), c.peakBusNames(), c.pool().pushedCount(),
                    c.pool().dropped(), c.pool().peakBytes(), c.pool().peakFds(), c.ownedNames(), pidfdIndex));
            PeerCredentials p = sock.peer();
            sessions.add(new Snapshot.Session(c.id(), socketIndex, p.pid(), p.uid(), p.gid(), sock.passesCredentials(),
                    sock.passCredentialsFailed(), sock.asksPidfdLater()));
            if (monitor) {
                monitorRules.add(new Snapshot.Matches(c.id(), texts(monitors.get(c))));
            } else {
                List<MatchRule> rules = bus.matches().rulesOf(c);
                if (!rules.isEmpty()) {
                    matches.add(new Snapshot.Matches(c.id(), texts(rules)));
                }
                names.addAll(c.ownedNames());
            }
        }
        List<Snapshot.Name> queues = new ArrayList<>();
        NameRegistry registry = bus.names();
        for (String name : names) {
            List<Connection> q = registry.queue(name);
            long[] ids = new long[q.size()];
            int[] flags = new int[q.size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = q.get(i).id();
                flags[i] = registry.storedFlags(q.get(i), name);
            }
            queues.add(new Snapshot.Name(name, ids, flags));
        }
        Snapshot.Bus b = new Snapshot.Bus(server.guid(), org.kdbusbridge.bridge.cli.Main.VERSION, System.nanoTime(),
                server.busPid(), counts.nextId(), counts.nextUnique(), counts.lastSequence(), counts.peakBusNames(),
                counts.peakBusNamesPerConnection(), counts.peakMatchRules(), counts.peakMatchRulesPerConnection());
        return new Snapshot(b, fds.entries(), listeners, conns, queues, matches, monitorRules, sessions);
    }

    private static List<String> texts(List<MatchRule> rules) {
        List<String> out = new ArrayList<>(rules.size());
        for (MatchRule r : rules) {
            out.add(r.toString());
        }
        return out;
    }

    /**
     * Builds a new bus from {@code snap} over the fds it names (still open in this process),
     * with {@code config}'s policy and limits, and starts serving: the same GUID, connection ids,
     * unique names, name queues and match rules; clients keep their sockets. Throws if an fd is
     * not what the snapshot says (nothing adopted then) or if the restored state fails the core's
     * invariants.
     */
    public static BusServer restore(Snapshot snap, BusConfig config, TransportSettings transport) throws IOException {
        return restore(snap, config, transport, s -> { });
    }

    /** As above; {@code configure} sets the new server's options (the command line's) before it serves. */
    public static BusServer restore(Snapshot snap, BusConfig config, TransportSettings transport,
            java.util.function.Consumer<BusServer> configure) throws IOException {
        List<String> bad = FdTable.check(snap.fds());
        if (!bad.isEmpty()) {
            throw new IOException("hand-over fds: " + String.join("; ", bad));
        }
        UserQuota quota = UserQuota.forHeap(Runtime.getRuntime().maxMemory(),
                System.getProperty(UserQuota.PER_USER_PROPERTY), System.getProperty(UserQuota.QUEUE_PER_USER_PROPERTY),
                ProcessFacts.openFilesLimit());
        String guid = snap.bus().guid();
        BusServer server = new BusServer(config, quota, new DirectBuffers(transport.ioBuffers()), transport, guid);
        configure.accept(server);
        List<UnixListener> adopted = new ArrayList<>();
        for (Snapshot.Listener l : snap.listeners()) {
            int fd = snap.fds().get(l.fdIndex()).fd();
            UnixAddress requested;
            try {
                requested = UnixAddress.parse(l.requested());
            } catch (IllegalArgumentException e) {
                requested = UnixAddress.systemd(guid);
            }
            adopted.add(UnixListener.adoptForHandOver(fd, requested, guid,
                    l.socketFile() == null ? null : Path.of(l.socketFile())));
        }
        server.resume(adopted, () -> restoreOnLoop(server, snap));
        return server;
    }

    /** R4, R5 and R9 on the new bus's loop, before its listeners accept. */
    private static void restoreOnLoop(BusServer server, Snapshot snap) {
        BusConfig config = server.config();
        List<ClientSession> made = new ArrayList<>();
        restoreCore(server.bus(), snap, (r, cr, ss) -> {
            int fd = snap.fds().get(ss.socketFdIndex()).fd();
            int pidfd = cr.pidfdIndex() < 0 ? -1 : snap.fds().get(cr.pidfdIndex()).fd();
            SocketConnection sock = new SocketConnection(fd, new PeerCredentials(ss.peerPid(), ss.peerUid(), ss.peerGid()),
                    pidfd, ss.askPidfdLater());
            if (ss.passCred() && !ss.passCredFailed()) {
                sock.passCredentials(true); // SO_PASSCRED stayed on the socket: this only syncs the flag
            }
            Sink sink = new Sink();
            Connection c = r.connection(cr.id(), new Credentials(cr.uid(), cr.gid(), cr.pid()), sink);
            c.setPeerDetails(new SocketPeerDetails(sock, id -> server.config().groupsOf(id))); // the config of the day, as at accept
            c.setPolicy(config.compilePolicy(cr.authenticatedUid()));
            long uid = cr.authenticatedUid();
            long pid = cr.pid();
            c.setLogInfo(() -> ConnectionAdmission.logInfo(uid, pid));
            ClientSession session = new ClientSession(server, sock, c, null);
            session.restoreAuthenticated(cr.authenticatedUid(), cr.unixFds());
            sink.session = session;
            c.attach(session);
            made.add(session);
            return c;
        });
        for (ClientSession s : made) {
            server.sessions().add(s);
            s.resumeIo(server.loop()); // R9: what clients sent during the pause waits in the socket
        }
    }

    /**
     * Check mode (docs/handover.md section 5): the core half of {@link #restore} on a bus of its
     * own, with no sockets (fd indexes stay numbers): every connection with its credentials and
     * the policy {@code config} compiles for it, names, match rules, monitors, counters, and the
     * core's invariant checks at the end. Throws naming what does not restore; touches no fd.
     */
    public static Bus restoreOffline(Snapshot snap, BusConfig config) {
        UserQuota quota = UserQuota.forHeap(Runtime.getRuntime().maxMemory(),
                System.getProperty(UserQuota.PER_USER_PROPERTY), System.getProperty(UserQuota.QUEUE_PER_USER_PROPERTY),
                ProcessFacts.openFilesLimit());
        org.kdbusbridge.core.bus.BusLimits limits = new org.kdbusbridge.core.bus.BusLimits();
        limits.copyFrom(config.limits());
        Bus bus = new Bus(limits, quota);
        restoreCore(bus, snap, (r, cr, ss) -> {
            Connection c = r.connection(cr.id(), new Credentials(cr.uid(), cr.gid(), cr.pid()), connection -> { });
            c.setPolicy(config.compilePolicy(cr.authenticatedUid()));
            return c;
        });
        return bus;
    }

    /** Makes one carried connection (live: over its socket, with its session; offline: bare). */
    private interface ConnectionMaker {
        Connection make(Restore r, Snapshot.Conn cr, Snapshot.Session ss);
    }

    /** R4 and R5: the connections, names, owned names, match rules, monitors and counters; the invariants. */
    private static void restoreCore(Bus bus, Snapshot snap, ConnectionMaker maker) {
        Restore r = bus.beginRestore();
        Map<Long, Snapshot.Session> sessionById = new HashMap<>();
        for (Snapshot.Session s : snap.sessions()) {
            sessionById.put(s.connectionId(), s);
        }
        Map<Long, List<String>> monitorRules = new HashMap<>();
        for (Snapshot.Matches m : snap.monitors()) {
            monitorRules.put(m.connectionId(), m.rules());
        }
        for (Snapshot.Conn cr : snap.connections()) {
            Snapshot.Session ss = sessionById.get(cr.id());
            if (ss == null) {
                throw new IllegalStateException("connection " + cr.id() + " has no session in the snapshot");
            }
            Connection c = maker.make(r, cr, ss);
            c.setAuthenticatedUid(cr.authenticatedUid());
            c.setAcceptsUnixFds(cr.unixFds());
            if (cr.requireSealedMemfds()) {
                c.requireSealedMemfds();
            }
            if (cr.monitor()) {
                r.monitor(c, cr.uniqueName(), parse(monitorRules.getOrDefault(cr.id(), List.of())));
            } else {
                r.register(c, cr.uniqueName());
            }
            r.attachMetadata(c, cr.attached(), cr.drops(), cr.dropCount(), cr.dropFirstSeq(), cr.dropLastSeq());
            c.pool().restoreCounters(cr.poolPushed(), cr.poolDropped(), cr.poolPeakBytes(), cr.poolPeakFds());
        }
        for (Snapshot.Name n : snap.names()) {
            List<Connection> owners = new ArrayList<>(n.owners().length);
            for (long id : n.owners()) {
                Connection o = r.byId(id);
                if (o == null) {
                    throw new IllegalStateException(n.name() + " is owned by unknown connection " + id);
                }
                owners.add(o);
            }
            r.queue(n.name(), owners, n.flags());
        }
        for (Snapshot.Conn cr : snap.connections()) {
            if (!cr.ownedNames().isEmpty()) {
                r.ownedNames(r.byId(cr.id()), cr.ownedNames());
            }
        }
        for (Snapshot.Matches m : snap.matches()) {
            Connection c = r.byId(m.connectionId());
            if (c == null) {
                throw new IllegalStateException("match rules of unknown connection " + m.connectionId());
            }
            for (MatchRule rule : parse(m.rules())) {
                r.match(c, rule);
            }
        }
        for (Snapshot.Conn cr : snap.connections()) { // peaks last: restoring the entries raised them
            r.byId(cr.id()).restorePeaks(cr.peakIncomingBytes(), cr.peakIncomingFds(), cr.peakMatchRules(),
                    cr.peakBusNames());
        }
        Snapshot.Bus b = snap.bus();
        r.finish(new Restore.Counts(b.nextId(), b.nextUnique(), b.lastSequence(), b.peakBusNames(),
                b.peakBusNamesPerConnection(), b.peakMatchRules(), b.peakMatchRulesPerConnection()));
    }

    private static List<MatchRule> parse(List<String> texts) {
        List<MatchRule> out = new ArrayList<>(texts.size());
        for (String t : texts) {
            try {
                out.add(MatchRule.parseCanonical(t));
            } catch (MatchRuleException e) {
                throw new IllegalStateException("carried match rule does not parse: " + t + ": " + e.getMessage(), e);
            }
        }
        return out;
    }

    /** The restored connection's sink: the session, set once it exists (as ConnectionAdmission does). */
    private static final class Sink implements ConnectionSink {
        ClientSession session;

        @Override
        public void onQueued(Connection c) {
            session.onQueued(c);
        }

        @Override
        public void onIncomingDrained(Connection c) {
            session.onIncomingDrained(c);
        }

        @Override
        public void onDropped(Connection c) {
            session.onDropped(c);
        }
    }
}
