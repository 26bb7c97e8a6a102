package org.kdbusbridge.core.connection;

import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.MessageFacts;
import org.kdbusbridge.core.policy.ConnectionPolicy;

/**
 * One peer of the bus.
 *
 * Invariants: {@link #id()} is never reused; the unique name is assigned once by Hello and is
 * the first name gained and the last lost; {@code ownedNames} lists every well-known name the
 * connection is queued for (primary or not) in acquisition order; after {@link #isClosed()}
 * nothing is ever queued on it again; a message carrying unix fds is never queued on a
 * connection that did not negotiate them. Touched on the bus thread only.
 *
 * Incoming accounting (dbus-daemon's max_incoming_bytes / max_incoming_unix_fds counter): the
 * bytes and fds of this connection's messages that are still queued anywhere in the bus (any
 * receive pool or activator) are counted once per message, however many queues hold it; the
 * transport stops reading this connection while the count is at or over its limit, and
 * {@link ConnectionSink#onIncomingDrained} fires when it falls back under.
 * Policy: {@link #policy()} is never null (everything is allowed until the bridge compiles the
 * connection's rules after authentication).
 * Drop notices: {@link #drops()} is null unless the connection asked (WatchDrops); then it
 * counts every message {@link #offer} could not queue because the pool or the queue quota
 * refused it, and {@link ConnectionSink#onDropped} fires on the first of each run.
 */
public final class Connection implements ConnectionPolicy.Peer {
    private final long id;
    private final Credentials credentials;
    private final ConnectionSink sink;
    private final ReceivePool pool;
    /** Null until its first well-known name: most peers own none (24 B each, issue 14). */
    private ArrayList<String> ownedNames;
    /** The same names as a set, once there are more than {@link #OWNED_INDEX_FROM}: membership in O(1). */
    private java.util.HashSet<String> ownedIndex;
    private static final int OWNED_INDEX_FROM = 8;
    /** Calls this connection must answer, by (caller id, serial) and in opening order. */
    private ReplySlotIndex pendingIncoming = NO_SLOTS;
    /** Shared by every connection that never owed a reply: empty, never added to (32 B each, issue 14). */
    private static final ReplySlotIndex NO_SLOTS = new ReplySlotIndex();
    /** Open slots of calls this connection made (on any callee): what its departure drops. */
    private ReplySlot outgoingSlots;
    private String uniqueName;
    private boolean closed;
    private boolean unixFds;
    private int matchRules;
    private int pendingOutgoing;
    private long matchStamp;
    private Object attachment;
    private long incomingBytes;
    private int incomingFds;
    private long peakIncomingBytes;
    private int peakIncomingFds;
    private long maxIncomingBytes = Long.MAX_VALUE;
    private int maxIncomingFds = Integer.MAX_VALUE;
    private int peakMatchRules;
    private int peakBusNames;
    private ConnectionPolicy policy = ConnectionPolicy.ALLOW_ALL;
    private String logInfo;
    private java.util.function.Supplier<String> logInfoSource;
    private long authenticatedUid;
    private final ConnectionCounters counters = new ConnectionCounters();

    public Connection(long id, Credentials credentials, ConnectionSink sink, ReceivePool pool) {
        this.id = id;
        this.credentials = credentials;
        this.sink = sink;
        this.pool = pool;
        this.authenticatedUid = credentials == null ? -1 : credentials.uid();
    }

    private PeerDetails peerDetails = PeerDetails.NONE;

    /**
     * The uid the client authenticated as, which max_connections_per_user counts: the peer's
     * uid until the bridge says otherwise, -1 for none (ANONYMOUS).
     */
    public long authenticatedUid() { return authenticatedUid; }

    public void setAuthenticatedUid(long uid) { this.authenticatedUid = uid; }

