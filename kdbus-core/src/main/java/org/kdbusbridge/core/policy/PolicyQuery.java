package org.kdbusbridge.core.policy;

/**
 * One delivery as the policy checks see it: the message's routing fields and the connections on
 * either side. A mutable flyweight, filled by name (so no two strings can swap places) and
 * reused, so a check takes one argument and allocates nothing.
 *
 * Invariants: used by one thread (the bus keeps one and is confined to its thread); a check
 * reads it and never keeps it, so it is valid until it is filled again; {@link #clear()} makes
 * every field absent (null, 0, false). A null {@link #receiver()} is the bus itself or an
 * activation not yet started (send_destination is then compared with {@link #destination()} as
 * a string); a null {@link #sender()} is the bus (receive_sender compares its name).
 */
public final class PolicyQuery {
    int type;
    boolean hasReplySerial;
    boolean requestedReply;
    boolean eavesdropping;
    String path;
    String iface;
    String member;
    String error;
    String destination;
    int fds;
    ConnectionPolicy.Peer sender;
    ConnectionPolicy.Peer receiver;

    /** Every field absent. */
    public PolicyQuery clear() {
        type = 0;
        hasReplySerial = false;
        requestedReply = false;
        eavesdropping = false;
        path = null;
        iface = null;
        member = null;
        error = null;
        destination = null;
        fds = 0;
        sender = null;
        receiver = null;
        return this;
    }

    /** The message type code (1 method call ... 4 signal). */
    public PolicyQuery type(int t) { type = t; return this; }

    /** The message carries REPLY_SERIAL. */
    public PolicyQuery hasReplySerial(boolean b) { hasReplySerial = b; return this; }

    /** It answers a call that is awaiting it (dbus-daemon's requested_reply). */
    public PolicyQuery requestedReply(boolean b) { requestedReply = b; return this; }

    /** The receiver is not the message's addressed recipient. */
    public PolicyQuery eavesdropping(boolean b) { eavesdropping = b; return this; }

    public PolicyQuery path(String s) { path = s; return this; }

    public PolicyQuery iface(String s) { iface = s; return this; }

    public PolicyQuery member(String s) { member = s; return this; }

    public PolicyQuery error(String s) { error = s; return this; }

    /** The DESTINATION header field (null: none, a broadcast if it is a signal). */
    public PolicyQuery destination(String s) { destination = s; return this; }

    /** Number of unix fds carried. */
    public PolicyQuery fds(int n) { fds = n; return this; }

    public PolicyQuery sender(ConnectionPolicy.Peer p) { sender = p; return this; }

    public PolicyQuery receiver(ConnectionPolicy.Peer p) { receiver = p; return this; }

    public int type() { return type; }
    public boolean hasReplySerial() { return hasReplySerial; }
    public boolean requestedReply() { return requestedReply; }
    public boolean eavesdropping() { return eavesdropping; }
    public String path() { return path; }
    public String iface() { return iface; }
    public String member() { return member; }
    public String error() { return error; }
    public String destination() { return destination; }
    public int fds() { return fds; }
    public ConnectionPolicy.Peer sender() { return sender; }
    public ConnectionPolicy.Peer receiver() { return receiver; }

    @Override
    public String toString() {
        return "PolicyQuery{type=" + type + " replySerial=" + hasReplySerial + " requested=" + requestedReply
                + " eavesdropping=" + eavesdropping + " path=" + path + " " + iface + "." + member + " error="
                + error + " dest=" + destination + " fds=" + fds + "}";
    }
}
