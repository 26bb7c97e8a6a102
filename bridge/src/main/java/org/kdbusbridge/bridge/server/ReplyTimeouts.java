package org.kdbusbridge.bridge.server;

import org.kdbusbridge.bridge.driver.DBusErrors;
import org.kdbusbridge.bridge.driver.Driver;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.DeadReply;

/**
 * reply_timeout: one timer for the oldest open reply slot; when it fires, every expired slot
 * gets its NoReply error.
 *
 * Loop thread only. Invariants: at most one timer is armed, for a deadline no later than the
 * core's earliest one when armed by {@link #arm}; a fired timer's errors are flushed in its step.
 */
final class ReplyTimeouts {
    static final String REPLY_TIMEOUT_TEXT = "Message did not receive a reply (timeout by message bus)";

    private final Bus bus;
    private final Driver driver;
    private final EventLoop loop;
    /** Flushed after the errors of a fired timer; that flush re-arms. */
    private final SessionFlusher flusher;
    private EventLoop.Timer replyTimer;
    private long replyTimerDeadline = -1;

    ReplyTimeouts(BusServer server, SessionFlusher flusher) {
        this.bus = server.bus();
        this.driver = server.driver();
        this.loop = server.loop();
        this.flusher = flusher;
    }

    /** Arms the timer for the core's earliest reply deadline if none is armed for it. */
    void arm() {
        long next = bus.nextReplyDeadline();
        if (next < 0 || (replyTimer != null && replyTimerDeadline <= next)) {
            return;
        }
        if (replyTimer != null) {
            replyTimer.cancel();
        }
        replyTimerDeadline = next;
        replyTimer = loop.schedule(Math.max(0, next - System.nanoTime() / 1_000_000), () -> {
            replyTimer = null;
            replyTimerDeadline = -1;
            for (DeadReply r : bus.expireReplies()) {
                driver.emitter().error(r.caller(), r.serial(), DBusErrors.NO_REPLY, REPLY_TIMEOUT_TEXT);
            }
            flusher.flushDirty(); // re-arms for the next deadline
        });
    }
}
