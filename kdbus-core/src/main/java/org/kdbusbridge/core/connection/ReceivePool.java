package org.kdbusbridge.core.connection;

import java.util.ArrayDeque;

import org.kdbusbridge.core.message.Message;

/**
 * A connection's bounded receive queue (the kdbus "pool").
 *
 * Invariants: messages leave in the order they entered, which is sequence order; the
 * byte and message counts always equal the sum over queued messages; a message stays
 * charged until the transport has written it completely ({@link #pop()}); the same holds for
 * unix fds: the pool holds one reference on each queued message's {@code FdSet} and drops it
 * on pop or clear, so fds never outlive the last queue that holds them.
 */
public final class ReceivePool {
    private final ArrayDeque<Message> queue = new ArrayDeque<>();
    private final long maxBytes;
    private final int maxMessages;
    private int maxFds = Integer.MAX_VALUE;
    private int fds;
    private long bytes;
    private long dropped;
    private long peakBytes;

    public ReceivePool(long maxBytes, int maxMessages) {
        this.maxBytes = maxBytes;
        this.maxMessages = maxMessages;
    }

    /** The fd budget (dbus-daemon's max_outgoing_unix_fds). */
    public void setMaxFds(int maxFds) {
        this.maxFds = maxFds;
    }

    /** Whether a message of {@code size} bytes fits the budget now. */
    public boolean fits(int size) {
        return fits(size, 0);
    }

    /** Whether a message of {@code size} bytes carrying {@code nfds} fds fits the budget now. */
    public boolean fits(int size, int nfds) {
        // An empty pool always takes one message, so a single large message can't wedge a peer.
        if (queue.isEmpty()) {
            return true;
        }
        return bytes + size <= maxBytes && queue.size() < maxMessages && (long) fds + nfds <= maxFds;
    }

    /** Queues if it fits; returns false (and counts a drop) otherwise. */
    public boolean offer(Message m) {
        if (!fits(m.size(), m.unixFds())) {
            dropped++;
            return false;
        }
        push(m);
        return true;
    }

    /** Queues regardless of the budget (bus-originated replies and name signals). */
    public void push(Message m) {
        queue.addLast(m);
        bytes += m.size();
        if (m.fds() != null) {
            m.fds().retain();
            fds += m.unixFds();
        }
        if (bytes > peakBytes) {
            peakBytes = bytes;
        }
    }

    public Message peek() {
        return queue.peekFirst();
    }

    /** Removes the head once it has been written out, releasing its charge. */
    public Message pop() {
        Message m = queue.pollFirst();
        if (m != null) {
            bytes -= m.size();
            if (m.fds() != null) {
                fds -= m.unixFds();
                m.fds().release();
            }
        }
        return m;
    }

    public boolean isEmpty() {
        return queue.isEmpty();
    }

    public int messages() {
        return queue.size();
    }

    /** Fds held by queued messages. */
    public int fds() {
        return fds;
    }

    public long bytes() {
        return bytes;
    }

    public long dropped() {
        return dropped;
    }

    public long peakBytes() {
        return peakBytes;
    }

    public long maxBytes() {
        return maxBytes;
    }

    void clear() {
        Message m;
        while ((m = queue.pollFirst()) != null) {
            if (m.fds() != null) {
                m.fds().release();
            }
        }
        bytes = 0;
        fds = 0;
    }
}
