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
import org.kdbusbridge.core.connection.ReplySlot;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.match.MatchRuleException;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.MessageFacts;
import org.kdbusbridge.core.message.SealedPayload;
import org.kdbusbridge.core.name.NameRegistry;
import org.kdbusbridge.core.bus.UserQuota;

/**
 * Hand-over steps 1 and 4 (docs/handover.md section 8): the bridge's half of a snapshot of the
 * bus ({@link #capture}, in the old bus's loop step that detaches it, refusing with every reason
 * what cannot be carried yet) and of its restore into a new {@link BusServer} ({@link #restore}:
 * R1 fd check, R3 listeners, R4 connections and sessions, R5 the core through {@link Restore}:
 * names, rules, then queued messages (each once, with its fds and facts), pools, PeekQueued
 * positions and reply slots, R6 the slots' deadlines less the pause, R9 the carried output
 * first, reading again). Step 5: every session's partial I/O (SASL in progress and connections
 * before Hello, the input read and not handled, fds ahead of their frame, the fds on the first
 * committed byte) is captured and restored, the input through the new assembler before the
 * socket is read. Both buses may live in one JVM (tests); step 2 puts an execve between the two
 * halves.
 */
public final class HandOverRestore {

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
            } else if (s.uncarriedIo() != null) {
                refusals.add(s + " has " + s.uncarriedIo()); // only inside a burst or a flush
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
        for (ClientSession s : server.sessions()) {
            if (s.connection().uniqueName() == null) {
                all.add(s.connection()); // step 5: in SASL, or authenticated and no Hello yet
            }
        }
        all.sort(Comparator.comparingLong(Connection::id));
        List<Snapshot.Conn> conns = new ArrayList<>();
        Map<Connection, Integer> socketIndexOf = new IdentityHashMap<>();
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
                    c.pool().dropped(), c.pool().peakBytes(), c.pool().peakFds(), c.ownedNames(), pidfdIndex,
                    c.peekAnswerAt() >= 0 && c.pool().stillQueued(c.peekAnswerAt()) ? c.peekAnswerAt() : -1));
            socketIndexOf.put(c, socketIndex);
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
        // Step 4: each queued message once (pools refer to it by place), its fds through FDS.
        Map<Message, Integer> place = new IdentityHashMap<>();
        List<Snapshot.Msg> messages = new ArrayList<>();
        Map<Connection, Snapshot.Departed> departed = new IdentityHashMap<>();
        Map<FdSet, Integer> senderPidfds = new IdentityHashMap<>(); // one FDS entry per shared pidfd
        Map<FdSet, int[]> messageFds = new IdentityHashMap<>(); // a broadcast's fds: one set of entries
        List<Snapshot.Pool> pools = new ArrayList<>();
        List<String> uncarried = new ArrayList<>();
        java.util.Set<Connection> carried = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        carried.addAll(all);
        for (Connection c : all) {
            int n = c.pool().messages();
            if (n == 0) {
                continue;
            }
            int[] places = new int[n];
            for (int i = 0; i < n; i++) {
                Message m = c.pool().peek(i);
                Integer at = place.get(m);
                if (at == null) {
                    String why = uncarriable(m, carried);
                    Connection from = m.sender();
                    if (why == null && from != null && !carried.contains(from)) {
                        Credentials fc = from.credentials();
                        departed.computeIfAbsent(from, d -> new Snapshot.Departed(d.id(), d.uniqueName(), fc != null,
                                fc == null ? -1 : fc.uid(), fc == null ? -1 : fc.gid(), fc == null ? -1 : fc.pid()));
                    }
                    if (why != null) {
                        uncarried.add(c + " holds a queued message (serial " + m.serial() + ") " + why);
                        at = -1;
                    } else {
                        at = messages.size();
                        messages.add(message(m, fds, senderPidfds, messageFds));
                    }
                    place.put(m, at);
                }
                places[i] = at;
            }
            pools.add(new Snapshot.Pool(c.id(), places));
        }
        if (!uncarried.isEmpty()) {
            throw new Snapshot.Refused(uncarried);
        }
        // Step 5: each session with its partial I/O; fds it shares with queued messages share their entries.
        List<Snapshot.Session> sessions = new ArrayList<>();
        for (Connection c : all) {
            ClientSession s = sessionOf.get(c);
            SocketConnection sock = s.socket();
            PeerCredentials p = sock.peer();
            sessions.add(new Snapshot.Session(c.id(), socketIndexOf.get(c), p.pid(), p.uid(), p.gid(),
                    sock.passesCredentials(), sock.passCredentialsFailed(), sock.asksPidfdLater(),
                    s.output().committedBytes(), s.output().headOffset(), s.output().renderedHead(),
                    partialIo(s, fds, senderPidfds, messageFds)));
        }
        // Step 4: every open reply slot, callee by callee in its opening order, with the time left.
        long nowNs = System.nanoTime(); // the bus's reply clock is nanoTime in ms; also the header's instant
        long nowMs = nowNs / 1_000_000;
        List<Snapshot.Slot> slots = new ArrayList<>();
        for (Connection c : all) {
            for (ReplySlot s = c.firstPendingIncoming(); s != null; s = s.nextIncoming()) {
                if (!carried.contains(s.caller())) {
                    throw new Snapshot.Refused(List.of(c + " owes a reply to " + s.caller() + ", which is not carried"));
                }
                slots.add(new Snapshot.Slot(c.id(), s.caller().id(), s.serial(),
                        s.hasDeadline() ? s.deadline() - nowMs : Long.MIN_VALUE));
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
        Snapshot.Bus b = new Snapshot.Bus(server.guid(), org.kdbusbridge.bridge.cli.Main.VERSION, nowNs,
                server.busPid(), counts.nextId(), counts.nextUnique(), counts.lastSequence(), counts.peakBusNames(),
                counts.peakBusNamesPerConnection(), counts.peakMatchRules(), counts.peakMatchRulesPerConnection());
        List<Snapshot.Departed> gone = new ArrayList<>(departed.values());
        gone.sort(Comparator.comparingLong(Snapshot.Departed::id));
        return new Snapshot(b, fds.entries(), listeners, conns, queues, matches, monitorRules, sessions, gone, messages,
                pools, slots, null);
    }

    /** SESSIONS v3: {@code s}'s SASL, timers, unhandled input, pending fds and the fds on its first committed byte. */
    private static Snapshot.PartialIo partialIo(ClientSession s, FdTable fds, Map<FdSet, Integer> senderPidfds,
            Map<FdSet, int[]> messageFds) {
        org.kdbusbridge.bridge.protocol.SaslServer.Progress p = s.saslProgress();
        Snapshot.Sasl sasl = p == null ? null : new Snapshot.Sasl(p.state(), p.line(), p.totalBytes(), p.failures(),
                p.mechanism(), p.authUid(), p.anonymous(), p.unixFd(), p.serverGuid());
        InputAssembler.ReadCreds rc = s.readCreds();
        int[] waiting = s.pendingFds();
        int[] pending = new int[waiting.length];
        for (int i = 0; i < waiting.length; i++) {
            pending[i] = fds.add(waiting[i], FdTable.Kind.MESSAGE);
        }
        FdSet out = s.output().committedFds();
        int[] committed = out == null ? new int[0] : messageFds.computeIfAbsent(out, set -> messageFdIndexes(set, fds));
        FdSet pidfd = s.output().committedPidfd();
        int pidfdIndex = pidfd == null ? -1
                : senderPidfds.computeIfAbsent(pidfd, x -> fds.add(x.fd(0), FdTable.Kind.SENDER_PIDFD));
        return new Snapshot.PartialIo(sasl, s.authRemainingMs(), s.unhandledInput(), rc.firstPid(), rc.firstUid(),
                rc.firstGid(), rc.partialMixed(), rc.frameContinues(), pending, s.pendingRemainingMs(), committed,
                pidfdIndex);
    }

    private static int[] messageFdIndexes(FdSet set, FdTable fds) {
        int[] out = new int[set.count()];
        for (int i = 0; i < out.length; i++) {
            out[i] = fds.add(set.fd(i), FdTable.Kind.MESSAGE);
        }
        return out;
    }

    /** Why {@code m} cannot be carried yet (naming what is missing), or null. */
    private static String uncarriable(Message m, java.util.Set<Connection> carried) {
        if (m.sender() != null && !carried.contains(m.sender()) && !m.sender().isClosed()) {
            return "from " + m.sender() + ", which is connected but not carried";
        }
        MessageFacts f = m.facts();
        if (f != null && f.process() != null && !(f.process() instanceof SenderProcess)) {
            return "with process facts of an unknown kind (" + f.process().getClass().getName() + ")";
        }
        return null;
    }

    /** {@code m} as MESSAGES values; its fds join {@code fds} (a message's fds are its own, a sender pidfd is shared). */
    private static Snapshot.Msg message(Message m, FdTable fds, Map<FdSet, Integer> senderPidfds,
            Map<FdSet, int[]> messageFds) {
        FdSet set = m.fds();
        int[] fdIndexes = set == null ? new int[0] : messageFdIndexes(set, fds);
        if (set != null) {
            messageFds.put(set, fdIndexes); // a session's committed bytes may carry the same set (step 5)
        }
        MessageFacts f = m.facts();
        Snapshot.Facts facts = null;
        if (f != null) {
            FdSet pidfd = f.pidfd();
            int pidfdIndex = pidfd == null ? -1
                    : senderPidfds.computeIfAbsent(pidfd, p -> fds.add(p.fd(0), FdTable.Kind.SENDER_PIDFD));
            Snapshot.Process proc = null;
            if (f.process() instanceof SenderProcess sp) {
                proc = new Snapshot.Process(sp.pid(), sp.uid(), sp.items(), sp.groups(), sp.comm(), sp.exe(),
                        sp.cmdline(), sp.cgroup(), sp.seclabel());
            }
            facts = new Snapshot.Facts(f.monotonicNs(), f.realtimeNs(), f.names() == null ? null : List.of(f.names()),
                    f.namesTruncated(), f.pid(), f.uid(), f.gid(), f.credsAtSendTime(), proc, pidfdIndex);
        }
        java.nio.ByteBuffer v = m.payload().view(); // a deferred payload is encoded now
        byte[] payload = new byte[v.remaining()];
        v.get(payload);
        return new Snapshot.Msg(m.type(), m.flags(), m.serial(), m.replySerial(), m.destination(), m.path(), m.iface(),
                m.member(), m.errorName(), m.sender() == null ? 0 : m.sender().id(), m.seq(), m.isRequestedReply(),
                fdIndexes, set != null && set.hasUnsealedMemfd(), facts, payload, m.payload().isDirect());
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
        List<Map<Integer, FdSet>> shared = new ArrayList<>(1);
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
            Snapshot.Sasl sa = ss.io().sasl();
            ClientSession session;
            if (sa == null) {
                c.setPolicy(config.compilePolicy(cr.authenticatedUid()));
                long uid = cr.authenticatedUid();
                long pid = cr.pid();
                c.setLogInfo(() -> ConnectionAdmission.logInfo(uid, pid));
                session = new ClientSession(server, sock, c, null);
                session.restoreAuthenticated(cr.authenticatedUid(), cr.unixFds());
            } else {
                // Step 5: SASL goes on where it was; policy and loginfo come when it succeeds, as at accept.
                session = new ClientSession(server, sock, c, server.admission().resumeSasl(sock, progress(sa)));
            }
            sink.session = session;
            c.attach(session);
            made.add(session);
            return c;
        }, r -> shared.add(restoreMessages(r, snap, x -> payload(server, x), ClientSession.CLOSE_FD)));
        Map<Long, Snapshot.Session> sessionById = new HashMap<>();
        for (Snapshot.Session s : snap.sessions()) {
            sessionById.put(s.connectionId(), s);
        }
        long pauseMs = Math.max(0, (System.nanoTime() - snap.bus().writtenAtMonotonicNs()) / 1_000_000);
        for (ClientSession s : made) {
            Snapshot.Session ss = sessionById.get(s.connection().id());
            Snapshot.PartialIo io = ss.io();
            s.output().restoreCommitted(ss.committed(), ss.headOffset(), ss.renderedHead(),
                    fdSet(snap, shared.get(0), io.committedFdIndexes()),
                    io.committedPidfdIndex() < 0 ? null
                            : fdSet(snap, shared.get(0), new int[] {io.committedPidfdIndex()}));
            s.restoreWaiting(lessPause(io.authRemainingMs(), pauseMs), numbers(snap, io.pendingFdIndexes()),
                    lessPause(io.pendingRemainingMs(), pauseMs));
            server.sessions().add(s);
            // R9: the carried input goes through the assembler first; what clients sent during
            // the pause waits in the socket behind it.
            s.resumeIo(server.loop(), io.input(), new InputAssembler.ReadCreds(io.firstPid(), io.firstUid(),
                    io.firstGid(), io.partialMixed(), io.frameContinues()));
        }
        server.flushDirty(); // writes what is ready and arms reply_timeout for the restored slots
    }

    /** A carried timer's ms left, less the pause; {@link Long#MIN_VALUE} (none) stays. */
    private static long lessPause(long remainingMs, long pauseMs) {
        return remainingMs == Long.MIN_VALUE ? Long.MIN_VALUE : remainingMs - pauseMs;
    }

    private static int[] numbers(Snapshot snap, int[] indexes) {
        int[] out = new int[indexes.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = snap.fds().get(indexes[i]).fd();
        }
        return out;
    }

    /**
     * The fds at {@code indexes} as a set with one reference for its new holder: the very set a
     * restored message or sender pidfd has when the entries are theirs (so each fd is closed
     * once, by its last holder), else a set of its own; null for none.
     */
    private static FdSet fdSet(Snapshot snap, Map<Integer, FdSet> shared, int[] indexes) {
        if (indexes.length == 0) {
            return null;
        }
        FdSet known = shared.get(indexes[0]);
        return known != null ? known.retain() : new FdSet(numbers(snap, indexes), ClientSession.CLOSE_FD);
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
            if (ss.io().sasl() == null) {
                c.setPolicy(config.compilePolicy(cr.authenticatedUid()));
            } else {
                org.kdbusbridge.bridge.protocol.SaslServer.resume(new org.kdbusbridge.bridge.protocol.SaslServer.Config(
                        true, true, ss.peerUid(), null, ss.io().sasl().serverGuid(), true), progress(ss.io().sasl()));
            }
            return c;
        }, r -> restoreMessages(r, snap, x -> new SealedPayload(x.payload()), fd -> { }));
        return bus;
    }

    static org.kdbusbridge.bridge.protocol.SaslServer.Progress progress(Snapshot.Sasl sa) {
        return new org.kdbusbridge.bridge.protocol.SaslServer.Progress(sa.state(), sa.line(), sa.totalBytes(),
                sa.failures(), sa.mechanism(), sa.authUid(), sa.anonymous(), sa.unixFd(), sa.serverGuid());
    }

    /** Makes one carried connection (live: over its socket, with its session; offline: bare). */
    private interface ConnectionMaker {
        Connection make(Restore r, Snapshot.Conn cr, Snapshot.Session ss);
    }

    /** R4 and R5: the connections, names, owned names, match rules, monitors and counters; the invariants. */
    private static void restoreCore(Bus bus, Snapshot snap, ConnectionMaker maker,
            java.util.function.Consumer<Restore> messages) {
        Restore r = bus.beginRestore();
        Map<Long, Integer> queuedOf = new HashMap<>();
        for (Snapshot.Pool p : snap.pools()) {
            queuedOf.put(p.connectionId(), p.messages().length);
        }
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
            } else if (cr.uniqueName() == null) {
                r.beforeHello(c); // step 5: in SASL, or authenticated and no Hello yet
            } else {
                r.register(c, cr.uniqueName());
            }
            if (cr.uniqueName() != null) {
                r.attachMetadata(c, cr.attached(), cr.drops(), cr.dropCount(), cr.dropFirstSeq(), cr.dropLastSeq());
            }
            // The carried messages are pushed again below: each counts once more as pushed.
            c.pool().restoreCounters(cr.poolPushed() - queuedOf.getOrDefault(cr.id(), 0), cr.poolDropped(),
                    cr.poolPeakBytes(), cr.poolPeakFds());
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
        messages.accept(r);
        for (Snapshot.Conn cr : snap.connections()) {
            if (cr.peekAnswerAt() >= 0) {
                r.peekAnswerAt(r.byId(cr.id()), cr.peekAnswerAt());
            }
        }
        // R6: a deadline goes on from the time it had left, less the pause; one that fell in the
        // pause is due now, and the first expiry after resume answers it (once: the slot closes).
        long pauseMs = (System.nanoTime() - snap.bus().writtenAtMonotonicNs()) / 1_000_000;
        for (Snapshot.Slot x : snap.replySlots()) {
            Connection callee = r.byId(x.calleeId());
            Connection caller = r.byId(x.callerId());
            if (callee == null || caller == null) {
                throw new IllegalStateException("reply slot " + x.serial() + " between unknown connections");
            }
            r.replySlot(callee, caller, x.serial(),
                    x.remainingMs() == Long.MIN_VALUE ? Long.MIN_VALUE : x.remainingMs() - Math.max(0, pauseMs));
        }
        for (Snapshot.Conn cr : snap.connections()) { // peaks last: restoring the entries raised them
            r.byId(cr.id()).restorePeaks(cr.peakIncomingBytes(), cr.peakIncomingFds(), cr.peakMatchRules(),
                    cr.peakBusNames());
        }
        Snapshot.Bus b = snap.bus();
        r.finish(new Restore.Counts(b.nextId(), b.nextUnique(), b.lastSequence(), b.peakBusNames(),
                b.peakBusNamesPerConnection(), b.peakMatchRules(), b.peakMatchRulesPerConnection()));
    }

    /**
     * A carried payload: one that lived in a direct buffer goes into one of the new bus's (so it
     * is written zero-copy again) while the budget allows, else onto the heap, as admission does.
     */
    private static SealedPayload payload(BusServer server, Snapshot.Msg x) {
        byte[] bytes = x.payload();
        if (x.direct() && bytes.length >= server.transport().zeroCopyThreshold()) {
            java.nio.ByteBuffer d = server.buffers().take(bytes.length);
            if (d != null) {
                d.put(bytes).flip();
                return new SealedPayload(d, server.payloadRecycler());
            }
        }
        return new SealedPayload(bytes);
    }

    /** R5, step 4: DEPARTED stubs, MESSAGES once each (fds from FDS, the payload as {@link #payload} says), then every pool in order. */
    private static Map<Integer, FdSet> restoreMessages(Restore r, Snapshot snap,
            java.util.function.Function<Snapshot.Msg, SealedPayload> payloads, java.util.function.IntConsumer closer) {
        Map<Integer, FdSet> shared = new HashMap<>(); // by the FDS index of a set's first fd (step 5's sessions share them)
        for (Snapshot.Departed d : snap.departed()) {
            r.departed(d.id(), d.uniqueName(), d.hasCredentials() ? new Credentials(d.uid(), d.gid(), d.pid()) : null);
        }
        Message[] made = new Message[snap.messages().size()];
        Map<Integer, FdSet> pidfds = new HashMap<>();
        for (int i = 0; i < made.length; i++) {
            Snapshot.Msg x = snap.messages().get(i);
            FdSet fds = null;
            if (x.fdIndexes().length > 0) {
                int[] numbers = new int[x.fdIndexes().length];
                for (int k = 0; k < numbers.length; k++) {
                    numbers[k] = snap.fds().get(x.fdIndexes()[k]).fd();
                }
                fds = new FdSet(numbers, closer);
                if (x.unsealedMemfd()) {
                    fds.markUnsealedMemfd();
                }
                shared.put(x.fdIndexes()[0], fds);
            }
            Message m = new Message(x.type(), x.flags(), x.serial(), x.replySerial(), x.destination(), x.path(),
                    x.iface(), x.member(), x.errorName(), payloads.apply(x), null, fds);
            Snapshot.Facts f = x.facts();
            if (f != null) {
                MessageFacts facts = new MessageFacts();
                facts.setTimestamp(f.monotonicNs(), f.realtimeNs());
                if (f.names() != null) {
                    facts.setNames(f.names().toArray(new String[0]), f.namesTruncated());
                }
                facts.setCreds(f.pid(), f.uid(), f.gid(), f.credsAtSendTime());
                Snapshot.Process p = f.process();
                if (p != null) {
                    facts.setProcess(new SenderProcess(p.pid(), p.uid(), p.items(), p.groups(), p.comm(), p.exe(),
                            p.cmdline(), p.cgroup(), p.seclabel()));
                }
                if (f.pidfdIndex() >= 0) {
                    // One FdSet per carried pidfd, one reference per message that holds it (as at admission).
                    FdSet pid = pidfds.get(f.pidfdIndex());
                    if (pid == null) {
                        pid = new FdSet(new int[] {snap.fds().get(f.pidfdIndex()).fd()}, closer);
                        pidfds.put(f.pidfdIndex(), pid);
                        shared.put(f.pidfdIndex(), pid);
                    } else {
                        pid.retain();
                    }
                    facts.setPidfd(pid);
                }
                m.setFacts(facts);
            }
            Connection sender = null;
            if (x.senderId() != 0) {
                sender = r.byId(x.senderId());
                if (sender == null) {
                    sender = r.departedById(x.senderId());
                }
                if (sender == null) {
                    throw new IllegalStateException("message " + x.seq() + " from unknown connection " + x.senderId());
                }
            }
            made[i] = r.message(m, sender, x.seq(), x.requestedReply());
        }
        for (Snapshot.Pool p : snap.pools()) {
            Connection c = r.byId(p.connectionId());
            if (c == null) {
                throw new IllegalStateException("pool of unknown connection " + p.connectionId());
            }
            for (int place : p.messages()) {
                r.queued(c, made[place]);
            }
        }
        return shared;
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
