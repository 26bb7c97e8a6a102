package org.kdbusbridge.core.bus;

import java.util.ArrayList;

import org.kdbusbridge.core.activation.Activator;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.QueueLedger;
import org.kdbusbridge.core.connection.ReceivePool;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.MessageFacts;

/**
 * Routing: sequences every admitted message, shows it to monitors and delivers it to its
 * recipient, the eavesdroppers and broadcast receivers whose rules match, or an activator.
 *
 * Invariants: every admitted message gets the next sequence number, so per-receiver FIFOs are
 * in one global order; every delivery to a connection passes {@link PolicyGate} (monitors are
 * not subject to policy; a bus message meets receive rules only and is dropped if denied); a
 * refusal nobody is told of goes to the {@link Bus.RefusalListener} while monitors are
 * attached. Holds: while a message is routed the routing step holds it like one more queue
 * ({@link Connection#holdQueued}), so a receiver that lets it go at once (the capture sink
 * copies and pops inside its offer) can never drop the last hold, and free a direct payload,
 * before later receivers have taken theirs; a message no queue took is released when routing
 * ends. An allowed message allocates nothing.
 */
final class Router {
    private final BusState state;
    private final PolicyGate gate;
    private final QuotaGate quota;
    private final Activations activations;
    private final ArrayList<Connection> scratch = new ArrayList<>();
    private Bus.RefusalListener refusalListener = (m, addressed, reason, text) -> { };
    private long seq = 0;
    private final AttachDemand attach;
    private final EndpointGate endpoints;
    private final BusCounters counters;

    Router(BusState state, PolicyGate gate, QuotaGate quota, Activations activations, AttachDemand attach,
           EndpointGate endpoints, BusCounters counters) {
        this.counters = counters;
        this.endpoints = endpoints;
        this.state = state;
        this.attach = attach;
        this.gate = gate;
        this.quota = quota;
        this.activations = activations;
    }

    void setRefusalListener(Bus.RefusalListener listener) {
        this.refusalListener = listener;
    }

    long lastSequence() {
        return seq;
    }

    /** Hand-over restore: the old bus's last sequence number, so the order goes on (never back). */
    void restoreSequence(long last) {
        if (last < seq) {
            throw new IllegalStateException("restored sequence " + last + " is behind " + seq);
        }
        seq = last;
    }

    /** The connection owning {@code name} (unique or well-known), or null. */
    Connection resolve(String name) {
        if (name.isEmpty()) {
            return null;
        }
        if (name.charAt(0) == ':') {
            return state.byUniqueName().get(name);
        }
        return state.names().owner(name);
    }

    /** The next sequence number, for a message the bus itself originates. */
    long sequence() {
        return ++seq;
    }

    /**
     * Routes a message from an active client. The driver handles messages to
     * org.freedesktop.DBus before they get here.
     */
    Delivery send(Connection from, Message m) {
        m.admit(from, ++seq);
        from.counters().countIn(m.type(), m.receivedLength()); // as the client wrote it
        if (attach.wanted() != 0) {
            stampFacts(from, m);
        }
        Connection.holdQueued(m); // the routing step's own hold (see the class comment)
        try {
            Delivery d = route(from, m);
            if (d != Delivery.OK) {
                countRefusal(from, d);
            }
            return d;
        } finally {
            Connection.releaseQueued(m); // nobody took it: its sender's charge and a direct payload go now
        }
    }

