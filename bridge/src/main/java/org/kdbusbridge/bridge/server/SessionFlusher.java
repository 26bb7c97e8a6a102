package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.util.ArrayDeque;

import org.kdbusbridge.core.bus.DisconnectReason;
import org.kdbusbridge.bridge.transport.EventLoop;

/**
 * The sessions with output queued in this loop step, written out once at its end.
 *
 * Loop thread only. Invariants: a session marked dirty is written by the flush that ends the
 * socket handler running now, or (outside one: timers, cross-thread tasks) by one flush task,
 * of which at most one is scheduled at a time; every flush re-arms the reply timer.
 */
final class SessionFlusher {
    private final EventLoop loop;
    private final ReplyTimeouts replyTimeouts;
    private final ArrayDeque<ClientSession> dirty = new ArrayDeque<>();
    /** True while a socket handler runs; it flushes before returning. */
    private boolean inIo;
    private boolean flushScheduled;
    /** Bumped on every socket event: the reclaimer's sign that the loop is busy. */
    private long ioEvents;

    SessionFlusher(BusServer server) {
        this.loop = server.loop();
        this.replyTimeouts = new ReplyTimeouts(server, this);
    }

    /**
     * Queues a session for writing. Socket handlers flush at the end of their own step; output
     * produced by timers and cross-thread tasks (activation results, reload) gets a flush task.
     */
    void markDirty(ClientSession s) {
        dirty.add(s);
        if (!inIo && !flushScheduled) {
            flushScheduled = true;
            loop.execute(() -> {
                flushScheduled = false;
                flushDirty();
            });
        }
    }

    void enterIo() {
        inIo = true;
        ioEvents++;
    }

    void leaveIo() {
        inIo = false;
        flushDirty();
    }

    /** A closed session is not written. */
    void forget(ClientSession s) {
        dirty.remove(s);
    }

    long ioEvents() {
        return ioEvents;
    }

    /** Writes out every session that has something queued. */
    void flushDirty() {
        ClientSession s;
        while ((s = dirty.poll()) != null) {
            s.clearDirty();
            if (s.isClosed()) {
                continue;
            }
            try {
                s.flushQueued();
            } catch (IOException e) {
                s.close(DisconnectReason.IO_ERROR, e.getMessage());
            }
        }
        replyTimeouts.arm();
    }
}
