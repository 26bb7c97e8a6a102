package org.kdbusbridge.core.bus;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.core.activation.Activator;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.connection.QueueLedger;
import org.kdbusbridge.core.match.MatchIndex;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.MessageFacts;
import org.kdbusbridge.core.monitor.Monitors;
import org.kdbusbridge.core.name.NameRegistry;
import org.kdbusbridge.core.policy.PolicyQuery;

/**
 * The bus: connections, names, match rules, reply slots and the single sequencer.
 *
 * One place for every bus rule: the name registry, the match index, the monitors, the
 * activators and the connection table change only through this class's operations (the
 * registry and index it hands out are for reading). Each operation checks, in dbus-daemon's
 * order, the bus's rules on its arguments (reserved and unique names), the policy (own rules),
 * the per-connection limits and the uid's quota before anything changes; a refused operation
 * changes nothing and returns a {@link Denial}; one that goes through returns what changed
 * ({@link NameOutcome}, {@link MatchChange}, {@link Disconnect}, {@link ActivationCompleted})
 * for the caller to render as signals and a reply. Results are returned, never left in fields.
 *
 * Invariants: confined to one thread (the caller's event loop), so every operation is a
 * transaction nobody can interleave with; every admitted message gets the next sequence
 * number, so per-receiver FIFOs are in one global order; connection ids and unique names
 * are never reused; a reply slot (caller, serial) exists on the callee from the call until
 * its reply, until either side leaves, or until reply_timeout expires it (the timeout FIFO is
 * in deadline order because every slot gets the same timeout); the pending activation count
 * (max_pending_service_starts) equals the messages waiting on activators plus the
 * StartServiceByName callers the launcher reports through {@link #addActivationWaiters}.
 *
 * Parts, each with its own invariants at its top: {@link Router} sequences and routes;
 * {@link PolicyGate} holds the one {@link PolicyQuery} and makes every policy decision;
 * {@link Claims} changes names and match rules, with their limits and quota charges;
 * {@link ConnectionTable} connects, registers and removes connections; {@link Activations}
 * keeps the activators and their waiting messages; {@link QuotaGate} renders quota refusals
 * and keeps the reply budget. This class is their single public facade.
 */
public final class Bus {
    public static final String DRIVER_NAME = "org.freedesktop.DBus";
    /** The sender dbus-daemon stamps on messages from a connection that has not said Hello. */
    public static final String NOT_ACTIVE_YET = ":not.active.yet";

    private final BusLimits limits;
    private final NameRegistry names = new NameRegistry();
    private final MatchIndex matches = new MatchIndex(DRIVER_NAME);
    private final Map<String, Connection> byUniqueName = new HashMap<>();
    private final Monitors monitors = new Monitors();
    private final UserQuotas quotas;
    /** Bytes and fds held by queued messages, per sending uid and in all (every pool charges it). */
    private final QueueLedger queued;
    private final PolicyGate gate = new PolicyGate();
    private final QuotaGate quota;
    private final Activations activations;
    private final Router router;
    private final AttachDemand attach = new AttachDemand();
    private final ConnectionTable table;
    private final EndpointGate endpoints;
    private final Claims claims;
    private final BusCounters counters = new BusCounters();
    private java.util.function.LongSupplier clock = () -> System.nanoTime() / 1_000_000;
    /** Open reply slots and the reply_timeout FIFO; a closed slot gives its caller's budget back. */
    private final ReplySlots replySlots;
    /** Closed slots the reply_timeout FIFO may keep beyond as many as are open (tests). */
    static final int DEADLINE_SLACK = ReplySlots.DEADLINE_SLACK;

    /** A bus whose per-uid quota is derived from this JVM's heap ({@link UserQuota#forHeap}). */
    public Bus(BusLimits limits) {
        this(limits, UserQuota.forHeap(Runtime.getRuntime().maxMemory()));
    }

