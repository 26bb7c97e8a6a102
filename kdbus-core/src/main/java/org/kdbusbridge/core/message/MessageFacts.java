package org.kdbusbridge.core.message;

/**
 * What the bus knew about a message when it admitted it, for receivers that asked for metadata
 * (our AttachMetadata extension, docs/extensions.md): kdbus's attach items, as numbers and
 * opaque objects only (the bridge lays them out on the wire).
 *
 * Invariants: made only while some connection wants an item (so a bus where nobody opted in
 * allocates none); written by the bridge (send-time credentials, the sender's process facts)
 * and by the bus at admission (names, timestamps), before any receiver can see the message;
 * never changed afterwards, so every receiver reads the same facts (but the pidfd reference,
 * let go once neither the sender nor any queue holds the message). -1 means unknown.
 */
public final class MessageFacts {
    // One bit per item; a connection's attach set and the bus-wide demand are masks of these.
    public static final int CREDS = 1;
    public static final int PIDFD = 1 << 1;
    public static final int GROUPS = 1 << 2;
    public static final int COMM = 1 << 3;
    public static final int EXE = 1 << 4;
    public static final int CMDLINE = 1 << 5;
    public static final int CGROUP = 1 << 6;
    public static final int SECLABEL = 1 << 7;
    public static final int NAMES = 1 << 8;
    public static final int SEQ = 1 << 9;
    public static final int TIMESTAMP = 1 << 10;
    /** How many items there are (bits 0 .. ITEMS-1). */
    public static final int ITEMS = 11;
    /**
     * Not an item: the receiver wants the field as one compact text (variant {@code s}) instead
     * of {@code a{sv}}, for clients whose skipper cannot step over a dictionary (sd-bus). Kept
     * in a connection's attach set beside the items; never counted as wanted.
     */
    public static final int FORMAT_TEXT = 1 << 30;
    /** Every item bit (bits 0 .. ITEMS-1), none of the form bits. */
    public static final int ALL_ITEMS = (1 << ITEMS) - 1;
    /**
     * An attach set as it is kept: a form without items is no set ({@link #FORMAT_TEXT} is
     * dropped when no item bit is left), so a set that lost its last item (a monitor's pidfd)
     * renders no empty field. The one home of that rule.
     */
    public static int normalizedSet(int set) {
        return (set & ALL_ITEMS) == 0 ? 0 : set;
    }

    /** Items the bridge reads off the sender's socket or process, before the bus admits the message. */
    public static final int FROM_SENDER = CREDS | PIDFD | GROUPS | COMM | EXE | CMDLINE | CGROUP | SECLABEL;

    /** CLOCK_MONOTONIC and CLOCK_REALTIME in ns at admission, or -1. */
    private long monotonicNs = -1;
    private long realtimeNs = -1;
    /** The well-known names the sender was primary owner of at admission, or null. */
    private String[] names;
    private boolean namesTruncated;
    /** The sending process's ids at the time it wrote the message, or -1. */
    private long pid = -1;
    private long uid = -1;
    private long gid = -1;
    /** Whether pid/uid/gid came with the bytes (send time), not from connect time. */
    private boolean sendTime;
    /** The sender's process facts (groups, comm, ...), opaque to the core, or null. */
    private Object process;
    /**
     * A pidfd of the sending process (one fd, shared by all its messages), while this message
     * holds a reference to it; null: none, or let go (see {@link #holdHandles}).
     */
    private FdSet pidfd;
    /** Holders of this message's pidfd reference: its sender while routing, and the queues as one. */
    private int pidfdHolds;

    public long monotonicNs() { return monotonicNs; }
    public long realtimeNs() { return realtimeNs; }
    public String[] names() { return names; }
    public long pid() { return pid; }
    public long uid() { return uid; }
    public long gid() { return gid; }
    public boolean credsAtSendTime() { return sendTime; }
    public Object process() { return process; }

    /** The bus, at admission. */
    public void setTimestamp(long monotonic, long realtime) {
        this.monotonicNs = monotonic;
        this.realtimeNs = realtime;
    }

    /**
     * The bus, at admission: the sender's primary names (an array shared with the sender's
     * other messages: never modified), {@code truncated} if it owns more than were listed.
     */
    public void setNames(String[] owned, boolean truncated) {
        this.names = owned;
        this.namesTruncated = truncated;
    }

    /** Whether the sender owned more primary names than {@link #names} lists (the bus's cap). */
    public boolean namesTruncated() { return namesTruncated; }

    /** The bridge, before admission: the creds the kernel stamped on the bytes ({@code atSend}) or connect-time ones. */
    public void setCreds(long pid, long uid, long gid, boolean atSend) {
        this.pid = pid;
        this.uid = uid;
        this.gid = gid;
        this.sendTime = atSend;
    }

    /** The bridge, before admission. */
    public void setProcess(Object facts) { this.process = facts; }

    /** The sending process's pidfd, or null (none was taken, or no queue holds the message any more). */
    public FdSet pidfd() { return pidfd; }

    /**
     * The bridge, before admission: {@code withRef} is a pidfd of the sender, with one reference
     * the caller hands over; the sender holds it (one hold) until it calls {@link #dropHandles}
     * after routing, each queue until it lets the message go.
     */
    public void setPidfd(FdSet withRef) {
        this.pidfd = withRef;
        this.pidfdHolds = 1;
    }

    /**
     * The first queue hold of the message (Connection.holdQueued: the routing step's own, taken
     * inside Bus.send, so always before the sender's {@link #dropHandles}): the queues hold the
     * pidfd too, as one holder, until the last of them lets the message go. A pool and an
     * activator's queue are alike here: a message that waits on an activator keeps its pidfd for
     * the owner it is handed to. A message no queue kept loses it when routing ends and its
     * sender lets go.
     */
    public void holdHandles() {
        if (pidfd != null) {
            pidfdHolds++;
        }
    }

    /** The sender after routing, or the last queue letting the message go: the last hold releases the pidfd. */
    public void dropHandles() {
        if (pidfd != null && --pidfdHolds == 0) {
            FdSet p = pidfd;
            pidfd = null;
            p.release();
        }
    }
}