    public long id() { return id; }
    public Credentials credentials() { return credentials; }
    /** Groups, label and process handle of the peer (never null; {@link PeerDetails#NONE} if unknown). */
    public PeerDetails peerDetails() { return peerDetails; }
    public void setPeerDetails(PeerDetails d) { peerDetails = d == null ? PeerDetails.NONE : d; }
    public ReceivePool pool() { return pool; }
    /** Its cumulative traffic counters (bus thread). */
    public ConnectionCounters counters() { return counters; }
    public String uniqueName() { return uniqueName; }
    public boolean isActive() { return uniqueName != null && !closed; }
    public boolean isClosed() { return closed; }
    /** Every well-known name this connection is queued for, in acquisition order. Read-only: NameRegistry changes it through {@link #addOwnedName} and {@link #removeOwnedName}. */
    public List<String> ownedNames() { return ownedNames == null ? List.of() : ownedNames; }

    /** NameRegistry only: {@code name} joins the end of {@link #ownedNames}. */
    public void addOwnedName(String name) {
        if (ownedNames == null) {
            ownedNames = new ArrayList<>(2);
        }
        ownedNames.add(name);
        if (ownedIndex != null) {
            ownedIndex.add(name);
        } else if (ownedNames.size() > OWNED_INDEX_FROM) {
            ownedIndex = new java.util.HashSet<>(ownedNames);
        }
    }

    /**
     * NameRegistry only: drops {@code name}. Searched from the end, where the names released
     * first on a disconnect are, so dropping a connection's n names one by one is O(n) in all.
     */
    public void removeOwnedName(String name) {
        if (ownedNames == null) {
            return;
        }
        int i = ownedNames.lastIndexOf(name);
        if (i >= 0) {
            ownedNames.remove(i);
        }
        if (ownedIndex != null) {
            ownedIndex.remove(name);
        }
    }

    /** NameRegistry only: forgets every well-known name at once (after a bulk release). */
    public void clearOwnedNames() {
        ownedNames = null; // not cleared: its array may be max_names_per_connection long
        ownedIndex = null;
    }

    /** Whether {@code name} is in {@link #ownedNames}. */
    public boolean ownsName(String name) {
        return ownedIndex != null ? ownedIndex.contains(name) : ownedNames != null && ownedNames.contains(name);
    }
    public int matchRuleCount() { return matchRules; }
    public int pendingOutgoingReplies() { return pendingOutgoing; }
    public int pendingIncomingReplies() { return pendingIncoming.size(); }

    /** Whether the peer negotiated unix fd passing (the transport says so after auth). */
    public boolean acceptsUnixFds() { return unixFds; }

    private boolean requireSealedMemfds;

    /** Our extension: memfds reaching this connection must be sealed (RequireSealedMemfds). */
    public boolean requiresSealedMemfds() { return requireSealedMemfds; }

    public void requireSealedMemfds() { requireSealedMemfds = true; }

    /** Where in its pool the answer to its last peek was queued (ReceivePool#pushedCount), or -1. */
    private long peekAnswerAt = -1;

    public long peekAnswerAt() { return peekAnswerAt; }

    /** The bus only (PeekQueued, PeekActivationQueue). */
    public void setPeekAnswerAt(long position) { peekAnswerAt = position; }

    /** Broadcasts missed since the last MessagesDropped notice; null: it did not ask (WatchDrops). */
    private DropCounter drops;

    /**
     * Our extension (WatchDrops): count the broadcasts its pool cannot take; off forgets them.
     * core.bus only ({@code Bus.watchDrops}, which refuses closed connections and monitors);
     * public only because the bus is another package.
     */
    public void watchDrops(boolean on) {
        drops = on ? (drops != null ? drops : new DropCounter()) : null;
    }

    /** The unreported drops, or null if it does not watch them. */
    public DropCounter drops() { return drops; }

    /** Whether it watches drops and missed something since the last notice (one field read). */
    public boolean hasUnreportedDrops() { return drops != null && drops.count() > 0; }
    /** AttachMetadata: the items (MessageFacts bits) this connection wants on what it receives; 0 = none. */
    private int attachedMetadata;

    public int attachedMetadata() { return attachedMetadata; }

    /**
     * core.bus only ({@code AttachDemand}, behind {@code Bus.attachMetadata}), which keeps the
     * bus-wide demand in step; public only because the bus is another package. Anybody else
     * calling it desynchronizes the demand counts: use {@code Bus.attachMetadata}.
     */
    public void setAttachedMetadata(int items) { attachedMetadata = items; }

