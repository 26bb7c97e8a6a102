// Invariants under test: a client whose fds arrived with the first bytes of a message it never
// completes is disconnected after pending_fd_timeout, and the bus closes its copies of those fds
// (proved by EOF on the far end of the passed socket, which only comes once every copy is closed).
// Blocking reads stand in for waits; @Timeout bounds them.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.PeerCredentials;
import org.kdbusbridge.bridge.transport.SocketConnection;

import jnr.unixsocket.UnixSocketAddress;
import jnr.unixsocket.UnixSocketChannel;

class PendingFdTimeoutTest {
    private static final LibC LIBC = LibC.INSTANCE;

    @TempDir
    Path dir;

    private static ByteBuffer direct(byte[] b) {
        ByteBuffer d = ByteBuffer.allocateDirect(b.length);
        d.put(b).flip();
        return d;
    }

    @Test
    @Timeout(value = 20, unit = TimeUnit.SECONDS)
    void halfSentMessageWithFdsIsDisconnectedAndItsFdsClosed() throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().pendingFdTimeout = 300;
        BusServer server = new BusServer(config);
        server.start();
        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        assertEquals(0, LIBC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, LibC.Native.address(sv)));
        int keep = sv.getInt(0);
        int passed = sv.getInt(4);
        try (UnixSocketChannel ch = UnixSocketChannel.open(new UnixSocketAddress(dir.resolve("bus").toFile()))) {
            SocketConnection c = new SocketConnection(ch.getFD(), new PeerCredentials(0, 0, 0));
            String uid = Long.toString(new com.sun.security.auth.module.UnixSystem().getUid());
            StringBuilder hex = new StringBuilder();
            for (byte b : uid.getBytes(StandardCharsets.US_ASCII)) {
                hex.append(String.format("%02x", b));
            }
            byte[] sasl = ("\0AUTH EXTERNAL " + hex + "\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n").getBytes(StandardCharsets.US_ASCII);
            byte[] hello = MessageBuilder.build(1, 0, 1, "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello",
                    null, null, "org.freedesktop.DBus", null, null, null);
            c.write(direct(sasl));
            c.write(direct(hello));
            // The first 12 bytes of a message, with an fd: the rest never comes.
            assertEquals(12, c.writeWithFds(direct(java.util.Arrays.copyOf(hello, 12)), new int[] {passed}, 1));
            LIBC.close(passed);

            ByteBuffer in = ByteBuffer.allocateDirect(4096);
            List<Integer> fdsBack = new ArrayList<>();
            StringBuilder got = new StringBuilder();
            int n;
            while ((n = c.readWithFds(in, fdsBack::add)) >= 0) { // blocks until the bus hangs up
                in.flip();
                byte[] b = new byte[in.remaining()];
                in.get(b);
                got.append(new String(b, StandardCharsets.ISO_8859_1));
                in.clear();
            }
            assertTrue(got.toString().contains("AGREE_UNIX_FD"), got.toString());
            assertTrue(fdsBack.isEmpty());
            ByteBuffer one = ByteBuffer.allocateDirect(1);
            assertEquals(0, LIBC.read(keep, LibC.Native.address(one), 1), "EOF: the bus closed its copy of the fd");
        } finally {
            LIBC.close(keep);
            server.stop();
        }
    }
}
