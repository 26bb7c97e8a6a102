// Invariants: owns exactly one connected, NON-BLOCKING, close-on-exec unix stream socket fd
// until close(); after close() fd() is -1 and I/O throws ClosedChannelException. read/write
// work on DIRECT buffers only, touch [position, limit), advance position by the bytes moved and
// allocate nothing. write uses send(MSG_NOSIGNAL) so a vanished peer yields EPIPE, never SIGPIPE.
// Gather writes use sendmsg(MSG_NOSIGNAL) with a per-thread native msghdr/iovec scratch area.
// Fd passing: readWithFds uses recvmsg(MSG_CMSG_CLOEXEC) with a per-thread preallocated
// msghdr/iovec/control area sized for SCM_MAX_FD, hands every received fd to the caller's
// FdSink (which owns it from then on), and treats MSG_CTRUNC as an error after closing what did
// arrive; writeWithFds attaches fds to the FIRST byte sent (one sendmsg), so once it returns > 0
// the fds have left. Neither allocates per call.
// Not thread-safe: used on the event-loop thread only. The owner unregisters (or forgets) the fd
// in the EventLoop BEFORE close().
package org.kdbusbridge.bridge.transport;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedChannelException;

/** One accepted unix socket, doing raw non-blocking I/O on its fd. */
public final class SocketConnection {

    private static final LibC LIBC = LibC.INSTANCE;

    /** Max buffers passed to one gather write (callers loop for more). */
    public static final int MAX_GATHER = 64;
    private static final int MSGHDR_SIZE = 56;
    private static final int MSG_IOV = 16;
    private static final int MSG_IOVLEN = 24;

    private int fd;
    private final PeerCredentials peer;
    /** A pidfd of the peer (one per connection at most, closed with it), or -1. */
    private int pidfd;
    /** SO_PEERGROUPS / SO_PEERSEC, read on first use (the kernel keeps them from connect()). */
    private long[] groups;
    private byte[] securityLabel;
    private boolean groupsRead;
    private boolean labelRead;
    private ByteBuffer gather; // msghdr + MAX_GATHER iovecs: this thread's scratch (set per call)
    private long gatherAddr;
    private static final int MSG_CONTROL = 32;
    private static final int MSG_CONTROLLEN = 40;
    private static final int MSG_FLAGS = 48;
    private static final int CMSG_HDR = 16;
    /** CMSG_SPACE(SCM_MAX_FD * sizeof(int)) plus CMSG_SPACE(sizeof(struct ucred)) for SO_PASSCRED. */
    private static final int CONTROL_SIZE = CMSG_HDR + ((LibC.SCM_MAX_FD * 4 + 7) & ~7) + CMSG_HDR + 16;
    /** Whether SO_PASSCRED is on (set through {@link #passCredentials}). */
    private boolean passCred;
    /** setsockopt(SO_PASSCRED) failed once on this socket: not tried again. */
    private boolean passCredFailed;
    /** SCM_CREDENTIALS of the last readWithFds, or -1 when it brought none. */
    private long credPid = -1;
    private long credUid = -1;
    private long credGid = -1;
    private static final int FDMSG_SIZE = MSGHDR_SIZE + 16 + CONTROL_SIZE;
    private ByteBuffer fdMsg; // msghdr + one iovec + control: this thread's scratch (set per call)
    private long fdMsgAddr;

    /** Receives the fds that recvmsg brought in; from then on the sink owns (and must close) them. */
    public interface FdSink {
        void acceptFd(int fd);
    }

    /** The control data was cut short (MSG_CTRUNC): fds were lost, the stream can't be trusted. */
    public static final class ControlTruncatedException extends IOException {
        public ControlTruncatedException(String message) {
            super(message);
        }
    }

    /**
     * Wraps an already non-blocking connected socket fd; ownership of the fd passes to this object.
     */
    public SocketConnection(int fd, PeerCredentials peer) {
        this(fd, peer, -1, false);
    }

