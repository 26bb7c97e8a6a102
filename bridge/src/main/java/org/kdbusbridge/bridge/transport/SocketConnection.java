// Invariants: owns exactly one connected, NON-BLOCKING, close-on-exec unix stream socket fd
// until close(); after close() fd() is -1 and I/O throws ClosedChannelException. read/write
// work on DIRECT buffers only, touch [position, limit), advance position by the bytes moved and
// allocate nothing. write uses send(MSG_NOSIGNAL) so a vanished peer yields EPIPE, never SIGPIPE.
// Gather writes use sendmsg(MSG_NOSIGNAL) with a per-connection native msghdr/iovec scratch area.
// Not thread-safe: used on the event-loop thread only. The owner unregisters the fd from the
// EventLoop BEFORE close().
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
    private ByteBuffer gather; // msghdr + MAX_GATHER iovecs, allocated on first gather write
    private long gatherAddr;

    /**
     * Wraps an already non-blocking connected socket fd; ownership of the fd passes to this object.
     */
    public SocketConnection(int fd, PeerCredentials peer) {
        if (fd < 0) {
            throw new IllegalArgumentException("bad fd " + fd);
        }
        this.fd = fd;
        this.peer = peer;
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
        if (gather == null) {
            gather = ByteBuffer.allocateDirect(MSGHDR_SIZE + 16 * MAX_GATHER).order(ByteOrder.nativeOrder());
            gatherAddr = LibC.Native.address(gather);
        }
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
    }

    @Override
    public String toString() {
        return "SocketConnection[fd=" + fd + ", peer=" + peer + "]";
    }
}
