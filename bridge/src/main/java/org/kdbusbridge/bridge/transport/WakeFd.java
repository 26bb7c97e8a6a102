package org.kdbusbridge.bridge.transport;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicBoolean;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The eventfd other threads write to wake the loop, and the closing of the loop's two
 * descriptors (it and the epoll fd).
 *
 * Invariants: at most one wake write is outstanding between two drains (wakePending); the
 * flag is cleared only after the counter was read, so no wake-up is lost; no write reaches
 * the fd number once it is closed (it may be reused), because writes and the close hold the
 * same lock; the descriptors are closed once. Waking and draining allocate nothing.
 */
final class WakeFd {
    private static final Logger LOG = LoggerFactory.getLogger(EventLoop.class);

    private final String name;
    private final LibC libc;
    private final int fd;
    private final int epfd;
    private final ByteBuffer readBuf;  // 8 bytes, loop thread
    private final long readAddr;
    private final long writeAddr;      // 8 bytes holding 1, shared read-only by all writers
    @SuppressWarnings("unused")
    private final ByteBuffer writeBuf; // keeps writeAddr's memory alive
    private final AtomicBoolean pending = new AtomicBoolean();
    private final Object lock = new Object();
    private boolean closed; // guarded by lock

    /** {@code fd}: a non-blocking eventfd; {@code epfd}: the loop's epoll fd, closed with it. */
    WakeFd(String name, LibC libc, int fd, int epfd) {
        this.name = name;
        this.libc = libc;
        this.fd = fd;
        this.epfd = epfd;
        readBuf = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        readAddr = LibC.Native.address(readBuf);
        writeBuf = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        writeBuf.putLong(0, 1L);
        writeAddr = LibC.Native.address(writeBuf);
    }

    int fd() {
        return fd;
    }

    /** Wakes the loop unless a wake-up is already on its way. Any thread. */
    void wake() {
        if (pending.compareAndSet(false, true)) {
            write();
        }
    }

    /** Writes to the eventfd whatever is pending (shutdown). Any thread. */
    void write() {
        synchronized (lock) { // never write to the fd number after it was closed (and maybe reused)
            if (closed) {
                return;
            }
            long n = libc.write(fd, writeAddr, 8);
            if (n < 0) {
                int e = LibC.Native.errno();
                if (e != LibC.EAGAIN) { // EAGAIN: counter saturated, loop is woken anyway
                    LOG.warn("{}: eventfd write: {}", name, LibC.Native.strerror(e));
                }
            }
        }
    }

    /** Loop thread, when the eventfd is readable. */
    void drain() {
        long n = libc.read(fd, readAddr, 8);
        if (n < 0) {
            int e = LibC.Native.errno();
            if (e != LibC.EAGAIN) {
                LOG.warn("{}: eventfd read: {}", name, LibC.Native.strerror(e));
            }
        }
        // Clear AFTER consuming the counter and BEFORE the next runTasks(): a task added before this
        // point is run by that runTasks(); an execute() after it wins the CAS and writes again.
        // (Clearing before the read could consume a write whose CAS left the flag set -> lost wakeup.)
        pending.set(false);
    }

    /** Closes the eventfd and the epoll fd, once. */
    void closeAll() {
        synchronized (lock) {
            if (!closed) {
                closed = true;
                libc.close(fd);
                libc.close(epfd);
            }
        }
    }
}
