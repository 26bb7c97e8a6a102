package org.kdbusbridge.core.connection;

/**
 * The outside world's side of a core connection (a socket, or an in-process client).
 * Called on the bus thread only.
 */
public interface ConnectionSink {
    /** The pool went from empty to non-empty, or gained a message: drain it when writable. */
    void onQueued(Connection connection);

    /**
     * The bytes/fds of {@code connection}'s own messages still queued in the bus fell back
     * under max_incoming_bytes / max_incoming_unix_fds: its input may be read again.
     */
    default void onIncomingDrained(Connection connection) { }

    /**
     * {@code connection} watches drops (WatchDrops) and its pool just refused a broadcast, the
     * first since its last notice: look at its output soon (then {@code Bus.takeDropNotice}),
     * even if nothing else gets queued for it (a queue-quota refusal may leave its pool empty).
     */
    default void onDropped(Connection connection) { }
}
