package org.kdbusbridge.core.activation;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.core.message.Message;

/**
 * Holds an activatable name while it has no owner (the kdbus activator connection).
 *
 * Invariants: messages wait here in sequence order and leave either all together to the
 * name's new owner (with their reply slots) or all together as failures; {@code starting}
 * is true from the first queued message until the activation succeeds or fails; an
 * activator is never visible through NameHasOwner, GetNameOwner or ListNames. A queued
 * message's fds are held (one reference) until it leaves; whoever drains takes that reference.
 */
public final class Activator {
    private final String name;
    private final ArrayDeque<Message> queue = new ArrayDeque<>();
    private boolean starting;
    private long activations;

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

    /** Takes every waiting message, oldest first, and ends the activation. */
    public List<Message> drain() {
        List<Message> out = new ArrayList<>(queue);
        queue.clear();
        starting = false;
        return out;
    }
}
