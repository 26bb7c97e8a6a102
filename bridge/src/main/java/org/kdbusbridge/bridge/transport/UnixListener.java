// Invariants: owns one bound+listening, non-blocking, close-on-exec unix stream socket (path or
// abstract) until close(), made with socket/bind/listen through LibC. An adopted socket (systemd
// activation) is owned the same way, but close() never unlinks anything for it, since the socket
// file belongs to whoever bound it. Accepting happens only on the EventLoop thread, via
// accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) on the fd until EAGAIN (bounded per wakeup); each accepted
// fd is handed out exactly once as a SocketConnection with its SO_PEERCRED already read. close()
// unlinks the socket file only if we created it and it is still the same inode.
package org.kdbusbridge.bridge.transport;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Objects;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** A listening unix socket bound from a {@link UnixAddress}, accepting through an {@link EventLoop}. */
public final class UnixListener implements Closeable {

    /** Receives each accepted connection, on the loop thread. */
    @FunctionalInterface
    public interface AcceptHandler {
        /**
         * Takes ownership of conn. If this throws before registering conn's fd with the loop, the
         * listener closes conn.
         */
        void onAccept(SocketConnection conn);
    }

    /**
     * bind(2) said EADDRINUSE: another socket holds the name. Only an abstract name gets it in
     * practice, since a stale socket file at a path is unlinked before binding. libdbus turns that
     * errno into {@code org.freedesktop.DBus.Error.AddressInUse}.
     */
    public static final class AddressInUseException extends IOException {
        private static final long serialVersionUID = 1L;

        AddressInUseException(String message) {
            super(message);
        }
    }

    private static final Logger LOG = LoggerFactory.getLogger(UnixListener.class);
    private static final LibC LIBC = LibC.INSTANCE;
    private static final int BACKLOG = 4096; // the kernel caps it at net.core.somaxconn
    private static final int MAX_ACCEPTS_PER_WAKEUP = 128;
    private static final long FD_EXHAUSTED_PAUSE_MS = 100;
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;
    private static final String NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    private static final int SUN_PATH_OFFSET = 2; // after sa_family_t
    private static final int SUN_PATH_SIZE = 108;
    /** dbus-daemon's limits (below the kernel's 107), with its error texts. */
    private static final int MAX_PATH_BYTES = 99;
    private static final int MAX_ABSTRACT_BYTES = 98;

    private final UnixAddress requested;
    private UnixAddress bound; // PATH or ABSTRACT, with guid if known (set again by useGuid before start)
    private final int fd;
    private final Path socketFile; // null for abstract
    private final Object socketFileKey; // inode identity of the file we created, or null
    private final ByteBuffer credBuf = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
    /**
     * Whether accepted connections get their peer's pidfd (GetConnectionCredentials'
     * ProcessFD): at most one fd per connection, closed with it; never one that a reused pid
     * could point elsewhere. TransportSettings.processFd ({@code -Dkdbus.processFd=false}) turns
     * it off, through {@link #processFds} before {@link #start}.
     */
    private boolean capturePidfds = true;
    /**
     * The kernel has SO_PEERPIDFD (the first accept found out): the socket keeps its peer's
     * process, so the pidfd is asked for on first use instead of on every connect (that
     * getsockopt creates a file: ~4 us of bus CPU per connect, measured). Without it,
     * pidfd_open(pid) runs at accept, before the pid can be reused.
     */
    private boolean peerPidfdWorks;
    private final long credAddr = LibC.Native.address(credBuf);

    private EventLoop loop;
    private AcceptHandler handler;
    private boolean registered;
    private boolean paused;
    private boolean closed;

    private UnixListener(UnixAddress requested, UnixAddress bound, int fd, Path socketFile, Object socketFileKey) {
        this.requested = requested;
        this.bound = bound;
        this.fd = fd;
        this.socketFile = socketFile;
        this.socketFileKey = socketFileKey;
    }

    /**
     * Sets the server guid this listener reports ({@link #connectAddress()}, {@link #guid()}),
     * which the bus derives from the bound name once it is known (BusIds); call before {@link #start}.
     */
    public UnixListener useGuid(String guid) {
        if (loop != null) {
            throw new IllegalStateException("already started");
        }
        this.bound = bound.withGuid(guid);
        return this;
    }

    /** The server guid of {@link #connectAddress()} (lower-case hex), or null if none is known. */
    public String guid() {
        return bound.guid();
    }

