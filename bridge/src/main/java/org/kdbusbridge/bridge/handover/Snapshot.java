package org.kdbusbridge.bridge.handover;

import java.util.List;

/**
 * The state of an idle bus as plain values (docs/handover.md section 3, step 1 of section 8):
 * what {@link SnapshotWriter} writes and {@link SnapshotReader} reads back. Objects refer to
 * each other by connection id and by fd index (a place in {@link #fds}); nothing here is live.
 */
public record Snapshot(Bus bus, List<FdTable.Entry> fds, List<Listener> listeners, List<Conn> connections,
        List<Name> names, List<Matches> matches, List<Matches> monitors, List<Session> sessions,
        List<Departed> departed, List<Msg> messages, List<Pool> pools, List<Slot> replySlots, Request request) {

    /** A snapshot no one asked for by a call (tests, in-process round trips). */
    public Snapshot(Bus bus, List<FdTable.Entry> fds, List<Listener> listeners, List<Conn> connections,
            List<Name> names, List<Matches> matches, List<Matches> monitors, List<Session> sessions) {
        this(bus, fds, listeners, connections, names, matches, monitors, sessions, List.of(), List.of(), List.of(),
                List.of(), null);
    }

    /** The same snapshot, owed to {@code r}. */
    public Snapshot withRequest(Request r) {
        return new Snapshot(bus, fds, listeners, connections, names, matches, monitors, sessions, departed, messages,
                pools, replySlots, r);
    }

    /**
     * DEPARTED: a connection that left while messages it sent are still queued: restored as a
     * closed stub those messages are charged to. {@code hasCredentials} false: it had none.
     */
    public record Departed(long id, String uniqueName, boolean hasCredentials, long uid, long gid, long pid) {
    }

    /**
     * MESSAGES: one queued message, once however many pools hold it (they refer to it by its
     * place in {@link #messages}). {@code senderId} 0: the bus itself. {@code fdIndexes}: its
     * unix fds by place in {@link #fds}. {@code facts}: its AttachMetadata admission facts
     * (numbers and names only), or null. {@code payload}: the sealed bytes, as receivers get them
     * (the SENDER field spliced in); {@code direct}: it lived in a direct buffer.
     */
    public record Msg(int type, int flags, long serial, long replySerial, String destination, String path,
            String iface, String member, String errorName, long senderId, long seq, boolean requestedReply,
            int[] fdIndexes, boolean unsealedMemfd, Facts facts, byte[] payload, boolean direct) {
    }

    /**
     * A queued message's MessageFacts: -1 for what is unknown; {@code names} null if not stamped;
     * {@code process} the sender's /proc facts, or null; {@code pidfdIndex} the sender's pidfd the
     * message holds, by FDS index (kind SENDER_PIDFD, shared by the messages that hold it), or -1.
     */
    public record Facts(long monotonicNs, long realtimeNs, List<String> names, boolean namesTruncated, long pid,
            long uid, long gid, boolean credsAtSendTime, Process process, int pidfdIndex) {
    }

    /** The sending process's facts (AttachMetadata groups, comm, exe, cmdline, cgroup, seclabel); null: not read. */
    public record Process(long pid, long uid, int items, long[] groups, byte[] comm, byte[] exe, byte[] cmdline,
            byte[] cgroup, byte[] seclabel) {
    }

    /** POOLS: a connection's receive pool from its head, as places in {@link #messages}. */
    public record Pool(long connectionId, int[] messages) {
    }

    /**
     * REPLY_SLOTS: {@code calleeId} owes {@code callerId} the reply to {@code serial};
     * {@code remainingMs} to its reply_timeout deadline when the snapshot was written
     * ({@link Long#MIN_VALUE}: no deadline). Written callee by callee in each one's opening order.
     */
    public record Slot(long calleeId, long callerId, long serial, long remainingMs) {
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
        departed = List.copyOf(departed);
        messages = List.copyOf(messages);
        pools = List.copyOf(pools);
        replySlots = List.copyOf(replySlots);
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
     * peer's pidfd (-1: none taken yet); {@code peekAnswerAt} (version 2): the pool position of
     * its queued PeekQueued answer, or -1.
     */
    public record Conn(long id, String uniqueName, long uid, long gid, long pid, long authenticatedUid,
            boolean unixFds, boolean requireSealedMemfds, boolean monitor, int attached, boolean drops, long dropCount,
            long dropFirstSeq, long dropLastSeq, long peakIncomingBytes, int peakIncomingFds, int peakMatchRules,
            int peakBusNames, long poolPushed, long poolDropped, long poolPeakBytes, int poolPeakFds,
            List<String> ownedNames, int pidfdIndex, long peekAnswerAt) {
        public Conn {
            ownedNames = List.copyOf(ownedNames);
        }

        /** Without a PeekQueued answer position (version 1). */
        public Conn(long id, String uniqueName, long uid, long gid, long pid, long authenticatedUid, boolean unixFds,
                boolean requireSealedMemfds, boolean monitor, int attached, boolean drops, long dropCount,
                long dropFirstSeq, long dropLastSeq, long peakIncomingBytes, int peakIncomingFds, int peakMatchRules,
                int peakBusNames, long poolPushed, long poolDropped, long poolPeakBytes, int poolPeakFds,
                List<String> ownedNames, int pidfdIndex) {
            this(id, uniqueName, uid, gid, pid, authenticatedUid, unixFds, requireSealedMemfds, monitor, attached, drops,
                    dropCount, dropFirstSeq, dropLastSeq, peakIncomingBytes, peakIncomingFds, peakMatchRules,
                    peakBusNames, poolPushed, poolDropped, poolPeakBytes, poolPeakFds, ownedNames, pidfdIndex, -1);
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

    /**
     * SESSIONS: the socket of a connection, by fd index, and its transport flags; since version
     * 2 also the output cursor's simple case: {@code committed}, bytes already taken out of the
     * pool into the output buffer and not yet sent, {@code headOffset}, how many bytes of the
     * pool's head message are among them, and {@code renderedHead}, the head as this receiver
     * gets it with its AttachMetadata field when that copy is part-sent (carried verbatim: a new
     * rendering could differ; empty: none) (version 1: none of them). Version 3 (step 5) appends
     * the partial I/O in {@link PartialIo}; a version 1 or 2 record reads as {@link PartialIo#NONE}.
     */
    public record Session(long connectionId, int socketFdIndex, int peerPid, int peerUid, int peerGid,
            boolean passCred, boolean passCredFailed, boolean askPidfdLater, byte[] committed, int headOffset,
            byte[] renderedHead, PartialIo io) {
        public Session {
            committed = committed == null ? new byte[0] : committed;
            renderedHead = renderedHead == null ? new byte[0] : renderedHead;
            io = io == null ? PartialIo.NONE : io;
        }

        /** Version 2: no partial I/O. */
        public Session(long connectionId, int socketFdIndex, int peerPid, int peerUid, int peerGid, boolean passCred,
                boolean passCredFailed, boolean askPidfdLater, byte[] committed, int headOffset, byte[] renderedHead) {
            this(connectionId, socketFdIndex, peerPid, peerUid, peerGid, passCred, passCredFailed, askPidfdLater,
                    committed, headOffset, renderedHead, null);
        }

        /** A session with no output pending. */
        public Session(long connectionId, int socketFdIndex, int peerPid, int peerUid, int peerGid, boolean passCred,
                boolean passCredFailed, boolean askPidfdLater) {
            this(connectionId, socketFdIndex, peerPid, peerUid, peerGid, passCred, passCredFailed, askPidfdLater, null, 0,
                    null, null);
        }
    }

    /**
     * SESSIONS version 3 (step 5): a session's I/O cut at any byte. {@code sasl}: the exchange in
     * progress (null: authenticated); {@code authRemainingMs}: what is left of auth_timeout
     * before Hello ({@link Long#MIN_VALUE}: Hello done); {@code input}: the bytes read and not
     * yet handled (the start of one frame, cut anywhere); the unfinished frame's read
     * credentials ({@code firstPid/Uid/Gid}, -2 unknown; {@code partialMixed}; {@code
     * frameContinues}); {@code pendingFdIndexes}: fds received ahead of their frame, oldest
     * first, by FDS index (kind MESSAGE), with what is left of pending_fd_timeout
     * ({@code pendingRemainingMs}, {@link Long#MIN_VALUE}: none); {@code committedFdIndexes} and
     * {@code committedPidfdIndex} (-1: none): the fds (kind MESSAGE) and the AttachMetadata pidfd
     * (kind SENDER_PIDFD) that ride on the first committed byte.
     */
    public record PartialIo(Sasl sasl, long authRemainingMs, byte[] input, long firstPid, long firstUid, long firstGid,
            boolean partialMixed, boolean frameContinues, int[] pendingFdIndexes, long pendingRemainingMs,
            int[] committedFdIndexes, int committedPidfdIndex) {
        /** Whether a reader that skips these fields would lose something (the PARTIAL_IO guard). */
        public boolean carriesAnything() {
            return sasl != null || input.length > 0 || pendingFdIndexes.length > 0 || committedFdIndexes.length > 0
                    || committedPidfdIndex >= 0;
        }

        /** An idle session after Hello (and what an older record reads as). */
        public static final PartialIo NONE = new PartialIo(null, Long.MIN_VALUE, new byte[0], -2, -2, -2, false, false,
                new int[0], Long.MIN_VALUE, new int[0], -1);

        public PartialIo {
            input = input == null ? new byte[0] : input;
            pendingFdIndexes = pendingFdIndexes == null ? new int[0] : pendingFdIndexes;
            committedFdIndexes = committedFdIndexes == null ? new int[0] : committedFdIndexes;
        }
    }

    /**
     * A SASL exchange in progress (the bridge's SaslServer.Progress): state by name, the partial
     * line, the byte and rejection counts, the mechanism, the uid an accepted response gave
     * (-1), ANONYMOUS, fd passing agreed, and the server guid its OK names.
     */
    public record Sasl(String state, byte[] line, int totalBytes, int failures, int mechanism, long authUid,
            boolean anonymous, boolean unixFd, String serverGuid) {
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
