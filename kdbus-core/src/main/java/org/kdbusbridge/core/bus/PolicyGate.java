package org.kdbusbridge.core.bus;

import java.util.function.Consumer;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.policy.MessageKind;
import org.kdbusbridge.core.policy.PolicyQuery;

/**
 * The policy check of one delivery: the sender's compiled send rules, then the recipient's
 * receive rules, as dbus-daemon's bus_context_check_security_policy does.
 *
 * Invariants: the bus has exactly one {@link PolicyQuery} and it lives here (the bus is
 * single-threaded), refilled for every check, so an allowed message allocates nothing; a
 * denial's text is built only when it is logged, shown to monitors or asked for, by
 * recomputing the decision ({@link #decide} logs and allocates nothing); the addressed
 * recipient's denials (and a driver-bound message's) are logged exactly once, by
 * {@link #check}; a message from the bus (sender null) meets receive rules only.
 */
final class PolicyGate {
    private static final int ALLOWED = 0;
    private static final int SEND_DENIED = 1;
    private static final int RECEIVE_DENIED = 2;

    /** The policy checks' view of the delivery being checked. */
    private final PolicyQuery query = new PolicyQuery();
    private Consumer<String> policyLog = text -> { };

    void setLog(Consumer<String> log) {
        this.policyLog = log;
    }

    /**
     * The policy check of one delivery of {@code m} to {@code to} ({@code addressed}: the
     * message's resolved recipient; {@code to} is an eavesdropper if it differs and the message
     * has a destination). {@code to} null: an activation not yet started. Denials of the
     * addressed recipient are logged, eavesdroppers and broadcast recipients are skipped quietly.
     */
    boolean allowed(Connection from, Connection addressed, Connection to, Message m, boolean requested) {
        return check(from, addressed, to, fill(m, requested));
    }

    /** As {@link #allowed}, but returns the complaint, or null if allowed; logs nothing. */
    String denial(Connection from, Connection addressed, Connection to, Message m, boolean requested) {
        PolicyQuery q = fill(m, requested);
        int d = decide(from, addressed, to, q);
        return d == ALLOWED ? null : render(d, from, to, q);
    }

    /** See {@link Bus#checkSendToDriver}. */
    boolean checkSendToDriver(Connection from, PolicyQuery q) {
        return check(from, null, null, q.destination(Bus.DRIVER_NAME).requestedReply(false));
    }

    /** See {@link Bus#driverDenialText}. */
    String driverDenialText(Connection from, PolicyQuery q) {
        int d = decide(from, null, null, q.destination(Bus.DRIVER_NAME).requestedReply(false));
        return d == ALLOWED ? null : render(d, from, null, q);
    }

    /**
     * {@code c} is leaving: the query keeps the peers of the last check until the next one, and
     * on a bus that goes quiet after it that would keep a departed connection (and the session
     * the transport attached to it) reachable for good.
     */
    void forget(Connection c) {
        if (query.sender() == c || query.receiver() == c) {
            query.clear();
        }
    }

    /** The one query, cleared: the next check refills it. */
    PolicyQuery query() {
        return query.clear();
    }

    /**
     * The query, filled from {@code m}. Filled for every check, not once per message: it is a
     * few stores, and a refusal listener called between a broadcast's receivers may make the
     * bus check another message.
     */
    private PolicyQuery fill(Message m, boolean requested) {
        return query.clear().type(m.type()).hasReplySerial(m.replySerial() != Message.NO_REPLY_SERIAL)
                .requestedReply(requested).path(m.path()).iface(m.iface()).member(m.member()).error(m.errorName())
                .destination(m.destination()).fds(m.unixFds());
    }

    /**
     * The decision alone: the sender's send rules, then the recipient's receive rules ({@code q}
     * describes the message; this adds who is on either side). Logs and allocates nothing, so
     * the denial texts are recomputed with it on the rare path that needs them.
     */
    private int decide(Connection from, Connection addressed, Connection to, PolicyQuery q) {
        q.sender(from).receiver(to).eavesdropping(to != addressed && q.destination() != null);
        if (from != null && !from.policy().canSend(q)) {
            return SEND_DENIED;
        }
        if (to != null && to.isActive() && !to.policy().canReceive(q)) {
            return RECEIVE_DENIED;
        }
        return ALLOWED;
    }

    /** {@link #decide}, with its log lines: send_log rules, and a denial of the addressed recipient. */
    private boolean check(Connection from, Connection addressed, Connection to, PolicyQuery q) {
        int d = decide(from, addressed, to, q);
        if (d != SEND_DENIED && from != null && from.policy().anySendLogs() && from.policy().sendLogs(q)) {
            policyLog.accept(complaint("Would reject message", from.policy().sendMatchCount(q), from, to, q));
        }
        if (d == ALLOWED) {
            return true;
        }
        if (addressed == to) {
            policyLog.accept(render(d, from, to, q));
        }
        return false;
    }

    private static String render(int decision, Connection from, Connection to, PolicyQuery q) {
        return decision == SEND_DENIED
                ? complaint("Rejected send message", from.policy().sendMatchCount(q), from, to, q)
                : complaint("Rejected receive message", to.policy().receiveMatchCount(q), from, to, q);
    }

    /** dbus-daemon's complaint layout (bus.c complain_about_message), so clients see the same text. */
    private static String complaint(String what, int matched, Connection from, Connection to, PolicyQuery q) {
        return what + ", " + matched + " matched rules; type=\"" + typeName(q.type()) + "\", sender=\""
                + (from == null ? "(unset)" : String.valueOf(from.uniqueName())) + "\" ("
                + (from == null ? "(bus)" : from.logInfo()) + ") interface=\"" + orUnset(q.iface()) + "\" member=\""
                + orUnset(q.member()) + "\" error name=\"" + orUnset(q.error()) + "\" requested_reply=\""
                + (q.requestedReply() ? 1 : 0) + "\" destination=\""
                + (q.destination() == null ? Bus.DRIVER_NAME : q.destination()) + "\" ("
                + (to == null ? "bus" : to.logInfo()) + ")";
    }

    private static String orUnset(String s) {
        return s == null ? "(unset)" : s;
    }

    private static String typeName(int type) {
        MessageKind kind = MessageKind.fromCode(type); // the config names are the log's names
        return kind == null ? "invalid" : kind.configName();
    }
}
