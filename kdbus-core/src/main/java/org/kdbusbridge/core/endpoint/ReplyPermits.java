package org.kdbusbridge.core.endpoint;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * The calls an endpoint's client received and may still answer: one reply (return or error)
 * per call that expected one, to the caller that made it, and none otherwise. The proxy keys
 * these by serial alone; this keys them by caller and serial, as Debian's 0.1.4-3+deb12u2
 * ("only accept a reply going back to the original caller") does, so a reply aimed at another
 * peer is refused. A refused reply is dropped without a word (a reply gets no reply).
 *
 * Bound: at most {@code capacity} permits. The bus's own reply slots bound it already (every
 * permit matches an open slot of the bus, and a caller holds at most max_replies_per_connection
 * of them), so the capacity is a backstop: when full, {@link #received} refuses and the bus
 * should refuse that call (LimitsExceeded) rather than deliver a call that could never be
 * answered. Permits go when answered, and all of a caller's when it disconnects or when the
 * bus closes the slot (reply timeout). Nothing is charged to a quota: each permit is a few tens
 * of bytes and the bound above holds them. Not thread-safe: the bus is single-threaded.
 */
public final class ReplyPermits {
    private final int capacity;
    private final Map<String, Set<Long>> byCaller = new HashMap<>();
    private int size;

    public ReplyPermits(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity " + capacity);
        }
        this.capacity = capacity;
    }

    /** The client received call {@code serial} from {@code caller}, expecting a reply. False: full. */
    public boolean received(String caller, long serial) {
        if (size >= capacity) {
            return false;
        }
        if (byCaller.computeIfAbsent(caller, c -> new HashSet<>()).add(serial)) {
            size++;
        }
        return true;
    }

    /**
     * The client replies to {@code caller}'s call {@code replySerial}: true (and the permit is
     * used up) if it received that call and has not answered it yet.
     */
    public boolean answer(String caller, long replySerial) {
        Set<Long> serials = caller == null ? null : byCaller.get(caller);
        if (serials == null || !serials.remove(replySerial)) {
            return false;
        }
        size--;
        if (serials.isEmpty()) {
            byCaller.remove(caller);
        }
        return true;
    }

    /** The bus gave up on that call (reply timeout): it can no longer be answered. */
    public void expire(String caller, long serial) {
        answer(caller, serial);
    }

    /** {@code caller} left: none of its calls can be answered. */
    public void forgetCaller(String caller) {
        Set<Long> serials = byCaller.remove(caller);
        if (serials != null) {
            size -= serials.size();
        }
    }

    public int size() {
        return size;
    }

    public int capacity() {
        return capacity;
    }
}
