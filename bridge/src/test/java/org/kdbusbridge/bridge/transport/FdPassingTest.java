// Invariants under test: fds sent with writeWithFds arrive through readWithFds with their bytes,
// usable and close-on-exec; a plain control-less exchange reports no fds; every fd a test opens
// is closed by the test (the pair helpers close in finally).
package org.kdbusbridge.bridge.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class FdPassingTest {
    private static final LibC LIBC = LibC.INSTANCE;
    private final List<Integer> open = new ArrayList<>();

    private int[] pair() {
        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        assertEquals(0, LIBC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, LibC.Native.address(sv)));
        int[] p = {sv.getInt(0), sv.getInt(4)};
        open.add(p[0]);
        open.add(p[1]);
        return p;
    }

    @AfterEach
    void closeAll() {
        for (int fd : open) {
            LIBC.close(fd);
        }
    }

    private static ByteBuffer direct(String s) {
        ByteBuffer b = ByteBuffer.allocateDirect(s.length());
        b.put(s.getBytes()).flip();
        return b;
    }

    @Test
    void fdsTravelWithTheFirstByteAndStayUsable() throws Exception {
        int[] link = pair();
        int[] payload = pair(); // we pass payload[0]; writing into it shows up on payload[1]
        SocketConnection sender = new SocketConnection(link[0], new PeerCredentials(0, 0, 0));
        SocketConnection receiver = new SocketConnection(link[1], new PeerCredentials(0, 0, 0));
        assertEquals(5, sender.writeWithFds(direct("hello"), new int[] {payload[0], payload[0]}, 2));
        List<Integer> got = new ArrayList<>();
        ByteBuffer in = ByteBuffer.allocateDirect(64);
        assertEquals(5, receiver.readWithFds(in, got::add));
        open.addAll(got);
        assertEquals(2, got.size(), "both fds arrive");
        assertTrue(got.get(0) != payload[0] && got.get(0) != got.get(1), "new numbers: dup'ed by the kernel");
        assertEquals(LibC.FD_CLOEXEC, LIBC.fcntl(got.get(0), LibC.F_GETFD, 0) & LibC.FD_CLOEXEC, "MSG_CMSG_CLOEXEC");
        ByteBuffer msg = direct("via-fd");
        assertEquals(6, LIBC.write(got.get(1), LibC.Native.address(msg), 6));
        ByteBuffer back = ByteBuffer.allocateDirect(16);
        assertEquals(6, LIBC.read(payload[1], LibC.Native.address(back), 16));
        byte[] b = new byte[6];
        back.get(b);
        assertEquals("via-fd", new String(b));
    }

    @Test
    void bytesWithoutFdsReportNone() throws Exception {
        int[] link = pair();
        SocketConnection sender = new SocketConnection(link[0], new PeerCredentials(0, 0, 0));
        SocketConnection receiver = new SocketConnection(link[1], new PeerCredentials(0, 0, 0));
        assertEquals(3, sender.write(direct("abc")));
        List<Integer> got = new ArrayList<>();
        ByteBuffer in = ByteBuffer.allocateDirect(64);
        assertEquals(3, receiver.readWithFds(in, got::add));
        assertTrue(got.isEmpty());
        assertEquals(3, in.position());
    }
}
