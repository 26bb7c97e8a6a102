package org.kdbusbridge.bridge.transport;

import static org.kdbusbridge.bridge.transport.EventLoop.READ;
import static org.kdbusbridge.bridge.transport.EventLoop.WRITE;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The loop's fd -> handler table and the epoll_ctl calls that keep the epoll set in step with
 * it. Loop thread only (or before the loop starts); {@link EventLoop} checks the thread.
 *
 * Invariants: an fd is in the table exactly when it was registered and neither unregistered,
 * forgotten nor replaced; each registration carries a generation, never 0 (the eventfd's), that
 * is also the high half of its epoll data, so an event queued for an earlier registration of
 * the same fd number is recognised and dropped; {@link #writeArmed} counts the registrations
 * whose interest includes WRITE. A lookup allocates nothing.
 */
final class FdTable {
    private static final Logger LOG = LoggerFactory.getLogger(EventLoop.class);

    private static final class Registration {
        final EventLoop.IoHandler handler;
        final int generation;
        int events;

        Registration(EventLoop.IoHandler handler, int generation, int events) {
            this.handler = handler;
            this.generation = generation;
            this.events = events;
        }
    }

    private final String name;
    private final LibC libc;
    private final int epfd;
    private final ByteBuffer ctlEvent;    // one epoll_event for epoll_ctl
    private final long ctlEventAddr;
    private Registration[] regs = new Registration[256];
    private int nextGeneration = 1;
    /** Registrations whose interest includes WRITE (connections with output the kernel refused). */
    private int writeArmed;

    /** {@code name}: the loop's, for log lines. */
    FdTable(String name, LibC libc, int epfd) {
        this.name = name;
        this.libc = libc;
        this.epfd = epfd;
        ctlEvent = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
        ctlEventAddr = LibC.Native.address(ctlEvent);
    }

    /** See {@link EventLoop#register}. */
    void register(int fd, int events, EventLoop.IoHandler h) {
        Objects.requireNonNull(h, "handler");
        if (fd < 0) {
            throw new IllegalArgumentException("bad fd " + fd);
        }
        if (fd >= regs.length) {
            regs = Arrays.copyOf(regs, Math.max(fd + 1, regs.length * 2));
        }
        int gen = nextGeneration++;
        if (nextGeneration == 0) {
            nextGeneration = 1;
        }
        if (ctl(LibC.EPOLL_CTL_ADD, fd, events & (READ | WRITE), gen) < 0) {
            throw new IllegalStateException("epoll_ctl(ADD, fd " + fd + "): "
                    + LibC.Native.strerror(LibC.Native.errno()));
        }
        if (regs[fd] != null) {
            // the kernel accepted the ADD, so the old fd was closed without unregister()
            LOG.warn("{}: fd {} re-registered without unregister(); dropping the stale handler", name, fd);
            drop(fd);
        }
        regs[fd] = new Registration(h, gen, events & (READ | WRITE));
        if ((events & WRITE) != 0) {
            writeArmed++;
        }
    }

    /** See {@link EventLoop#modify}. */
    void modify(int fd, int events) {
        Registration r = fd >= 0 && fd < regs.length ? regs[fd] : null;
        if (r == null) {
            throw new IllegalStateException("fd " + fd + " not registered");
        }
        int ev = events & (READ | WRITE);
        if (ev == r.events) {
            return;
        }
        if (ctl(LibC.EPOLL_CTL_MOD, fd, ev, r.generation) < 0) {
            throw new IllegalStateException("epoll_ctl(MOD, fd " + fd + "): "
                    + LibC.Native.strerror(LibC.Native.errno()));
        }
        writeArmed += ((ev & WRITE) != 0 ? 1 : 0) - ((r.events & WRITE) != 0 ? 1 : 0);
        r.events = ev;
    }

    /** Current interest set of fd, or -1 if not registered. */
    int interest(int fd) {
        Registration r = fd >= 0 && fd < regs.length ? regs[fd] : null;
        return r == null ? -1 : r.events;
    }

    /** See {@link EventLoop#unregister}. */
    void unregister(int fd) {
        if (fd < 0 || fd >= regs.length || regs[fd] == null) {
            return;
        }
        drop(fd);
        if (ctl(LibC.EPOLL_CTL_DEL, fd, 0, 0) < 0) {
            int e = LibC.Native.errno();
            // EBADF/ENOENT: fd already closed (the kernel dropped it from the set) - harmless
            if (e != LibC.EBADF && e != LibC.ENOENT) {
                LOG.warn("{}: epoll_ctl(DEL, fd {}): {}", name, fd, LibC.Native.strerror(e));
            }
        }
    }

    /** See {@link EventLoop#forgetBeforeClose}. */
    void forget(int fd) {
        if (fd >= 0 && fd < regs.length && regs[fd] != null) {
            drop(fd);
        }
    }

    /** The handler of fd's registration of generation {@code gen}, or null (unregistered or replaced). */
    EventLoop.IoHandler handler(int fd, int gen) {
        Registration r = fd >= 0 && fd < regs.length ? regs[fd] : null;
        return r == null || r.generation != gen ? null : r.handler;
    }

    int writeArmed() {
        return writeArmed;
    }

    private void drop(int fd) {
        if ((regs[fd].events & WRITE) != 0) {
            writeArmed--;
        }
        regs[fd] = null;
    }

    /** epoll_ctl with {@code generation} and fd as the event's data; returns its result. */
    int ctl(int op, int fd, int ev, int generation) {
        ctlEvent.putInt(0, ev);
        long data = ((long) generation << 32) | (fd & 0xffffffffL);
        ctlEvent.putLong(LibC.Native.EPOLL_DATA_OFFSET, data);
        return libc.epoll_ctl(epfd, op, fd, ctlEventAddr);
    }
}
