package org.kdbusbridge.core.bus;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;

/**
 * Hand-over (issue 19, docs/handover.md section 8 steps 1 and 4): rebuilds a bus's state in a
 * new {@link Bus} from values the bridge decoded from a snapshot. The core knows nothing of
 * sockets or bytes: each operation takes values, changes the bus without limit checks or
 * signals (what it restores was admitted by the old bus), and charges the quota as the
 * original operation did, so a smaller new heap leaves the bus over budget, never losing state.
 *
 * Order: {@link #connection} for every connection in id order, then {@link #register} (or
 * {@link #monitor}), {@link #queue} per name, {@link #ownedNames} per connection, {@link #match}
 * per rule in insertion order, then (step 4) {@link #message} per distinct queued message,
 * {@link #queued} per pool entry in pool order, {@link #replySlot} per open slot in each callee's
 * opening order, then {@link #finish}, which restores the counters and checks the registry's,
 * the index's, every pool's and the reply slots' invariants. One use per bus, on the bus's thread.
 *
 * Quotas are recharged, never carried: a queued message charges its sender's incoming counter
 * and the {@code QueueLedger} (bytes once, an entry per pool) as routing did, and a reply slot
 * charges its caller's reply count and uid quota as opening it did; so the ledger totals after
 * {@link #finish} equal the old bus's whenever the same messages and slots were restored.
 */
public final class Restore {
    /** The bus-wide values a snapshot carries that are not derived from its objects. */
    public record Counts(long nextId, long nextUnique, long lastSequence, int peakBusNames,
            int peakBusNamesPerConnection, int peakMatchRules, int peakMatchRulesPerConnection) {
    }

    private final Bus bus;
    private final Map<Long, Connection> byId = new LinkedHashMap<>();
    /** DEPARTED stubs: senders that left while their messages were still queued. */
    private final Map<Long, Connection> departedById = new LinkedHashMap<>();
    /** Messages given to {@link #message}, whose creator's fd reference {@link #finish} drops. */
    private final List<Message> messages = new ArrayList<>();
    private final java.util.Set<Message> restored = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    /** Slots with a deadline, in restore order; {@link #finish} puts them into the FIFO by deadline. */
    private final List<ReplySlots.Timed> timed = new ArrayList<>();
    /** Connections carried before their Hello (beforeHello): the only ones finish lets go without a name. */
    private final java.util.Set<Connection> beforeHello = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    private boolean finished;

    Restore(Bus bus) {
        if (bus.connectionCount() != 0 || bus.lastSequence() != 0 || bus.names().nameCount() != 0) {
            throw new IllegalStateException("restore needs a new bus");
        }
        this.bus = bus;
    }

    static Counts counts(Bus b) {
        return new Counts(b.table().nextId(), b.table().nextUnique(), b.lastSequence(), b.peakBusNames(),
                b.peakBusNamesPerConnection(), b.matches().peakSize(), b.matches().peakPerConnection());
    }

    /**
     * What the hand-over cannot carry yet, each named (empty: it can). Until later steps land the hand-over
     * refuses such a bus rather than lose any of it (docs/handover.md section 8).
     */
    static List<String> refusals(Bus b) {
        List<String> out = new ArrayList<>();
        List<Connection> all = new ArrayList<>(b.activeConnections());
        all.addAll(b.monitorSet().all().keySet());
        for (Connection c : all) {
            if (c.pendingOutgoingReplies() != outgoingSlots(c)) {
                out.add(c + " waits for " + (c.pendingOutgoingReplies() - outgoingSlots(c))
                        + " repl(ies) to calls queued on an activator (activator queues are not carried yet)");
            }
        }
        if (b.pendingActivationEntries() > 0) {
            out.add(b.pendingActivationEntries() + " pending activation entries (carried from steps 4 and 6)");
        }
        for (String name : b.activatableNames()) {
            org.kdbusbridge.core.activation.Activator a = b.activator(name);
            if (a != null && (a.isStarting() || a.queued() > 0)) {
                out.add("activation of " + name + " in flight (carried from step 6)");
            }
        }
        for (Connection c : all) {
            if (c.endpoint() != null) {
                out.add(c + " came in through a custom endpoint (endpoint state is not carried yet)");
            }
        }
        return out;
    }