    public Bus(BusLimits limits, UserQuota quota) {
        this.limits = limits;
        this.quotas = new UserQuotas(quota);
        this.quota = new QuotaGate(limits, quotas, () -> clock.getAsLong());
        this.replySlots = new ReplySlots(() -> limits().replyTimeout, () -> clock.getAsLong(),
                this.quota::replyNoLongerExpected);
        this.queued = new QueueLedger(quota.queues());
        this.queued.setLog(text -> this.quota.log(text), () -> clock.getAsLong());
        BusState state = new BusState(limits, byUniqueName, names, matches, monitors, replySlots, queued, quotas);
        this.activations = new Activations(state, gate, this.quota);
        this.endpoints = new EndpointGate(state);
        this.router = new Router(state, gate, this.quota, activations, attach, endpoints, counters);
        this.table = new ConnectionTable(state);
        this.claims = new Claims(state, this.quota, table);
    }

    // --- match rules and names: rules, limits, quota, then the change -------------------

    /** AddMatch: max_match_rules_per_connection, then the uid's quota; then the rule is held. */
    public MatchChange addMatch(Connection c, MatchRule rule) { return claims.addMatch(c, rule); }

    /** RemoveMatch: MatchRuleNotFound if {@code c} has no such rule. */
    public MatchChange removeMatch(Connection c, MatchRule rule) { return claims.removeMatch(c, rule); }

    /** RequestName: the name's rules, own policy, max_names_per_connection, quota; then the change. */
    public NameOutcome requestName(Connection c, String name, int flags) { return claims.requestName(c, name, flags); }

    /** ReleaseName: a valid name, not a unique one, not the bus's own; then the registry's change. */
    public NameOutcome releaseName(Connection c, String name) { return claims.releaseName(c, name); }

    /** Bytes of match rules, names and reply slots charged to {@code uid} now. */
    public long quotaUsed(long uid) { return quotas.used(uid); }

    /** The ledger itself (tests in this package). */
    UserQuotas quotas() { return quotas; }

    /** Bytes of match rules, names and reply slots charged to all uids now. */
    public long quotaUsedTotal() { return quotas.total(); }

    public UserQuota quota() { return quotas.quota(); }

    /** The ledger of queued bytes and fds (per sending uid and in all). */
    public QueueLedger queued() { return queued; }

    /** Where quota refusals are logged (already rate-limited: once per uid per minute). */
    public void setQuotaLog(java.util.function.Consumer<String> log) { quota.setLog(log); }

    /** The millisecond clock reply_timeout runs on (monotonic; tests may replace it). */
    public void setClock(java.util.function.LongSupplier millis) { this.clock = millis; }

    // --- statistics (org.freedesktop.DBus.Debug.Stats) ------------------------------------

    /** Bus names held now: every unique name plus every owner entry of every well-known queue. */
    public int busNameCount() { return table.busNameCount(); }

    public int peakBusNames() { return table.peakBusNames(); }
    public int peakBusNamesPerConnection() { return table.peakBusNamesPerConnection(); }

    // --- max_pending_service_starts -------------------------------------------------------

    /** Messages waiting on activators plus StartServiceByName callers waiting for a start. */
    public int pendingActivationEntries() { return activations.entries(); }

    /** The launcher's StartServiceByName callers: +1 when one waits, -n when a start ends. */
    public void addActivationWaiters(int delta) { activations.addWaiters(delta); }

    /** Whether one more activation entry would exceed max_pending_service_starts. */
    public boolean activationLimitReached() { return activations.limitReached(); }

    // --- reply_timeout --------------------------------------------------------------------

    /** Entries in the reply_timeout FIFO, closed ones not yet skipped included (tests). */
    int replyDeadlineEntries() { return replySlots.deadlineEntries(); }

    /** Reply slots open now (tests). */
    long openReplySlots() { return replySlots.openCount(); }

    /** Checks the reply slots' invariants against every named connection (tests). */
    void checkReplySlots() { replySlots.checkInvariants(byUniqueName.values()); }

    /** When the oldest reply slot in the FIFO times out (clock milliseconds), or -1 if none can. */
    public long nextReplyDeadline() { return replySlots.nextDeadline(); }

    /**
     * Closes every reply slot whose reply_timeout has passed; returns the callers still
     * connected, each owed NoReply ("Message did not receive a reply (timeout by message
     * bus)"). A later reply to such a call is unexpected, as in dbus-daemon.
     */
    public List<DeadReply> expireReplies() { return replySlots.expire(); }

    public BusLimits limits() { return limits; }

