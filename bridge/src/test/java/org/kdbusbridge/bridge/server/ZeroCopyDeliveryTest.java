// Invariants under test: messages at or above TransportSettings.ZERO_COPY_SIZE are written to
// every receiver straight from the one shared direct payload (issue 5), and still arrive intact:
// byte-for-byte, in order with the small messages around them, matchable on their args, and a
// large unicast carrying fds delivers those fds (on its first byte) to the receiver.
// Real sockets against a real BusServer; blocking reads stand in for waits; @Timeout bounds them.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.TransportSettings;


class ZeroCopyDeliveryTest {
    /** The default zero-copy threshold, whatever -Dkdbus.zeroCopyThreshold says. */
    private static final TransportSettings SETTINGS =
            TransportSettings.fromSystemProperties().withZeroCopyThreshold(TransportSettings.ZERO_COPY_SIZE);

    private static final LibC LIBC = LibC.INSTANCE;
    private static final String IFACE = "org.kdbusbridge.ZeroCopy";
    private static final int BIG = 1 << 20;

    @TempDir
    Path dir;

    private BusServer server;
    private final List<AutoCloseable> open = new ArrayList<>();

    private Path start() throws Exception {
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")), SETTINGS);
        server.start();
        return dir.resolve("bus");
    }

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : open) {
            c.close();
        }
        if (server != null) {
            server.stop();
        }
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] body(Msg m) {
        return Arrays.copyOfRange(m.frame(), m.bodyOffset(), m.bodyOffset() + m.bodyLength());
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void largeBroadcastReachesEveryReceiverIntactAndInOrder() throws Exception {
        Path socket = start();
        assertTrue(BIG >= TransportSettings.ZERO_COPY_SIZE, "the large messages must take the zero-copy path");
        List<RawClient> receivers = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            RawClient r = RawClient.open(socket);
            open.add(r);
            // receiver 0 also proves arg matching works on a direct payload
            r.addMatch(i == 0 ? "type='signal',interface='" + IFACE + "',arg0='wanted'"
                    : "type='signal',interface='" + IFACE + "'");
            receivers.add(r);
        }
        RawClient sender = RawClient.open(socket);
        open.add(sender);

        byte[] big1 = new BodyWriter(BIG + 64).writeString("wanted").writeByteArray(random(BIG, 1)).toByteArray();
        byte[] small = new BodyWriter().writeString("small").writeByteArray(random(100, 2)).toByteArray();
        byte[] big2 = new BodyWriter(BIG + 64).writeString("other").writeByteArray(random(BIG + 13, 3)).toByteArray();
        byte[] exact = new BodyWriter().writeString("edge").writeByteArray(
                random(TransportSettings.ZERO_COPY_SIZE, 4)).toByteArray();
        sender.signal(null, "/z", IFACE, "Big", "say", big1);
        sender.signal(null, "/z", IFACE, "Small", "say", small);
        sender.signal(null, "/z", IFACE, "Big", "say", big2);
        sender.signal(null, "/z", IFACE, "Edge", "say", exact);
        sender.signal(null, "/z", IFACE, "Small", "say", small);

        for (int i = 1; i < receivers.size(); i++) {
            RawClient r = receivers.get(i);
            byte[][] expected = {big1, small, big2, exact, small};
            String[] members = {"Big", "Small", "Big", "Edge", "Small"};
            for (int k = 0; k < expected.length; k++) {
                Msg m = r.read();
                assertTrue(m.isSignal(members[k]), "receiver " + i + " message " + k + ": " + m);
                assertEquals(sender.uniqueName, m.sender(), m.toString());
                assertEquals("say", m.signature());
                assertArrayEquals(expected[k], body(m), "receiver " + i + " message " + k + " body");
            }
            assertEquals(0, r.sync(), "nothing more for receiver " + i);
        }
        Msg m = receivers.get(0).read();
        assertTrue(m.isSignal("Big"), m.toString());
        assertArrayEquals(big1, body(m), "arg0-matched large signal");
        assertEquals(0, receivers.get(0).sync(), "only the arg0='wanted' signal matched");
    }

    // --- a client that passes and receives fds -------------------------------------------


    /** A little-endian message with an optional UNIX_FDS field (MessageBuilder has none). */
    private static byte[] frame(int type, int flags, long serial, String path, String iface, String member,
                                String destination, String signature, byte[] body, int unixFds) {
        if (body == null) {
            body = new byte[0];
        }
        BodyWriter w = new BodyWriter(128 + body.length);
        w.writeByte(WireFormat.LITTLE_ENDIAN).writeByte(type).writeByte(flags).writeByte(WireFormat.PROTOCOL_VERSION);
        w.writeUint32(body.length).writeUint32(serial);
        w.beginArray('(');
        w.beginStruct().writeByte(WireFormat.PATH).writeVariant("o").writeObjectPath(path).endStruct();
        if (iface != null) {
            w.beginStruct().writeByte(WireFormat.INTERFACE).writeVariant("s").writeString(iface).endStruct();
        }
        w.beginStruct().writeByte(WireFormat.MEMBER).writeVariant("s").writeString(member).endStruct();
        w.beginStruct().writeByte(WireFormat.DESTINATION).writeVariant("s").writeString(destination).endStruct();
        if (signature != null) {
            w.beginStruct().writeByte(WireFormat.SIGNATURE).writeVariant("g").writeSignature(signature).endStruct();
        }
        if (unixFds > 0) {
            w.beginStruct().writeByte(WireFormat.UNIX_FDS).writeVariant("u").writeUint32(unixFds).endStruct();
        }
        w.endArray();
        w.padTo(8);
        w.writeRaw(body);
        return w.toByteArray();
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void largeUnicastWithFdsDeliversItsFds() throws Exception {
        Path socket = start();
        FdClient sender = new FdClient(socket);
        open.add(sender);
        FdClient receiver = new FdClient(socket);
        open.add(receiver);

        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        assertEquals(0, LIBC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, LibC.Native.address(sv)));
        int keep = sv.getInt(0);
        int passed = sv.getInt(4);
        byte[] payload = random(BIG, 5);
        for (int round = 0; round < 2; round++) { // twice: the second follows a zero-copy message
            byte[] body = new BodyWriter(BIG + 64).writeUnixFd(0).writeByteArray(payload).toByteArray();
            byte[] msg = frame(WireFormat.METHOD_CALL, WireFormat.NO_REPLY_EXPECTED, 10 + round, "/z", IFACE, "Big",
                    receiver.uniqueName, "hay", body, 1);
            assertTrue(msg.length >= TransportSettings.ZERO_COPY_SIZE);
            sender.writeAll(msg, new int[] {passed});

            int fdsBefore = receiver.fds.size();
            MessageHeader got = receiver.next();
            assertEquals("Big", got.member());
            assertEquals(sender.uniqueName, got.sender());
            assertEquals(1, got.unixFds());
            assertEquals(fdsBefore + 1, receiver.fds.size(), "the message's fd arrived with it");
            byte[] gotBody = new byte[(int) got.bodyLength()];
            got.buffer().get(got.bodyOffset(), gotBody);
            assertArrayEquals(body, gotBody, "body byte-for-byte");

            // The received fd is the far end of our socketpair: what is written to it reaches keep.
            int fd = receiver.fds.get(fdsBefore);
            ByteBuffer ping = ByteBuffer.allocateDirect(1).put(0, (byte) ('a' + round));
            assertEquals(1, LIBC.write(fd, LibC.Native.address(ping), 1));
            ByteBuffer pong = ByteBuffer.allocateDirect(1);
            assertEquals(1, LIBC.read(keep, LibC.Native.address(pong), 1));
            assertEquals((byte) ('a' + round), pong.get(0));
        }
        LIBC.close(passed);
        LIBC.close(keep);
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void aReceiverOfLargeMessagesGetsABiggerSocketBuffer() throws Exception {
        long wmemMax = Long.parseLong(java.nio.file.Files.readAllLines(Path.of("/proc/sys/net/core/wmem_max")).get(0).trim());
        org.junit.jupiter.api.Assumptions.assumeTrue(wmemMax >= SETTINGS.largeSendBuffer(),
                "net.core.wmem_max " + wmemMax + " caps SO_SNDBUF below the request");
        Path socket = start();
        FdClient sender = new FdClient(socket);
        open.add(sender);
        FdClient receiver = new FdClient(socket); // never reads below: the kernel holds what it took
        open.add(receiver);
        byte[] body = new BodyWriter(BIG + 64).writeByteArray(random(BIG, 9)).toByteArray();
        byte[] msg = frame(WireFormat.METHOD_CALL, WireFormat.NO_REPLY_EXPECTED, 20, "/z", IFACE, "Big",
                receiver.uniqueName, "ay", body, 0);
        sender.writeAll(msg, null);
        // The kernel's default buffer (~208 KiB) would hold a fifth of it; the grown one all of it.
        ByteBuffer queued = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        int fd = receiver.ch.getFD();
        while (true) {
            assertEquals(0, LIBC.ioctl(fd, LibC.FIONREAD, LibC.Native.address(queued)));
            if (queued.getInt(0) > msg.length) { // its SENDER field makes it a little longer
                break;
            }
            assertTrue(System.nanoTime() < deadline, "queued " + queued.getInt(0) + " of " + msg.length);
            Thread.onSpinWait();
        }
        MessageHeader got = receiver.next();
        assertEquals("Big", got.member());
        byte[] gotBody = new byte[(int) got.bodyLength()];
        got.buffer().get(got.bodyOffset(), gotBody);
        assertArrayEquals(body, gotBody);
    }

    // --- large frames read in place: the reservation that bounds them ----------------------

    private long reserved() throws Exception {
        java.util.concurrent.CompletableFuture<Long> f = new java.util.concurrent.CompletableFuture<>();
        server.loop().execute(() -> f.complete(server.largeFramesReserved()));
        return f.get(10, TimeUnit.SECONDS);
    }

    private void awaitReserved(long expected) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        long now;
        while ((now = reserved()) != expected) {
            assertTrue(System.nanoTime() < deadline, "reserved " + now + ", expected " + expected);
            Thread.onSpinWait();
        }
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void halfSentLargeFramesAreBoundedAndReleasedWhenTheirSenderGoes() throws Exception {
        Path socket = start();
        int bodySize = InputAssembler.LARGE_IN_PLACE_MAX - 4096;
        byte[] frame = org.kdbusbridge.bridge.protocol.MessageBuilder.signal(7, "/z", IFACE, "Huge", null, null, "ay",
                new BodyWriter(bodySize + 8).writeByteArray(new byte[bodySize]).toByteArray());
        int perClient = (int) (BusServer.LARGE_FRAMES_RESERVE / frame.length);
        List<RawClient> senders = new ArrayList<>();
        for (int i = 0; i <= perClient; i++) { // one more than the reserve holds
            RawClient c = RawClient.open(socket);
            open.add(c);
            senders.add(c);
            c.write(Arrays.copyOf(frame, 100_000)); // the start of the frame, then nothing
            // Every frame that fits the reserve holds its size; the one that does not takes the
            // ordinary (grow-as-it-arrives) path and reserves nothing.
            awaitReserved((long) Math.min(i + 1, perClient) * frame.length);
        }

        // The frame that did not fit still gets through, whole.
        RawClient receiver = RawClient.open(socket);
        open.add(receiver);
        receiver.addMatch("type='signal',member='Huge'");
        RawClient last = senders.get(perClient);
        last.write(Arrays.copyOfRange(frame, 100_000, frame.length));
        Msg m = receiver.read();
        assertTrue(m.isSignal("Huge"), m.toString());
        assertEquals(last.uniqueName, m.sender());
        assertEquals(bodySize + 4, m.bodyLength(), "length prefix + bytes");

        // A sender that vanishes half-way gives its reservation back; one that finishes does too.
        senders.get(0).close();
        senders.get(1).write(Arrays.copyOfRange(frame, 100_000, frame.length));
        Msg m2 = receiver.read();
        assertEquals(senders.get(1).uniqueName, m2.sender());
        awaitReserved((long) (perClient - 2) * frame.length);
        for (int i = 2; i < perClient; i++) {
            senders.get(i).close();
        }
        awaitReserved(0);
    }
}