    /**
     * As {@link #SocketConnection(int, PeerCredentials)}, and takes ownership of the peer's
     * {@code pidfd} (or -1); {@code askLater}: SO_PEERPIDFD works here, ask it on first use.
     */
    public SocketConnection(int fd, PeerCredentials peer, int pidfd, boolean askLater) {
        if (fd < 0) {
            throw new IllegalArgumentException("bad fd " + fd);
        }
        this.fd = fd;
        this.peer = peer;
        this.pidfd = pidfd;
        this.askPidfdLater = pidfd < 0 && askLater;
    }

    private boolean askPidfdLater;

    /** The peer's pidfd (owned by this connection until close; asked for once), or -1. */
    public int peerPidfd() {
        if (askPidfdLater && fd >= 0) {
            askPidfdLater = false;
            int p = PeerCredentials.peerPidfd(fd);
            pidfd = p >= 0 ? p : -1;
        }
        return pidfd;
    }

    /** Hand-over: the pidfd this connection holds now, or -1, without asking for one. */
    public int heldPeerPidfd() {
        return pidfd;
    }

    /** Hand-over: whether the pidfd is still to be asked for on first use. */
    public boolean asksPidfdLater() {
        return askPidfdLater;
    }

    /** Hand-over: the socket goes to a new owner; this object lets go of both fds without closing them. */
    public void detachForHandOver() {
        fd = -1;
        pidfd = -1;
    }

    /** The peer's supplementary gids as of connect() (SO_PEERGROUPS), or null if unknown or closed. */
    public long[] peerGroups() {
        if (!groupsRead && fd >= 0) {
            groupsRead = true;
            groups = PeerCredentials.readGroups(fd);
        }
        return groups;
    }

    /** The peer's LSM label as of connect() (SO_PEERSEC, no NUL), or null if none or closed. */
    public byte[] peerSecurityLabel() {
        if (!labelRead && fd >= 0) {
            labelRead = true;
            securityLabel = PeerCredentials.readSecurityLabel(fd);
        }
        return securityLabel;
    }

    /** The socket fd, or -1 once closed. */
    public int fd() {
        return fd;
    }

    /** Credentials of the peer (SO_PEERCRED at accept time). */
    public PeerCredentials peer() {
        return peer;
    }

    public boolean isOpen() {
        return fd >= 0;
    }

    /**
     * Reads into buf's [position, limit).
     *
     * @return bytes read (position advanced), 0 if nothing is available (EAGAIN) or the buffer has
     *         no room, -1 on end of stream
     * @throws IOException on a socket error such as ECONNRESET
     */
    public int read(ByteBuffer buf) throws IOException {
        int f = fd;
        if (f < 0) {
            throw new ClosedChannelException();
        }
        int pos = buf.position();
        int rem = buf.limit() - pos;
        if (rem <= 0) {
            return 0;
        }
        long addr = LibC.Native.address(buf) + pos;
        while (true) {
            long n = LIBC.read(f, addr, rem);
            if (n > 0) {
                buf.position(pos + (int) n);
                return (int) n;
            }
            if (n == 0) {
                return -1;
            }
            int e = LibC.Native.errno();
            if (e == LibC.EAGAIN) {
                return 0;
            }
            if (e != LibC.EINTR) {
                throw new IOException("read(fd " + f + "): " + LibC.Native.strerror(e));
            }
        }
    }

    /**
     * Native scratch for recvmsg/sendmsg headers, one per thread: the loop thread serves every
     * connection with the same two buffers instead of two direct allocations (and two cleaners
     * for the GC) per connection.
     */
    private static final class Scratch {
        final ByteBuffer fdMsg = ByteBuffer.allocateDirect(FDMSG_SIZE).order(ByteOrder.nativeOrder());
        final long fdMsgAddr = LibC.Native.address(fdMsg);
        final ByteBuffer gather = ByteBuffer.allocateDirect(MSGHDR_SIZE + 16 * MAX_GATHER).order(ByteOrder.nativeOrder());
        final long gatherAddr = LibC.Native.address(gather);
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private void ensureFdMsg() {
        Scratch sc = SCRATCH.get();
        fdMsg = sc.fdMsg;
        fdMsgAddr = sc.fdMsgAddr;
    }