    /** Bus-wide counters: departed connections' totals, disconnects by reason (bus thread). */
    public BusCounters counters() { return counters; }

    /** The transport closed a connection for {@code reason}: counted (before {@link #disconnect}). */
    public void countDisconnect(DisconnectReason reason) { counters.noteDisconnect(reason); }
    public NameRegistry names() { return names; }
    public MatchIndex matches() { return matches; }

    // --- hand-over (issue 19): see Restore ---------------------------------------------------

    /** Starts restoring a snapshot into this bus, which must be new (no connection yet). */
    public Restore beginRestore() { return new Restore(this); }

    /** What a snapshot of this bus carries besides its connections, names and rules. */
    public Restore.Counts restoreCounts() { return Restore.counts(this); }

    /** Why this bus cannot be snapshotted by step 1 (queued messages, reply slots, ...); empty if idle. */
    public List<String> handOverRefusals() { return Restore.refusals(this); }

    /** The monitors and their rules (the capture pseudo-connection too: it is a monitor with no rules). */
    public Map<Connection, List<MatchRule>> monitorRules() { return monitors.all(); }

    ConnectionTable table() { return table; }
    Router router() { return router; }
    Monitors monitorSet() { return monitors; }
    EndpointGate endpointGate() { return endpoints; }
    ReplySlots replySlotSet() { return replySlots; }
    QuotaGate quotaGate() { return quota; }
    /** The reply_timeout clock now (milliseconds). */
    long clockMillis() { return clock.getAsLong(); }
    public long lastSequence() { return router.lastSequence(); }
    public int connectionCount() { return table.connectionCount(); }

    /** Connections that completed Hello and have not left (max_completed_connections counts these). */
    public int completedConnectionCount() { return table.completedCount(); }

    /**
     * Told of each delivery the bus refuses without telling the sender: a broadcast or
     * eavesdropping receiver the policy (or a missing unix-fd capability) excludes, and a bus
     * message a receive rule forbids. Called only while monitors are attached, in the order
     * the refusals happen, so the bridge can render the error dbus-daemon shows monitors
     * (and only monitors) and hand it to {@link #captureOnly}. {@code addressed} is whom that
     * error is for: the sender, or the receiver for a bus message.
     */
    public interface RefusalListener {
        void refused(Message m, Connection addressed, Delivery reason, String text);
    }

    public void setRefusalListener(RefusalListener listener) { router.setRefusalListener(listener); }

    /** Told when a message queued on an idle activator needs the service started. */
    public interface ActivationListener {
        void activationRequested(String name);

        /**
         * {@code name}, without owner, is about to be started (or found not activatable): the
         * launcher may re-read service files that changed since its last scan, calling
         * {@link #setActivatable}, as dbus-daemon checks its service files on each start
         * (update_service_cache on a miss, check_service_file on a hit).
         */
        default void activatableLookup(String name) { }
    }

    public void setActivationListener(ActivationListener listener) { activations.setListener(listener); }

    /**
     * Told, in the step that caused it, when metadata items (MessageFacts bits) are no longer
     * wanted by any connection: what the bridge keeps only for them (AttachMetadata's cached
     * sender pidfds) can go.
     */
    public interface DemandListener {
        void noLongerWanted(int items);
    }

    public void setDemandListener(DemandListener listener) { attach.setListener(listener); }

    /**
     * Where policy denials that dbus-daemon logs go (denied unicasts, denied driver messages,
     * "Would reject" for log="true" rules); the receiver should rate-limit.
     */
    public void setPolicyLog(java.util.function.Consumer<String> log) { gate.setLog(log); }

    /**
     * Makes exactly these names activatable. An activator that goes away keeps nothing:
     * its waiting messages are returned so their callers can be told.
     */
    public List<Message> setActivatable(java.util.Set<String> names) {
        return setActivatable(names, java.util.Set.of());
    }

    /**
     * As {@link #setActivatable(java.util.Set)}, plus {@code unlisted} names that have an
     * activator but no service file (org.freedesktop.systemd1 under systemd activation):
     * messages wait for them the same way, but {@link #activatableNames} does not list them.
     */
    public List<Message> setActivatable(java.util.Set<String> names, java.util.Set<String> unlisted) {
        return activations.setActivatable(names, unlisted);
    }