    /** max_message_unix_fds when it connected: its copy of a message never carries more fds. */
    private int maxMessageUnixFds = Integer.MAX_VALUE;

    /** core.bus only (ConnectionTable.connect, from BusLimits), as {@link #setIncomingLimits}. */
    public void setMaxMessageUnixFds(int max) { maxMessageUnixFds = max; }

    /**
     * AttachMetadata's {@code pidfd} (docs/extensions.md, "The pidfd item"), the one rule: how
     * many fds its copy of {@code m} carries besides m's own, 1 or 0. 1 only if it wants
     * {@code pidfd}, negotiated fd passing, m holds a pidfd of its sender, and one more fd keeps
     * the copy within max_message_unix_fds (a message already at the maximum goes without it).
     */
    public int metadataFds(Message m) {
        if ((attachedMetadata & MessageFacts.PIDFD) == 0 || !unixFds || m.facts() == null
                || m.facts().pidfd() == null || m.unixFds() >= maxMessageUnixFds) {
            return 0;
        }
        return 1;
    }

    /**
     * AttachMetadata's names item: the well-known names this connection is primary owner of
     * (at most the bus's cap, in acquisition order), shared by every message admitted while it
     * is current, so it is never changed, only replaced; null: not computed since a primary
     * ownership of this connection last changed ({@link #primaryNamesChanged}).
     */
    private String[] primaryNames;
    /** Whether {@link #primaryNames} was cut at the cap (the connection owns more). */
    private boolean primaryNamesTruncated;

    /** The cached primary names (never to be modified), or null if they must be computed. */
    public String[] primaryNames() { return primaryNames; }

    /** Whether the cached primary names were cut at the cap. */
    public boolean primaryNamesTruncated() { return primaryNamesTruncated; }

    /** core.bus only (admission): caches what it computed from {@link #ownedNames}. */
    public void cachePrimaryNames(String[] names, boolean truncated) {
        primaryNames = names;
        primaryNamesTruncated = truncated;
    }

    /** NameRegistry only: this connection gained or lost a primary ownership. */
    public void primaryNamesChanged() {
        primaryNames = null;
    }
    public void setAcceptsUnixFds(boolean on) { unixFds = on; }

    /** The connection's compiled send/receive/own rules. */
    public ConnectionPolicy policy() { return policy; }

    /** The custom endpoint this connection came in through (issue 18), or null: the bus's own socket. */
    private org.kdbusbridge.core.endpoint.EndpointPolicy endpoint;
    /** What this endpoint connection has learnt (callers seen, Hello's name); null without an endpoint. */
    private org.kdbusbridge.core.endpoint.EndpointState endpointState;
    /** Peers that called an endpoint connection, kept visible to it: bounded, oldest forgotten first. */
    public static final int ENDPOINT_PEERS = 1024;

    public org.kdbusbridge.core.endpoint.EndpointPolicy endpoint() { return endpoint; }

    public org.kdbusbridge.core.endpoint.EndpointState endpointState() { return endpointState; }

    /** Puts the connection behind {@code p}'s filter; once, before Hello (the outside's accept path). */
    public void setEndpoint(org.kdbusbridge.core.endpoint.EndpointPolicy p) {
        if (endpoint != null || uniqueName != null) {
            throw new IllegalStateException("endpoint is set once, before Hello");
        }
        endpoint = p;
        endpointState = new org.kdbusbridge.core.endpoint.EndpointState(ENDPOINT_PEERS, 1);
    }

    /** Installs freshly compiled rules (after authentication, and again on config reload). */
    public void setPolicy(ConnectionPolicy p) {
        if (p == null) {
            throw new IllegalArgumentException("policy");
        }
        policy = p;
    }

    /** How logs and AccessDenied texts describe the peer (dbus-daemon's loginfo: uid, pid, comm). */
    public String logInfo() {
        if (logInfo == null && logInfoSource != null) {
            logInfo = logInfoSource.get();
            logInfoSource = null;
        }
        if (logInfo != null) {
            return logInfo;
        }
        if (credentials == null) {
            return "(unknown)";
        }
        StringBuilder b = new StringBuilder();
        if (credentials.uid() >= 0) {
            b.append("uid=").append(credentials.uid());
        }
        if (credentials.pid() >= 0) {
            b.append(b.length() > 0 ? " " : "").append("pid=").append(credentials.pid());
        }
        return b.toString();
    }

