package org.kdbusbridge.core.bus;

import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.endpoint.EndpointPolicy;
import org.kdbusbridge.core.endpoint.OwnedNames;
import org.kdbusbridge.core.endpoint.SendVerdict;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameChange;

/**
 * Custom endpoints' filters (issue 18, docs/endpoint-semantics.md), applied where the bus
 * routes: what an endpoint connection may send, which broadcasts and NameOwnerChanged it gets,
 * what the driver tells it. The decisions are {@link EndpointPolicy}'s; this class gives them
 * the bus's facts (who owns what now) and records what each endpoint connection learns.
 *
 * Invariants: a connection without an endpoint, or one whose endpoint does not filter, is never
 * refused or hidden anything here; a refused message is not shown to monitors or anyone else
 * (through xdg-dbus-proxy it never reaches the bus either); nothing here allocates unless an
 * endpoint connection is involved.
 */
final class EndpointGate {
    private final BusState state;
    /** The unique name that is leaving and the names it owned just before (its NameOwnerChanged). */
    private String departedUnique;
    private List<String> departedNames = List.of();

    /** Who owns what now; a departing unique name still owns what it just lost. */
    private final OwnedNames owners = new OwnedNames() {
        @Override
        public Iterable<String> primaryNamesOf(String unique) {
            Connection c = state.byUniqueName().get(unique);
            if (c == null) {
                return unique.equals(departedUnique) ? departedNames : List.of();
            }
            List<String> owned = c.ownedNames();
            if (owned.isEmpty()) {
                return List.of();
            }
            boolean allPrimary = true;
            for (int i = 0, n = owned.size(); i < n && allPrimary; i++) {
                allPrimary = state.names().owner(owned.get(i)) == c;
            }
            if (allPrimary) {
                return owned; // the common case: no list per lookup
            }
            List<String> primary = new ArrayList<>(owned.size());
            for (int i = 0, n = owned.size(); i < n; i++) {
                String name = owned.get(i);
                if (state.names().owner(name) == c) { // queued-for names do not count
                    primary.add(name);
                }
            }
            return primary;
        }
    };

    /** The registered connections that came in through an endpoint (a departure is forgotten by each). */
    private final ArrayList<Connection> inside = new ArrayList<>();

    EndpointGate(BusState state) {
        this.state = state;
    }

    private static EndpointPolicy filtering(Connection c) {
        EndpointPolicy p = c == null ? null : c.endpoint();
        return p != null && p.filtering() ? p : null;
    }

    /**
     * The refusal of a message an endpoint connection sends to a peer (the driver's calls go
     * through {@link #driverCall}), or null to route it as usual. A reply or error that answers
     * no call it received is dropped, and so is a refused message that expects no reply.
     */
    Delivery checkSend(Connection from, Message m) {
        EndpointPolicy p = filtering(from);
        if (p == null) {
            return null;
        }
        String dest = m.destination();
        int type = m.type();
        if (type == Message.METHOD_RETURN || type == Message.ERROR) {
            Connection to = dest == null ? null : state.byUniqueName().get(dest);
            // Only to the caller, only once: the callee's open slot for it (Router then uses it up).
            return to != null && from.hasPendingIncoming(to.id(), m.replySerial()) ? null : Delivery.DISCARDED;
        }
        if (dest == null) {
            return null; // a broadcast: the client may emit signals freely
        }
        boolean call = type == Message.METHOD_CALL;
        SendVerdict v = p.checkSend(call, dest, m.path(), m.iface(), m.member(), call && m.expectsReply(),
                (m.flags() & Message.FLAG_NO_AUTO_START) != 0, null, owners, from.endpointState());
        if (v.allowed()) {
            return null;
        }
        if (v.silent()) {
            return Delivery.DISCARDED;
        }
        return refusal(v);
    }

    private static Delivery refusal(SendVerdict v) {
        if (!v.hidden()) {
            return Delivery.ENDPOINT_ACCESS_DENIED;
        }
        return org.kdbusbridge.core.endpoint.EndpointErrors.NAME_HAS_NO_OWNER.equals(v.errorName())
                ? Delivery.ENDPOINT_NAME_HAS_NO_OWNER : Delivery.ENDPOINT_SERVICE_UNKNOWN;
    }

