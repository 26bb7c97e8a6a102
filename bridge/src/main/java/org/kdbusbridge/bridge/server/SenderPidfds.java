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
 * failed dup) says nothing about the process and is not remembered: the next message asks again.
 *
 * Bounds: at most {@link #CACHED} entries; at most {@link #LIVE_MAX} pidfds of this sender open
 * at once, the cache's and those that evicted entries' queued messages still hold (each closes
 * when its last message is written or dropped); past that a message gets no pidfd. Close drops
 * the cache's references. Loop thread only.
 */
final class SenderPidfds {
    static final int CACHED = 4;
    static final int LIVE_MAX = 8;

    /** The kernel side (tests replace it). */
    interface Kernel {
        /** A pidfd of the connecting process (owned by the socket: dup it), or -1. */
        int connectionPidfd();

        /** The pid a pidfd refers to: -1 once exited, 0 if unknown. */
        long pidOf(int pidfd);

        /** pidfd_open(pid): the fd or minus errno. */
        int open(long pid);

        /** A close-on-exec duplicate of {@code fd}, or -1. */
        int dup(int fd);

        /** The real uid of live process {@code pid} (/proc/PID/status), or -1. */
        long realUid(long pid);

        void close(int fd);
    }

    private final Kernel kernel;
    private final long[] pids = new long[CACHED];
    /** The cache's reference per entry; null: that process was gone (no pidfd). */
    private final FdSet[] sets = new FdSet[CACHED];
    private int size;
    /** This sender's pidfds not yet closed (cache and queued messages). */
    private int live;
    private final IntConsumer closer;
    private boolean closed;

    SenderPidfds(Kernel kernel) {
        this.kernel = kernel;
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
            if (size == CACHED) {
                // The least recent entry goes; its pidfd stays open while queued messages hold it.
                size--;
                if (sets[size] != null) {
                    sets[size].release();
                    sets[size] = null;
                }
            }
            if (live >= LIVE_MAX) {
                return null; // over the bound: not remembered as gone
            }
            int fd = openFd(pid, uid);
            if (fd == NOT_NOW) {
                return null; // a failure that may pass (EMFILE, ENOMEM, ...): asked again next time
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
     * (EMFILE, ENFILE, ENOMEM, EAGAIN, any errno but ESRCH, or a failed dup): never remembered,
     * the next message asks again.
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
        int p = kernel.open(pid);
        if (p < 0) {
            return p == -LibC.ESRCH ? GONE : NOT_NOW;
        }
        if (kernel.realUid(pid) == uid && kernel.pidOf(p) == pid) {
            return p;
        }
        kernel.close(p); // another user's process under the pid, or exited meanwhile
        return GONE;
    }

    /** A new set with the cache's reference for {@code fd}. */
    private FdSet newSet(int fd) {
        live++;
        return new FdSet(new int[] {fd}, closer);
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
