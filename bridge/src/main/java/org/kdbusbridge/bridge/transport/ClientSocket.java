// Invariants: one BLOCKING, close-on-exec unix stream socket, connected before the constructor
// returns; at most one read and one write run at a time (each under its own lock, on its own
// direct buffer); the fd is closed exactly once, by close() or by the last read/write running when
// close() was called, never while a call still uses it (so a reused fd number is never touched).
package org.kdbusbridge.bridge.transport;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.charset.StandardCharsets;

/**
 * A client's connection to a unix socket with an abstract name ({@code unix:abstract=}), through
 * {@link LibC} (JNI, or jnr-ffi where our library is absent): JDK 17's
 * {@code UnixDomainSocketAddress} is a file-system path and cannot name one. A blocking
 * {@link ByteChannel}, so {@code bridge.client.BusConnection} uses it as it uses a JDK channel.
 */
public final class ClientSocket implements ByteChannel {
    private static final LibC LIBC = LibC.INSTANCE;
    private static final int SUN_PATH_OFFSET = 2; // after sa_family_t
    private static final int SUN_PATH_SIZE = 108;
    /** sun_path less the leading NUL that marks an abstract name. */
    public static final int MAX_ABSTRACT_NAME_BYTES = SUN_PATH_SIZE - 1;
    private static final int BUFFER = 64 * 1024;

    private final int fd;
    private final Object state = new Object();
    private final Object readLock = new Object();
    private final Object writeLock = new Object();
    private final ByteBuffer in = ByteBuffer.allocateDirect(BUFFER);
    private final ByteBuffer out = ByteBuffer.allocateDirect(BUFFER);
    private int inUse;
    private boolean closed;
    private boolean fdClosed;

    private ClientSocket(int fd) {
        this.fd = fd;
    }

    /**
     * Connects to the abstract name {@code name} (without the leading NUL; the address length
     * ends right after it, as libdbus and sd-bus bind and connect, so no padding is part of it).
     */
    public static ClientSocket connectAbstract(byte[] name) throws IOException {
        String display = new String(name, StandardCharsets.UTF_8);
        if (name.length == 0 || name.length > MAX_ABSTRACT_NAME_BYTES) {
            throw new IOException("Abstract socket name '" + display + "' must be 1 to " + MAX_ABSTRACT_NAME_BYTES
                    + " bytes long");
        }
        ByteBuffer sa = ByteBuffer.allocateDirect(SUN_PATH_OFFSET + SUN_PATH_SIZE).order(ByteOrder.nativeOrder());
        sa.putShort(0, (short) LibC.AF_UNIX);
        sa.put(SUN_PATH_OFFSET + 1, name);
        int len = SUN_PATH_OFFSET + 1 + name.length;
        int fd = LIBC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw new IOException("Failed to create socket: " + LibC.Native.strerror(LibC.Native.errno()));
        }
        int r;
        int errno = 0;
        try {
            do {
                r = LIBC.connect(fd, LibC.Native.address(sa), len);
                errno = r < 0 ? LibC.Native.errno() : 0;
            } while (r < 0 && errno == LibC.EINTR); // a unix connect that was interrupted is still unconnected
        } catch (UnsatisfiedLinkError e) {
            LIBC.close(fd);
            throw new IOException("the loaded " + LibC.Native.LIBRARY_FILE + " is older than this jar (no connect0); "
                    + "install the matching one, or run with -D" + LibC.Native.LIBRARY_PROPERTY + "=none", e);
        }
        if (r < 0) {
            LIBC.close(fd);
            throw new IOException("Failed to connect to socket @" + display + ": " + LibC.Native.strerror(errno));
        }
        return new ClientSocket(fd);
    }

    /** Blocks until at least one byte came; -1 at end of stream (the peer closed, or {@link #close}). */
    @Override
    public int read(ByteBuffer dst) throws IOException {
        synchronized (readLock) {
            enter();
            try {
                int want = Math.min(dst.remaining(), in.capacity());
                if (want == 0) {
                    return 0;
                }
                long n;
                int errno = 0;
                do {
                    n = LIBC.read(fd, LibC.Native.address(in), want);
                    errno = n < 0 ? LibC.Native.errno() : 0;
                } while (n < 0 && errno == LibC.EINTR);
                if (n < 0) {
                    throw failure("read", errno);
                }
                if (n == 0) {
                    return -1;
                }
                in.clear().limit((int) n);
                dst.put(in);
                return (int) n;
            } finally {
                exit();
            }
        }
    }

    /** Blocks until at least one byte went; never raises SIGPIPE (MSG_NOSIGNAL). */
    @Override
    public int write(ByteBuffer src) throws IOException {
        synchronized (writeLock) {
            enter();
            try {
                int want = Math.min(src.remaining(), out.capacity());
                if (want == 0) {
                    return 0;
                }
                ByteBuffer chunk = src.duplicate();
                chunk.limit(chunk.position() + want);
                out.clear();
                out.put(chunk);
                long n;
                int errno = 0;
                do {
                    n = LIBC.send(fd, LibC.Native.address(out), want, LibC.MSG_NOSIGNAL);
                    errno = n < 0 ? LibC.Native.errno() : 0;
                } while (n < 0 && errno == LibC.EINTR);
                if (n < 0) {
                    throw failure("write", errno);
                }
                src.position(src.position() + (int) n);
                return (int) n;
            } finally {
                exit();
            }
        }
    }

    private IOException failure(String what, int errno) {
        synchronized (state) {
            if (closed) {
                return new AsynchronousCloseException();
            }
        }
        return new IOException("Failed to " + what + " socket: " + LibC.Native.strerror(errno));
    }

    private void enter() throws ClosedChannelException {
        synchronized (state) {
            if (closed) {
                throw new ClosedChannelException();
            }
            inUse++;
        }
    }

    private void exit() {
        synchronized (state) {
            inUse--;
            closeFdIfIdle();
        }
    }

    private void closeFdIfIdle() {
        if (closed && inUse == 0 && !fdClosed) {
            fdClosed = true;
            LIBC.close(fd);
        }
    }

    @Override
    public boolean isOpen() {
        synchronized (state) {
            return !closed;
        }
    }

    /**
     * Ends the connection: shutdown(2) first, which wakes a thread blocked in read or write (closing
     * the fd alone would not), then the fd goes once no call uses it.
     */
    @Override
    public void close() {
        synchronized (state) {
            if (closed) {
                return;
            }
            closed = true;
            LIBC.shutdown(fd, LibC.SHUT_RDWR);
            closeFdIfIdle();
        }
    }
}
