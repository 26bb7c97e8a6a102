// Invariants: each test binds real sockets in a fresh @TempDir (or a unique abstract name), runs
// its own EventLoop, and closes listener, connections and loop at the end.
package org.kdbusbridge.bridge.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.bridge.transport.TestSupport.TIMEOUT_MS;
import static org.kdbusbridge.bridge.transport.TestSupport.onLoopRun;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import jnr.unixsocket.UnixSocketAddress;
import jnr.unixsocket.UnixSocketChannel;

class UnixListenerTest {

    private static final String GUID = "00112233445566778899aabbccddeeff";

    @TempDir
    Path tmp;

    private EventLoop loop;
    private final BlockingQueue<SocketConnection> accepted = new LinkedBlockingQueue<>();
    private final List<UnixListener> listeners = new ArrayList<>();
    private final List<AutoCloseable> clients = new ArrayList<>();

    @BeforeEach
    void setUp() {
        loop = new EventLoop("listener-test");
        loop.start();
    }

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : clients) {
            c.close();
        }
        onLoopRun(loop, () -> {
            for (UnixListener l : listeners) {
                l.close();
            }
        });
        for (SocketConnection c : accepted) {
            c.close();
        }
        loop.shutdown();
        assertTrue(loop.awaitTermination(TIMEOUT_MS));
    }

    private UnixListener listen(String address) throws Exception {
        UnixListener l = UnixListener.bind(UnixAddress.parse(address), GUID);
        listeners.add(l);
        onLoopRun(loop, () -> l.start(loop, accepted::add));
        return l;
    }

    private SocketChannel jdkClient(Path p) throws IOException {
        SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(p));
        clients.add(c);
        return c;
    }

    private SocketConnection awaitAccepted() throws InterruptedException {
        SocketConnection c = accepted.poll(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        assertNotNull(c, "no connection accepted");
        return c;
    }

    private static void assertPeerIsThisProcess(SocketConnection c) {
        PeerCredentials p = c.peer();
        assertEquals(ProcessHandle.current().pid(), p.pid());
        assertEquals(new com.sun.security.auth.module.UnixSystem().getUid(), p.uid());
        assertEquals(new com.sun.security.auth.module.UnixSystem().getGid(), p.gid());
    }

    private static void assertNonBlockingCloexec(int fd) {
        assertTrue((LibC.INSTANCE.fcntl(fd, LibC.F_GETFL, 0) & LibC.O_NONBLOCK) != 0, "O_NONBLOCK not set");
        assertTrue((LibC.INSTANCE.fcntl(fd, LibC.F_GETFD, 0) & LibC.FD_CLOEXEC) != 0, "FD_CLOEXEC not set");
    }

    @Test
    void pathSocketAcceptsJdkClientWithCredentialsAndMode0777() throws Exception {
        Path p = tmp.resolve("bus");
        UnixListener l = listen("unix:path=" + UnixAddress.escape(p.toString()));
        assertEquals("unix:path=" + p + ",guid=" + GUID, l.connectAddress());
        assertEquals(p, l.socketFile());
        int mode = (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        assertEquals(0140777, mode, Integer.toOctalString(mode));
        assertNonBlockingCloexec(l.fd());

        SocketChannel c = jdkClient(p);
        SocketConnection conn = awaitAccepted();
        assertPeerIsThisProcess(conn);
        assertNonBlockingCloexec(conn.fd());

        c.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
        ByteBuffer in = ByteBuffer.allocateDirect(16);
        TestSupport.waitUntil("3 bytes", () -> {
            try {
                conn.read(in);
            } catch (IOException e) {
                throw new AssertionError(e);
            }
            return in.position() == 3;
        });
        assertEquals(2, in.get(1));
    }

    @Test
    void severalPendingClientsAreAllAccepted() throws Exception {
        Path p = tmp.resolve("multi");
        listen("unix:path=" + p);
        for (int i = 0; i < 20; i++) {
            jdkClient(p);
        }
        for (int i = 0; i < 20; i++) {
            assertPeerIsThisProcess(awaitAccepted());
        }
        assertNull(accepted.poll());
    }

    @Test
    void pathReplacesStaleSocketButNotRegularFile() throws Exception {
        Path p = tmp.resolve("stale");
        UnixListener first = UnixListener.bind(UnixAddress.parse("unix:path=" + p));
        // simulate a crashed daemon: close the fd but leave the socket file
        LibC.INSTANCE.close(first.fd());
        assertTrue(Files.exists(p, LinkOption.NOFOLLOW_LINKS));
        UnixListener second = listen("unix:path=" + p);
        jdkClient(p);
        assertPeerIsThisProcess(awaitAccepted());
        assertEquals("unix:path=" + p + ",guid=" + GUID, second.connectAddress());

        Path regular = tmp.resolve("regular");
        Files.writeString(regular, "keep me");
        IOException e = assertThrows(IOException.class,
                () -> UnixListener.bind(UnixAddress.parse("unix:path=" + regular)));
        assertTrue(e.getMessage().contains("Failed to bind"), e.getMessage());
        assertEquals("keep me", Files.readString(regular));
    }

    @Test
    void missingDirectoryFails() {
        Path p = tmp.resolve("no/such/dir/bus");
        IOException e = assertThrows(IOException.class, () -> UnixListener.bind(UnixAddress.parse("unix:path=" + p)));
        assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
        assertThrows(IOException.class, () -> UnixListener.bind(UnixAddress.parse("unix:dir=" + tmp.resolve("nope"))));
        assertFalse(Files.exists(tmp.resolve("no")));
    }

    @Test
    void closeUnlinksOwnSocketFileOnly() throws Exception {
        Path p = tmp.resolve("bus2");
        UnixListener l = UnixListener.bind(UnixAddress.parse("unix:path=" + p));
        assertTrue(Files.exists(p, LinkOption.NOFOLLOW_LINKS));
        l.close();
        assertFalse(Files.exists(p, LinkOption.NOFOLLOW_LINKS));
        l.close(); // idempotent

        // if someone replaced the file meanwhile, close() must leave theirs alone
        UnixListener l2 = UnixListener.bind(UnixAddress.parse("unix:path=" + p));
        Files.delete(p);
        Files.writeString(p, "other");
        l2.close();
        assertEquals("other", Files.readString(p));
    }

    @Test
    void dirAndTmpdirCreateRandomPathSockets() throws Exception {
        for (String key : new String[] {"dir", "tmpdir"}) {
            UnixListener l = listen("unix:" + key + "=" + tmp);
            Path f = l.socketFile();
            assertEquals(tmp, f.getParent());
            assertTrue(f.getFileName().toString().matches("dbus-[A-Za-z0-9]{10}"), f.toString());
            assertEquals(UnixAddress.Kind.PATH, l.boundAddress().kind());
            assertEquals("unix:path=" + f + ",guid=" + GUID, l.connectAddress());
            assertEquals(UnixAddress.parse("unix:path=" + f + ",guid=" + GUID),
                    UnixAddress.parse(l.connectAddress()));
            jdkClient(f);
            assertPeerIsThisProcess(awaitAccepted());
        }
        assertEquals(2, listeners.size());
        assertFalse(listeners.get(0).socketFile().equals(listeners.get(1).socketFile()));
    }

    @Test
    void guidFromAddressIsUsedWhenNoneGiven() throws Exception {
        Path p = tmp.resolve("g");
        UnixListener l = UnixListener.bind(UnixAddress.parse("unix:path=" + p + ",guid=" + GUID.toUpperCase()));
        listeners.add(l);
        assertEquals("unix:path=" + p + ",guid=" + GUID, l.connectAddress());
        UnixListener noGuid = UnixListener.bind(UnixAddress.parse("unix:path=" + tmp.resolve("h")));
        listeners.add(noGuid);
        assertEquals("unix:path=" + tmp.resolve("h"), noGuid.connectAddress());
    }

    @Test
    void abstractSocketAcceptsJnrClient() throws Exception {
        String name = "kdbus-bridge-test-" + UUID.randomUUID();
        UnixListener l = listen("unix:abstract=" + name);
        assertNull(l.socketFile());
        assertEquals("unix:abstract=" + name + ",guid=" + GUID, l.connectAddress());
        String procNet = Files.readString(Path.of("/proc/net/unix"));
        assertTrue(procNet.contains("@" + name + "\n"), "abstract name not in /proc/net/unix");

        UnixSocketChannel c = UnixSocketChannel.open(new UnixSocketAddress("\0" + name));
        clients.add(c);
        SocketConnection conn = awaitAccepted();
        assertPeerIsThisProcess(conn);

        // server -> client through the raw fd
        ByteBuffer out = ByteBuffer.allocateDirect(5);
        out.put(new byte[] {9, 8, 7, 6, 5}).flip();
        assertEquals(5, conn.write(out));
        assertFalse(out.hasRemaining());
        ByteBuffer in = ByteBuffer.allocate(5);
        while (in.hasRemaining()) {
            assertTrue(c.read(in) > 0);
        }
        assertEquals(6, in.get(3));

        // a second bind on the same abstract name fails (no unlink semantics for abstract)
        assertThrows(IOException.class, () -> UnixListener.bind(UnixAddress.parse("unix:abstract=" + name)));
    }

    @Test
    void namesLongerThanDbusDaemonAcceptsFailWithItsTexts() throws Exception {
        // dbus-daemon's limits: 99 bytes of path, 98 of abstract name (the kernel takes 107)
        String dir = tmp.toString() + "/";
        String path99 = dir + "p".repeat(99 - dir.length());
        UnixListener ok = UnixListener.bind(UnixAddress.parse("unix:path=" + path99));
        listeners.add(ok);
        assertTrue(Files.exists(Path.of(path99), LinkOption.NOFOLLOW_LINKS));
        IOException e = assertThrows(IOException.class, () -> UnixListener.bind(UnixAddress.parse("unix:path=" + path99 + "q")));
        assertEquals("Socket name too long", e.getMessage());
        assertFalse(Files.exists(Path.of(path99 + "q"), LinkOption.NOFOLLOW_LINKS));

        String abs98 = ("kdbus-" + UUID.randomUUID() + "-").repeat(3).substring(0, 98);
        listeners.add(UnixListener.bind(UnixAddress.parse("unix:abstract=" + abs98)));
        e = assertThrows(IOException.class, () -> UnixListener.bind(UnixAddress.parse("unix:abstract=" + abs98 + "x")));
        assertEquals("Abstract socket name too long", e.getMessage());
    }

    @Test
    void bindFailureCarriesStrerrorTextAsDbusDaemonPrintsIt() throws Exception {
        Path regular = tmp.resolve("taken");
        Files.writeString(regular, "x");
        IOException e = assertThrows(IOException.class, () -> UnixListener.bind(UnixAddress.parse("unix:path=" + regular)));
        assertEquals("Failed to bind socket \"" + regular + "\": Address already in use", e.getMessage());
        Path missing = tmp.resolve("none/bus");
        e = assertThrows(IOException.class, () -> UnixListener.bind(UnixAddress.parse("unix:path=" + missing)));
        assertEquals("Failed to bind socket \"" + missing + "\": No such file or directory", e.getMessage());
    }

    @Test
    void socketFileGivenToAnotherUserIsStillRemovedByClose() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(LibC.INSTANCE.getuid() == 0, "chown needs root");
        UnixListener l = UnixListener.bind(UnixAddress.parse("unix:dir=" + tmp));
        l.giveSocketFileTo(65534, 65534);
        assertEquals(65534, Files.getAttribute(l.socketFile(), "unix:uid", LinkOption.NOFOLLOW_LINKS));
        assertEquals(65534, Files.getAttribute(l.socketFile(), "unix:gid", LinkOption.NOFOLLOW_LINKS));
        l.close();
        assertFalse(Files.exists(l.socketFile(), LinkOption.NOFOLLOW_LINKS));
    }

    @Test
    void acceptHandlerThatThrowsDoesNotBreakListener() throws Exception {
        Path p = tmp.resolve("throwing");
        UnixListener l = UnixListener.bind(UnixAddress.parse("unix:path=" + p));
        listeners.add(l);
        int[] count = {0};
        onLoopRun(loop, () -> l.start(loop, conn -> {
            if (count[0]++ == 0) {
                throw new IllegalStateException("accept boom (expected by test)");
            }
            accepted.add(conn);
        }));
        SocketChannel first = jdkClient(p);
        SocketChannel second = jdkClient(p);
        SocketConnection c2 = awaitAccepted();
        assertPeerIsThisProcess(c2);
        // the first connection was closed by the listener: its client sees EOF
        ByteBuffer b = ByteBuffer.allocate(1);
        assertEquals(-1, first.read(b));
        assertTrue(second.isConnected());
    }

    // ------------------------------------------------------------- adopt

    private static final int F_DUPFD_CLOEXEC = 1030;

    /**
     * A listening socket bound by jnr, handed over as a dup'ed fd. The jnr channel stays open (it
     * is closed in tearDown, via clients): closing it shuts the shared socket down.
     */
    private int listeningFdFromJnr(String address) throws IOException {
        jnr.unixsocket.UnixServerSocketChannel ch = jnr.unixsocket.UnixServerSocketChannel.open();
        clients.add(ch);
        ch.socket().bind(new UnixSocketAddress(address), 16);
        int dup = LibC.INSTANCE.fcntl(ch.getFD(), F_DUPFD_CLOEXEC, 0);
        assertTrue(dup >= 0, "dup failed");
        // clear CLOEXEC so adopt() has to set it, as with a socket systemd passed
        assertEquals(0, LibC.INSTANCE.fcntl(dup, LibC.F_SETFD, 0));
        return dup;
    }

    private UnixListener adoptAndStart(int fd) throws Exception {
        UnixListener l = UnixListener.adopt(fd, GUID);
        listeners.add(l);
        onLoopRun(loop, () -> l.start(loop, accepted::add));
        return l;
    }

    @Test
    void adoptedPathSocketReportsItsAddressAndAccepts() throws Exception {
        Path p = tmp.resolve("activated");
        int fd = listeningFdFromJnr(p.toString());
        assertEquals(0, LibC.INSTANCE.fcntl(fd, LibC.F_GETFL, 0) & LibC.O_NONBLOCK, "precondition: blocking");
        UnixListener l = adoptAndStart(fd);
        assertEquals(fd, l.fd());
        assertEquals("unix:path=" + p + ",guid=" + GUID, l.connectAddress());
        assertEquals(UnixAddress.Kind.SYSTEMD, l.requestedAddress().kind());
        assertNull(l.socketFile(), "an adopted socket's file is not ours");
        assertNonBlockingCloexec(fd);

        SocketChannel c = jdkClient(p);
        SocketConnection conn = awaitAccepted();
        assertPeerIsThisProcess(conn);
        c.write(ByteBuffer.wrap(new byte[] {7}));
        ByteBuffer in = ByteBuffer.allocateDirect(4);
        TestSupport.waitUntil("1 byte", () -> {
            try {
                conn.read(in);
            } catch (IOException e) {
                throw new AssertionError(e);
            }
            return in.position() == 1;
        });
        assertEquals(7, in.get(0));

        onLoopRun(loop, l::close);
        assertTrue(Files.exists(p, LinkOption.NOFOLLOW_LINKS), "close() must not unlink a socket it did not create");
        assertTrue(LibC.INSTANCE.fcntl(fd, LibC.F_GETFD, 0) < 0, "adopted fd is closed by close()");
    }

    @Test
    void adoptedAbstractSocketReportsAbstractAddress() throws Exception {
        String name = "kdbus-adopt-test-" + UUID.randomUUID();
        int fd = listeningFdFromJnr("\0" + name);
        UnixListener l = adoptAndStart(fd);
        assertEquals("unix:abstract=" + name + ",guid=" + GUID, l.connectAddress());
        try (UnixSocketChannel c = UnixSocketChannel.open(new UnixSocketAddress("\0" + name))) {
            assertTrue(c.isConnected());
            assertPeerIsThisProcess(awaitAccepted());
        }
    }

    @Test
    void adoptRejectsWhatIsNotAListeningUnixStreamSocket() throws Exception {
        int efd = LibC.INSTANCE.eventfd(0, LibC.EFD_CLOEXEC);
        assertTrue(efd >= 0);
        try {
            IOException e = assertThrows(IOException.class, () -> UnixListener.adopt(efd, GUID));
            assertTrue(e.getMessage().contains("not a usable socket"), e.getMessage());
            assertTrue(LibC.INSTANCE.fcntl(efd, LibC.F_GETFD, 0) >= 0, "a rejected fd stays open for the caller");
        } finally {
            LibC.INSTANCE.close(efd);
        }
        try (jnr.unixsocket.UnixSocketChannel unconnected = jnr.unixsocket.UnixSocketChannel.open()) {
            IOException e = assertThrows(IOException.class, () -> UnixListener.adopt(unconnected.getFD(), GUID));
            assertTrue(e.getMessage().contains("not listening"), e.getMessage());
        }
        assertThrows(IOException.class, () -> UnixListener.adopt(-1, GUID));
    }

    @Test
    void bindRefusesSystemdAddress() {
        assertThrows(UnixAddress.BadAddressException.class, () -> UnixListener.bind(UnixAddress.parse("systemd:"), GUID));
    }
}
