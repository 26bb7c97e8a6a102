package org.kdbusbridge.core.policy;

import java.util.ArrayList;
import java.util.List;

/**
 * One connection's send, receive and own rules, compiled once when its credentials are known
 * (and again after a config reload), with dbus-daemon's evaluation semantics. Connections with
 * the same credentials may share one (the bridge keeps one per uid).
 *
 * Invariants: immutable; every check is "the last matching rule wins, nothing matched means
 * denied"; a check reads one {@link PolicyQuery}, never keeps it, and allocates nothing.
 * Rules are kept in {@link PolicyDatabase#rulesFor} order. Compilation finds the last rule
 * that matches every message unconditionally (a catch-all) and starts evaluation there with
 * that rule's verdict, so only the rules after it are scanned; when a catch-all allow is the
 * last rule (the stock session.conf) a check is a single field read ({@link #allowsAllSends()},
 * {@link #allowsAllReceives()}). Rule counts for error texts are computed on the slow path only
 * (after a denial), over all rules.
 */
public final class ConnectionPolicy {
    /** The bus name that messages from the bus itself carry as sender. */
    public static final String DRIVER = "org.freedesktop.DBus";

    /** What a check needs to know about the connection on the other side. */
    public interface Peer {
        /** True if it is the primary or a queued owner of {@code name} (a unique name: its own). */
        boolean inQueueOf(String name);

        /** True if it is primary or queued owner of some name equal to or below {@code prefix} (whole words). */
        boolean inQueueByPrefix(String prefix);
    }

    /** What a connection is allowed without any config: everything (embedded buses, core tests). */
    public static final ConnectionPolicy ALLOW_ALL = new ConnectionPolicy(List.of(
            new PolicyRule.Send(true, null, false, null, null, null, null, null, true, PolicyRule.Broadcast.ANY, true,
                    0, PolicyRule.MAX_FDS, false),
            new PolicyRule.Receive(true, null, null, null, null, null, null, true, true, 0, PolicyRule.MAX_FDS),
            new PolicyRule.Own(true, null, false)));

    private final PolicyRule.Send[] sendAll;
    private final PolicyRule.Receive[] receiveAll;
    private final PolicyRule.Own[] own;
    /** Index in sendAll of the last catch-all send rule, or -1. */
    private final int sendBase;
    private final int receiveBase;
    private final boolean sendFast;
    private final boolean receiveFast;
    private final boolean anyLog;

    private ConnectionPolicy(List<PolicyRule> rules) {
        List<PolicyRule.Send> s = new ArrayList<>();
        List<PolicyRule.Receive> r = new ArrayList<>();
        List<PolicyRule.Own> o = new ArrayList<>();
        for (PolicyRule rule : rules) {
            if (rule instanceof PolicyRule.Send x) {
                s.add(x);
            } else if (rule instanceof PolicyRule.Receive x) {
                r.add(x);
            } else if (rule instanceof PolicyRule.Own x) {
                o.add(x);
            }
        }
        sendAll = s.toArray(new PolicyRule.Send[0]);
        receiveAll = r.toArray(new PolicyRule.Receive[0]);
        own = o.toArray(new PolicyRule.Own[0]);
        int sb = -1;
        for (int i = 0; i < sendAll.length; i++) {
            if (isCatchAll(sendAll[i])) {
                sb = i;
            }
        }
        int rb = -1;
        for (int i = 0; i < receiveAll.length; i++) {
            if (isCatchAll(receiveAll[i])) {
                rb = i;
            }
        }
        sendBase = sb;
        receiveBase = rb;
        sendFast = sb >= 0 && sb == sendAll.length - 1 && sendAll[sb].allow();
        receiveFast = rb >= 0 && rb == receiveAll.length - 1 && receiveAll[rb].allow();
        anyLog = s.stream().anyMatch(PolicyRule.Send::log);
    }

    /** Compiles {@code rules} (USER/GROUP rules are ignored). */
    public static ConnectionPolicy compile(List<PolicyRule> rules) {
        return new ConnectionPolicy(rules);
    }

