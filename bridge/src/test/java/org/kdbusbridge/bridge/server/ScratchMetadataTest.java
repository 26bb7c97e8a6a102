// Invariants under test (issue 17 with issue 14's throttled output): a receiver with an
// AttachMetadata set whose output goes through the loop's output scratch (no I/O buffer can be
// lent: ioBuffers 0) and that stalls gets, once it reads, every message complete, in order, with
// header field 107 (seq strictly increasing, the sender's creds), bodies byte for byte: small ones
// cut anywhere by the socket, messages with a unix fd (which arrives with its message and works)
// and a 1 MiB one (rendered, so not zero-copy, and longer than the scratch). And when
// AttachMetadata is switched on while the pool's head is half sent raw (from the scratch, or from
// the zero-copy view of a direct payload), that head ends raw and every message after it carries
// the field. Waits are conditions with deadlines; blocking reads are bounded by @Timeout.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.core.connection.Connection;

@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ScratchMetadataTest {
    private static final LibC LIBC = LibC.INSTANCE;
    private static final String EXT = "org.kdbusbridge.Extensions1";
    /** Messages to the stalled reader: ~4 KiB each, one of BIG bytes, far past a socket's buffer. */
    private static final int COUNT = 200;
    private static final int BIG_AT = 100;
    private static final int BIG = 1 << 20;
    private static final int FD_EVERY = 20;

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

    /** A bus that lends no I/O buffer: every flush goes through the loop's output scratch. */
    private Path start(int zeroCopyThreshold) throws Exception {
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")),
                TransportSettings.fromSystemProperties().withIoBuffers(0).withZeroCopyThreshold(zeroCopyThreshold));
        server.start();
        return dir.resolve("bus");
    }

    private <T> T onLoop(Supplier<T> s) throws Exception {
        return OnLoop.get(server, s);
    }

    private void awaitOnLoop(String what, BooleanSupplier condition) throws Exception {
        OnLoop.await(server, what, 20, condition);
    }

    private static byte[] strings(String... items) {
        BodyWriter w = new BodyWriter().beginArray('s');
        for (String s : items) {
            w.writeString(s);
        }
        return w.endArray().toByteArray();
    }

    private static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + n);
        }
        return b;
    }

    private static boolean carriesFd(int i) {
        return i != BIG_AT && i % FD_EVERY == 0;
    }

    private static byte[] body(int i) {
        BodyWriter w = new BodyWriter(i == BIG_AT ? BIG + 64 : 8192).writeUint32(i);
        if (carriesFd(i)) {
            w.writeUnixFd(0);
        }
        return w.writeByteArray(pattern(i == BIG_AT ? BIG : 4000 + i)).toByteArray();
    }

    private static byte[] frameOf(MessageHeader h) {
        byte[] f = new byte[h.length()];
        h.buffer().get(h.offset(), f);
        return f;
    }

    @Test
    void aStalledOptedInReaderOnTheScratchGetsEveryMessageWholeWithTheField() throws Exception {
        Path socket = start(TransportSettings.ZERO_COPY_SIZE);
        FdClient sender = new FdClient(socket);
        open.add(sender);
        FdClient reader = new FdClient(socket);
        open.add(reader);
        long s = ++reader.serial;
        reader.writeAll(FdClient.frame(s, 0, RawClient.BUS_PATH, EXT, "AttachMetadata", RawClient.BUS,
                "as", strings("seq", "creds"), 0), null);
        MessageHeader ok = reader.next();
        assertEquals(WireFormat.METHOD_RETURN, ok.type());
        assertEquals(s, ok.replySerial());
        Connection rc = onLoop(() -> server.bus().resolve(reader.uniqueName));

        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        assertEquals(0, LIBC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, LibC.Native.address(sv)));
        int keep = sv.getInt(0);
        int passed = sv.getInt(4);
        try {
            long refusedBefore = onLoop(() -> server.buffers().ioRefusedCount());
            for (int i = 0; i < COUNT; i++) {
                sender.send(reader.uniqueName, carriesFd(i) ? "uhay" : "uay", body(i),
                        carriesFd(i) ? new int[] {passed} : null);
            }
            sender.ping(); // all routed, and the reader's flush tried
            assertTrue(onLoop(() -> server.buffers().ioRefusedCount()) > refusedBefore, "written from the scratch");
            assertEquals(0, (int) onLoop(() -> server.buffers().ioLent()), "no buffer lent");
            assertTrue(onLoop(() -> rc.pool().messages()) > 0, "the stalled reader's messages wait in its pool");

            long lastSeq = 0;
            int fdMessages = 0;
            for (int i = 0; i < COUNT; i++) {
                MessageHeader h = reader.next();
                assertEquals("M", h.member(), "message " + i);
                byte[] got = new byte[(int) h.bodyLength()];
                h.buffer().get(h.bodyOffset(), got);
                assertArrayEquals(body(i), got, "message " + i + " byte for byte");
                Map<String, Object> f = MetadataFields.find(frameOf(h));
                assertNotNull(f, "message " + i + " carries the field");
                long seq = (Long) f.get("seq");
                assertTrue(seq > lastSeq, "in order: message " + i + " seq " + seq + " after " + lastSeq);
                lastSeq = seq;
                assertEquals(ProcessHandle.current().pid(), f.get("pid"), f.toString());
                assertEquals(RawClient.myUid(), f.get("uid"), f.toString());
                if (carriesFd(i)) {
                    assertEquals(1, h.unixFds(), "message " + i + " says it carries a fd");
                    fdMessages++;
                    assertTrue(reader.fds.size() >= fdMessages, "message " + i + "'s fd arrived no later than it");
                    int fd = reader.fds.get(fdMessages - 1);
                    ByteBuffer ping = ByteBuffer.allocateDirect(1).put(0, (byte) i);
                    assertEquals(1, LIBC.write(fd, LibC.Native.address(ping), 1));
                    ByteBuffer pong = ByteBuffer.allocateDirect(1);
                    assertEquals(1, LIBC.read(keep, LibC.Native.address(pong), 1));
                    assertEquals((byte) i, pong.get(0), "message " + i + "'s fd is the one sent");
                } else {
                    assertEquals(0, h.unixFds(), "message " + i);
                }
            }
            assertEquals(fdMessages, reader.fds.size(), "exactly one fd per fd-carrying message");
            assertEquals(COUNT / FD_EVERY - 1, fdMessages, "every 20th but the big one");
            awaitOnLoop("the reader's pool drained", () -> rc.pool().isEmpty());
            long held = onLoop(() -> server.inputHeap().used(RawClient.myUid()));
            assertTrue(held < BIG, "the 1 MiB rendered copy's charge went back: " + held);
            sender.ping();
        } finally {
            LIBC.close(passed);
            LIBC.close(keep);
        }
    }

    /**
     * {@code zeroCopyThreshold}: 64 KiB makes the 6 MiB head a direct payload, sent raw from its
     * zero-copy view; 8 MiB makes it a heap payload, sent raw from the scratch.
     */
    @ParameterizedTest
    @ValueSource(ints = {TransportSettings.ZERO_COPY_SIZE, 8 << 20})
    void attachSwitchedOnWhileAHeadIsHalfSentRawEndsItRawAndTheRestCarryTheField(int zeroCopyThreshold)
            throws Exception {
        Path socket = start(zeroCopyThreshold);
        RawClient sender = RawClient.open(socket);
        open.add(sender);
        RawClient reader = RawClient.open(socket);
        open.add(reader);
        Connection rc = onLoop(() -> server.bus().resolve(reader.uniqueName));
        byte[] head = new BodyWriter((6 << 20) + 64).writeUint32(0).writeByteArray(pattern(6 << 20)).toByteArray();
        sender.signal(reader.uniqueName, "/s", "org.kdbusbridge.Scratch", "Head", "uay", head);
        sender.sync(); // routed; the reader's socket took what fits (far less than 6 MiB: its send buffer grows to 2 MiB at most) and stalls
        assertEquals(1, (int) onLoop(() -> rc.pool().messages()), "the head waits, half sent");

        long s = reader.call(0, RawClient.BUS, RawClient.BUS_PATH, EXT, "AttachMetadata", "as", strings("seq"));
        awaitOnLoop("AttachMetadata handled", () -> rc.attachedMetadata() != 0);
        byte[] small = new BodyWriter().writeUint32(1).writeByteArray(pattern(3000)).toByteArray();
        byte[] large = new BodyWriter(100 * 1024 + 64).writeUint32(2).writeByteArray(pattern(100 * 1024)).toByteArray();
        sender.signal(reader.uniqueName, "/s", "org.kdbusbridge.Scratch", "Small", "uay", small);
        sender.signal(reader.uniqueName, "/s", "org.kdbusbridge.Scratch", "Large", "uay", large);
        sender.sync();

        Msg h = reader.read();
        assertEquals("Head", h.member(), h.toString());
        assertNull(MetadataFields.find(h.frame()), "a head begun raw ends raw");
        assertArrayEquals(head, Arrays.copyOfRange(h.frame(), h.bodyOffset(), h.bodyOffset() + h.bodyLength()));
        Msg reply = reader.read();
        assertEquals(WireFormat.METHOD_RETURN, reply.type(), reply.toString());
        assertEquals(s, reply.replySerial());
        Map<String, Object> f = MetadataFields.find(reply.frame());
        assertNotNull(f, "the AttachMetadata reply, queued behind the head, carries the field");
        long lastSeq = (Long) f.get("seq");
        for (Object[] want : new Object[][] {{"Small", small}, {"Large", large}}) {
            Msg m = reader.read();
            assertEquals(want[0], m.member(), m.toString());
            assertArrayEquals((byte[]) want[1], Arrays.copyOfRange(m.frame(), m.bodyOffset(), m.bodyOffset() + m.bodyLength()),
                    m.member() + " intact");
            Map<String, Object> mf = MetadataFields.find(m.frame());
            assertNotNull(mf, m.member() + " carries the field");
            assertTrue((Long) mf.get("seq") > lastSeq, m.member() + " in order");
            lastSeq = (Long) mf.get("seq");
        }
        assertEquals(0, reader.sync(), "nothing more");
    }
}
