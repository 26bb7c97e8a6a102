package org.kdbusbridge.bridge.handover;

import java.util.List;

/**
 * The state of an idle bus as plain values (docs/handover.md section 3, step 1 of section 8):
 * what {@link SnapshotWriter} writes and {@link SnapshotReader} reads back. Objects refer to
 * each other by connection id and by fd index (a place in {@link #fds}); nothing here is live.
 */
public record Snapshot(Bus bus, List<FdTable.Entry> fds, List<Listener> listeners, List<Conn> connections,
        List<Name> names, List<Matches> matches, List<Matches> monitors, List<Session> sessions, Request request) {

    /** A snapshot no one asked for by a call (tests, in-process round trips). */
    public Snapshot(Bus bus, List<FdTable.Entry> fds, List<Listener> listeners, List<Conn> connections,
            List<Name> names, List<Matches> matches, List<Matches> monitors, List<Session> sessions) {
        this(bus, fds, listeners, connections, names, matches, monitors, sessions, null);
    }

    /** The same snapshot, owed to {@code r}. */
    public Snapshot withRequest(Request r) {
        return new Snapshot(bus, fds, listeners, connections, names, matches, monitors, sessions, r);
    }

    /**
     * REQUEST: the Reexec call the new bus answers (connection id, serial; 0: nobody, SIGUSR2),
     * why ("reexec", "signal"), and how long the check run took ({@code checkMs}, -1 if unknown:
     * a trailing field, absent from the trial snapshot's record and from step 2's writer).
     */
    public record Request(long connectionId, long serial, String reason, long checkMs) {
        public Request(long connectionId, long serial, String reason) {
            this(connectionId, serial, reason, -1);
        }
    }

    public Snapshot {
        fds = List.copyOf(fds);
        listeners = List.copyOf(listeners);
        connections = List.copyOf(connections);
        names = List.copyOf(names);
        matches = List.copyOf(matches);
        monitors = List.copyOf(monitors);
        sessions = List.copyOf(sessions);
    }

    /** BUS: the GUID, the counters that are not derived, the writer. */
    public record Bus(String guid, String writerVersion, long writtenAtMonotonicNs, long busPid, long nextId,
            long nextUnique, long lastSequence, int peakBusNames, int peakBusNamesPerConnection, int peakMatchRules,
            int peakMatchRulesPerConnection) {
    }

    /** LISTENERS: a listening socket by fd index, its address as requested and as bound, its file. */
    public record Listener(int fdIndex, String requested, String bound, String socketFile) {
    }

    /**
     * CONNECTIONS: a connection after Hello. {@code attached}: its AttachMetadata set
     * (MessageFacts bits); {@code drops}: it watches drops, with the unreported ones;
     * {@code ownedNames}: its well-known names in acquisition order; {@code pidfdIndex}: the
     * peer's pidfd (-1: none taken yet).
     */
    public record Conn(long id, String uniqueName, long uid, long gid, long pid, long authenticatedUid,
            boolean unixFds, boolean requireSealedMemfds, boolean monitor, int attached, boolean drops, long dropCount,
            long dropFirstSeq, long dropLastSeq, long peakIncomingBytes, int peakIncomingFds, int peakMatchRules,
            int peakBusNames, long poolPushed, long poolDropped, long poolPeakBytes, int poolPeakFds,
            List<String> ownedNames, int pidfdIndex) {
        public Conn {
            ownedNames = List.copyOf(ownedNames);
        }
    }

    /** NAMES: one name's owner queue, primary first, with each owner's stored flags. */
    public record Name(String name, long[] owners, int[] flags) {
    }

    /** MATCHES (or MONITORS): one connection's rules as canonical text, in insertion order. */
    public record Matches(long connectionId, List<String> rules) {
        public Matches {
            rules = List.copyOf(rules);
        }
    }

    /** SESSIONS: the socket of a connection, by fd index, and its transport flags. */
    public record Session(long connectionId, int socketFdIndex, int peerPid, int peerUid, int peerGid,
            boolean passCred, boolean passCredFailed, boolean askPidfdLater) {
    }

    /** A hand-over refused before anything changed, with every reason (what step 1 cannot carry). */
    public static final class Refused extends Exception {
        private final List<String> reasons;

        public Refused(List<String> reasons) {
            super("hand-over refused: " + String.join("; ", reasons));
            this.reasons = List.copyOf(reasons);
        }

        public List<String> reasons() {
            return reasons;
        }
    }
}