    /** The rules of {@code db} for a client, compiled. */
    public static ConnectionPolicy compile(PolicyDatabase db, long uid, long[] gids, boolean atConsole) {
        return new ConnectionPolicy(db.rulesFor(uid, gids, atConsole));
    }

    /** True if every message may be sent, whatever it is and wherever it goes. */
    public boolean allowsAllSends() {
        return sendFast;
    }

    /** True if every message may be received, eavesdropped ones included. */
    public boolean allowsAllReceives() {
        return receiveFast;
    }

    /** A send rule that applies to every message, so the rules before it never matter. */
    private static boolean isCatchAll(PolicyRule.Send r) {
        boolean replies = r.allow() ? (!r.requestedReply() || r.eavesdrop()) : r.requestedReply();
        return replies && r.type() == null && r.path() == null && r.interfaceName() == null && r.member() == null
                && r.error() == null && r.broadcast() == PolicyRule.Broadcast.ANY && r.destination() == null
                && r.minFds() == 0 && r.maxFds() == PolicyRule.MAX_FDS;
    }

    private static boolean isCatchAll(PolicyRule.Receive r) {
        boolean eaves = r.allow() ? r.eavesdrop() : !r.eavesdrop();
        boolean replies = r.allow() ? (!r.requestedReply() || r.eavesdrop()) : r.requestedReply();
        return eaves && replies && r.type() == null && r.path() == null && r.interfaceName() == null
                && r.member() == null && r.error() == null && r.sender() == null
                && r.minFds() == 0 && r.maxFds() == PolicyRule.MAX_FDS;
    }

    /**
     * May this connection send {@code q} to {@code q.receiver()}? No receiver: the bus itself or
     * an activation not yet started, and send_destination rules compare {@code q.destination()}
     * as a string.
     */
    public boolean canSend(PolicyQuery q) {
        if (sendFast) {
            return true;
        }
        boolean allowed = sendBase >= 0 && sendAll[sendBase].allow();
        for (int i = sendBase + 1; i < sendAll.length; i++) {
            PolicyRule.Send r = sendAll[i];
            if (sendMatches(r, q)) {
                allowed = r.allow();
            }
        }
        return allowed;
    }

    /** The log="true" flag of the send rule that decides, for dbus-daemon's "Would reject" line. */
    public boolean sendLogs(PolicyQuery q) {
        boolean log = false;
        for (PolicyRule.Send r : sendAll) {
            if (sendMatches(r, q)) {
                log = r.log();
            }
        }
        return log;
    }

    /** True if some send rule sets log="true" (only then is {@link #sendLogs} worth calling). */
    public boolean anySendLogs() {
        return anyLog;
    }

    /** How many send rules match (dbus-daemon's "matched rules" count). */
    public int sendMatchCount(PolicyQuery q) {
        int n = 0;
        for (PolicyRule.Send r : sendAll) {
            if (sendMatches(r, q)) {
                n++;
            }
        }
        return n;
    }

    private static boolean sendMatches(PolicyRule.Send r, PolicyQuery q) {
        if (r.type() != null && r.type().code() != q.type) {
            return false;
        }
        if (!repliesMatch(r.allow(), r.requestedReply(), r.eavesdrop(), q)) {
            return false;
        }
        if (!commonMatches(r.allow(), r.path(), r.interfaceName(), r.member(), r.error(), q)) {
            return false;
        }
        if (r.broadcast() != PolicyRule.Broadcast.ANY) {
            boolean broadcast = q.destination == null && q.type == MessageKind.SIGNAL.code();
            if (broadcast != (r.broadcast() == PolicyRule.Broadcast.TRUE)) {
                return false;
            }
        }
        if (r.destination() != null) {
            Peer receiver = q.receiver;
            if (!r.destinationIsPrefix()) {
                if (receiver == null ? !r.destination().equals(q.destination) : !receiver.inQueueOf(r.destination())) {
                    return false;
                }
            } else if (receiver == null) {
                if (q.destination == null || !PolicyRule.startsWithWords(q.destination, r.destination())) {
                    return false;
                }
            } else if (!receiver.inQueueByPrefix(r.destination())) {
                return false;
            }
        }
        return fdsMatch(r.minFds(), r.maxFds(), q.fds);
    }

