package org.kdbusbridge.core.endpoint;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What one endpoint connection learned while connected: its own unique name (TALK, given when
 * Hello is answered) and the unique names of peers that sent it a message (SEE: "peers that
 * called me", so it can follow their lifetime by NameOwnerChanged and ask for their
 * credentials), plus the calls it may answer ({@link #replies()}).
 *
 * Bound: at most {@code peerCapacity} peers. Unique names are never reused, so a peer that
 * disconnected is dropped ({@link #forget}) after its NameOwnerChanged went out and loses
 * nothing; with that, the set holds only live connections and never exceeds the bus's
 * max_completed_connections, which is the capacity to pass. If the bus fails to forget and the
 * set fills anyway, the peer seen longest ago is evicted (counted in {@link #evictions()}), so
 * memory stays bounded whatever happens. Nothing is charged: an entry is under 100 bytes and
 * the bound is the connection limit. Not thread-safe: the bus is single-threaded.
 */
public final class EndpointState {
    private final int peerCapacity;
    private final LinkedHashMap<String, Boolean> peers;
    private final ReplyPermits replies;
    private String self;
    private long evictions;

    public EndpointState(int peerCapacity, int replyCapacity) {
        if (peerCapacity < 1) {
            throw new IllegalArgumentException("peerCapacity " + peerCapacity);
        }
        this.peerCapacity = peerCapacity;
        this.replies = new ReplyPermits(replyCapacity);
        // Access order: a peer that keeps sending is refreshed, so the bound evicts the one seen longest ago.
        this.peers = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Boolean> eldest) {
                if (size() > EndpointState.this.peerCapacity) {
                    evictions++;
                    return true;
                }
                return false;
            }
        };
    }

    /** Hello was answered with {@code uniqueName}: the client may talk to itself. */
    public void helloAnswered(String uniqueName) {
        this.self = uniqueName;
    }

    public String self() {
        return self;
    }

    /**
     * A message from {@code sender} was delivered to the client (any kind: call, unicast or
     * broadcast signal, reply): the sender's unique name becomes visible (SEE). The bus's own
     * messages (sender null or not unique) change nothing.
     */
    public void delivered(String sender) {
        if (sender != null && !sender.isEmpty() && sender.charAt(0) == ':' && !sender.equals(self)) {
            peers.put(sender, Boolean.TRUE);
        }
    }

    /**
     * As {@link #delivered}, for a call that expects a reply: the client may answer it once.
     * False: the permits are full (see {@link ReplyPermits}).
     */
    public boolean deliveredCall(String sender, long serial) {
        delivered(sender);
        return sender == null || replies.received(sender, serial);
    }

    /** The level this state alone gives {@code uniqueName}: TALK for itself, SEE for peers that sent it something. */
    public Level grantOf(String uniqueName) {
        if (uniqueName == null) {
            return Level.NONE;
        }
        if (uniqueName.equals(self)) {
            return Level.TALK;
        }
        return peers.containsKey(uniqueName) ? Level.SEE : Level.NONE;
    }

    /** {@code uniqueName} disconnected (after its NameOwnerChanged was delivered or filtered). */
    public void forget(String uniqueName) {
        peers.remove(uniqueName);
        replies.forgetCaller(uniqueName);
    }

    public ReplyPermits replies() {
        return replies;
    }

    public int peerCount() {
        return peers.size();
    }

    public long evictions() {
        return evictions;
    }
}