    /** Whether accepted connections get their peer's pidfd (default: yes); call before {@link #start}. */
    public UnixListener processFds(boolean on) {
        this.capturePidfds = on;
        return this;
    }

    /**
     * Takes over an fd that someone else (systemd, a test) already bound and put into listening
     * state: checks that it is a listening AF_UNIX stream socket, makes it non-blocking and
     * close-on-exec, and derives the connect address from getsockname (path or abstract). On
     * success the listener owns the fd; on failure the fd is left open for the caller.
     *
     * @param guid server guid for {@link #connectAddress()}, may be null
     * @throws IOException if fd is not a bound, listening unix stream socket
     */
    public static UnixListener adopt(int fd, String guid) throws IOException {
        if (fd < 0) {
            throw new IOException("Invalid file descriptor " + fd);
        }
        ByteBuffer buf = ByteBuffer.allocateDirect(128).order(ByteOrder.nativeOrder());
        long addr = LibC.Native.address(buf);
        if (intSockopt(fd, LibC.SO_DOMAIN, buf, addr) != LibC.AF_UNIX
                || intSockopt(fd, LibC.SO_TYPE, buf, addr) != LibC.SOCK_STREAM) {
            throw new IOException("Passed socket (fd " + fd + ") has wrong type: not a unix stream socket");
        }
        if (intSockopt(fd, LibC.SO_ACCEPTCONN, buf, addr) != 1) {
            throw new IOException("Passed socket (fd " + fd + ") is not listening");
        }
        UnixAddress bound = sockName(fd, guid, buf, addr);
        int fl = LIBC.fcntl(fd, LibC.F_GETFL, 0);
        if (fl < 0 || LIBC.fcntl(fd, LibC.F_SETFL, fl | LibC.O_NONBLOCK) < 0
                || LIBC.fcntl(fd, LibC.F_SETFD, LibC.FD_CLOEXEC) < 0) {
            throw new IOException("fcntl on passed socket (fd " + fd + "): "
                    + LibC.Native.strerror(LibC.Native.errno()));
        }
        return new UnixListener(UnixAddress.systemd(guid), bound, fd, null, null);
    }

    /**
     * Hand-over (issue 19): takes over the listening socket of the bus this one replaces, as
     * {@link #adopt} does, keeping its requested address and its socket file, which this
     * listener then unlinks on close (only while the file is still the same inode).
     */
    public static UnixListener adoptForHandOver(int fd, UnixAddress requested, String guid, Path socketFile)
            throws IOException {
        UnixListener a = adopt(fd, guid);
        Object key = null;
        if (socketFile != null) {
            key = Files.readAttributes(socketFile, java.nio.file.attribute.BasicFileAttributes.class,
                    LinkOption.NOFOLLOW_LINKS).fileKey();
        }
        return new UnixListener(requested, a.bound, fd, socketFile, key);
    }

    /**
     * Hand-over: stops accepting and lets go of the socket without closing it or unlinking its
     * file (the new bus adopts both); returns the fd. Loop thread, if started on a running loop.
     */
    public int detachForHandOver() {
        if (closed) {
            throw new IllegalStateException("listener closed");
        }
        closed = true;
        if (registered && loop.isRunning()) {
            loop.unregister(fd);
        }
        registered = false;
        return fd;
    }

    /** An int socket option of fd (buf is scratch space at native address addr). */
    private static int intSockopt(int fd, int option, ByteBuffer buf, long addr) throws IOException {
        buf.putInt(0, 0);
        buf.putInt(4, 4);
        if (LIBC.getsockopt(fd, LibC.SOL_SOCKET, option, addr, addr + 4) < 0) {
            int e = LibC.Native.errno();
            throw new IOException("Passed file descriptor " + fd + " is not a usable socket: "
                    + LibC.Native.strerror(e));
        }
        return buf.getInt(0);
    }