    /**
     * May this connection receive {@code q} from {@code q.sender()} (none: from the bus, whose
     * name receive_sender compares as a string)? {@code q.eavesdropping()}: it is addressed to
     * someone else.
     */
    public boolean canReceive(PolicyQuery q) {
        if (receiveFast) {
            return true;
        }
        boolean allowed = receiveBase >= 0 && receiveAll[receiveBase].allow();
        for (int i = receiveBase + 1; i < receiveAll.length; i++) {
            PolicyRule.Receive r = receiveAll[i];
            if (receiveMatches(r, q)) {
                allowed = r.allow();
            }
        }
        return allowed;
    }

    /** How many receive rules match. */
    public int receiveMatchCount(PolicyQuery q) {
        int n = 0;
        for (PolicyRule.Receive r : receiveAll) {
            if (receiveMatches(r, q)) {
                n++;
            }
        }
        return n;
    }

    private static boolean receiveMatches(PolicyRule.Receive r, PolicyQuery q) {
        if (r.type() != null && r.type().code() != q.type) {
            return false;
        }
        // An allow without eavesdrop="true" doesn't cover eavesdropping; a deny with it covers only that.
        if (q.eavesdropping && r.allow() && !r.eavesdrop()) {
            return false;
        }
        if (!q.eavesdropping && !r.allow() && r.eavesdrop()) {
            return false;
        }
        if (!repliesMatch(r.allow(), r.requestedReply(), r.eavesdrop(), q)) {
            return false;
        }
        if (!commonMatches(r.allow(), r.path(), r.interfaceName(), r.member(), r.error(), q)) {
            return false;
        }
        Peer sender = q.sender;
        if (r.sender() != null && (sender == null ? !DRIVER.equals(r.sender()) : !sender.inQueueOf(r.sender()))) {
            return false;
        }
        return fdsMatch(r.minFds(), r.maxFds(), q.fds);
    }

    /**
     * A reply (REPLY_SERIAL set): an allow that only covers requested replies skips others,
     * unless it allows eavesdropping; a deny that only covers unrequested replies skips
     * requested ones.
     */
    private static boolean repliesMatch(boolean allow, boolean requestedOnly, boolean eavesdrop, PolicyQuery q) {
        if (q.hasReplySerial) {
            if (!q.requestedReply && allow && requestedOnly && !eavesdrop) {
                return false;
            }
            if (q.requestedReply && !allow && !requestedOnly) {
                return false;
            }
        }
        return true;
    }

    /**
     * Path, interface, member and error name. A message without the field matches a rule that
     * names one, except that an allow naming an interface skips messages without an interface
     * (so a deny naming one still catches them).
     */
    private static boolean commonMatches(boolean allow, String rPath, String rIface, String rMember, String rError,
            PolicyQuery q) {
        if (rPath != null && q.path != null && !rPath.equals(q.path)) {
            return false;
        }
        if (rIface != null) {
            if (q.iface == null ? allow : !rIface.equals(q.iface)) {
                return false;
            }
        }
        if (rMember != null && q.member != null && !rMember.equals(q.member)) {
            return false;
        }
        return rError == null || q.error == null || rError.equals(q.error);
    }

    private static boolean fdsMatch(int min, int max, int nfds) {
        return (min == 0 && max >= PolicyRule.MAX_FDS) || (nfds >= min && nfds <= max);
    }

    /** May this connection own {@code busName}? The last matching own/own_prefix rule; none: no. */
    public boolean canOwn(String busName) {
        boolean allowed = false;
        for (PolicyRule.Own r : own) {
            if (r.matches(busName)) {
                allowed = r.allow();
            }
        }
        return allowed;
    }

    @Override
    public String toString() {
        return "ConnectionPolicy[send " + sendAll.length + (sendFast ? " (all allowed)" : "") + ", receive "
                + receiveAll.length + (receiveFast ? " (all allowed)" : "") + ", own " + own.length + "]";
    }
}
