package org.kdbusbridge.core.connection;

/**
 * The outside world's side of a core connection (a socket, or an in-process client).
 * Called on the bus thread only.
 */
public interface ConnectionSink {
    /** The pool went from empty to non-empty, or gained a message: drain it when writable. */
    void onQueued(Connection connection);
}