    /** The bound address of a unix socket: path, or abstract (leading NUL) name. */
    private static UnixAddress sockName(int fd, String guid, ByteBuffer buf, long addr) throws IOException {
        final int lenOff = 120; // socklen_t after the 110-byte sockaddr_un
        final int sunPath = 2;  // sa_family_t is 2 bytes
        final int maxLen = 110;
        buf.putInt(lenOff, maxLen);
        if (LIBC.getsockname(fd, addr, addr + lenOff) < 0) {
            throw new IOException("getsockname on passed socket (fd " + fd + "): "
                    + LibC.Native.strerror(LibC.Native.errno()));
        }
        int len = Math.min(buf.getInt(lenOff), maxLen);
        if (len <= sunPath || (buf.get(sunPath) == 0 && len == sunPath + 1)) {
            throw new IOException("Passed socket (fd " + fd + ") is not bound to an address");
        }
        if (buf.get(sunPath) == 0) { // abstract: every byte up to len is part of the name
            byte[] name = new byte[len - sunPath - 1];
            buf.get(sunPath + 1, name);
            return UnixAddress.abstractName(new String(name, StandardCharsets.UTF_8), guid);
        }
        int end = sunPath;
        while (end < len && buf.get(end) != 0) {
            end++;
        }
        byte[] path = new byte[end - sunPath];
        buf.get(sunPath, path);
        return UnixAddress.path(new String(path, StandardCharsets.UTF_8), guid);
    }

    /** Binds using the address's own guid= key (may be null). */
    public static UnixListener bind(UnixAddress address) throws IOException {
        return bind(address, address.guid());
    }

