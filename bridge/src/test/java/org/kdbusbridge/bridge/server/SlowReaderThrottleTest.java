// Invariants under test (issue 14): a slow reader whose output is written from the loop's scratch
// (more slow readers than lendable I/O buffers) is throttled, not closed: it stays connected,
// its unsent messages stay in its receive pool (charged there), no heap is held for them (the
// input-heap budget is set so small that the old output carry would have closed the second such
// reader), and once it reads, every message arrives complete, in order and byte-exact: small
// ones cut anywhere by the socket, a zero-copy one among them, and messages carrying a unix fd
// (which arrives with its message and still works). State is read on the loop thread; waits are
// conditions with deadlines; blocking reads are bounded by @Timeout.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.core.bus.UserQuota;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.QueueQuota;


@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SlowReaderThrottleTest {
    private static final LibC LIBC = LibC.INSTANCE;
    private static final String IFACE = FdClient.IFACE;
    /** Messages per reader: ~800 KiB each, far past a socket's buffer. */
    private static final int COUNT = 200;
    /** The index of the zero-copy message every reader gets. */
    private static final int BIG_AT = 100;
    private static final int BIG = 100 * 1024;
    /** Every FD_EVERY-th message to the fd reader carries a unix fd. */
    private static final int FD_EVERY = 20;
    /** Room for one ~64 KiB output carry per uid, not two: the old close path would have fired. */
    private static final long PER_UID_HEAP = 100 * 1024;

    @TempDir
    Path dir;

    private BusServer server;
    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : open) {
            c.close();
        }
        if (server != null) {
            server.stop();
        }
    }

    private <T> T onLoop(Supplier<T> s) throws Exception {
        return OnLoop.get(server, s);
    }

    private void awaitOnLoop(String what, BooleanSupplier condition) throws Exception {
        OnLoop.await(server, what, 20, condition);
    }

    private static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + n);
        }
        return b;
    }

    private static boolean carriesFd(boolean fdReader, int i) {
        return fdReader && i != BIG_AT && i % FD_EVERY == 0;
    }

    /** The body of message {@code i}: its index first, so order shows in the bytes. */
    private static byte[] body(boolean fdReader, int i) {
        if (i == BIG_AT) {
            return new BodyWriter(BIG + 64).writeUint32(i).writeByteArray(pattern(BIG)).toByteArray();
        }
        BodyWriter w = new BodyWriter().writeUint32(i);
        if (carriesFd(fdReader, i)) {
            w.writeUnixFd(0);
        }
        return w.writeByteArray(pattern(4000 + i)).toByteArray();
    }

    private static String signature(boolean fdReader, int i) {
        return carriesFd(fdReader, i) ? "uhay" : "uay";
    }

    @Test
    void slowReadersPastTheLendableBuffersAreThrottledNotClosed() throws Exception {
        UserQuota quota = new UserQuota(1 << 20, 1 << 21, UserQuota.MATCH_RULE_BASE, UserQuota.NAME_ENTRY_BASE,
                QueueQuota.UNLIMITED, PER_UID_HEAP, 4 * PER_UID_HEAP);
        TransportSettings transport = TransportSettings.fromSystemProperties().withIoBuffers(2)
                .withZeroCopyThreshold(TransportSettings.ZERO_COPY_SIZE);
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")), quota, transport);
        server.start();
        Path socket = dir.resolve("bus");

        FdClient sender = new FdClient(socket);
        open.add(sender);
        List<RawClient> lentHolders = new ArrayList<>(); // they stall first and keep the two buffers
        List<RawClient> scratchReaders = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            RawClient r = RawClient.open(socket);
            open.add(r);
            (i < 2 ? lentHolders : scratchReaders).add(r);
        }
        FdClient fdReader = new FdClient(socket);
        open.add(fdReader);
        List<String> all = new ArrayList<>();
        lentHolders.forEach(r -> all.add(r.uniqueName));
        scratchReaders.forEach(r -> all.add(r.uniqueName));
        all.add(fdReader.uniqueName);
        sender.ping();
        long idleHeap = onLoop(() -> server.inputHeap().total());

        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        assertEquals(0, LIBC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, LibC.Native.address(sv)));
        int keep = sv.getInt(0);
        int passed = sv.getInt(4);
        try {
            // Phase 1: two readers that never read take both lendable buffers and keep them.
            for (RawClient r : lentHolders) {
                for (int i = 0; i < COUNT; i++) {
                    sender.send(r.uniqueName, signature(false, i), body(false, i), null);
                }
            }
            awaitOnLoop("both buffers held by stalled readers", () -> server.buffers().ioLent() == 2);
            // Phase 2: four more slow readers, interleaved; none can be lent a buffer.
            long refusedBefore = onLoop(() -> server.buffers().ioRefusedCount());
            for (int i = 0; i < COUNT; i++) {
                for (RawClient r : scratchReaders) {
                    sender.send(r.uniqueName, signature(false, i), body(false, i), null);
                }
                sender.send(fdReader.uniqueName, signature(true, i), body(true, i),
                        carriesFd(true, i) ? new int[] {passed} : null);
            }
            sender.ping(); // everything above has been routed
            assertTrue(onLoop(() -> server.buffers().ioRefusedCount()) > refusedBefore, "the scratch was used");
            assertEquals(2, (int) onLoop(() -> server.buffers().ioLent()), "no third buffer was lent");
            for (String name : all) {
                Connection c = onLoop(() -> server.bus().resolve(name));
                assertNotNull(c, name + " is still connected");
                assertTrue(onLoop(() -> c.pool().bytes()) > 0, name + "'s unsent messages wait in its pool");
            }
            long heap = onLoop(() -> server.inputHeap().total());
            // Only small carry arrays any session keeps (<= InputAssembler.CARRY_KEEP each).
            assertTrue(heap <= idleHeap + 8L * InputAssembler.CARRY_KEEP,
                    "no heap held for unsent output: " + heap + " bytes, " + idleHeap + " when idle");
            long buffers = onLoop(server::sessionBufferBytes);
            assertTrue(buffers <= 2L * DirectBuffers.IO_BUFFER + 8L * InputAssembler.CARRY_KEEP,
                    "only the two lent buffers are held: " + buffers);

            // The scratch readers read first (the two buffers are still lent: they are written
            // from the scratch throughout), then the buffer holders.
            for (RawClient r : scratchReaders) {
                readAll(r);
            }
            readAllWithFds(fdReader, keep);
            for (RawClient r : lentHolders) {
                readAll(r);
            }
            for (String name : all) {
                Connection c = onLoop(() -> server.bus().resolve(name));
                assertNotNull(c, name + " is still connected");
                awaitOnLoop(name + "'s pool drained", () -> c.pool().isEmpty());
            }
            awaitOnLoop("every buffer back", () -> server.buffers().ioLent() == 0);
            assertTrue(onLoop(() -> server.inputHeap().total()) <= idleHeap + 8L * InputAssembler.CARRY_KEEP);
            sender.ping();
        } finally {
            LIBC.close(passed);
            LIBC.close(keep);
        }
    }

    private void readAll(RawClient r) throws Exception {
        for (int i = 0; i < COUNT; i++) {
            Msg m = r.read();
            assertEquals("M", m.member(), r.uniqueName + " message " + i + ": " + m);
            byte[] got = Arrays.copyOfRange(m.frame(), m.bodyOffset(), m.bodyOffset() + m.bodyLength());
            assertArrayEquals(body(false, i), got, r.uniqueName + " message " + i + " byte for byte");
        }
        assertEquals(0, r.sync(), "nothing more for " + r.uniqueName);
    }

    private void readAllWithFds(FdClient r, int keep) throws Exception {
        int fdMessages = 0;
        for (int i = 0; i < COUNT; i++) {
            MessageHeader h = r.next();
            assertEquals("M", h.member(), "fd reader message " + i);
            byte[] got = new byte[(int) h.bodyLength()];
            h.buffer().get(h.bodyOffset(), got);
            assertArrayEquals(body(true, i), got, "fd reader message " + i + " byte for byte");
            if (carriesFd(true, i)) {
                assertEquals(1, h.unixFds(), "message " + i + " says it carries a fd");
                fdMessages++;
                assertTrue(r.fds.size() >= fdMessages, "message " + i + "'s fd arrived no later than it");
                // It is the far end of our socketpair: what is written to it reaches keep.
                int fd = r.fds.get(fdMessages - 1);
                ByteBuffer ping = ByteBuffer.allocateDirect(1).put(0, (byte) i);
                assertEquals(1, LIBC.write(fd, LibC.Native.address(ping), 1));
                ByteBuffer pong = ByteBuffer.allocateDirect(1);
                assertEquals(1, LIBC.read(keep, LibC.Native.address(pong), 1));
                assertEquals((byte) i, pong.get(0));
            } else {
                assertEquals(0, h.unixFds(), "message " + i + " carries no fd");
            }
        }
        assertEquals(fdMessages, r.fds.size(), "exactly one fd per fd-carrying message");
        assertTrue(fdMessages >= COUNT / FD_EVERY - 1);
    }

    // --- a blocking client on a jnr socket, through SocketConnection (fds in and out) --------


}