    /** {@code to} got a message from {@code from}: an endpoint connection may now see its sender. */
    void delivered(Connection to, Connection from) {
        if (to.endpointState() != null && from != null && from.uniqueName() != null) {
            to.endpointState().delivered(from.uniqueName());
        }
    }

    /**
     * Whether {@code c} gets the broadcast {@code m}: the bus's own signals always, except a
     * NameOwnerChanged about a name it may not see; a peer's only if the filter lets it through.
     */
    boolean receivesBroadcast(Connection c, Message m) {
        EndpointPolicy p = filtering(c);
        if (p == null) {
            return true;
        }
        Connection from = m.sender();
        if (from == null) {
            return !"NameOwnerChanged".equals(m.member())
                    || p.showsNameOwnerChanged(m.args().arg(0), owners, c.endpointState());
        }
        if (!p.receivesBroadcast(from.uniqueName(), m.path(), m.iface(), m.member(), owners, c.endpointState())) {
            return false;
        }
        c.endpointState().delivered(from.uniqueName());
        return true;
    }

    /** The verdict on a call to the driver from {@code caller}: ALLOW for every non-endpoint caller. */
    SendVerdict driverCall(Connection caller, String iface, String member, String arg0, boolean replyExpected,
                           boolean noAutoStart) {
        EndpointPolicy p = filtering(caller);
        if (p == null) {
            return SendVerdict.ALLOW;
        }
        return p.checkDriverCall(iface, member, arg0, replyExpected, noAutoStart, owners, caller.endpointState());
    }

    /** Whether ListNames / ListActivatableNames tell {@code caller} of {@code name}. */
    boolean lists(Connection caller, String name) {
        EndpointPolicy p = filtering(caller);
        return p == null || p.listsName(name, owners, caller.endpointState());
    }

    /**
     * Whether {@code caller} may be handed a peer's process handle (GetConnectionCredentials'
     * ProcessFD): not from inside a filtering endpoint. A pidfd lets a sandboxed app signal host
     * processes of its uid; through xdg-dbus-proxy on dbus 1.14 it never gets one.
     */
    boolean mayGetProcessHandles(Connection caller) {
        return filtering(caller) == null;
    }


    /** Hello answered: the endpoint connection may talk to itself. */
    void registered(Connection c) {
        if (c.endpointState() != null) {
            c.endpointState().helloAnswered(c.uniqueName());
            inside.add(c);
        }
    }

    /**
     * A reply or error to an endpoint connection that answers no call it made: dropped, as the
     * proxy drops an "unexpected reply" (the bus policy may allow unrequested replies; the filter
     * does not). Monitors have seen it, as they see it reach dbus-daemon in front of the proxy.
     */
    boolean dropsUnrequested(Connection to, Message m, boolean requested) {
        return !requested && m.replySerial() != Message.NO_REPLY_SERIAL && filtering(to) != null;
    }

    /**
     * {@code c} is leaving with these name changes: until the next departure, its unique name
     * still owns the names it just lost and keeps what endpoint clients were granted on it, so
     * those that could see it see its NameOwnerChanged too; then they forget it.
     */
    void departed(Connection c, List<NameChange> changes) {
        if (c.endpointState() != null) {
            inside.remove(c);
        }
        String previous = departedUnique;
        if (previous != null) {
            // Its NameOwnerChanged went out with its own departure: now nobody needs to see it any more
            // (unique names are never reused). Not this one yet: its signals are still to come.
            for (int i = 0, n = inside.size(); i < n; i++) {
                inside.get(i).endpointState().forget(previous);
            }
        }
        if (inside.isEmpty() || c.uniqueName() == null) {
            departedUnique = null; // nobody inside an endpoint to tell: nothing kept, nothing allocated
            departedNames = List.of();
            return;
        }
        List<String> lost = new ArrayList<>();
        for (NameChange ch : changes) {
            if (ch.oldOwner() == c && !ch.name().equals(c.uniqueName())) {
                lost.add(ch.name());
            }
        }
        departedUnique = c.uniqueName();
        departedNames = lost;
    }
}