    public Activator activator(String name) { return activations.get(name); }

    /**
     * The activator of {@code name} for a start (auto-start or StartServiceByName), after the
     * listener has had the chance to pick up service files changed since its last scan.
     */
    public Activator lookupActivator(String name) { return activations.lookup(name); }

    /** The names service files provide (ListActivatableNames); unlisted activators are not here. */
    public java.util.Set<String> activatableNames() { return activations.listed(); }

    /**
     * Starts the activator of {@code name} (StartServiceByName). Returns false if the name is
     * not activatable; the listener is told only if no activation was already in flight.
     */
    public boolean activate(String name) { return activations.activate(name); }

    /**
     * StartServiceByName's checks, in dbus-daemon's order: the pending-start limit, then a
     * .service file must provide the name (so a unique name, org.freedesktop.DBus and any name
     * without a file are UNKNOWN even when owned), only then does an owner mean ALREADY_RUNNING.
     * Changes nothing; on START the caller records its wait, then calls {@link #activate}.
     */
    public StartCheck startService(String name) {
        if (activations.limitReached()) {
            return StartCheck.LIMIT;
        }
        if (activations.lookup(name) == null) {
            return StartCheck.UNKNOWN;
        }
        return resolve(name) != null ? StartCheck.ALREADY_RUNNING : StartCheck.START;
    }

    /**
     * The name has an owner again: its waiting messages move to the owner, in order, with
     * their reply slots. Call after the name-change signals and before the RequestName reply.
     * Each message is checked against the new owner's names and receive rules (the
     * pre-activation check could not know them) and whether it can take its fds; those refused
     * are not moved but returned, so their callers can be told.
     */
    public ActivationCompleted completeActivation(String name) { return activations.completeActivation(name); }

    /**
     * The activation of {@code name} failed (exec failure, exit, timeout): every waiting
     * message is returned so the bridge can send each caller the error.
     */
    public List<Message> failActivation(String name) { return activations.failActivation(name); }

    // --- what a connection learns about its own queues (docs/extensions.md) ----------------

    /**
     * WatchDrops (and AttachMetadata's {@code drops} item): from now on the broadcasts
     * {@code c}'s pool or its senders' queue quota cannot take are counted for a MessagesDropped
     * notice ({@link #takeDropNotice}); {@code false} stops and forgets unreported ones. Returns
     * whether it watched before.
     */
    public boolean watchDrops(Connection c, boolean on) {
        boolean was = c.drops() != null;
        c.watchDrops(on && !c.isClosed() && !monitors.isMonitor(c));
        return was;
    }

    /**
     * The transport wrote some of {@code c}'s pool out (or was told of a first drop: see
     * {@code ConnectionSink.onDropped}): if {@code c} missed broadcasts since its last notice and
     * its pool is at most half full, the notice to send it now, and the count starts afresh;
     * else null (nothing to tell, or no room yet: the count goes on and a later write asks
     * again). Callers check {@link Connection#hasUnreportedDrops} first, one field read.
     */
    public DropNotice takeDropNotice(Connection c) { return QueueViews.takeDropNotice(c); }

    /** PeekQueued: the oldest {@code max} messages waiting in {@code c}'s own pool, and how many wait. */
    public QueuePeek peekQueued(Connection c, int max) { return QueueViews.peekQueued(c, max); }

    /**
     * PeekActivationQueue: what {@code c} was handed when it became {@code name}'s owner at the
     * end of a start (who caused the start), while it still is its primary owner.
     */
    public HandOverPeek peekHandOver(Connection c, String name) { return activations.handedOver(c, name); }

    /** The kdbus BYEBYE condition: nothing queued for {@code c} and no call it still owes. */
    public boolean isIdle(Connection c) { return table.isIdle(c); }

    /**
     * The second half of BYEBYE, in the same loop step as {@link #isIdle}: {@code c}'s names fall
     * back to their activators now, while what is in its pool is kept for the transport to write.
     */
    public Disconnect disconnectKeepingQueue(Connection c) {
        counters.fold(c.counters()); // nothing is queued to it after this
        attach.drop(c);
        Disconnect d = table.disconnect(c, false);
        endpoints.departed(c, d.nameChanges());
        gate.forget(c); // last: nothing after a departure may keep it reachable
        return d;
    }

