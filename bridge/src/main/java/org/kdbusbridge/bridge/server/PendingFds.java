package org.kdbusbridge.bridge.server;

import java.util.function.IntConsumer;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.core.message.FdSet;

/**
 * Received fds not yet claimed by a complete message (FIFO ring, bounded by
 * max_incoming_unix_fds), plus the pending_fd_timeout timer that limits how long they wait.
 *
 * The socket is always read with recvmsg, so SCM_RIGHTS fds are never silently dropped; a
 * complete message takes as many as its UNIX_FDS field says ({@link #claim}), which must all
 * have arrived (fds come with a message's first byte), else the client is disconnected. Fds
 * still pending when the input holds no partial message belong to nothing and are closed.
 *
 * Invariants: the ring holds {@code count} fds from {@code head} in arrival order, each owned
 * here until {@link #take} hands it to a message or {@link #closeAll} closes it; the timer is
 * armed only while fds wait. Arming it allocates only the loop's Timer: its callback is made once.
 */
final class PendingFds {
    private final IntConsumer closeFd;
    /** Runs when the timer fires with fds still waiting. */
    private final Runnable onTimeout;
    /** The timer's callback, created once (a lambda per arm would allocate each time). */
    private final Runnable expiry = new Runnable() {
        @Override
        public void run() {
            timer = null;
            if (count > 0) {
                onTimeout.run();
            }
        }
    };
    private int[] ring;
    private int head;
    private int count;
    private EventLoop.Timer timer;

    PendingFds(IntConsumer closeFd, Runnable onTimeout) {
        this.closeFd = closeFd;
        this.onTimeout = onTimeout;
    }

    int count() {
        return count;
    }

    /** Queues {@code fd}; false (and the fd closed) when {@code limit} (max_incoming_unix_fds) fds wait. */
    boolean accept(int fd, int limit) {
        int cap = Math.max(1, limit);
        if (count >= cap) {
            closeFd.accept(fd);
            return false;
        }
        if (ring == null || count == ring.length) {
            // Grows with the fds actually waiting (session.conf allows 250 million: never
            // allocate the limit itself).
            int[] bigger = new int[(int) Math.min(cap, ring == null ? 16 : 2L * ring.length)];
            for (int i = 0; i < count; i++) {
                bigger[i] = ring[(head + i) % ring.length];
            }
            ring = bigger;
            head = 0;
        }
        ring[(head + count++) % ring.length] = fd;
        return true;
    }

    /**
     * The fds of a message whose UNIX_FDS field says {@code nfds} (not 0): they must all have
     * arrived (fds come with a message's first byte), within max_message_unix_fds, on a
     * connection that negotiated them. One reference, held by the caller.
     */
    FdSet claim(long nfds, int maxMessageUnixFds, boolean negotiated) throws ProtocolException {
        if (nfds > maxMessageUnixFds) {
            throw new ProtocolException("message claims " + nfds + " unix fds, more than max_message_unix_fds="
                    + maxMessageUnixFds);
        }
        if (!negotiated) {
            throw new ProtocolException("message carries unix fds but the client did not negotiate them");
        }
        if (nfds > count) {
            throw new ProtocolException("message claims " + nfds + " unix fds but " + count + " arrived");
        }
        return take((int) nfds);
    }

    /** The next {@code n} received fds as the message's FdSet (one reference, held by the caller). */
    FdSet take(int n) {
        int[] fds = new int[n];
        for (int i = 0; i < n; i++) {
            fds[i] = ring[head];
            head = (head + 1) % ring.length;
        }
        count -= n;
        FdSet set = new FdSet(fds, closeFd);
        for (int fd : fds) {
            if (Memfds.isUnsealedMemfd(fd)) {
                set.markUnsealedMemfd();
                break;
            }
        }
        return set;
    }

    /** Hand-over: the fds waiting, oldest first (still owned here). */
    int[] waiting() {
        int[] out = new int[count];
        for (int i = 0; i < count; i++) {
            out[i] = ring[(head + i) % ring.length];
        }
        return out;
    }

    /** Hand-over: ms left of pending_fd_timeout, or {@link Long#MIN_VALUE} when it is not armed. */
    long remainingMs() {
        return timer == null ? Long.MIN_VALUE : timer.remainingMillis();
    }

    /**
     * Hand-over: the fds the bus this one replaces had received ahead of their frame, oldest
     * first, and its timer going on from the ms it had left ({@link Long#MIN_VALUE}: none ran).
     */
    void restore(int[] fds, EventLoop loop, long remainingMs) {
        if (count != 0 || timer != null) {
            throw new IllegalStateException("pending fds restored into a ring in use");
        }
        if (fds.length > 0) {
            ring = java.util.Arrays.copyOf(fds, Math.max(16, fds.length));
            head = 0;
            count = fds.length;
        }
        if (count > 0 && remainingMs != Long.MIN_VALUE) {
            timer = loop.schedule(Math.max(0, remainingMs), expiry);
        }
    }

    void closeAll() {
        while (count > 0) {
            closeFd.accept(ring[head]);
            head = (head + 1) % ring.length;
            count--;
        }
    }

    /** dbus-daemon's pending_fd_timeout: starts the timer while fds wait, cancels it when none do. */
    void armTimer(EventLoop loop, long timeoutMillis, boolean closed) {
        if (count == 0) {
            cancelTimer();
            return;
        }
        if (timer == null && !closed) {
            timer = loop.schedule(timeoutMillis, expiry);
        }
    }

    void cancelTimer() {
        if (timer != null) {
            timer.cancel();
            timer = null;
        }
    }
}
