package org.kdbusbridge.core.bus;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.connection.ReceivePool;
import org.kdbusbridge.core.match.MatchIndex;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameChange;
import org.kdbusbridge.core.name.NameRegistry;

/**
 * The bus: connections, names, match rules, reply slots and the single sequencer.
 *
 * Invariants: confined to one thread (the caller's event loop), so every operation is a
 * transaction nobody can interleave with; every admitted message gets the next sequence
 * number, so per-receiver FIFOs are in one global order; connection ids and unique names
 * are never reused; a reply slot (caller, serial) exists on the callee from the call until
 * its reply, or until either side leaves.
 */
public final class Bus {
    public static final String DRIVER_NAME = "org.freedesktop.DBus";

    private final BusLimits limits;
    private final NameRegistry names = new NameRegistry();
    private final MatchIndex matches = new MatchIndex(DRIVER_NAME);
    private final Map<String, Connection> byUniqueName = new HashMap<>();
    private final ArrayList<Connection> scratch = new ArrayList<>();
    private long nextId = 1;
    private long nextUnique = 0;
    private long seq = 0;
    private int connections;

    public Bus(BusLimits limits) {
        this.limits = limits;
    }

    public BusLimits limits() { return limits; }
    public NameRegistry names() { return names; }
    public MatchIndex matches() { return matches; }
    public long lastSequence() { return seq; }
    public int connectionCount() { return connections; }

    /** A new, not yet registered connection (Hello makes it active). */
    public Connection connect(Credentials credentials, ConnectionSink sink) {
        connections++;
        ReceivePool pool = new ReceivePool(limits.maxOutgoingBytes, limits.maxQueuedMessages);
        return new Connection(nextId++, credentials, sink, pool);
    }

    /** Registers the connection under its unique name; returns the name's arrival. */
    public NameChange hello(Connection c) {
        String unique = ":1." + nextUnique++;
        c.setUniqueNameOnce(unique);
        byUniqueName.put(unique, c);
        return new NameChange(unique, null, c);
    }

    /** The connection owning {@code name} (unique or well-known), or null. */
    public Connection resolve(String name) {
        if (name.isEmpty()) {
            return null;
        }
        if (name.charAt(0) == ':') {
            return byUniqueName.get(name);
        }
        return names.owner(name);
    }

    public Collection<Connection> activeConnections() {
        return byUniqueName.values();
    }

    /** The next sequence number, for a message the bus itself originates. */
    public long sequence() {
        return ++seq;
    }

    /**
     * Routes a message from an active client. The driver handles messages to
     * org.freedesktop.DBus before they get here.
     */
    public Delivery send(Connection from, Message m) {
        m.admit(from, ++seq);
        String dest = m.destination();
        if (dest == null) {
            broadcast(m, null);
            return Delivery.OK;
        }
        Connection to = resolve(dest);
        if (to == null) {
            return (m.flags() & Message.FLAG_NO_AUTO_START) != 0 ? Delivery.NAME_HAS_NO_OWNER : Delivery.SERVICE_UNKNOWN;
        }
        if (m.isReply()) {
            // Compat mode: an unexpected reply is forwarded, as with the stock session policy.
            if (m.replySerial() != Message.NO_REPLY_SERIAL && from.takePendingIncoming(to.id(), m.replySerial()) != null) {
                to.addPendingOutgoing(-1);
            }
        }
        if (!to.pool().fits(m.size())) {
            to.pool().offer(m); // counts the drop
            return Delivery.RECIPIENT_FULL;
        }
        if (m.expectsReply()) {
            // dbus-daemon (bus_connections_expect_reply): a second outstanding call with the same
            // serial to the same callee is refused with AccessDenied, before the count limit.
            if (to.pendingIncoming().containsKey(new Connection.ReplyKey(from.id(), m.serial()))) {
                return Delivery.DUPLICATE_SERIAL;
            }
            if (from.pendingOutgoingReplies() >= limits.maxRepliesPerConnection) {
                return Delivery.TOO_MANY_REPLIES;
            }
            to.addPendingIncoming(from, m.serial());
            from.addPendingOutgoing(1);
        }
        to.offer(m);
        broadcast(m, to);
        return Delivery.OK;
    }

    /**
     * Delivers to every connection whose rules match; for a message with a destination
     * ({@code addressed} is its recipient) only eavesdroppers other than the recipient.
     * A full pool skips that receiver and counts a drop.
     */
    private void broadcast(Message m, Connection addressed) {
        if (matches.size() == 0) {
            return;
        }
        ArrayList<Connection> out = scratch;
        out.clear();
        if (addressed != null) {
            addressed.stampOnce(m.seq()); // the recipient already has it
        }
        matches.collect(m, addressed, names, out);
        for (int i = 0, n = out.size(); i < n; i++) {
            out.get(i).offer(m);
        }
        out.clear();
    }

    /** A bus-originated signal with no destination, to every matching rule. */
    public void emitSignal(Message m) {
        m.admit(null, ++seq);
        broadcast(m, null);
    }

    /**
     * A bus-originated unicast (reply, error, NameAcquired/NameLost): never refused. As in
     * dbus-daemon (bus_transaction_send_from_driver), it goes to the recipient only: match
     * rules, even eavesdropping ones, never see the driver's unicasts (monitors are separate).
     */
    public void emitTo(Connection to, Message m) {
        m.admit(null, ++seq);
        to.push(m);
    }

    /**
     * The connection leaves: match rules go first (it must not see its own departure),
     * then its names (most recent first), then its unique name; its open reply slots die.
     */
    public Disconnect disconnect(Connection c) {
        if (c.isClosed()) {
            return new Disconnect(List.of(), List.of());
        }
        c.markClosed();
        connections--;
        matches.removeAll(c);
        List<NameChange> changes = new ArrayList<>();
        names.releaseAll(c, changes);
        List<DeadReply> dead = new ArrayList<>();
        for (Map.Entry<Connection.ReplyKey, Connection> e : c.pendingIncoming().entrySet()) {
            Connection caller = e.getValue();
            caller.addPendingOutgoing(-1);
            if (!caller.isClosed()) {
                dead.add(new DeadReply(caller, e.getKey().serial()));
            }
        }
        c.pendingIncoming().clear();
        // Calls it made and will never get answered: the callees stop owing them a reply
        // (dbus-daemon, bus_connection_drop_pending_replies); otherwise the slots leak.
        if (c.pendingOutgoingReplies() > 0) {
            for (Connection callee : byUniqueName.values()) {
                if (callee == c) {
                    continue;
                }
                Iterator<Connection> it = callee.pendingIncoming().values().iterator();
                while (it.hasNext()) {
                    if (it.next() == c) {
                        it.remove();
                        c.addPendingOutgoing(-1);
                    }
                }
            }
        }
        if (c.uniqueName() != null) {
            byUniqueName.remove(c.uniqueName());
            changes.add(new NameChange(c.uniqueName(), c, null));
        }
        return new Disconnect(changes, dead);
    }
}
