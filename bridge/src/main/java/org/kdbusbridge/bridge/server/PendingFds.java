package org.kdbusbridge.bridge.server;

import java.util.function.IntConsumer;
import java.util.function.IntSupplier;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.core.message.FdSet;

/**
 * Received fds not yet claimed by a complete message (FIFO ring, bounded by
 * max_incoming_unix_fds), plus the pending_fd_timeout timer that limits how long they wait.
 */
final class PendingFds {
    private final IntSupplier capacity;
    private final IntConsumer closeFd;
    private int[] ring;
    private int head;
    private int count;
    private EventLoop.Timer timer;

    PendingFds(IntSupplier capacity, IntConsumer closeFd) {
        this.capacity = capacity;
        this.closeFd = closeFd;
    }

    int count() {
        return count;
    }

    /** Queues {@code fd}; false (and the fd closed) when the limit is reached. */
    boolean accept(int fd) {
        int cap = Math.max(1, capacity.getAsInt());
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

    void closeAll() {
        while (count > 0) {
            closeFd.accept(ring[head]);
            head = (head + 1) % ring.length;
            count--;
        }
    }

    /** dbus-daemon's pending_fd_timeout: starts the timer while fds wait, cancels it when none do. */
    void armTimer(EventLoop loop, long timeoutMillis, boolean closed, Runnable onTimeout) {
        if (count == 0) {
            cancelTimer();
            return;
        }
        if (timer == null && !closed) {
            timer = loop.schedule(timeoutMillis, () -> {
                timer = null;
                if (count > 0) {
                    onTimeout.run();
                }
            });
        }
    }

    void cancelTimer() {
        if (timer != null) {
            timer.cancel();
            timer = null;
        }
    }
}