    /**
     * Creates, binds and listens on the socket for address. For {@code path=} an existing SOCKET
     * file at that path is unlinked first (like dbus-daemon); other files are left alone and bind
     * fails. A missing parent directory is an error (nothing is created). For {@code dir=}/
     * {@code tmpdir=} a fresh name {@code dbus-XXXXXXXXXX} is generated. {@code runtime=yes} binds
     * {@code $XDG_RUNTIME_DIR/bus}. Path sockets get mode 0777 (access is decided by auth).
     *
     * @param guid server guid for {@link #connectAddress()}; null to use the address's guid= key
     * @throws IOException if the socket cannot be bound
     */
    public static UnixListener bind(UnixAddress address, String guid) throws IOException {
        Objects.requireNonNull(address, "address");
        UnixAddress a = address.resolveRuntime(System::getenv);
        String g = guid != null ? guid : address.guid();
        switch (a.kind()) {
            case PATH: {
                Path p = Paths.get(a.value());
                byte[] name = pathBytes(a.value());
                unlinkStaleSocket(p);
                int fd = bindSocket(name, false, a.value());
                return finishPathBind(address, UnixAddress.path(a.value(), g), fd, p);
            }
            case DIR:
            case TMPDIR: {
                // dbus-daemon 1.14.4 and later: tmpdir= is a path socket too, as dir= (dbus#416: an
                // abstract socket is reachable from any sandbox that shares the network namespace).
                IOException last = null;
                for (int attempt = 0; attempt < 16; attempt++) {
                    String path = a.value() + (a.value().endsWith("/") ? "" : "/") + "dbus-" + randomName(10);
                    byte[] name = pathBytes(path);
                    Path p = Paths.get(path);
                    if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
                        continue;
                    }
                    try {
                        int fd = bindSocket(name, false, path);
                        return finishPathBind(address, UnixAddress.path(path, g), fd, p);
                    } catch (IOException e) {
                        last = e;
                        if (!Files.isDirectory(Paths.get(a.value()))) {
                            throw e; // missing directory: retrying cannot help
                        }
                    }
                }
                throw last != null ? last : new IOException("Could not create a unique socket name in " + a.value());
            }
            case ABSTRACT: {
                byte[] name = a.value().getBytes(StandardCharsets.UTF_8);
                if (name.length > MAX_ABSTRACT_BYTES) {
                    throw new IOException("Abstract socket name too long");
                }
                int fd = bindSocket(name, true, "@" + a.value());
                return new UnixListener(address, UnixAddress.abstractName(a.value(), g), fd, null, null);
            }
            case SYSTEMD:
                throw new UnixAddress.BadAddressException("systemd: names sockets passed by systemd; "
                        + "they are adopted (UnixListener.adopt), not bound");
            default:
                throw new IllegalStateException("unexpected kind " + a.kind());
        }
    }

    private static UnixListener finishPathBind(UnixAddress requested, UnixAddress bound, int fd, Path p)
            throws IOException {
        try {
            if (LIBC.chmod(p.toString(), 0777) < 0) {
                LOG.warn("Could not set mode 0777 on socket {}: {}", p, LibC.Native.strerror(LibC.Native.errno()));
            }
            Object key = Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class,
                    LinkOption.NOFOLLOW_LINKS).fileKey();
            return new UnixListener(requested, bound, fd, p, key);
        } catch (IOException | RuntimeException e) {
            LIBC.close(fd);
            Files.deleteIfExists(p);
            throw e;
        }
    }

    /** A path's bytes for sun_path; dbus-daemon's error if it is too long. */
    private static byte[] pathBytes(String path) throws IOException {
        byte[] name = path.getBytes(StandardCharsets.UTF_8);
        if (name.length > MAX_PATH_BYTES) {
            throw new IOException("Socket name too long");
        }
        return name;
    }

    /**
     * A non-blocking, close-on-exec unix stream socket bound to {@code name} (a path, or an abstract
     * name: then sun_path starts with a NUL and the address length ends exactly after the name, as
     * libdbus and sd-bus connect) and listening.
     */
    private static int bindSocket(byte[] name, boolean abstractName, String display) throws IOException {
        ByteBuffer sa = ByteBuffer.allocateDirect(SUN_PATH_OFFSET + SUN_PATH_SIZE).order(ByteOrder.nativeOrder());
        sa.putShort(0, (short) LibC.AF_UNIX);
        int start = SUN_PATH_OFFSET + (abstractName ? 1 : 0);
        sa.put(start, name);
        int len = start + name.length + (abstractName ? 0 : 1); // a path ends with its NUL (zeroed buffer)
        int fd = LIBC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw new IOException("Failed to create socket: " + errnoText(LibC.Native.errno()));
        }
        if (LIBC.bind(fd, LibC.Native.address(sa), len) < 0) {
            int e = LibC.Native.errno();
            LIBC.close(fd);
            String text = "Failed to bind socket \"" + display + "\": " + errnoText(e);
            throw e == LibC.EADDRINUSE ? new AddressInUseException(text) : new IOException(text);
        }
        if (LIBC.listen(fd, BACKLOG) < 0) {
            int e = LibC.Native.errno();
            LIBC.close(fd);
            throw new IOException("Failed to listen on socket \"" + display + "\": " + errnoText(e));
        }
        return fd;
    }

    /** strerror's text alone ("Address already in use"), as dbus-daemon prints it. */
    private static String errnoText(int errno) {
        jnr.constants.platform.Errno e = jnr.constants.platform.Errno.valueOf(errno);
        return e == null || e == jnr.constants.platform.Errno.__UNKNOWN_CONSTANT__ ? "errno " + errno : e.description();
    }

    private static void unlinkStaleSocket(Path p) throws IOException {
        try {
            Object mode = Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            if (mode instanceof Integer && (((Integer) mode) & S_IFMT) == S_IFSOCK) {
                Files.deleteIfExists(p);
            }
        } catch (NoSuchFileException e) {
            // nothing to remove
        } catch (UnsupportedOperationException | IllegalArgumentException e) {
            LOG.debug("cannot inspect {}: {}", p, e.toString());
        }
    }

    private static String randomName(int n) {
        byte[] r = Urandom.bytes(n);
        StringBuilder sb = new StringBuilder(n);
        for (int i = 0; i < n; i++) {
            sb.append(NAME_CHARS.charAt((r[i] & 0xff) % NAME_CHARS.length())); // a slight bias is harmless in a name
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------- accept

    /**
     * Starts accepting on loop; each connection goes to handler on the loop thread. Call on the
     * loop thread (or before the loop is started). May be called once.
     */
    public void start(EventLoop loop, AcceptHandler handler) {
        if (closed) {
            throw new IllegalStateException("listener closed");
        }
        if (this.loop != null) {
            throw new IllegalStateException("already started");
        }
        this.loop = Objects.requireNonNull(loop, "loop");
        this.handler = Objects.requireNonNull(handler, "handler");
        loop.register(fd, EventLoop.READ, this::onReady);
        registered = true;
    }

    private void onReady(int readyFd, int events) {
        for (int i = 0; i < MAX_ACCEPTS_PER_WAKEUP && !closed; i++) {
            int cfd = LIBC.accept4(fd, 0L, 0L, LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC);
            if (cfd < 0) {
                int e = LibC.Native.errno();
                if (e == LibC.EAGAIN) {
                    return;
                }
                if (e == LibC.EINTR || e == LibC.ECONNABORTED) {
                    continue;
                }
                if (e == LibC.EMFILE || e == LibC.ENFILE || e == LibC.ENOBUFS || e == LibC.ENOMEM) {
                    LOG.warn("accept on {}: {}; pausing accepts for {} ms", bound, LibC.Native.strerror(e),
                            FD_EXHAUSTED_PAUSE_MS);
                    pause();
                    return;
                }
                LOG.error("accept on {}: {}", bound, LibC.Native.strerror(e));
                return;
            }
            PeerCredentials cred = peerCredentials(cfd);
            if (cred == null) {
                LIBC.close(cfd);
                continue;
            }
            int pidfd = -1;
            if (capturePidfds && !peerPidfdWorks) {
                pidfd = PeerCredentials.peerPidfd(cfd, credBuf, credAddr);
                if (pidfd >= 0) {
                    peerPidfdWorks = true; // from now on asked for when first needed
                } else if (pidfd == -LibC.ENOPROTOOPT) {
                    pidfd = PeerCredentials.openPidfd(cred.pid()); // old kernel: now, while the pid is fresh
                }
            }
            SocketConnection conn = new SocketConnection(cfd, cred, pidfd, capturePidfds && peerPidfdWorks);
            try {
                handler.onAccept(conn);
            } catch (Throwable t) {
                LOG.error("accept handler threw for {}", conn, t);
                if (conn.isOpen() && loop.interest(cfd) < 0) {
                    conn.close();
                }
            }
        }
    }

    private void pause() {
        if (paused) {
            return;
        }
        paused = true;
        loop.modify(fd, 0);
        loop.schedule(FD_EXHAUSTED_PAUSE_MS, () -> {
            paused = false;
            if (!closed && registered) {
                loop.modify(fd, EventLoop.READ);
            }
        });
    }

    private PeerCredentials peerCredentials(int cfd) {
        credBuf.putInt(12, 12);
        if (LIBC.getsockopt(cfd, LibC.SOL_SOCKET, LibC.SO_PEERCRED, credAddr, credAddr + 12) < 0) {
            LOG.warn("getsockopt(SO_PEERCRED) on accepted fd {}: {}; dropping connection", cfd,
                    LibC.Native.strerror(LibC.Native.errno()));
            return null;
        }
        return new PeerCredentials(credBuf.getInt(0), credBuf.getInt(4), credBuf.getInt(8));
    }

    // -------------------------------------------------------------- accessors

    /** The listening fd. */
    public int fd() {
        return fd;
    }

    /** The address as given to {@link #bind}; {@code systemd:} for an adopted socket. */
    public UnixAddress requestedAddress() {
        return requested;
    }

    /** The concrete PATH or ABSTRACT address bound (guid included when known). */
    public UnixAddress boundAddress() {
        return bound;
    }

    /** The socket file we created (and unlink on close), or null for an abstract or adopted socket. */
    public Path socketFile() {
        return socketFile;
    }

    /**
     * Hands the socket file we created to uid:gid, before the bus drops to that user (config
     * {@code <user>}): in a sticky directory such as /tmp only a file's owner may unlink it, so
     * otherwise close() could not remove it. Connecting is unaffected (mode 0777); no-op without a file.
     */
    public void giveSocketFileTo(int uid, int gid) throws IOException {
        if (socketFile != null) {
            Files.setAttribute(socketFile, "unix:uid", uid, LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(socketFile, "unix:gid", gid, LinkOption.NOFOLLOW_LINKS);
        }
    }

    /** What --print-address prints, e.g. {@code unix:path=/tmp/dbus-AbCdEf1234,guid=...}. */
    public String connectAddress() {
        return bound.toConnectString();
    }

    /**
     * Stops accepting, closes the socket and unlinks the socket file if it is still the one we
     * created. Idempotent. If the listener was started on a loop that is still running, call this on
     * the loop thread.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (registered && loop.isRunning()) {
            loop.unregister(fd);
        }
        registered = false;
        if (LIBC.close(fd) < 0) {
            LOG.debug("closing listener {}: {}", bound, LibC.Native.strerror(LibC.Native.errno()));
        }
        if (socketFile != null) {
            try {
                Object key = Files.readAttributes(socketFile, java.nio.file.attribute.BasicFileAttributes.class,
                        LinkOption.NOFOLLOW_LINKS).fileKey();
                if (key != null && key.equals(socketFileKey)) {
                    Files.deleteIfExists(socketFile);
                }
            } catch (NoSuchFileException e) {
                // already gone
            } catch (IOException e) {
                LOG.warn("could not remove socket file {}: {}", socketFile, e.toString());
            }
        }
    }

    @Override
    public String toString() {
        return "UnixListener[" + bound + ", fd=" + fd + "]";
    }
}
