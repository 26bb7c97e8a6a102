package org.kdbusbridge.core.bus;

import java.util.List;

import org.kdbusbridge.core.message.QueuedMessage;

/**
 * PeekActivationQueue: the messages that waited on a name's activator and were handed to the
 * caller when it became the name's owner, oldest first (empty if it got the name without a
 * start, or nothing waited); or the denial (then {@code messages} is empty): the name is not a
 * well-known one, or the caller is not its primary owner.
 */
public record HandOverPeek(List<QueuedMessage> messages, Denial denial) {
    static HandOverPeek denied(Denial d) {
        return new HandOverPeek(List.of(), d);
    }

    public boolean denied() {
        return denial != null;
    }
}