    private Delivery route(Connection from, Message m) {
        if (from.endpoint() != null) {
            Delivery refused = endpoints.checkSend(from, m); // before anyone, monitors included, sees it
            if (refused != null) {
                return refused;
            }
        }
        String dest = m.destination();
        if (dest == null) {
            state.monitors().capture(m, null, state.matches(), state.names());
            if (m.type() == Message.SIGNAL) {
                broadcast(m, null);
                return Delivery.OK;
            }
            // Only signals are broadcast. dbus-daemon answers a call without destination as the
            // peer it was sent to and drops a reply or error without one; match rules, even
            // eavesdropping ones, never see them (monitors do here: docs/compatibility.md).
            return m.type() == Message.METHOD_CALL ? Delivery.UNADDRESSED_CALL : Delivery.DISCARDED;
        }
        Connection to = resolve(dest);
        if (to == null) {
            boolean noAutoStart = (m.flags() & Message.FLAG_NO_AUTO_START) != 0;
            Activator a = noAutoStart ? null : activations.lookup(dest);
            if (a == null) {
                state.monitors().capture(m, null, state.matches(), state.names());
                return noAutoStart ? Delivery.NAME_HAS_NO_OWNER : Delivery.SERVICE_UNKNOWN;
            }
            // As much of the policy as can be checked with the recipient unknown: the sender's
            // send rules, destination compared as a string. Denied: the service is not started.
            if (!gate.allowed(from, null, null, m, false)) {
                state.monitors().capture(m, null, state.matches(), state.names());
                return Delivery.ACCESS_DENIED;
            }
            return queueOnActivator(from, m, a);
        }
        // Monitors see it before any check, so refused and undeliverable messages show too.
        state.monitors().capture(m, to, state.matches(), state.names());
        boolean requested = false;
        if (m.replySerial() != Message.NO_REPLY_SERIAL) {
            // A reply that answers an open slot is a requested reply; the slot is used up even if
            // the policy then refuses the reply (as in dbus-daemon).
            requested = state.replySlots().answer(from, to, m.replySerial());
            if (requested) {
                m.markRequestedReply(); // so denialText can recompute what this check saw
            }
        }
        if (to.endpoint() != null && endpoints.dropsUnrequested(to, m, requested)) {
            return Delivery.DISCARDED;
        }
        if (!gate.allowed(from, to, to, m, requested)) {
            return Delivery.ACCESS_DENIED;
        }
        if (!to.fits(m)) {
            to.refuseFull(m); // counts the drop (and logs a refusal by the queue quota, rate-limited)
            return state.queued().allows(ReceivePool.chargedUid(m), QueueLedger.ENTRY_BYTES) ? Delivery.RECIPIENT_FULL
                    : Delivery.QUEUE_QUOTA;
        }
        if (m.fds() != null && !to.acceptsUnixFds()) {
            return Delivery.FDS_NOT_SUPPORTED;
        }
        if (m.fds() != null && to.requiresSealedMemfds() && m.fds().hasUnsealedMemfd()) {
            return Delivery.UNSEALED_MEMFD;
        }
        if (m.expectsReply()) {
            // dbus-daemon (bus_connections_expect_reply): a second outstanding call with the same
            // serial to the same callee is refused with AccessDenied, before the count limit.
            if (to.hasPendingIncoming(from.id(), m.serial())) {
                return Delivery.DUPLICATE_SERIAL;
            }
            if (!quota.mayExpectReply(from)) {
                return Delivery.TOO_MANY_REPLIES;
            }
            if (!state.replySlots().open(to, from, m.serial())) {
                return Delivery.DUPLICATE_SERIAL; // not reached: checked above
            }
            quota.expectReply(from);
        }
        to.offer(m);
        if (to.endpoint() != null) {
            endpoints.delivered(to, from);
        }
        broadcast(m, to);
        return Delivery.OK;
    }

    /**
     * Queues {@code m} on {@code a} and starts it if idle. Monitors see {@code m} after the start
     * was requested, as in dbus-daemon, where the start (systemd's ActivationRequest) is its own
     * transaction that runs before the one of the message that caused it; refusals are shown
     * first, then refused.
     */
    private Delivery queueOnActivator(Connection from, Message m, Activator a) {
        if (activations.limitReached()) {
            state.monitors().capture(m, null, state.matches(), state.names());
            return Delivery.TOO_MANY_ACTIVATIONS;
        }
        if (from != null && !state.queued().admitsWaiting(m, ReceivePool.chargedUid(m))) {
            // Waiting messages are held to the sender's queue budget, as in a receive pool.
            state.monitors().capture(m, null, state.matches(), state.names());
            return Delivery.QUEUE_QUOTA;
        }
        if (m.expectsReply() && from != null) {
            if (!quota.mayExpectReply(from)) {
                state.monitors().capture(m, null, state.matches(), state.names());
                return Delivery.TOO_MANY_REPLIES;
            }
            quota.expectReply(from);
        }
        activations.enqueue(a, m);
        state.monitors().capture(m, null, state.matches(), state.names());
        return Delivery.OK;
    }

    /**
     * A bus-originated unicast to a well-known name (systemd's ActivationRequest, the
     * SetEnvironment call): delivered to the owner as {@link #emitTo}, or, while the name has no
     * owner, queued on its activator (starting it) until one appears, as a client's message
     * would be. Without owner or activator it is only shown to monitors and SERVICE_UNKNOWN
     * returned.
     */
    Delivery emitToName(Message m) {
        Connection to = resolve(m.destination());
        if (to != null) {
            emitTo(to, m);
            return Delivery.OK;
        }
        m.admit(null, ++seq);
        if (attach.wanted() != 0) {
            stampFacts(null, m);
        }
        Connection.holdQueued(m); // the routing step's own hold (see the class comment)
        try {
            Activator a = activations.get(m.destination());
            if (a == null) {
                state.monitors().capture(m, null, state.matches(), state.names());
                return Delivery.SERVICE_UNKNOWN;
            }
            return queueOnActivator(null, m, a);
        } finally {
            Connection.releaseQueued(m);
        }
    }