    /** Fills the msghdr for one iovec over [addr, addr+len) and a control area of controlLen. */
    private void prepareFdMsg(long addr, long len, int controlLen) {
        for (int i = 0; i < MSGHDR_SIZE; i += 8) {
            fdMsg.putLong(i, 0L);
        }
        fdMsg.putLong(MSGHDR_SIZE, addr);
        fdMsg.putLong(MSGHDR_SIZE + 8, len);
        fdMsg.putLong(MSG_IOV, fdMsgAddr + MSGHDR_SIZE);
        fdMsg.putLong(MSG_IOVLEN, 1);
        if (controlLen > 0) {
            fdMsg.putLong(MSG_CONTROL, fdMsgAddr + MSGHDR_SIZE + 16);
            fdMsg.putLong(MSG_CONTROLLEN, controlLen);
        }
    }

    /**
     * Like {@link #read(ByteBuffer)} but through recvmsg, so SCM_RIGHTS fds that come with the
     * bytes are handed to {@code sink} (close-on-exec already set) instead of being dropped.
     *
     * @throws ControlTruncatedException if the kernel had to cut the control data (every fd that
     *         did arrive has been handed to the sink first, so the caller can close them)
     */
    public int readWithFds(ByteBuffer buf, FdSink sink) throws IOException {
        int f = fd;
        if (f < 0) {
            throw new ClosedChannelException();
        }
        int pos = buf.position();
        int rem = buf.limit() - pos;
        if (rem <= 0) {
            return 0;
        }
        ensureFdMsg();
        long addr = LibC.Native.address(buf) + pos;
        credPid = -1;
        while (true) {
            prepareFdMsg(addr, rem, CONTROL_SIZE);
            long n = LIBC.recvmsg(f, fdMsgAddr, LibC.MSG_CMSG_CLOEXEC);
            if (n >= 0) {
                int flags = fdMsg.getInt(MSG_FLAGS);
                long controlLen = fdMsg.getLong(MSG_CONTROLLEN);
                if (controlLen >= CMSG_HDR) {
                    takeFds(controlLen, sink);
                }
                if ((flags & LibC.MSG_CTRUNC) != 0) {
                    throw new ControlTruncatedException("recvmsg(fd " + f + "): control data truncated (MSG_CTRUNC)");
                }
                if (n == 0) {
                    return -1;
                }
                buf.position(pos + (int) n);
                return (int) n;
            }
            int e = LibC.Native.errno();
            if (e == LibC.EAGAIN) {
                return 0;
            }
            if (e != LibC.EINTR) {
                throw new IOException("recvmsg(fd " + f + "): " + LibC.Native.strerror(e));
            }
        }
    }

    /** Walks the cmsghdrs of the last recvmsg, handing every SCM_RIGHTS fd to the sink. */
    private void takeFds(long controlLen, FdSink sink) {
        int base = MSGHDR_SIZE + 16;
        long off = 0;
        while (off + CMSG_HDR <= controlLen) {
            int at = base + (int) off;
            long len = fdMsg.getLong(at);
            if (len < CMSG_HDR || off + len > controlLen) {
                break;
            }
            int level = fdMsg.getInt(at + 8);
            int type = fdMsg.getInt(at + 12);
            if (level == LibC.SOL_SOCKET && type == LibC.SCM_RIGHTS) {
                int count = (int) ((len - CMSG_HDR) / 4);
                for (int i = 0; i < count; i++) {
                    sink.acceptFd(fdMsg.getInt(at + CMSG_HDR + 4 * i));
                }
            } else if (level == LibC.SOL_SOCKET && type == LibC.SCM_CREDENTIALS && len >= CMSG_HDR + 12) {
                credPid = fdMsg.getInt(at + CMSG_HDR) & 0xffffffffL;
                credUid = fdMsg.getInt(at + CMSG_HDR + 4) & 0xffffffffL;
                credGid = fdMsg.getInt(at + CMSG_HDR + 8) & 0xffffffffL;
            }
            off += (len + 7) & ~7L;
        }
    }