    private static int outgoingSlots(Connection c) {
        int n = 0;
        for (org.kdbusbridge.core.connection.ReplySlot s = c.firstPendingOutgoing(); s != null; s = s.nextOutgoing()) {
            n++;
        }
        return n;
    }

    private void open() {
        if (finished) {
            throw new IllegalStateException("restore already finished");
        }
    }

    /** A connection with its old id (ids ascending); counted as connected, not registered yet. */
    public Connection connection(long id, Credentials credentials, ConnectionSink sink) {
        open();
        Connection c = bus.table().restoreConnection(id, credentials, sink);
        byId.put(id, c);
        return c;
    }

    /**
     * A connection that left while messages it sent are still queued (DEPARTED): a closed stub
     * with its old id, unique name and credentials, never registered or counted, so those
     * messages keep a sender to be charged to (its uid in the queue ledger) and released from.
     * Call before {@link #message}; its id is one no carried connection has.
     */
    public Connection departed(long id, String uniqueName, Credentials credentials) {
        open();
        if (byId.containsKey(id) || departedById.containsKey(id)) {
            throw new IllegalStateException("departed connection " + id + " is also carried");
        }
        Connection c = new Connection(id, credentials, x -> { },
                new org.kdbusbridge.core.connection.ReceivePool(0, 0, bus.queued()));
        c.setUniqueNameOnce(uniqueName);
        c.markClosed(false);
        departedById.put(id, c);
        return c;
    }

    /** A DEPARTED stub by its carried id, or null. */
    public Connection departedById(long id) { return departedById.get(id); }

    /** The connection by its carried id, or null. */
    public Connection byId(long id) { return byId.get(id); }

    /** Its Hello as answered by the old bus: {@code unique} and visible to peers. */
    public void register(Connection c, String unique) {
        open();
        bus.table().restoreRegistered(c, unique, true);
    }

    /**
     * A connection that had not completed Hello (the bridge carries its SASL state): counted as
     * connected and incomplete, as it was, with no name; Hello may come after the restore.
     */
    public void beforeHello(Connection c) {
        open();
        if (byId.get(c.id()) != c || c.uniqueName() != null) {
            throw new IllegalStateException(c + " is not a connection of this restore without Hello");
        }
        beforeHello.add(c);
    }

    /** A monitor (BecomeMonitor done in the old bus): its name kept but invisible, its monitor rules. */
    public void monitor(Connection c, String unique, List<MatchRule> rules) {
        open();
        bus.table().restoreRegistered(c, unique, false);
        c.watchDrops(false); // a monitor is told nothing by the bus
        bus.monitorSet().add(c, rules);
    }

    /** AttachMetadata's set and the drop watch (with its unreported count, {@code dropCount} 0 if none). */
    public void attachMetadata(Connection c, int items, boolean drops, long dropCount, long firstSeq, long lastSeq) {
        open();
        bus.attachMetadata(c, items, drops);
        if (drops && c.drops() != null && dropCount > 0) {
            c.drops().restore(dropCount, firstSeq, lastSeq);
        }
    }

    /** {@code name}'s owner queue, primary first, with each owner's stored flags. */
    public void queue(String name, List<Connection> owners, int[] flags) {
        open();
        bus.names().restore(name, owners, flags);
    }

    /** {@code c}'s well-known names in its own acquisition order (after every {@link #queue}). */
    public void ownedNames(Connection c, List<String> names) {
        open();
        if (!c.ownedNames().isEmpty()) {
            throw new IllegalStateException(c + ": owned names restored twice");
        }
        for (String n : names) {
            c.addOwnedName(n);
        }
    }

    /** One of {@code c}'s match rules; call in insertion order, duplicates included. */
    public void match(Connection c, MatchRule rule) {
        open();
        bus.matches().add(c, rule);
    }

