package org.kdbusbridge.bridge.server;

import java.util.function.IntConsumer;
import java.util.function.IntSupplier;

import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.PeerCredentials;
import org.kdbusbridge.core.message.FdSet;

/**
 * AttachMetadata's {@code pidfd} for one sending connection: a pidfd per writing process, opened
 * once and shared (one {@link FdSet}, ref-counted) by all its messages, so a sender costs the bus
 * one fd, not one per message.
 *
 * Which process: for send-time credentials, the process with the send-time pid. If the
 * connection's own pidfd (SO_PEERPIDFD, or taken at accept) refers to a live process of that
 * pid, that one is dup'ed: it is the writer, and the dup cannot race with pid reuse. Otherwise
 * pidfd_open(pid), kept only if the process's real uid is the send-time uid: a pid reused by
 * another user's process in between gives none; a reuse within the same uid between the write
 * and this open cannot be told apart (the same window as the /proc items). Without send-time
 * credentials there is none (MetadataStamp does not ask), as there are no /proc facts then.
 * A process already gone (ESRCH, or another user's process under its pid) gives none,
 * remembered until its entry is pushed out; any other failure (EMFILE, ENFILE, ENOMEM, EAGAIN, a
 * failed dup, or after a successful pidfd_open a status or fdinfo that could not be read while
 * the process lives) says nothing about the process and is not remembered: the next message
 * asks again. ENOSYS (a kernel before 5.3) and EPERM (a seccomp filter: pidfd_open itself has no
 * EPERM) are permanent: {@link Support} remembers them for the whole process, logs once, and
 * pidfd_open is not called again (a connection's own pidfd is still dup'ed).
 *
 * Bounds: at most {@link #CACHED} entries; at most {@link #LIVE_MAX} pidfds of this sender open
 * at once, the cache's and those that evicted entries' queued messages still hold (each closes
 * when its last message is written or dropped; counting the least recent entry's as closed
 * when the cache is full and nothing else holds it, and for the moment between the open and
 * that entry's eviction one more); past that a message gets no pidfd. An entry is evicted only
 * for a result worth caching (a pidfd, or gone), so a failed open keeps every good entry. Close
 * drops the cache's references. Loop thread only.
 */
final class SenderPidfds {
    static final int CACHED = 4;
    static final int LIVE_MAX = 8;

    /** The kernel side (tests replace it). */
    interface Kernel {
        /** A pidfd of the connecting process (owned by the socket: dup it), or -1. */
        int connectionPidfd();

        /** The pid a pidfd refers to: -1 once exited, 0 if unknown, {@link PeerCredentials#PIDFD_UNREADABLE}. */
        long pidOf(int pidfd);

        /** pidfd_open(pid): the fd or minus errno. */
        int open(long pid);

        /** A close-on-exec duplicate of {@code fd}, or -1. */
        int dup(int fd);

        /**
         * The real uid of process {@code pid} (/proc/PID/status), -1 without a Uid line,
         * {@link SenderProcess#UNREADABLE} if the file could not be read (gone, or EMFILE).
         */
        long realUid(long pid);

        void close(int fd);
    }

    /**
     * Whether pidfd_open can work at all in this process. ENOSYS or EPERM once means never:
     * one state for the process (the kernel and the seccomp filter are the process's), so for
     * every bus in the JVM, logged once; thread-safe, as buses run on loops of their own.
     */
    static final class Support {
        private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(SenderPidfds.class);
        /** The real kernel's. */
        static final Support PROCESS = new Support();
        private final java.util.concurrent.atomic.AtomicBoolean off = new java.util.concurrent.atomic.AtomicBoolean();

        boolean off() {
            return off.get();
        }

        /** pidfd_open failed with {@code errno}: true (and the state set) if that is permanent. */
        boolean permanent(int errno) {
            if (errno != LibC.ENOSYS && errno != LibC.EPERM) {
                return false;
            }
            if (off.compareAndSet(false, true)) {
                LOG.warn("pidfd_open(2) fails with {} ({}): AttachMetadata's pidfd item is given only from a"
                        + " connection's own pidfd from now on", errno == LibC.ENOSYS ? "ENOSYS" : "EPERM",
                        errno == LibC.ENOSYS ? "a kernel before 5.3" : "refused by a seccomp filter");
            }
            return true;
        }
    }

    private final Kernel kernel;
    private final Support support;
    private final long[] pids = new long[CACHED];
    /** The cache's reference per entry; null: that process was gone (no pidfd). */
    private final FdSet[] sets = new FdSet[CACHED];
    private int size;
    /** This sender's pidfds not yet closed (cache and queued messages). */
    private int live;
    private final IntConsumer closer;
    private boolean closed;

    /** With a state of its own (tests). */
    SenderPidfds(Kernel kernel) {
        this(kernel, new Support());
    }

    SenderPidfds(Kernel kernel, Support support) {
        this.kernel = kernel;
        this.support = support;
        this.closer = fd -> {
            kernel.close(fd);
            live--;
        };
    }

