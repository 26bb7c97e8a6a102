package org.kdbusbridge.core.bus;

import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.connection.ReceivePool;
import org.kdbusbridge.core.connection.UidLedger;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.name.NameChange;

/**
 * The connection table: connections arriving, registering (Hello), becoming monitors and
 * leaving, with the counts the limits and statistics read.
 *
 * Invariants: connection ids and unique names are never reused; a registered connection is in
 * the unique-name table until it leaves or becomes a monitor; completed (said Hello, not left)
 * never exceeds connections (connected, not left), in all and per uid; a connection that leaves
 * keeps no name, match rule or reply slot.
 */
final class ConnectionTable {
    private final BusState state;
    private long nextId = 1;
    private long nextUnique = 0;
    private int connections;
    /** Connections that said Hello (monitors too, as dbus-daemon counts them), in all and per uid. */
    private int completed;
    private final UidLedger completedPerUid = new UidLedger();
    private int peakBusNames;
    private int peakBusNamesPerConnection;

    ConnectionTable(BusState state) {
        this.state = state;
    }

    int connectionCount() { return connections; }
    int completedCount() { return completed; }
    int peakBusNames() { return peakBusNames; }
    int peakBusNamesPerConnection() { return peakBusNamesPerConnection; }

    /** A new, not yet registered connection (Hello makes it active). */
    Connection connect(Credentials credentials, ConnectionSink sink) {
        connections++;
        BusLimits limits = state.limits();
        ReceivePool pool = new ReceivePool(limits.maxOutgoingBytes, limits.maxQueuedMessages, state.queued());
        pool.setMaxFds(limits.maxOutgoingUnixFds);
        pool.setOwnerUid(credentials == null ? -1 : credentials.uid());
        Connection c = new Connection(nextId++, credentials, sink, pool);
        c.setIncomingLimits(limits.maxIncomingBytes, limits.maxIncomingUnixFds);
        c.setMaxMessageUnixFds(limits.maxMessageUnixFds);
        return c;
    }

    /**
     * Hello: registers the connection under its unique name, unless max_completed_connections
     * or (for its authenticated uid) max_connections_per_user is reached, checked in that
     * order as dbus-daemon's bus_connections_check_limits does. A refused connection keeps
     * no name and may try again.
     */
    Registration hello(Connection c) {
        if (completed >= state.limits().maxCompletedConnections) {
            return new Registration(null, Registration.Limit.MAX_COMPLETED_CONNECTIONS);
        }
        long uid = c.authenticatedUid();
        long ofUid = uid < 0 ? 0 : completedPerUid.get(uid);
        if (uid >= 0 && ofUid >= state.limits().maxConnectionsPerUser) {
            return new Registration(null, Registration.Limit.MAX_CONNECTIONS_PER_USER);
        }
        String unique = ":1." + nextUnique++;
        c.setUniqueNameOnce(unique);
        state.byUniqueName().put(unique, c);
        completed++;
        if (uid >= 0) {
            completedPerUid.add(uid, 1);
        }
        noteBusNames(c);
        assert completed <= connections && state.byUniqueName().get(unique) == c : "registered connection not counted";
        return new Registration(new NameChange(unique, null, c), null);
    }

    private void forgetCompleted(Connection c) {
        completed--;
        long uid = c.authenticatedUid();
        if (uid >= 0) {
            completedPerUid.add(uid, -1);
        }
    }

    /**
     * BecomeMonitor, first half: {@code c} loses every name (its unique name first, then the
     * well-known ones in the order it got them, as dbus-daemon releases them), its visibility
     * and its reply slots: callers it owes a reply are returned as dead replies
     * (they get NoReply, as in dbus-daemon's bus_connection_drop_pending_replies), and calls it
     * made are forgotten. {@link #startMonitoring} then makes it a monitor.
     */
    Disconnect becomeMonitor(Connection c) {
        List<NameChange> changes = new ArrayList<>();
        if (c.uniqueName() != null) {
            state.byUniqueName().remove(c.uniqueName());
            changes.add(new NameChange(c.uniqueName(), c, null));
        }
        state.names().releaseAll(c, true, changes); // in the order it got them, as dbus-daemon does
        assert c.ownedNames().isEmpty() : "a monitor-to-be kept a name";
        return new Disconnect(changes, dropReplySlots(c));
    }

    /**
     * The second half of BecomeMonitor, after its name-change signals went out: as in
     * dbus-daemon, its own match rules still saw those signals (its NameOwnerChanged too), and
     * only now give way to the monitor rules.
     */
    void startMonitoring(Connection c, List<MatchRule> rules) {
        assert c.ownedNames().isEmpty() && (c.uniqueName() == null || state.byUniqueName().get(c.uniqueName()) != c)
                : "becomeMonitor first";
        state.matches().removeAll(c);
        c.watchDrops(false); // a monitor is told nothing by the bus
        state.monitors().add(c, rules);
    }

