package org.kdbusbridge.bridge.host;

import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

import org.kdbusbridge.bridge.transport.LibC;

/**
 * One hosted bus's stderr: its front's descriptor, written by a thread of this bus's own from a
 * bounded queue. Every hosted bus logs through the one System.err and slf4j's one lock, so a
 * blocking write to a pipe nobody reads would freeze every bus in the host; here a writer only
 * copies into the queue. A full queue drops whole lines (counted); once the queue has drained,
 * one line says how many were lost.
 *
 * <p>Nothing is allocated and no thread exists until the first byte is logged. The descriptor
 * is this object's: {@link #close} (the bus's end) makes every later write a no-op and the
 * descriptor is closed exactly once, by the writer thread when it leaves (after at most
 * {@link #DRAIN_MILLIS} more of writing what was queued) or by close itself when there was
 * none, so no write ever reaches a number the host has since reused.
 */
final class LogQueue extends OutputStream {
    static final int DEFAULT_CAPACITY = 64 * 1024;
    /** PIPE_BUF: after POLLOUT, a pipe takes this much without blocking. */
    private static final int CHUNK = 4096;
    private static final int POLL_MILLIS = 500;
    static final long DRAIN_MILLIS = 2000;

    private final int fd;
    private final int capacity;
    private byte[] ring; // guarded by this, as every field below
    private int head;
    private int size;
    private boolean lastWasNewline = true; // of the bytes queued
    private boolean lineStart = true; // of the bytes written to us
    private boolean dropping; // the rest of the current line goes
    private boolean congested; // lines go until the writer has emptied the queue
    private long droppedLines;
    private boolean closed;
    private boolean fdClosed;
    private Thread writer;

    LogQueue(int fd, int capacity) {
        this.fd = fd;
        this.capacity = capacity;
    }

    @Override
    public void write(int b) {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) {
        if (closed || len <= 0) {
            return;
        }
        int end = off + len;
        int i = off;
        while (i < end) {
            if (dropping) {
                int nl = indexOf(b, i, end);
                if (nl < 0) {
                    return;
                }
                dropping = false;
                lineStart = true;
                i = nl + 1;
                continue;
            }
            int n = end - i;
            if (lineStart && congested || n > capacity - size) {
                dropping = true;
                congested = true;
                droppedLines++;
                continue;
            }
            put(b, i, n);
            lineStart = b[end - 1] == '\n';
            i = end;
        }
        if (writer == null) {
            writer = new Thread(this::drain, "kdbus-bridge-host-log");
            writer.setDaemon(true);
            writer.start();
        } else {
            notifyAll();
        }
    }

    private static int indexOf(byte[] b, int from, int end) {
        for (int i = from; i < end; i++) {
            if (b[i] == '\n') {
                return i;
            }
        }
        return -1;
    }

    private void put(byte[] b, int off, int n) {
        if (ring == null) {
            ring = new byte[capacity];
        }
        int tail = (head + size) % capacity;
        int first = Math.min(n, capacity - tail);
        System.arraycopy(b, off, ring, tail, first);
        System.arraycopy(b, off + first, ring, 0, n - first);
        size += n;
        lastWasNewline = b[off + n - 1] == '\n';
    }

    /** The bus has ended: later writes go nowhere; what is queued gets {@link #DRAIN_MILLIS} more. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (writer == null) {
            closeFd();
        } else {
            notifyAll();
        }
    }

    /** Lines dropped and not yet reported (tests). */
    synchronized long droppedLines() {
        return droppedLines;
    }

    /** Bytes queued now (tests). */
    synchronized int queuedBytes() {
        return size;
    }

    /** Whether the descriptor has been closed (tests). */
    synchronized boolean descriptorClosed() {
        return fdClosed;
    }

    private void closeFd() {
        if (!fdClosed) {
            fdClosed = true;
            LibC.INSTANCE.close(fd);
        }
    }

    /** The writer thread: the only one that writes to the descriptor, and the one that closes it. */
    private void drain() {
        ThreadRoutedStream.route(null); // never log into ourselves
        ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
        long addr = LibC.Native.address(buf);
        long closedAt = 0;
        try {
            while (true) {
                int n;
                synchronized (this) {
                    while (size == 0) {
                        if (droppedLines > 0) {
                            reportDrops();
                            continue;
                        }
                        if (closed) {
                            return;
                        }
                        try {
                            wait();
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                    if (closed && closedAt == 0) {
                        closedAt = System.nanoTime();
                    }
                    n = Math.min(Math.min(size, CHUNK), capacity - head);
                    buf.clear();
                    buf.put(ring, head, n);
                }
                int w = writeSome(addr, n, closedAt);
                if (w < 0) {
                    return; // the reader is gone (EPIPE, EBADF) or the drain time after close is up
                }
                synchronized (this) {
                    head = (head + w) % capacity;
                    size -= w;
                }
            }
        } finally {
            synchronized (this) {
                closed = true;
                size = 0;
                ring = null;
                closeFd();
            }
        }
    }

    /** The queue is empty: one line for what was lost (a line of its own even if the last one was cut). */
    private void reportDrops() {
        String text = (lastWasNewline ? "" : "\n") + "kdbus-bridge: " + droppedLines
                + (droppedLines == 1 ? " log line" : " log lines") + " of this bus dropped: its stderr was not read\n";
        droppedLines = 0;
        congested = false;
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        put(b, 0, Math.min(b.length, capacity));
    }

    /**
     * Up to n bytes from addr, written once the descriptor takes them: the count written, or -1
     * when it never will (an error other than EAGAIN/EINTR, or closed and past the drain time).
     * Waits in poll, so a blocked reader costs this thread only and close is noticed.
     */
    private int writeSome(long addr, int n, long closedAt) {
        while (true) {
            long timeout = POLL_MILLIS;
            if (closedAt == 0) {
                synchronized (this) {
                    if (closed) {
                        closedAt = System.nanoTime();
                    }
                }
            }
            if (closedAt != 0) {
                timeout = DRAIN_MILLIS - (System.nanoTime() - closedAt) / 1_000_000;
                if (timeout <= 0) {
                    return -1;
                }
            }
            int ready = LibC.Native.pollOne(fd, LibC.Native.POLLOUT, (int) Math.min(timeout, POLL_MILLIS));
            if (ready == 0 || ready == -LibC.EINTR) {
                continue;
            }
            if (ready > 0 && (ready & LibC.Native.POLLOUT) == 0) {
                return -1; // POLLERR, POLLHUP, POLLNVAL: nobody will read it
            }
            // ready, or no poll here (jnr-ffi): a plain write, which may block this thread only
            long w = LibC.INSTANCE.write(fd, addr, n);
            if (w > 0) {
                return (int) w;
            }
            int e = w < 0 ? LibC.Native.errno() : 0;
            if (e == LibC.EINTR || e == LibC.EAGAIN && ready > 0) {
                continue; // without poll, EAGAIN would spin: such a descriptor is given up
            }
            return -1;
        }
    }
}
