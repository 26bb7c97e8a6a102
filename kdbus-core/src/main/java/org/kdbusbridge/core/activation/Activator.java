package org.kdbusbridge.core.activation;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.QueuedMessage;

/**
 * Holds an activatable name while it has no owner (the kdbus activator connection).
 *
 * Invariants: messages wait here in sequence order and leave either all together to the
 * name's new owner (with their reply slots) or all together as failures; {@code starting}
 * is true from the first queued message until the activation succeeds or fails; an
 * activator is never visible through NameHasOwner, GetNameOwner or ListNames. A queued
 * message's fds are held (one reference) until it leaves; whoever drains takes that reference.
 * The hand-over record ({@link #handedOver}) describes only messages the last owner to get
 * the name through {@code Bus.completeActivation} was given, and only that owner (by id) sees it.
 */
public final class Activator {
    private final String name;
    private final ArrayDeque<Message> queue = new ArrayDeque<>();
    private boolean starting;
    private long activations;
    /** Who got the name at the last hand-over (a connection id; 0: nobody yet) and what it was given. */
    private long handOverOwner;
    private List<QueuedMessage> handOver = List.of();

    public Activator(String name) {
        this.name = name;
    }

    public String name() {
        return name;
    }

    public boolean isStarting() {
        return starting;
    }

    /** Marks an activation in flight; returns true if this call started it. */
    public boolean beginActivation() {
        if (starting) {
            return false;
        }
        starting = true;
        activations++;
        return true;
    }

    /** Number of activations requested so far. */
    public long activations() {
        return activations;
    }

    public void enqueue(Message m) {
        if (m.fds() != null) {
            m.fds().retain();
        }
        queue.addLast(m);
    }

    public int queued() {
        return queue.size();
    }

    /**
     * Remembers what the owner {@code ownerId} was handed when it got the name (PeekActivationQueue:
     * who caused my start?); replaces the previous record, so it is bounded by one start's queue.
     */
    public void recordHandOver(long ownerId, List<QueuedMessage> given) {
        handOverOwner = ownerId;
        handOver = List.copyOf(given);
    }

    /** The messages handed to {@code ownerId} at the last hand-over, oldest first; empty for anyone else. */
    public List<QueuedMessage> handedOver(long ownerId) {
        return ownerId == handOverOwner ? handOver : List.of();
    }

    /** Takes every waiting message, oldest first, and ends the activation. */
    public List<Message> drain() {
        List<Message> out = new ArrayList<>(queue);
        queue.clear();
        starting = false;
        return out;
    }
}
