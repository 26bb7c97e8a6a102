package org.kdbusbridge.core.bus;

import java.util.List;

import org.kdbusbridge.core.message.QueuedMessage;

/**
 * PeekQueued: {@code queued} messages wait in the connection's pool (not yet written to its
 * socket); {@code messages} shows the oldest of them, in the order they will be written, at most
 * as many as were asked for.
 */
public record QueuePeek(int queued, List<QueuedMessage> messages, Denial denial) {
    /**
     * Refused while the answer to the caller's previous peek is still queued for it: each answer
     * lists up to its limit of the queue, and the bus queues its own answers past the pool's
     * budget, so one answer at a time keeps a client that pipelines peeks and reads nothing from
     * growing its queue without bound.
     */
    static final QueuePeek PENDING = new QueuePeek(0, List.of(), Denial.limitsExceeded(QueueViews.PEEK_PENDING, false));

    public QueuePeek(int queued, List<QueuedMessage> messages) {
        this(queued, messages, null);
    }

    public boolean denied() {
        return denial != null;
    }
}