    /**
     * A queued message as the old bus admitted it: {@code sender} (null: the bus itself), its
     * sequence number and whether it was routed as a requested reply. {@code m} is new (not
     * admitted); its {@code FdSet}, if any, has the one reference its maker holds, and so has
     * its facts' pidfd (the hold {@code MessageFacts.setPidfd} gives), which this restore takes
     * over and drops in {@link #finish}, once every pool holds its own. Nothing is queued yet:
     * {@link #queued} puts it into pools.
     */
    public Message message(Message m, Connection sender, long seq, boolean requestedReply) {
        open();
        if (seq <= 0) {
            throw new IllegalStateException("a queued message without a sequence number");
        }
        if (sender != null && byId.get(sender.id()) != sender && departedById.get(sender.id()) != sender) {
            throw new IllegalStateException("message " + seq + " from a connection this restore did not make");
        }
        m.admit(sender, seq);
        if (requestedReply) {
            m.markRequestedReply();
        }
        messages.add(m);
        restored.add(m);
        return m;
    }

    /**
     * {@code m} (from {@link #message}) at the tail of {@code c}'s pool: pushed without the limit
     * checks (the old bus admitted it; lowered limits apply to new messages only), charged as
     * routing charged it (its fds referenced, its sender's incoming counter and ledger share,
     * one ledger entry). Call in pool order.
     */
    public void queued(Connection c, Message m) {
        open();
        if (!restored.contains(m)) {
            throw new IllegalStateException("queued message not restored by message() first");
        }
        c.pool().push(m);
    }

    /**
     * The open slot in which {@code callee} owes {@code caller} the reply to {@code serial}, with
     * {@code remainingMs} to its reply_timeout deadline on the bus clock (negative or zero: due
     * now, so the first expiry after resume answers it; {@link Long#MIN_VALUE}: it has no
     * deadline). Counted against max_replies_per_connection and charged to the caller's uid as
     * opening it was. Call in each callee's opening order.
     */
    public void replySlot(Connection callee, Connection caller, long serial, long remainingMs) {
        open();
        if (byId.get(callee.id()) != callee || byId.get(caller.id()) != caller || callee.uniqueName() == null
                || caller.uniqueName() == null) {
            throw new IllegalStateException("reply slot " + serial + " between connections this restore did not register");
        }
        ReplySlots.Timed t = bus.replySlotSet().restore(callee, caller, serial,
                remainingMs == Long.MIN_VALUE ? Long.MIN_VALUE : bus.clockMillis() + remainingMs);
        bus.quotaGate().expectReply(caller);
        if (t != null) {
            timed.add(t);
        }
    }

    /**
     * {@code c}'s PeekQueued (or PeekActivationQueue) answer is still queued at pool position
     * {@code position} (one answer queued at a time): after {@link #queued} restored its pool,
     * whose positions are the old ones (the bridge restores the pushed count first).
     */
    public void peekAnswerAt(Connection c, long position) {
        open();
        if (!c.pool().stillQueued(position)) {
            throw new IllegalStateException(c + ": PeekQueued answer position " + position + " is not in its pool");
        }
        c.setPeekAnswerAt(position);
    }

    /**
     * The counters and peaks; then the registry's, the index's, every pool's and the reply slots'
     * invariants are checked, and each restored message's maker reference on its fds is dropped.
     */
    public void finish(Counts counts) {
        open();
        finished = true;
        bus.replySlotSet().restoreDeadlines(timed);
        for (Message m : messages) {
            if (m.seq() > counts.lastSequence()) {
                throw new IllegalStateException("message " + m.seq() + " is after the carried sequence "
                        + counts.lastSequence());
            }
            if (m.fds() != null) {
                m.fds().release(); // the maker's: every pool that holds it has its own now
            }
            if (m.facts() != null) {
                m.facts().dropHandles(); // the maker's hold on an AttachMetadata pidfd (setPidfd): the queues hold it now
            }
        }
        bus.table().restoreCounters(counts.nextId(), counts.nextUnique(), counts.peakBusNames(),
                counts.peakBusNamesPerConnection());
        bus.router().restoreSequence(counts.lastSequence());
        bus.matches().restorePeaks(counts.peakMatchRules(), counts.peakMatchRulesPerConnection());
        bus.names().checkInvariants(byId.values());
        bus.matches().checkInvariants();
        for (Connection c : byId.values()) {
            c.pool().checkInvariants();
        }
        bus.checkReplySlots();
        for (Connection c : byId.values()) {
            if (c.uniqueName() == null && !beforeHello.contains(c)) {
                throw new IllegalStateException("connection " + c.id() + " restored without its Hello");
            }
        }
    }
}
