package org.kdbusbridge.bridge.handover;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Every field of a connection and its session, and what the hand-over does with it (design
 * "Risks": hidden state). Kept next to {@link SnapshotWriter}; HandOverClassificationTest fails
 * when a field of these classes has no entry, so a field added later must be decided here.
 */
public final class Classification {
    /** What happens to a field across a hand-over (step 1). */
    public enum Kind {
        /** Written to the snapshot and restored as it was. */
        CARRIED,
        /** Not written: the new bus derives it again (from carried state, the config or the socket). */
        RECOMPUTED,
        /** Not written and started afresh; what is lost is named in the entry. */
        DROPPED,
        /** Step 1 carries only its empty or idle value: a snapshot is refused otherwise (a later step carries it). */
        IDLE_ONLY
    }

    public record Entry(Kind kind, String why) {
    }

    /** "simple class name.field" to its entry. */
    public static final Map<String, Entry> FIELDS = build();

    private Classification() { }

    private static Map<String, Entry> build() {
        Map<String, Entry> m = new LinkedHashMap<>();
        // --- core Connection ---
        put(m, "Connection", Kind.CARRIED, "CONNECTIONS", "id", "credentials", "uniqueName", "unixFds",
                "authenticatedUid", "requireSealedMemfds", "drops", "attachedMetadata", "peakIncomingBytes",
                "peakIncomingFds", "peakMatchRules", "peakBusNames", "ownedNames", "peekAnswerAt");
        put(m, "Connection", Kind.RECOMPUTED, "rebuilt by Restore or the session", "sink", "pool", "ownedIndex",
                "matchRules", "policy", "logInfo", "logInfoSource", "maxIncomingBytes", "maxIncomingFds", "maxMessageUnixFds", "attachment",
                "peerDetails", "primaryNames", "primaryNamesTruncated", "matchStamp", "closed");
        put(m, "Connection", Kind.RECOMPUTED, "recharged by pushing the carried MESSAGES into the POOLS again",
                "incomingBytes", "incomingFds");
        put(m, "Connection", Kind.CARRIED, "REPLY_SLOTS (each slot opened again, in each callee's opening order; "
                + "the caller's count recharged)", "pendingIncoming", "outgoingSlots");
        put(m, "Connection", Kind.IDLE_ONLY, "recharged from REPLY_SLOTS; refused while it also counts calls queued "
                + "on an activator (activator queues are not carried yet)", "pendingOutgoing");

        put(m, "Connection", Kind.IDLE_ONLY, "refused: a connection behind a custom endpoint is not carried yet",
                "endpoint", "endpointState");
        put(m, "Connection", Kind.DROPPED, "traffic counters start at zero (ConnectionCounters is being reworked)",
                "counters");
        // --- bridge ClientSession and its parts ---
        put(m, "ClientSession", Kind.CARRIED, "SESSIONS: the socket by fd index", "socket", "conn");
        put(m, "ClientSession", Kind.RECOMPUTED, "made again for the restored session (readPaused from the restored "
                + "incoming counters)", "server", "sasl", "pending", "frame", "input", "output", "stamp", "dirty",
                "writeArmed", "readPaused", "frameLength", "closed");
        put(m, "ClientSession", Kind.IDLE_ONLY, "refused while closing", "closing", "closingReason");
        put(m, "ClientSession", Kind.DROPPED, "its sender-pidfd cache is closed at detach; the new session lists "
                + "itself in BusServer's pidfd holders again when it caches one", "pidfdsListed");
        put(m, "SaslPhase", Kind.CARRIED, "authenticated uid and fd passing, from CONNECTIONS; not authenticated: "
                + "SESSIONS v3 carries the exchange", "uid", "unixFd", "authenticated");
        put(m, "SaslPhase", Kind.RECOMPUTED, "parts of the new session", "session", "server", "frame");
        put(m, "SaslPhase", Kind.CARRIED, "SESSIONS v3: the SaslServer's progress (state, partial line, counts, "
                + "mechanism, uid, ANONYMOUS, fd passing, guid) and what auth_timeout had left before Hello, less the "
                + "pause", "sasl", "authTimer");
        put(m, "InputAssembler", Kind.RECOMPUTED, "settings and parts of the new session", "zeroCopyThreshold",
                "session", "sasl", "pending", "frame", "server", "socket", "conn", "inputHeld", "inBurst");
        put(m, "InputAssembler", Kind.CARRIED, "SESSIONS v3: the bytes read and not handled (from the one place "
                + "they are: carry, borrowed buffer, large frame read in place, heap frame) go through the new "
                + "assembler as a read, which puts them where it keeps such a frame under its own budgets and "
                + "reservation", "in", "carry", "carryLen", "largeIn", "largeReserved", "heapFrame", "heapFrameLen",
                "heapArrived");
        put(m, "InputAssembler", Kind.CARRIED, "SESSIONS v3: the unfinished frame's read credentials", "firstPid",
                "firstUid", "firstGid", "partialMixed", "frameContinues");
        put(m, "InputAssembler", Kind.RECOMPUTED, "per-read and per-frame flags: set and acted on inside one read "
                + "or one frame's handling, false between loop steps", "fdOverflow", "frameCredsMixed");
        put(m, "OutputWriter", Kind.RECOMPUTED, "settings and parts of the new session", "session", "server",
                "socket", "conn", "largeSendBuffer", "outputHeld", "renderedHeld", "renderer", "outFdScratch",
                "scratchCarry");
        put(m, "OutputWriter", Kind.CARRIED, "SESSIONS v2: a lent buffer's unsent bytes and how much of the pool's "
                + "head they hold, and a part-sent AttachMetadata copy of that head verbatim", "out", "headOffset",
                "rendered", "renderedFor");
        put(m, "OutputWriter", Kind.CARRIED, "SESSIONS v3: unsent SASL replies after the lent buffer's bytes; a "
                + "large head part-sent from its shared payload as headOffset (the tail is copied by the new writer); "
                + "the fds and pidfd on the first committed byte by FDS index, sharing a queued message's entries",
                "outCarry", "outCarryLen", "large", "outFds", "outPidfd", "outFdCount", "outFdsCarried");
        put(m, "OutputWriter", Kind.RECOMPUTED, "used only at a head's first byte, which is sent by then (a copy "
                + "none of which went is rendered afresh, pidfd and all)", "renderedPidfd");
        put(m, "OutputWriter", Kind.DROPPED, "a head that went raw before any of it was copied may get its "
                + "AttachMetadata copy after all (nothing of it was sent)", "rawHead");
        put(m, "OutputWriter", Kind.DROPPED, "asked again on the next large send (SO_SNDBUF itself stays with the socket)",
                "sendBufferRequested");
        put(m, "PendingFds", Kind.RECOMPUTED, "callbacks of the new session", "closeFd", "onTimeout", "expiry");
        put(m, "PendingFds", Kind.CARRIED, "SESSIONS v3: the fds ahead of their frame, oldest first, by FDS index, "
                + "and what pending_fd_timeout had left, less the pause", "ring", "head", "count", "timer");
        put(m, "InboundFrame", Kind.RECOMPUTED, "per-frame scratch, empty between frames", "server", "conn", "header",
                "senderFacts", "buf", "ownBuffer", "adopted");
        put(m, "SocketConnection", Kind.CARRIED, "SESSIONS and FDS", "fd", "peer", "pidfd", "passCred",
                "passCredFailed", "askPidfdLater");
        put(m, "SocketConnection", Kind.RECOMPUTED, "read again from the same socket, or native scratch", "groups",
                "securityLabel", "groupsRead", "labelRead", "gather", "gatherAddr", "fdMsg", "fdMsgAddr");
        put(m, "SocketConnection", Kind.RECOMPUTED, "the last read's SCM_CREDENTIALS: reset by every read and used "
                + "within it; the unfinished frame's are InputAssembler's first*", "credPid", "credUid", "credGid");
        put(m, "MetadataStamp", Kind.DROPPED, "a /proc cache and a sender-pidfd cache (closed at detach), filled "
                + "again on demand", "socket", "conn", "procRoot", "lru", "size", "labelOnly", "reads", "pidfds");
        put(m, "MetadataStamp", Kind.RECOMPUTED, "the real kernel (a test hook)", "kernel");
        return Map.copyOf(m);
    }

    private static void put(Map<String, Entry> m, String cls, Kind kind, String why, String... fields) {
        for (String f : fields) {
            if (m.put(cls + "." + f, new Entry(kind, why)) != null) {
                throw new IllegalStateException(cls + "." + f + " classified twice");
            }
        }
    }
}