    /**
     * Our capture extension (--kdbus-capture): a pseudo-connection registered like a monitor
     * with no rules, so it is offered every message monitors see, in sequence order. It has no
     * name, is not counted as a connection and never sends; {@code sink} must drain its pool.
     */
    Connection attachCapture(Credentials credentials, ConnectionSink sink) {
        ReceivePool pool = new ReceivePool(state.limits().maxOutgoingBytes, state.limits().maxQueuedMessages);
        Connection c = new Connection(nextId++, credentials, sink, pool);
        c.setAcceptsUnixFds(true); // it records the bytes only: messages with fds are captured too
        state.monitors().add(c, List.of());
        return c;
    }

    /** Stops offering messages to a capture pseudo-connection. */
    void detachCapture(Connection c) {
        state.monitors().remove(c);
        c.markClosed(true);
    }

    /** The kdbus BYEBYE condition: nothing queued for {@code c} and no call it still owes. */
    boolean isIdle(Connection c) {
        return !c.isClosed() && c.pool().isEmpty() && c.pendingIncomingReplies() == 0;
    }

    /**
     * The connection leaves: match rules go first (it must not see its own departure),
     * then its names (most recent first), then its unique name; its open reply slots die.
     */
    Disconnect disconnect(Connection c) {
        return disconnect(c, true);
    }

    Disconnect disconnect(Connection c, boolean dropQueued) {
        if (c.isClosed()) {
            return new Disconnect(List.of(), List.of());
        }
        c.markClosed(dropQueued);
        connections--;
        if (c.uniqueName() != null) {
            forgetCompleted(c);
        }
        state.matches().removeAll(c);
        if (state.monitors().isMonitor(c)) {
            state.monitors().remove(c);
            return new Disconnect(List.of(), List.of()); // its names went when it became a monitor
        }
        List<NameChange> changes = new ArrayList<>();
        state.names().releaseAll(c, changes);
        List<DeadReply> dead = dropReplySlots(c);
        if (c.uniqueName() != null) {
            state.byUniqueName().remove(c.uniqueName());
            changes.add(new NameChange(c.uniqueName(), c, null));
        }
        assert c.ownedNames().isEmpty() && c.matchRuleCount() == 0 && connections >= completed
                : "a departed connection kept bus state";
        return new Disconnect(changes, dead);
    }

    /**
     * Closes every reply slot {@code c} is part of: callers it owes a reply are returned (the
     * open ones) so they can be told; calls it made will never be answered to it, so their
     * callees stop owing them (dbus-daemon, bus_connection_drop_pending_replies).
     */
    private List<DeadReply> dropReplySlots(Connection c) {
        // Only c's own slots, through their links on c: those it owes, then those owed to it.
        return state.replySlots().drop(c);
    }

    /** Bus names held now: every unique name plus every owner entry of every well-known queue. */
    int busNameCount() {
        return state.byUniqueName().size() + state.names().ownerEntries();
    }

    // --- hand-over restore (Restore only): values in, no limits, no signals -------------

    long nextId() { return nextId; }
    long nextUnique() { return nextUnique; }

    /** A connection as it was in the old bus: same id; counted as connected, not yet registered. */
    Connection restoreConnection(long id, Credentials credentials, ConnectionSink sink) {
        if (id < nextId) {
            throw new IllegalStateException("connection id " + id + " restored out of order (next " + nextId + ")");
        }
        nextId = id;
        Connection c = connect(credentials, sink); // takes nextId, so c.id() == id
        assert c.id() == id;
        return c;
    }

    /**
     * Hello as it was answered in the old bus: the carried unique name, no limit checks; a
     * monitor ({@code visible} false) keeps its name but is not in the unique-name table, as
     * after BecomeMonitor.
     */
    void restoreRegistered(Connection c, String unique, boolean visible) {
        if (state.byUniqueName().containsKey(unique)) {
            throw new IllegalStateException("unique name " + unique + " restored twice");
        }
        c.setUniqueNameOnce(unique);
        if (visible) {
            state.byUniqueName().put(unique, c);
        }
        completed++;
        long uid = c.authenticatedUid();
        if (uid >= 0) {
            completedPerUid.add(uid, 1);
        }
    }

    /** The counters that are not derived: ids and unique names never reused, the statistics peaks. */
    void restoreCounters(long nextId, long nextUnique, int peakBusNames, int peakBusNamesPerConnection) {
        if (nextId < this.nextId || nextUnique < this.nextUnique) {
            throw new IllegalStateException("restored counters would reuse an id or a unique name");
        }
        this.nextId = nextId;
        this.nextUnique = nextUnique;
        this.peakBusNames = Math.max(this.peakBusNames, peakBusNames);
        this.peakBusNamesPerConnection = Math.max(this.peakBusNamesPerConnection, peakBusNamesPerConnection);
    }

    void noteBusNames(Connection c) {
        c.notePeakBusNames();
        peakBusNames = Math.max(peakBusNames, busNameCount());
        peakBusNamesPerConnection = Math.max(peakBusNamesPerConnection, c.busNameCount());
    }
}
