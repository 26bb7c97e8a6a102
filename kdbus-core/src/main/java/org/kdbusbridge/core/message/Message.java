package org.kdbusbridge.core.message;

import org.kdbusbridge.core.connection.Connection;

/**
 * One message as the core routes it: the routing header fields plus a sealed payload.
 *
 * Invariants: immutable once admitted, but for the requested-reply mark its routing sets;
 * {@link #seq()} is assigned exactly once by the bus's single sequencer, and every receiver
 * sees messages in sequence order. A null
 * {@link #sender()} means the bus driver itself sent it. {@link #fds()} is null or the unix fds
 * that came with it (opaque to the core); receive pools hold a reference while it is queued.
 */
public final class Message {
    public static final int METHOD_CALL = 1;
    public static final int METHOD_RETURN = 2;
    public static final int ERROR = 3;
    public static final int SIGNAL = 4;

    public static final int FLAG_NO_REPLY_EXPECTED = 0x1;
    public static final int FLAG_NO_AUTO_START = 0x2;

    /** No REPLY_SERIAL header field. */
    public static final long NO_REPLY_SERIAL = -1;

    private final int type;
    private final int flags;
    private final long serial;
    private final long replySerial;
    private final String destination;
    private final String path;
    private final String iface;
    private final String member;
    private final String errorName;
    private final SealedPayload payload;
    private final ArgSource args;
    private final FdSet fds;
    private Connection sender;
    private long seq;
    /** How many queues (receive pools, activators) hold it now; see Connection#holdQueued. */
    private int queuedRefs;
    /** It answered an open reply slot (dbus-daemon's requested_reply); set while it is routed. */
    private boolean requestedReply;
    /** Admission-time metadata (AttachMetadata), or null when nobody wanted any. */
    private MessageFacts facts;
    /** The frame's length as its sender wrote it (before the bus's SENDER field), or -1: the same as size(). */
    private int receivedLength = -1;

    public Message(int type, int flags, long serial, long replySerial, String destination, String path,
                   String iface, String member, String errorName, SealedPayload payload, ArgSource args) {
        this(type, flags, serial, replySerial, destination, path, iface, member, errorName, payload, args, null);
    }

    /** With the message's unix fds ({@code fds} may be null); the message does not take a reference. */
    public Message(int type, int flags, long serial, long replySerial, String destination, String path,
                   String iface, String member, String errorName, SealedPayload payload, ArgSource args, FdSet fds) {
        this.fds = fds;
        this.type = type;
        this.flags = flags;
        this.serial = serial;
        this.replySerial = replySerial;
        this.destination = destination;
        this.path = path;
        this.iface = iface;
        this.member = member;
        this.errorName = errorName;
        this.payload = payload;
        this.args = args == null ? ArgSource.NONE : args;
    }

    /** Called once by the bus at admission. */
    public void admit(Connection from, long sequence) {
        if (seq != 0) {
            throw new IllegalStateException("message admitted twice");
        }
        this.sender = from;
        this.seq = sequence;
    }

    public int type() { return type; }
    public int flags() { return flags; }
    public long serial() { return serial; }
    public long replySerial() { return replySerial; }
    public String destination() { return destination; }
    public String path() { return path; }
    public String iface() { return iface; }
    public String member() { return member; }
    public String errorName() { return errorName; }
    public SealedPayload payload() { return payload; }
    public ArgSource args() { return args; }
    /** The unix fds carried, or null. */
    public FdSet fds() { return fds; }
    /** Number of unix fds carried. */
    public int unixFds() { return fds == null ? 0 : fds.count(); }
    public Connection sender() { return sender; }
    public long seq() { return seq; }

    /** Admission-time metadata for receivers that asked for it, or null. */
    public MessageFacts facts() { return facts; }

    /** Set before any receiver sees it (the bridge before admission, or the bus at admission). */
    public void setFacts(MessageFacts f) { this.facts = f; }

    /** The bus: this reply used up the slot of the call it answers. */
    public void markRequestedReply() { requestedReply = true; }

    /** Whether it was routed as a requested reply (the policy check saw requested_reply=1). */
    public boolean isRequestedReply() { return requestedReply; }

    /** One more queue holds it; true if it was held by none before. */
    public boolean retainQueued() {
        return queuedRefs++ == 0;
    }

    /** One queue let it go; true if none holds it any more. */
    public boolean releaseQueued() {
        return --queuedRefs == 0;
    }

    public boolean expectsReply() {
        return type == METHOD_CALL && (flags & FLAG_NO_REPLY_EXPECTED) == 0;
    }

    public boolean isReply() {
        return type == METHOD_RETURN || type == ERROR;
    }

    public int size() {
        return payload.size();
    }

    /** Set by the transport: the frame as read, so "bytes in" counts what the client sent. */
    public void setReceivedLength(int length) {
        receivedLength = length;
    }

    /** The bytes the sender wrote for this message: the frame as read, else (built by the bus) {@link #size}. */
    public int receivedLength() {
        return receivedLength >= 0 ? receivedLength : size();
    }

    @Override
    public String toString() {
        return "Message{seq=" + seq + " type=" + type + " serial=" + serial + " dest=" + destination
                + " " + iface + "." + member + " path=" + path + "}";
    }
}