    /**
     * Delivers to every connection whose rules match; for a message with a destination
     * ({@code addressed} is its recipient) only eavesdroppers other than the recipient.
     * A full pool skips that receiver and counts a drop; a receiver the policy refuses, or one
     * that did not negotiate unix fds for a message carrying them, is skipped and reported to
     * the refusal listener (the sender is never told, as in dbus-daemon).
     */
    private void broadcast(Message m, Connection addressed) {
        if (state.matches().size() == 0) {
            return;
        }
        ArrayList<Connection> out = scratch;
        out.clear();
        if (addressed != null) {
            addressed.stampOnce(m.seq()); // the recipient already has it
        }
        state.matches().collect(m, addressed, state.names(), out);
        Connection from = m.sender();
        for (int i = 0, n = out.size(); i < n; i++) {
            Connection c = out.get(i);
            if (c.endpoint() != null && !endpoints.receivesBroadcast(c, m)) {
                c.counters().skippedPolicy();
                continue; // the endpoint's filter: as if the proxy dropped it, nobody is told
            }
            if (!gate.allowed(from, addressed, c, m, false)) {
                c.counters().skippedPolicy();
                if (!state.monitors().isEmpty()) { // the text is for monitors only
                    noteRefusal(m, from, Delivery.ACCESS_DENIED, gate.denial(from, addressed, c, m, false));
                }
            } else if (m.fds() != null && !c.acceptsUnixFds()) {
                c.counters().skippedOther();
                // dbus-daemon's text (bus/dispatch.c send_one_message); the sender is not told.
                if (!state.monitors().isEmpty()) { // the text is for monitors only
                    noteRefusal(m, from, Delivery.FDS_NOT_SUPPORTED, "broadcast cannot be delivered to " + c.uniqueName()
                            + " (" + c.logInfo() + ") because it does not support receiving Unix fds");
                }
            } else {
                c.offer(m);
            }
        }
        out.clear();
    }


    /**
     * The AccessDenied text of a message {@link #send} just refused with
     * {@link Delivery#ACCESS_DENIED} (dbus-daemon's complaint format). Call before anything else
     * changes the bus: it recomputes the check that refused it, which allocates only here.
     */
    String denialText(Message m) {
        String dest = m.destination();
        Connection to = dest == null ? null : resolve(dest); // null: refused before activation
        return gate.denial(m.sender(), to, to, m, m.isRequestedReply());
    }

    /** A bus-originated signal with no destination, to every matching rule. */
    void emitSignal(Message m) {
        admitAndShow(null, m, null, BROADCAST);
    }

    /** A client's message to the driver: sequenced and shown to monitors, routed by nobody. */
    void admitToDriver(Connection from, Message m) {
        admitAndShow(from, m, null, SHOW);
    }

    /**
     * A bus-originated unicast (reply, error, NameAcquired/NameLost): never refused. As in
     * dbus-daemon (bus_transaction_send_from_driver), it goes to the recipient only: match
     * rules, even eavesdropping ones, never see the driver's unicasts (monitors are separate).
     * The bus's own replies are always requested ones; a receive rule may still refuse them,
     * and then they are dropped (dbus-daemon logs it and shows monitors an AccessDenied reply
     * to the refused message).
     */
    void emitTo(Connection to, Message m) {
        admitAndShow(null, m, to, PUSH_IF_ALLOWED);
    }

    /**
     * The bus's answer to a call that had no destination ({@link Delivery#UNADDRESSED_CALL}):
     * in dbus-daemon its connection layer answers such calls itself, below the bus's routing,
     * so no policy applies. Sequenced, shown to monitors, queued to the caller.
     */
    void answerUnaddressed(Connection to, Message reply) {
        admitAndShow(null, reply, to, PUSH);
    }

    /**
     * A message only monitors see: the error dbus-daemon captures for them when it refuses a
     * delivery without telling the sender (see {@link Bus.RefusalListener}).
     */
    void captureOnly(Message m, Connection addressed) {
        admitAndShow(null, m, addressed, SHOW);
    }

    private static final int SHOW = 0;
    private static final int BROADCAST = 1;
    private static final int PUSH = 2;
    private static final int PUSH_IF_ALLOWED = 3;