    public void setLogInfo(String info) { this.logInfo = info; }

    /** A log info computed on first use (it may read procfs, which most connections never need). */
    public void setLogInfo(java.util.function.Supplier<String> source) {
        this.logInfo = null;
        this.logInfoSource = source;
    }

    @Override
    public boolean inQueueOf(String name) {
        return name.equals(uniqueName) || (ownedNames != null && !ownedNames.isEmpty() && ownsName(name));
    }

    @Override
    public boolean inQueueByPrefix(String prefix) {
        ArrayList<String> owned = ownedNames;
        for (int i = 0, n = owned == null ? 0 : owned.size(); i < n; i++) {
            String o = owned.get(i);
            if (o.startsWith(prefix) && (o.length() == prefix.length() || o.charAt(prefix.length()) == '.')) {
                return true;
            }
        }
        return false;
    }

    /** The bridge's per-connection state (socket session); opaque to the core. */
    public Object attachment() { return attachment; }
    public void attach(Object a) { this.attachment = a; }

    void setUniqueName(String name) {
        if (uniqueName != null) {
            throw new IllegalStateException("unique name already set");
        }
        uniqueName = name;
    }

    /**
     * Whether {@code m} fits its pool now, its copy's AttachMetadata pidfd ({@link #metadataFds})
     * counted as one of its fds (max_outgoing_unix_fds and the uids' shares).
     */
    public boolean fits(Message m) {
        return pool.fits(m, metadataFds(m));
    }

    /**
     * Counts {@code m} as refused by its full pool (as {@link #offer} would), never queueing it:
     * called after {@link #fits} said no.
     */
    public void refuseFull(Message m) {
        pool.countRefusal(m, metadataFds(m)); // counts the drop (and logs a queue-quota refusal)
    }

    /**
     * Whether its copy of the message {@code i} places behind its pool's head goes with its
     * sender's pidfd: charged for one when it was queued ({@link #metadataFds}) and still
     * wanted now (after AttachMetadata without pidfd, queued copies go without it; a copy
     * queued before it asked goes without it too, uncharged).
     */
    public boolean sendsPidfd(int i) {
        return (attachedMetadata & MessageFacts.PIDFD) != 0 && pool.extraFds(i) > 0;
    }

    /** Queues a message that fits the pool; false if the pool is full. */
    public boolean offer(Message m) {
        if (closed || (m.fds() != null && (!unixFds || (requireSealedMemfds && m.fds().hasUnsealedMemfd())))) {
            return false;
        }
        if (!pool.offer(m, metadataFds(m))) {
            // Only broadcasts and monitor copies get here: a unicast was checked to fit first.
            counters.skippedFull();
            if (drops != null && drops.skipped(m.seq())) {
                sink.onDropped(this);
            }
            return false;
        }
        counters.countOut(m);
        sink.onQueued(this);
        return true;
    }

    /** Queues a bus-originated message regardless of the budget. */
    public void push(Message m) {
        if (closed || (m.fds() != null && !unixFds)) {
            return;
        }
        pool.push(m, metadataFds(m));
        counters.countOut(m);
        sink.onQueued(this);
    }

    // --- incoming accounting (max_incoming_bytes / max_incoming_unix_fds) -----------------

    /** The limits at which the transport stops reading this connection. */
    public void setIncomingLimits(long maxBytes, int maxFds) {
        this.maxIncomingBytes = maxBytes;
        this.maxIncomingFds = maxFds;
    }

    /** Bytes of this connection's messages still queued somewhere in the bus. */
    public long incomingBytes() { return incomingBytes; }
    public int incomingFds() { return incomingFds; }
    public long peakIncomingBytes() { return peakIncomingBytes; }
    public int peakIncomingFds() { return peakIncomingFds; }

    /** As dbus-daemon: reading stops while the live counter is at or over a limit. */
    public boolean isIncomingOverLimit() {
        return incomingBytes >= maxIncomingBytes || incomingFds >= maxIncomingFds;
    }