    /**
     * AttachMetadata (docs/extensions.md): {@code items} (MessageFacts bits) replaces what
     * {@code c} wants attached to every message it receives from now on; 0 clears it.
     */
    public AttachChange attachMetadata(Connection c, int items) { return attachMetadata(c, items, c.drops() != null); }

    /**
     * AttachMetadata with the {@code drops} item: the header items and the MessagesDropped
     * notices (as {@link #watchDrops}) set in one step.
     */
    public AttachChange attachMetadata(Connection c, int items, boolean drops) {
        if (c.isClosed()) {
            // Gone (its set was dropped at disconnect): nothing changes, nothing is counted again.
            return new AttachChange(c.attachedMetadata(), c.attachedMetadata(), attach.wanted());
        }
        watchDrops(c, drops);
        if (monitors.isMonitor(c)) {
            items &= ~MessageFacts.PIDFD; // a monitor is never handed a sender's pidfd
        }
        return attach.set(c, MessageFacts.normalizedSet(items)); // no items left: no form either
    }

    /** Every metadata item at least one connection wants (0: nobody asked, admission adds nothing). */
    public int metadataWanted() { return attach.wanted(); }

    /** How many connections want {@code item} (one MessageFacts bit). */
    public int metadataWanting(int item) { return attach.count(item); }

    /** A new, not yet registered connection (Hello makes it active). */
    public Connection connect(Credentials credentials, ConnectionSink sink) { return table.connect(credentials, sink); }

    /**
     * Hello: registers {@code c} under its unique name unless max_completed_connections, then
     * max_connections_per_user, is reached; a refused connection keeps no name and may retry.
     */
    public Registration hello(Connection c) {
        Registration r = table.hello(c);
        if (r.arrival() != null) {
            endpoints.registered(c);
        }
        return r;
    }

    // --- custom endpoints (issue 18): the filter of a connection that came in through one ---

    /**
     * The endpoint filter's verdict on a call to the driver ({@code arg0}: its first argument
     * if that is a string, else null): ALLOW for every connection not behind a filtering endpoint.
     */
    public org.kdbusbridge.core.endpoint.SendVerdict endpointDriverCall(Connection caller, String iface,
            String member, String arg0, boolean replyExpected, boolean noAutoStart) {
        return endpoints.driverCall(caller, iface, member, arg0, replyExpected, noAutoStart);
    }

    /** Whether {@code caller} may get a peer's pidfd (not from inside a filtering endpoint). */
    public boolean mayGetProcessHandles(Connection caller) { return endpoints.mayGetProcessHandles(caller); }

    /** Whether ListNames and ListActivatableNames tell {@code caller} of {@code name}. */
    public boolean endpointLists(Connection caller, String name) { return endpoints.lists(caller, name); }

    /** The connection owning {@code name} (unique or well-known), or null. */
    public Connection resolve(String name) { return router.resolve(name); }

    public Collection<Connection> activeConnections() { return byUniqueName.values(); }

    /** The next sequence number, for a message the bus itself originates. */
    public long sequence() { return router.sequence(); }

    /**
     * Routes a message from an active client. The driver handles messages to
     * org.freedesktop.DBus before they get here.
     */
    public Delivery send(Connection from, Message m) { return router.send(from, m); }

    /**
     * A bus-originated unicast to a well-known name (systemd's ActivationRequest, the
     * SetEnvironment call): delivered to the owner as {@link #emitTo}, or, while the name has no
     * owner, queued on its activator (starting it) until one appears, as a client's message
     * would be. Without owner or activator it is only shown to monitors and SERVICE_UNKNOWN
     * returned.
     */
    public Delivery emitToName(Message m) { return router.emitToName(m); }

    /**
     * A client's message to the driver: may {@code from}'s send rules send {@code q} to
     * org.freedesktop.DBus? (No receive side: the bus receives everything.) {@code q}'s
     * destination and requested reply are set here; {@link #policyQuery()} gives one to fill. On
     * false, {@link #driverDenialText} with the same query gives the AccessDenied text.
     */
    public boolean checkSendToDriver(Connection from, PolicyQuery q) { return gate.checkSendToDriver(from, q); }