    /**
     * Turns SO_PASSCRED on or off: while on, every read records the credentials the kernel
     * stamped on the bytes when they were written ({@link #readPid}). Only what the next
     * recvmsg returns is affected. False if setsockopt failed (the state is unchanged); a
     * failure is remembered and the call is not tried again on this socket (the caller asks
     * before every read while the wish and the state differ), so its reads carry no creds.
     */
    public boolean passCredentials(boolean on) {
        int f = fd;
        if (f < 0 || passCredFailed) {
            return false;
        }
        Scratch sc = SCRATCH.get();
        sc.gather.putInt(0, on ? 1 : 0); // the gather scratch is free between calls
        if (LIBC.setsockopt(f, LibC.SOL_SOCKET, LibC.SO_PASSCRED, sc.gatherAddr, 4) != 0) {
            passCredFailed = true;
            return false;
        }
        passCred = on;
        return true;
    }

    /** Whether setsockopt(SO_PASSCRED) failed on this socket, so it is not tried again (tests). */
    public boolean passCredentialsFailed() {
        return passCredFailed;
    }

    /** Whether SO_PASSCRED is on. */
    public boolean passesCredentials() {
        return passCred;
    }

    /** The writer's pid of the bytes the last readWithFds returned, or -1 if the kernel gave none. */
    public long readPid() {
        return credPid;
    }

    /** The writer's uid of the last read's bytes (valid when {@link #readPid} is not -1). */
    public long readUid() {
        return credUid;
    }

    /** The writer's gid of the last read's bytes (valid when {@link #readPid} is not -1). */
    public long readGid() {
        return credGid;
    }

    /**
     * Writes buf's [position, limit) with {@code fds[0 .. count)} attached to its first byte.
     * When this returns a positive count the fds have been passed (the kernel dup'ed them; the
     * caller still owns its copies); 0 means nothing was sent (EAGAIN), try again later.
     */
    public int writeWithFds(ByteBuffer buf, int[] fds, int count) throws IOException {
        int f = fd;
        if (f < 0) {
            throw new ClosedChannelException();
        }
        if (count <= 0) {
            return write(buf);
        }
        if (count > LibC.SCM_MAX_FD) {
            throw new IOException("cannot pass " + count + " fds in one message (max " + LibC.SCM_MAX_FD + ")");
        }
        int pos = buf.position();
        int rem = buf.limit() - pos;
        if (rem <= 0) {
            return 0;
        }
        ensureFdMsg();
        int dataLen = 4 * count;
        int controlLen = CMSG_HDR + ((dataLen + 7) & ~7);
        long addr = LibC.Native.address(buf) + pos;
        while (true) {
            prepareFdMsg(addr, rem, controlLen);
            int at = MSGHDR_SIZE + 16;
            fdMsg.putLong(at, CMSG_HDR + dataLen); // CMSG_LEN
            fdMsg.putInt(at + 8, LibC.SOL_SOCKET);
            fdMsg.putInt(at + 12, LibC.SCM_RIGHTS);
            for (int i = 0; i < count; i++) {
                fdMsg.putInt(at + CMSG_HDR + 4 * i, fds[i]);
            }
            long n = LIBC.sendmsg(f, fdMsgAddr, LibC.MSG_NOSIGNAL);
            if (n >= 0) {
                buf.position(pos + (int) n);
                return (int) n;
            }
            int e = LibC.Native.errno();
            if (e == LibC.EAGAIN) {
                return 0;
            }
            if (e != LibC.EINTR) {
                throw new IOException("sendmsg(fd " + f + ", " + count + " fds): " + LibC.Native.strerror(e));
            }
        }
    }

    /**
     * Asks the kernel for a send buffer of {@code bytes} (SO_SNDBUF; the kernel silently caps
     * it at net.core.wmem_max, then doubles it for its bookkeeping, so this is a request).
     *
     * @return false if setsockopt failed (the socket keeps its buffer)
     */
    public boolean requestSendBuffer(int bytes) {
        int f = fd;
        if (f < 0) {
            return false;
        }
        Scratch sc = SCRATCH.get();
        sc.gather.putInt(0, bytes); // the gather scratch is free between calls
        return LIBC.setsockopt(f, LibC.SOL_SOCKET, LibC.SO_SNDBUF, sc.gatherAddr, 4) == 0;
    }