    private void chargeIncoming(long bytes, int nfds) {
        boolean wasOver = isIncomingOverLimit();
        incomingBytes += bytes;
        incomingFds += nfds;
        if (incomingBytes > peakIncomingBytes) {
            peakIncomingBytes = incomingBytes;
        }
        if (incomingFds > peakIncomingFds) {
            peakIncomingFds = incomingFds;
        }
        if (wasOver && !isIncomingOverLimit() && !closed) {
            sink.onIncomingDrained(this);
        }
    }

    /**
     * A queue took {@code m}: the first one charges its sender's incoming counter, and the bus's
     * {@link QueueLedger} (the sender's uid: {@link QueueLedger#messageBytes} and its fds).
     */
    public static void holdQueued(Message m) {
        if (m.retainQueued()) {
            if (m.sender() != null) {
                m.sender().chargeIncoming(m.size(), m.unixFds());
                m.sender().chargeLedger(m, 1);
            }
            if (m.facts() != null) {
                m.facts().holdHandles(); // AttachMetadata's pidfd stays open while any queue holds it
            }
        }
    }

    /** A queue let {@code m} go: the last one gives its sender's charges back. */
    public static void releaseQueued(Message m) {
        if (m.releaseQueued()) {
            if (m.sender() != null) {
                m.sender().chargeIncoming(-m.size(), -m.unixFds());
                m.sender().chargeLedger(m, -1);
            }
            m.payload().free(); // a large (direct) payload's memory goes back now, not at the next GC
            if (m.facts() != null) {
                m.facts().dropHandles();
            }
        }
    }

    private void chargeLedger(Message m, int sign) {
        QueueLedger ledger = pool.ledger();
        if (ledger != null) {
            long uid = credentials == null ? -1 : credentials.uid(); // as ReceivePool.chargedUid
            ledger.addMessage(uid, m, sign);
        }
    }

    // --- statistics peaks ----------------------------------------------------------------

    public int peakMatchRules() { return peakMatchRules; }
    public int peakBusNames() { return peakBusNames; }

    /** Bus names it holds: the unique name (once registered) plus every queued-for name. */
    public int busNameCount() {
        return (ownedNames == null ? 0 : ownedNames.size()) + (uniqueName != null ? 1 : 0);
    }

    public void notePeakBusNames() {
        peakBusNames = Math.max(peakBusNames, busNameCount());
    }

    /** Hand-over restore: the old connection's statistics peaks (never lowers one). */
    public void restorePeaks(long incomingBytes, int incomingFds, int matchRules, int busNames) {
        peakIncomingBytes = Math.max(peakIncomingBytes, incomingBytes);
        peakIncomingFds = Math.max(peakIncomingFds, incomingFds);
        peakMatchRules = Math.max(peakMatchRules, matchRules);
        peakBusNames = Math.max(peakBusNames, busNames);
    }

    // --- bookkeeping used by the bus package -------------------------------------------

    public void addMatchRuleCount(int delta) {
        matchRules += delta;
        if (matchRules > peakMatchRules) {
            peakMatchRules = matchRules;
        }
    }
    public void addPendingOutgoing(int delta) { pendingOutgoing += delta; }

    /**
     * Opens the slot for {@code caller}'s call {@code serial} to this connection; null if one is
     * already open (dbus-daemon refuses such a duplicate). One allocation: the slot itself.
     */
    public ReplySlot openPendingIncoming(Connection caller, long serial) {
        if (pendingIncoming.find(caller.id(), serial) != null) {
            return null;
        }
        ReplySlot s = new ReplySlot(this, caller, serial);
        if (pendingIncoming == NO_SLOTS) {
            pendingIncoming = new ReplySlotIndex(); // kept: a callee is likely to be called again
        }
        pendingIncoming.add(s);
        caller.linkOutgoing(s);
        return s;
    }

    /** Whether a reply to (caller, serial) is owed by this connection. */
    public boolean hasPendingIncoming(long callerId, long serial) {
        return pendingIncoming.find(callerId, serial) != null;
    }

