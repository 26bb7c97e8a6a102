package org.kdbusbridge.core.bus;

import java.util.List;

import org.kdbusbridge.core.message.QueuedMessage;

/**
 * PeekQueued: {@code queued} messages wait in the connection's pool (not yet written to its
 * socket); {@code messages} shows the oldest of them, in the order they will be written, at most
 * as many as were asked for.
 */
public record QueuePeek(int queued, List<QueuedMessage> messages) {
}