    /**
     * Writes buf's [position, limit).
     *
     * @return bytes written (position advanced), 0 if the socket buffer is full (EAGAIN)
     * @throws IOException on a socket error such as EPIPE or ECONNRESET
     */
    public int write(ByteBuffer buf) throws IOException {
        int f = fd;
        if (f < 0) {
            throw new ClosedChannelException();
        }
        int pos = buf.position();
        int rem = buf.limit() - pos;
        if (rem <= 0) {
            return 0;
        }
        long addr = LibC.Native.address(buf) + pos;
        while (true) {
            long n = LIBC.send(f, addr, rem, LibC.MSG_NOSIGNAL);
            if (n >= 0) {
                buf.position(pos + (int) n);
                return (int) n;
            }
            int e = LibC.Native.errno();
            if (e == LibC.EAGAIN) {
                return 0;
            }
            if (e != LibC.EINTR) {
                throw new IOException("send(fd " + f + "): " + LibC.Native.strerror(e));
            }
        }
    }

    /**
     * Gather-writes the [position, limit) ranges of srcs[offset .. offset+length) in order, as one
     * sendmsg call (at most {@link #MAX_GATHER} buffers per call), advancing the positions of the
     * buffers written (the last one possibly partially).
     *
     * @return bytes written, 0 if the socket buffer is full (EAGAIN) or nothing was to be written
     * @throws IOException on a socket error such as EPIPE
     */
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        int f = fd;
        if (f < 0) {
            throw new ClosedChannelException();
        }
        if (offset < 0 || length < 0 || offset > srcs.length - length) {
            throw new IndexOutOfBoundsException();
        }
        Scratch sc = SCRATCH.get();
        gather = sc.gather;
        gatherAddr = sc.gatherAddr;
        int count = Math.min(length, MAX_GATHER);
        int iovcnt = 0;
        for (int i = 0; i < count; i++) {
            ByteBuffer b = srcs[offset + i];
            int rem = b.remaining();
            if (rem == 0) {
                continue;
            }
            int at = MSGHDR_SIZE + 16 * iovcnt++;
            gather.putLong(at, LibC.Native.address(b) + b.position());
            gather.putLong(at + 8, rem);
        }
        if (iovcnt == 0) {
            return 0;
        }
        for (int i = 0; i < MSGHDR_SIZE; i += 8) {
            gather.putLong(i, 0L);
        }
        gather.putLong(MSG_IOV, gatherAddr + MSGHDR_SIZE);
        gather.putLong(MSG_IOVLEN, iovcnt);
        long n;
        while (true) {
            n = LIBC.sendmsg(f, gatherAddr, LibC.MSG_NOSIGNAL);
            if (n >= 0) {
                break;
            }
            int e = LibC.Native.errno();
            if (e == LibC.EAGAIN) {
                return 0;
            }
            if (e != LibC.EINTR) {
                throw new IOException("sendmsg(fd " + f + "): " + LibC.Native.strerror(e));
            }
        }
        long left = n;
        for (int i = 0; i < count && left > 0; i++) {
            ByteBuffer b = srcs[offset + i];
            int take = (int) Math.min(b.remaining(), left);
            b.position(b.position() + take);
            left -= take;
        }
        return n;
    }

    /** Closes the fd. Idempotent. Does not unregister from any EventLoop (the owner does that first). */
    public void close() {
        int f = fd;
        if (f < 0) {
            return;
        }
        fd = -1;
        LIBC.close(f); // on Linux the fd is released even if close() reports an error
        if (pidfd >= 0) {
            LIBC.close(pidfd);
            pidfd = -1;
        }
    }

    @Override
    public String toString() {
        return "SocketConnection[fd=" + fd + ", peer=" + peer + "]";
    }
}