    /** The AccessDenied text of the query {@link #checkSendToDriver} just refused (computed again). */
    public String driverDenialText(Connection from, PolicyQuery q) { return gate.driverDenialText(from, q); }

    /**
     * The bus's reusable query, cleared, for {@link #checkSendToDriver}: the next check refills
     * it, so fill it and pass it at once.
     */
    public PolicyQuery policyQuery() { return gate.query(); }

    /**
     * The AccessDenied text of a message {@link #send} just refused with
     * {@link Delivery#ACCESS_DENIED} (dbus-daemon's complaint format). Call before anything else
     * changes the bus: it recomputes the check that refused it, which allocates only here.
     */
    public String denialText(Message m) { return router.denialText(m); }

    /** A bus-originated signal with no destination, to every matching rule. */
    public void emitSignal(Message m) { router.emitSignal(m); }

    /** A client's message to the driver: sequenced and shown to monitors, routed by nobody. */
    public void admitToDriver(Connection from, Message m) { router.admitToDriver(from, m); }

    public boolean hasMonitors() { return !monitors.isEmpty(); }

    public boolean isMonitor(Connection c) { return monitors.isMonitor(c); }

    /**
     * BecomeMonitor, first half: {@code c} loses every name, its visibility and its reply slots
     * (callers it owes a reply are returned, owed NoReply); {@link #startMonitoring} follows.
     */
    public Disconnect becomeMonitor(Connection c) {
        counters.fold(c.counters()); // as a departure: its copies as a monitor are not peer traffic
        Disconnect d = table.becomeMonitor(c);
        endpoints.departed(c, d.nameChanges());
        return d;
    }

    /**
     * BecomeMonitor, second half, after its name-change signals: the monitor rules replace its
     * own; its attach set loses {@code pidfd} (a monitor's copies carry no pidfd, see
     * {@link #attachMetadata(Connection, int, boolean)}), and its form too if no item is left
     * ({@link MessageFacts#normalizedSet}).
     */
    public void startMonitoring(Connection c, List<MatchRule> rules) {
        table.startMonitoring(c, rules);
        if ((c.attachedMetadata() & MessageFacts.PIDFD) != 0) {
            attach.set(c, MessageFacts.normalizedSet(c.attachedMetadata() & ~MessageFacts.PIDFD));
        }
    }

    /**
     * Our capture extension (--kdbus-capture): a pseudo-connection offered every message monitors
     * see, in sequence order; no name, not counted, never sends; {@code sink} drains its pool.
     */
    public Connection attachCapture(Credentials credentials, ConnectionSink sink) {
        return table.attachCapture(credentials, sink);
    }

    /** Stops offering messages to a capture pseudo-connection. */
    public void detachCapture(Connection c) { table.detachCapture(c); }

    /**
     * A bus-originated unicast (reply, error, NameAcquired/NameLost): never refused. As in
     * dbus-daemon (bus_transaction_send_from_driver), it goes to the recipient only: match
     * rules, even eavesdropping ones, never see the driver's unicasts (monitors are separate).
     */
    public void emitTo(Connection to, Message m) { router.emitTo(to, m); }

    /**
     * The bus's answer to a call that had no destination ({@link Delivery#UNADDRESSED_CALL}):
     * in dbus-daemon its connection layer answers such calls itself, below the bus's routing,
     * so no policy applies. Sequenced, shown to monitors, queued to the caller.
     */
    public void answerUnaddressed(Connection to, Message reply) { router.answerUnaddressed(to, reply); }

    /**
     * A message only monitors see: the error dbus-daemon captures for them when it refuses a
     * delivery without telling the sender (see {@link RefusalListener}).
     */
    public void captureOnly(Message m, Connection addressed) { router.captureOnly(m, addressed); }

    /**
     * The connection leaves: match rules go first (it must not see its own departure),
     * then its names (most recent first), then its unique name; its open reply slots die.
     */
    public Disconnect disconnect(Connection c) {
        counters.fold(c.counters());
        attach.drop(c);
        Disconnect d = table.disconnect(c, true);
        endpoints.departed(c, d.nameChanges());
        gate.forget(c); // last: nothing after a departure may keep it reachable
        return d;
    }

}