    /**
     * A message the bus handles itself: sequenced, held while it is handled (see the class
     * comment), shown to monitors as addressed to {@code to}, then, as {@code then} says,
     * only shown, broadcast, or pushed to {@code to} (if its receive rules allow).
     */
    private void admitAndShow(Connection from, Message m, Connection to, int then) {
        m.admit(from, ++seq);
        if (from == null) {
            counters.noteBusOriginated();
        }
        if (attach.wanted() != 0) {
            stampFacts(from, m);
        }
        Connection.holdQueued(m);
        try {
            state.monitors().capture(m, to, state.matches(), state.names());
            switch (then) {
                case BROADCAST -> broadcast(m, null);
                case PUSH -> to.push(m);
                case PUSH_IF_ALLOWED -> {
                    boolean requested = m.replySerial() != Message.NO_REPLY_SERIAL;
                    if (gate.allowed(null, to, to, m, requested)) {
                        to.push(m);
                    } else if (!state.monitors().isEmpty()) { // the text is for monitors only
                        noteRefusal(m, to, Delivery.ACCESS_DENIED, gate.denial(null, to, to, m, requested));
                    }
                }
                default -> { }
            }
        } finally {
            Connection.releaseQueued(m);
        }
    }

    /**
     * Admission facts for receivers that asked (AttachMetadata): the time, and the well-known
     * names {@code from} is primary owner of now (a bus message has none). Runs only while some
     * connection wants an item; allocates only what is wanted.
     */
    private void stampFacts(Connection from, Message m) {
        int wanted = attach.wanted();
        if ((wanted & (MessageFacts.NAMES | MessageFacts.TIMESTAMP)) == 0) {
            return; // seq is the message's own; what the bridge reads off the sender it has set already
        }
        MessageFacts f = m.facts();
        if (f == null) {
            f = new MessageFacts();
            m.setFacts(f);
        }
        if ((wanted & MessageFacts.TIMESTAMP) != 0) {
            java.time.Instant now = java.time.Instant.now();
            // System.nanoTime() is CLOCK_MONOTONIC itself on Linux (HotSpot reads it unscaled).
            f.setTimestamp(System.nanoTime(), now.getEpochSecond() * 1_000_000_000L + now.getNano());
        }
        if ((wanted & MessageFacts.NAMES) != 0 && from != null) {
            f.setNames(primaryNames(from), from.primaryNamesTruncated());
        }
    }

    private static final String[] NO_NAMES = new String[0];

    /**
     * At most this many names go into one message's names item (the first ones in acquisition
     * order, the field then says names-truncated): a sender owning 50,000 names would otherwise
     * make every receiver's copy carry a megabyte or more.
     */
    static final int NAMES_CAP = 64;

    /**
     * The names {@code from} is primary owner of, from its cache (one array shared by all its
     * messages until a primary ownership of it changes, so admission allocates nothing per
     * message), computed when missing: one pass over its owned names, stopping past the cap.
     */
    private String[] primaryNames(Connection from) {
        String[] cached = from.primaryNames();
        if (cached != null) {
            return cached;
        }
        java.util.List<String> queued = from.ownedNames();
        String[] out = null;
        int n = 0;
        boolean truncated = false;
        for (int i = 0, k = queued.size(); i < k; i++) {
            String name = queued.get(i);
            if (state.names().owner(name) != from) {
                continue;
            }
            if (n == NAMES_CAP) {
                truncated = true;
                break;
            }
            if (out == null) {
                out = new String[Math.min(NAMES_CAP, k - i)];
            }
            out[n++] = name;
        }
        String[] names = n == 0 ? NO_NAMES : n == out.length ? out : java.util.Arrays.copyOf(out, n);
        from.cachePrimaryNames(names, truncated);
        return names;
    }

    /** Counts a unicast refusal on its sender, by the kind of answer it gets (RoutingErrors' mapping). */
    private static void countRefusal(Connection from, Delivery d) {
        switch (d) {
            case RECIPIENT_FULL, QUEUE_QUOTA, TOO_MANY_REPLIES, TOO_MANY_ACTIVATIONS -> from.counters().refusedLimits();
            case ACCESS_DENIED, DUPLICATE_SERIAL, ENDPOINT_ACCESS_DENIED -> from.counters().refusedAccess();
            case UNADDRESSED_CALL, DISCARDED, OK -> { } // answered by the bus as the peer, or nobody's
            default -> from.counters().refusedOther();
        }
    }

    private void noteRefusal(Message m, Connection addressed, Delivery reason, String text) {
        if (!state.monitors().isEmpty()) {
            refusalListener.refused(m, addressed, reason, text);
        }
    }
}