    /**
     * A pidfd for a message whose bytes process {@code pid} of uid {@code uid} wrote (send-time
     * credentials; there is none without them): with one reference for the caller; null when
     * there is none.
     */
    FdSet take(long pid, long uid) {
        if (closed) {
            return null;
        }
        int at = -1;
        for (int i = 0; i < size; i++) {
            if (pids[i] == pid) {
                at = i;
                break;
            }
        }
        FdSet s;
        if (at >= 0) {
            s = sets[at];
            moveToFront(at, pid, s);
        } else {
            // The least recent entry will go for the new one; its pidfd closes then unless queued
            // messages hold it, so it does not count against the bound if only the cache does.
            FdSet lru = size == CACHED ? sets[size - 1] : null;
            int freed = lru != null && lru.references() == 1 ? 1 : 0;
            if (live - freed >= LIVE_MAX) {
                return null; // over the bound: not remembered as gone, nothing evicted
            }
            int fd = openFd(pid, uid);
            if (fd == NOT_NOW) {
                return null; // a failure that may pass (EMFILE, ENOMEM, ...): asked again, entries kept
            }
            if (size == CACHED) {
                // A result worth caching: now the least recent entry goes (its pidfd stays open
                // while queued messages hold it).
                size--;
                if (sets[size] != null) {
                    sets[size].release();
                    sets[size] = null;
                }
            }
            s = fd >= 0 ? newSet(fd) : null; // null: gone, remembered
            System.arraycopy(pids, 0, pids, 1, size);
            System.arraycopy(sets, 0, sets, 1, size);
            pids[0] = pid;
            sets[0] = s;
            size++;
        }
        return s == null ? null : s.retain();
    }

    private void moveToFront(int at, long pid, FdSet s) {
        System.arraycopy(pids, 0, pids, 1, at);
        System.arraycopy(sets, 0, sets, 1, at);
        pids[0] = pid;
        sets[0] = s;
    }

    /**
     * {@link #openFd}'s answer when the writer is gone: no such process (ESRCH), another user's
     * process under its pid, or it exited meanwhile. Remembered until the entry is pushed out.
     */
    static final int GONE = -1;
    /**
     * {@link #openFd}'s answer for a failure that says nothing about the process and may pass
     * (EMFILE, ENFILE, ENOMEM, EAGAIN, any errno but ESRCH, a failed dup, a live process's status
     * or the new pidfd's fdinfo unreadable), and while pidfd_open is unsupported ({@link Support}):
     * never remembered, the next message asks again.
     */
    static final int NOT_NOW = -2;

    /** A pidfd of the writer (this cache owns it), {@link #GONE} or {@link #NOT_NOW}. */
    private int openFd(long pid, long uid) {
        if (pid <= 0) {
            return GONE; // no send-time pid: never a pidfd
        }
        int own = kernel.connectionPidfd();
        if (own >= 0 && kernel.pidOf(own) == pid) {
            int d = kernel.dup(own);
            return d >= 0 ? d : NOT_NOW;
        }
        if (support.off()) {
            return NOT_NOW; // ENOSYS or EPERM before: no syscall that is sure to fail
        }
        int p = kernel.open(pid);
        if (p < 0) {
            if (p == -LibC.ESRCH) {
                return GONE;
            }
            support.permanent(-p); // ENOSYS, EPERM: never again, for the whole process
            return NOT_NOW;
        }
        long realUid = kernel.realUid(pid);
        long at = kernel.pidOf(p); // after the uid read: still this process, so it was this one's uid
        if (at == pid && realUid == uid) {
            return p;
        }
        kernel.close(p);
        if (at == PeerCredentials.PIDFD_UNREADABLE || (at == pid && realUid == SenderProcess.UNREADABLE)) {
            return NOT_NOW; // alive or unknown, only unreadable now (EMFILE, ...): not a mismatch
        }
        return GONE; // another user's process under the pid, or exited meanwhile
    }

    /** A new set with the cache's reference for {@code fd}. */
    private FdSet newSet(int fd) {
        live++;
        return new FdSet(new int[] {fd}, closer);
    }

    /** Whether the cache holds no entry (a pidfd or a gone process). */
    boolean isEmpty() {
        return size == 0;
    }

    /** Pidfds of this sender still open (tests). */
    int live() {
        return live;
    }

    /** The session closed: the cache lets its pidfds go (queued messages keep theirs). */
    void close() {
        closed = true;
        clear();
    }

    /**
     * Nobody wants pidfds any more: the cache lets its pidfds go (queued messages keep theirs,
     * still counted in {@link #live}); it fills again when somebody asks again.
     */
    void clear() {
        for (int i = 0; i < size; i++) {
            if (sets[i] != null) {
                sets[i].release();
                sets[i] = null;
            }
        }
        size = 0;
    }

    /** The real kernel, for one socket. */
    static Kernel kernelFor(IntSupplier connectionPidfd) {
        return new Kernel() {
            @Override
            public int connectionPidfd() {
                return connectionPidfd.getAsInt();
            }

            @Override
            public long pidOf(int pidfd) {
                return PeerCredentials.pidOfPidfd(pidfd);
            }

            @Override
            public int open(long pid) {
                return LibC.Native.pidfdOpen(pid);
            }

            @Override
            public int dup(int fd) {
                return LibC.INSTANCE.fcntl(fd, LibC.F_DUPFD_CLOEXEC, 0);
            }

            @Override
            public long realUid(long pid) {
                return SenderProcess.realUidOf(java.nio.file.Path.of("/proc"), pid);
            }

            @Override
            public void close(int fd) {
                LibC.INSTANCE.close(fd);
            }
        };
    }
}
