package org.kdbusbridge.core.bus;

import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.DropCounter;
import org.kdbusbridge.core.connection.ReceivePool;
import org.kdbusbridge.core.message.QueuedMessage;

/**
 * What a connection may learn about its own queues (docs/extensions.md): drop notices for the
 * broadcasts its pool had to skip (WatchDrops), and peeks at what waits for it (PeekQueued).
 * Reads only; a peek takes and reorders nothing.
 *
 * Invariants: a notice is decided at most once per run of drops (the counter is reset as it is
 * returned); it is decided only while the pool is at most half full by bytes and by count, so
 * the notice (a bus message, pushed past the budget, never dropped itself) finds room and the
 * next broadcasts still fit: a notice can never cause the drops it would report.
 */
final class QueueViews {
    private QueueViews() { }

    /** See {@link Bus#takeDropNotice}. */
    static DropNotice takeDropNotice(Connection c) {
        DropCounter d = c.drops();
        if (d == null || d.count() == 0 || c.isClosed() || !hasRoom(c.pool())) {
            return null;
        }
        DropNotice n = new DropNotice(d.count(), d.firstSeq(), d.lastSeq());
        d.reset();
        return n;
    }

    /** At most half full, by bytes and by message count. */
    private static boolean hasRoom(ReceivePool p) {
        return p.bytes() <= p.maxBytes() / 2 && p.messages() <= p.maxMessages() / 2;
    }

    /** Why a peek is refused while the answer to the caller's previous one is still queued for it. */
    static final String PEEK_PENDING = "The answer to this connection's previous peek is still queued for it: read it first";

    /** See {@link Bus#peekQueued}. */
    static QueuePeek peekQueued(Connection c, int max) {
        ReceivePool p = c.pool();
        if (c.peekAnswerAt() >= 0 && p.stillQueued(c.peekAnswerAt())) {
            return QueuePeek.PENDING;
        }
        c.setPeekAnswerAt(p.pushedCount()); // the answer is queued next, in the same step
        List<QueuedMessage> out = new ArrayList<>(Math.min(Math.max(max, 0), p.messages()));
        p.peekQueued(max, m -> out.add(QueuedMessage.of(m)));
        return new QueuePeek(p.messages(), out);
    }
}