    /** Removes the slot for a reply to (caller, serial); returns the caller or null. */
    public Connection takePendingIncoming(long callerId, long serial) {
        ReplySlot s = pendingIncoming.find(callerId, serial);
        if (s == null) {
            return null;
        }
        close(s);
        return s.caller;
    }

    /** Closes {@code s} (a slot this connection owes) if it is still open; whether it was. */
    public boolean closePendingIncoming(ReplySlot s) {
        if (!s.open || s.callee != this) {
            return false;
        }
        close(s);
        return true;
    }

    private void close(ReplySlot s) {
        pendingIncoming.remove(s);
        s.caller.unlinkOutgoing(s);
        s.open = false;
    }

    /** The oldest slot this connection owes, or null; walk on with {@link ReplySlot#nextIncoming}. */
    public ReplySlot firstPendingIncoming() { return pendingIncoming.first(); }

    /** One open slot of a call this connection made, or null; walk on with {@link ReplySlot#nextOutgoing}. */
    public ReplySlot firstPendingOutgoing() { return outgoingSlots; }

    /**
     * Checks this connection's side of its reply slots (for {@code ReplySlots.checkInvariants}):
     * the callee index is consistent, every slot it lists is open and owed by this connection,
     * and the outgoing list is doubly linked, open and made by this connection.
     */
    public void checkReplySlotLinks() {
        pendingIncoming.checkInvariants(this);
        ReplySlot prev = null;
        for (ReplySlot s = outgoingSlots; s != null; s = s.nextOut) {
            if (s.prevOut != prev) {
                throw new IllegalStateException(this + ": outgoing slot " + s.serial + " has a wrong back link");
            }
            if (!s.open || s.caller != this || s.callerId != id) {
                throw new IllegalStateException(this + ": outgoing slot " + s.serial + " is closed or not its own call");
            }
            prev = s;
        }
    }

    /** Closes every slot this connection owes (after the bus walked them). */
    public void closeAllPendingIncoming() {
        ReplySlot next;
        for (ReplySlot s = pendingIncoming.first(); s != null; s = next) {
            next = s.nextIn;
            s.caller.unlinkOutgoing(s);
            s.open = false;
            s.prevIn = s.nextIn = null;
        }
        if (pendingIncoming != NO_SLOTS) { // the shared empty one is never written
            pendingIncoming.clear();
        }
    }

    /** Closes every slot other connections owe this one; returns how many there were. */
    public int closeAllPendingOutgoing() {
        int n = 0;
        ReplySlot s;
        while ((s = outgoingSlots) != null) {
            s.callee.close(s);
            n++;
        }
        return n;
    }

    private void linkOutgoing(ReplySlot s) {
        s.prevOut = null;
        s.nextOut = outgoingSlots;
        if (outgoingSlots != null) {
            outgoingSlots.prevOut = s;
        }
        outgoingSlots = s;
    }

    private void unlinkOutgoing(ReplySlot s) {
        if (s.prevOut == null) {
            outgoingSlots = s.nextOut;
        } else {
            s.prevOut.nextOut = s.nextOut;
        }
        if (s.nextOut != null) {
            s.nextOut.prevOut = s.prevOut;
        }
        s.prevOut = s.nextOut = null;
    }

    long matchStamp() { return matchStamp; }
    void setMatchStamp(long s) { matchStamp = s; }

    /** Marks it closed and drops everything it had not yet received. */
    public void markClosed() {
        markClosed(true);
    }

    /**
     * Marks it closed: nothing new is queued from now on. With {@code dropQueued} false the
     * pool keeps what is already in it, so the transport can still write it out (BYEBYE).
     */
    public void markClosed(boolean dropQueued) {
        closed = true;
        if (dropQueued) {
            pool.clear();
        }
    }

    /** Stamp helper for de-duplicating broadcast recipients without allocation. */
    public boolean stampOnce(long seq) {
        if (matchStamp == seq) {
            return false;
        }
        matchStamp = seq;
        return true;
    }

    public void setUniqueNameOnce(String name) { setUniqueName(name); }

    @Override
    public String toString() {
        return uniqueName != null ? uniqueName : ("#" + id);
    }
}
