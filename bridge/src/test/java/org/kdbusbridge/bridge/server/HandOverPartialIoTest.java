// Invariants under test (issue 19, docs/handover.md section 8 step 5): a hand-over at any byte
// boundary of a client's I/O is invisible to that client. Input cut inside the 16-byte fixed
// header, inside the header fields, at their end, inside the body, one byte short, and a whole
// frame followed by the start of the next: after the hand-over (snapshot, format-v1 bytes,
// restore into a second BusServer in this JVM over the same sockets) the client writes the rest
// and the receiver gets each frame once, byte for byte, from the right sender. A 1 MiB frame
// half-read in place, then part-sent zero-copy to a reader that does not read, crosses twice and
// arrives once, whole; so does one half-read on the heap (the old bus's direct budget refused it). SASL cut mid-line, between AUTH and NEGOTIATE_UNIX_FD, between
// AGREE_UNIX_FD and BEGIN, and after BEGIN before Hello: the client finishes and calls normally;
// the auth_timeout it had left is kept, not restarted. SASL replies the socket did not take
// (with lent buffers and with none) come out once, in order. A frame partly read with SO_PASSCRED
// keeps its first read's credentials (its receiver still gets the sender's pidfd, which goes
// only with send-time creds). Fds received ahead of their frame,
// fds waiting on the first byte of committed output, and an AttachMetadata pidfd waiting there,
// reach the receiver with their message (the same socket inode; a pidfd). Waits are conditions with deadlines, never sleeps.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.handover.Snapshot;
import org.kdbusbridge.bridge.handover.SnapshotReader;
import org.kdbusbridge.bridge.handover.SnapshotWriter;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.TransportSettings;

@Timeout(value = 180, unit = TimeUnit.SECONDS)
class HandOverPartialIoTest {

    private static final LibC LIBC = LibC.INSTANCE;
    private static final String IFACE = "org.example.Cut";

    @TempDir
    Path dir;
    private final List<BusServer> servers = new ArrayList<>();
    private final List<AutoCloseable> open = new ArrayList<>();
    private BusConfig conf;
    private TransportSettings transport = TransportSettings.fromSystemProperties();

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : open) {
            c.close();
        }
        for (BusServer s : servers) {
            s.stop();
        }
    }

    private Path socket() {
        return dir.resolve("bus");
    }

    private BusServer start() throws Exception {
        if (conf == null) {
            conf = BusConfig.forAddress("unix:path=" + socket());
        }
        BusServer a = new BusServer(conf, transport);
        servers.add(a);
        a.start();
        return a;
    }

    /** Snapshot (retried while a loop step is mid-burst), through the format's bytes, restored over the same fds. */
    private BusServer handOver(BusServer a) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        Snapshot snap;
        while (true) {
            try {
                snap = a.detachForHandOver();
                break;
            } catch (Snapshot.Refused e) {
                assertTrue(System.nanoTime() < deadline, "refused: " + e.getMessage());
                Thread.onSpinWait();
            }
        }
        BusServer b = HandOverRestore.restore(SnapshotReader.read(SnapshotWriter.write(snap)), conf, transport);
        servers.add(b);
        return b;
    }

    /** The session of {@code unique} (null: the one session that has not said Hello), on the loop. */
    private static ClientSession session(BusServer s, String unique) {
        for (ClientSession c : s.sessions()) {
            String name = c.connection().uniqueName();
            if (unique == null ? name == null : unique.equals(name)) {
                return c;
            }
        }
        return null;
    }

    private static int unhandled(BusServer s, String unique) {
        ClientSession c = session(s, unique);
        return c == null ? -1 : c.unhandledInput().length;
    }

    private static byte[] body(int size, int seed) {
        byte[] pad = new byte[size];
        for (int i = 0; i < size; i++) {
            pad[i] = (byte) (i * 31 + seed);
        }
        return new BodyWriter().writeUint32(seed).writeByteArray(pad).toByteArray();
    }

    private static byte[] bodyOf(Msg m) {
        return Arrays.copyOfRange(m.frame(), m.bodyOffset(), m.bodyOffset() + m.bodyLength());
    }

    private static int bodyOffset(byte[] frame) throws Exception {
        MessageHeader h = new MessageHeader();
        h.wrap(ByteBuffer.wrap(frame), 0, frame.length);
        return h.bodyOffset();
    }

    @Test
    void aFrameCutAtAnyPointArrivesOnceWhole() throws Exception {
        BusServer bus = start();
        RawClient recv = RawClient.open(socket());
        open.add(recv);
        RawClient send = RawClient.open(socket());
        open.add(send);
        byte[] b = body(3000, 1);
        byte[] probe = MessageBuilder.methodCall(1, WireFormat.NO_REPLY_EXPECTED, recv.uniqueName, "/p", IFACE, "M",
                null, "uay", b);
        int fieldsEnd = bodyOffset(probe);
        int len = probe.length;
        // Inside the fixed header, at its end, inside the fields, at the body's start, inside it, one short.
        int[] cuts = {1, 7, 15, 16, 17, 40, fieldsEnd - 1, fieldsEnd, fieldsEnd + 1, len / 2, len - 1};
        int seed = 10;
        for (int cut : cuts) {
            byte[] body = body(3000, ++seed);
            long serial = send.nextSerial();
            byte[] frame = MessageBuilder.methodCall(serial, WireFormat.NO_REPLY_EXPECTED, recv.uniqueName, "/p", IFACE,
                    "M", null, "uay", body);
            assertEquals(len, frame.length);
            send.write(Arrays.copyOf(frame, cut));
            BusServer at = bus;
            OnLoop.await(at, "the bus read " + cut + " bytes", 20, () -> unhandled(at, send.uniqueName) == cut);
            bus = handOver(bus);
            send.write(Arrays.copyOfRange(frame, cut, frame.length));
            Msg m = recv.read();
            assertEquals("M", m.member(), "cut at " + cut + ": " + m);
            assertEquals(serial, m.serial(), "cut at " + cut);
            assertEquals(send.uniqueName, m.sender(), "cut at " + cut);
            assertArrayEquals(body, bodyOf(m), "cut at " + cut + ": the body byte for byte");
        }
        // A whole frame and the start of the next in one write: the first routed before, the rest after.
        byte[] one = body(500, 90);
        byte[] two = body(700, 91);
        long s1 = send.nextSerial();
        long s2 = send.nextSerial();
        byte[] f1 = MessageBuilder.methodCall(s1, WireFormat.NO_REPLY_EXPECTED, recv.uniqueName, "/p", IFACE, "M", null,
                "uay", one);
        byte[] f2 = MessageBuilder.methodCall(s2, WireFormat.NO_REPLY_EXPECTED, recv.uniqueName, "/p", IFACE, "M", null,
                "uay", two);
        byte[] both = Arrays.copyOf(f1, f1.length + 10);
        System.arraycopy(f2, 0, both, f1.length, 10);
        send.write(both);
        Msg first = recv.read();
        assertEquals(s1, first.serial());
        BusServer at = bus;
        OnLoop.await(at, "the next frame's start read", 20, () -> unhandled(at, send.uniqueName) == 10);
        bus = handOver(bus);
        send.write(Arrays.copyOfRange(f2, 10, f2.length));
        Msg second = recv.read();
        assertEquals(s2, second.serial());
        assertArrayEquals(two, bodyOf(second));
        assertArrayEquals(one, bodyOf(first));
        assertEquals(0, recv.sync(), "every frame exactly once");
        assertEquals(0, send.sync(), "the sender is served normally");
    }

    @Test
    void aHalfReadMegabyteAndItsPartSentCopyCrossOnce() throws Exception {
        TransportSettings t = transport; // the kernel's default send buffer: 1 MiB does not fit it
        transport = new TransportSettings(t.zeroCopyThreshold(), 0, t.spinNanos(), t.relaySpinNanos(), t.spinYield(),
                t.ioBuffers(), t.processFd());
        BusServer bus = start();
        RawClient recv = RawClient.open(socket()); // does not read until the end
        open.add(recv);
        RawClient send = RawClient.open(socket());
        open.add(send);
        byte[] body = body(1 << 20, 7);
        long serial = send.nextSerial();
        byte[] frame = MessageBuilder.methodCall(serial, WireFormat.NO_REPLY_EXPECTED, recv.uniqueName, "/big", IFACE,
                "Big", null, "uay", body);
        int half = frame.length / 2;
        send.write(Arrays.copyOf(frame, half));
        BusServer a = bus;
        OnLoop.await(a, "half of the 1 MiB frame read", 30, () -> unhandled(a, send.uniqueName) == half);
        bus = handOver(bus);
        BusServer b = bus;
        assertEquals(half, (int) OnLoop.get(b, () -> unhandled(b, send.uniqueName)),
                "the new bus holds the half it was handed");
        send.write(Arrays.copyOfRange(frame, half, frame.length));
        // The receiver does not read: the message goes out from its shared payload until the socket is full.
        OnLoop.await(b, "the big message part-sent", 30, () -> {
            ClientSession r = session(b, recv.uniqueName);
            return r.output().headOffset() > 0 && r.output().committedBytes().length == 0;
        });
        int sent = OnLoop.get(b, () -> session(b, recv.uniqueName).output().headOffset());
        assertTrue(sent < frame.length, "part-sent, not whole: " + sent);
        bus = handOver(bus);
        Msg m = recv.read();
        assertEquals(serial, m.serial());
        assertEquals(send.uniqueName, m.sender());
        assertArrayEquals(body, bodyOf(m), "the 1 MiB body byte for byte");
        assertEquals(0, recv.sync(), "once");
        assertEquals(0, send.sync());
    }

    @Test
    void saslCutAnywhereFinishesAndCallsNormally() throws Exception {
        BusServer bus = start();
        String guid = bus.guid();
        RawClient c = RawClient.connect(socket());
        open.add(c);
        String auth = "AUTH EXTERNAL " + RawClient.hexUid(RawClient.myUid()) + "\r\n";
        c.write(new byte[] {0});
        c.writeAscii(auth.substring(0, 9)); // "AUTH EXTE": mid-line
        BusServer a = bus;
        OnLoop.await(a, "the partial AUTH line read", 20, () -> {
            ClientSession s = session(a, null);
            return s != null && s.saslProgress() != null && s.saslProgress().line().length == 9;
        });
        bus = handOver(bus);
        c.writeAscii(auth.substring(9));
        String ok = c.readLine();
        assertTrue(ok.startsWith("OK "), ok);
        BusServer b = bus;
        assertEquals(ok.substring(3), OnLoop.get(b, () -> session(b, null).saslProgress().serverGuid()),
                "the listener's guid, as before");
        bus = handOver(bus); // between AUTH and NEGOTIATE_UNIX_FD
        c.writeAscii("NEGOTIATE_UNIX_FD\r\n");
        assertEquals("AGREE_UNIX_FD", c.readLine());
        bus = handOver(bus); // between AGREE_UNIX_FD and BEGIN
        c.writeAscii("BEGIN\r\n");
        BusServer d = bus;
        OnLoop.await(d, "authenticated", 20, () -> session(d, null).isAuthenticated());
        bus = handOver(bus); // authenticated, no Hello yet
        BusServer e = bus;
        assertTrue(OnLoop.get(e, () -> session(e, null).unixFdNegotiated()), "fd passing agreed before still holds");
        String name = c.hello();
        assertNotNull(name);
        assertEquals(0, c.sync(), "a normal call after Hello");
        assertEquals(guid, bus.guid());
        RawClient later = RawClient.open(socket());
        open.add(later);
        assertTrue(Long.parseLong(later.uniqueName.substring(3)) > Long.parseLong(name.substring(3)),
                "no unique name reused: " + name + " then " + later.uniqueName);
    }

    @Test
    void authTimeoutGoesOnFromWhatWasLeft() throws Exception {
        conf = BusConfig.forAddress("unix:path=" + socket());
        conf.limits().authTimeout = 1500;
        BusServer bus = start();
        long t0 = System.nanoTime();
        RawClient c = RawClient.connect(socket());
        open.add(c);
        c.write(new byte[] {0});
        BusServer a = bus;
        OnLoop.await(a, "the connection seen", 20, () -> session(a, null) != null);
        long left = OnLoop.get(a, () -> session(a, null).authRemainingMs());
        assertTrue(left > 0 && left <= 1500, "left " + left);
        while (System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(900)) {
            Thread.onSpinWait(); // most of its auth_timeout goes by in the old bus
        }
        handOver(bus);
        assertTrue(c.awaitEof(5000), "closed at its auth_timeout");
        long took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        // A fresh 1500 ms after the hand-over would close it at 2400 ms or later.
        assertTrue(took >= 1400 && took < 2300, "closed after " + took + " ms of a 1500 ms auth_timeout");
    }

    @ParameterizedTest
    @ValueSource(ints = {-1, 0}) // lent buffers as configured; none (replies wait in the carry)
    void saslRepliesTheSocketDidNotTakeComeOutOnceInOrder(int ioBuffers) throws Exception {
        if (ioBuffers == 0) {
            TransportSettings t = transport;
            transport = new TransportSettings(t.zeroCopyThreshold(), t.largeSendBuffer(), t.spinNanos(),
                    t.relaySpinNanos(), t.spinYield(), 0, t.processFd());
        }
        BusServer bus = start();
        RawClient c = RawClient.connect(socket());
        open.add(c);
        c.write(new byte[] {0});
        BusServer a = bus;
        OnLoop.await(a, "the connection seen", 20, () -> session(a, null) != null);
        // A tiny send buffer on the bus's side: the replies stay with the bus until the client reads.
        assertTrue(OnLoop.get(a, () -> session(a, null).socket().requestSendBuffer(1)));
        int lines = 400;
        StringBuilder junk = new StringBuilder();
        for (int i = 0; i < lines; i++) {
            junk.append("X").append(i).append("\r\n");
        }
        c.writeAscii(junk.toString());
        OnLoop.await(a, "all lines answered, some replies unsent", 20, () -> {
            ClientSession s = session(a, null);
            return s.saslProgress().line().length == 0 && s.saslProgress().totalBytes() == 1 + junk.length()
                    && s.output().committedBytes().length > 0;
        });
        int unsent = OnLoop.get(a, () -> session(a, null).output().committedBytes().length);
        bus = handOver(bus);
        for (int i = 0; i < lines; i++) {
            assertEquals("ERROR \"Unknown command\"", c.readLine(), "reply " + i + " of " + lines + " (" + unsent
                    + " bytes were unsent at the hand-over)");
        }
        c.writeAscii("AUTH EXTERNAL " + RawClient.hexUid(RawClient.myUid()) + "\r\n");
        assertTrue(c.readLine().startsWith("OK "));
        c.writeAscii("BEGIN\r\n");
        c.hello();
        assertEquals(0, c.sync());
    }

    @Test
    void fdsAheadOfTheirFrameAndOnTheFirstCommittedByteArriveWithTheirMessage() throws Exception {
        BusServer bus = start();
        FdClient recv = new FdClient(socket());
        open.add(recv);
        FdClient send = new FdClient(socket());
        open.add(send);
        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(java.nio.ByteOrder.nativeOrder());
        assertEquals(0, LIBC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, LibC.Native.address(sv)));
        int keep = sv.getInt(0);
        int passed = sv.getInt(4);
        open.add(() -> LIBC.close(keep));
        open.add(() -> LIBC.close(passed));
        String passedLink = Files.readSymbolicLink(Path.of("/proc/self/fd/" + passed)).toString();

        // 1. Fds ahead of their frame: the first 10 bytes come with the fd, the rest after the hand-over.
        byte[] first = FdClient.frame(++send.serial, WireFormat.NO_REPLY_EXPECTED, "/t", FdClient.IFACE, "M",
                recv.uniqueName, "uh", new BodyWriter().writeUint32(1).writeUnixFd(0).toByteArray(), 1);
        send.writeAll(Arrays.copyOf(first, 10), new int[] {passed});
        BusServer a = bus;
        OnLoop.await(a, "the fd and 10 bytes pending", 20, () -> {
            ClientSession s = session(a, send.uniqueName);
            return s.pendingFdCount() == 1 && s.unhandledInput().length == 10;
        });
        long timerLeft = OnLoop.get(a, () -> session(a, send.uniqueName).pendingRemainingMs());
        assertTrue(timerLeft > 0, "pending_fd_timeout runs: " + timerLeft);
        bus = handOver(bus);
        BusServer b = bus;
        assertEquals(1, (int) OnLoop.get(b, () -> session(b, send.uniqueName).pendingFdCount()));
        send.writeAll(Arrays.copyOfRange(first, 10, first.length), null);
        MessageHeader h = recv.next();
        assertEquals(1, h.unixFds());
        assertEquals(1, recv.fds.size());
        assertEquals(passedLink, Files.readSymbolicLink(Path.of("/proc/self/fd/" + recv.fds.get(0))).toString());

        // 2. Fds on the first committed byte: small calls with an fd each to a reader that stops
        // reading; each is a sendmsg of its own, so the first that meets a full socket waits whole,
        // its fd with it (the bus's side has a tiny send buffer).
        assertTrue(OnLoop.get(b, () -> session(b, recv.uniqueName).socket().requestSendBuffer(1)));
        int sentCalls = 0;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!OnLoop.get(b, () -> session(b, recv.uniqueName).output().committedFds() != null)) {
            assertTrue(System.nanoTime() < deadline && sentCalls < 2000, "no fd waited on committed output after "
                    + sentCalls + " calls");
            send.send(recv.uniqueName, "uh", new BodyWriter().writeUint32(100 + sentCalls).writeUnixFd(0).toByteArray(),
                    new int[] {passed});
            sentCalls++;
            send.ping(); // routed (and flushed) before we look
        }
        bus = handOver(bus);
        BusServer c = bus;
        assertNotNull(OnLoop.get(c, () -> session(c, recv.uniqueName).output().committedFds()),
                "the new bus holds the fd for the committed bytes' first sendmsg");
        int before = recv.fds.size();
        for (int i = 0; i < sentCalls; i++) {
            MessageHeader m = recv.next();
            assertEquals("M", m.member(), "call " + i);
            assertEquals(1, m.unixFds(), "call " + i);
            assertEquals(100 + i, m.buffer().order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(m.bodyOffset()),
                    "call " + i + " in order, once");
        }
        assertEquals(sentCalls, recv.fds.size() - before, "one fd with each call");
        for (int k = before; k < recv.fds.size(); k++) {
            assertEquals(passedLink, Files.readSymbolicLink(Path.of("/proc/self/fd/" + recv.fds.get(k))).toString(),
                    "the same socket inode");
        }
        recv.ping();
        send.ping();
        // The passed socket still reaches its other end through a copy that crossed.
        int fd = recv.fds.get(recv.fds.size() - 1);
        ByteBuffer ping = ByteBuffer.allocateDirect(1).put(0, (byte) 42);
        assertEquals(1, LIBC.write(fd, LibC.Native.address(ping), 1));
        ByteBuffer pong = ByteBuffer.allocateDirect(1);
        assertEquals(1, LIBC.read(keep, LibC.Native.address(pong), 1));
        assertEquals((byte) 42, pong.get(0));
    }

    @Test
    void anAttachMetadataPidfdOnTheFirstCommittedByteCrossesOnce() throws Exception {
        BusServer bus = start();
        FdClient reader = new FdClient(socket());
        open.add(reader);
        FdClient sender = new FdClient(socket());
        open.add(sender);
        long s = ++reader.serial;
        reader.writeAll(FdClient.frame(s, 0, RawClient.BUS_PATH, "org.kdbusbridge.Extensions1", "AttachMetadata",
                RawClient.BUS, "as", new BodyWriter().beginArray('s').writeString("pidfd").writeString("creds")
                        .endArray().toByteArray(), 0), null);
        assertEquals(WireFormat.METHOD_RETURN, reader.next().type(), "AttachMetadata pidfd");
        sender.ping(); // SO_PASSCRED is on from the sender's next read: its calls have send-time creds
        BusServer b = bus;
        assertTrue(OnLoop.get(b, () -> session(b, reader.uniqueName).socket().requestSendBuffer(1)));
        // Each opted-in copy carries the sender's pidfd on its first byte, so each is a sendmsg of
        // its own: the first that meets the full socket waits whole, its pidfd with it.
        int sent = 0;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!OnLoop.get(b, () -> session(b, reader.uniqueName).output().committedPidfd() != null)) {
            assertTrue(System.nanoTime() < deadline && sent < 2000, "no pidfd waited on committed output after "
                    + sent + " calls");
            sender.send(reader.uniqueName, "u", new BodyWriter().writeUint32(500 + sent).toByteArray(), null);
            sent++;
            sender.ping();
        }
        bus = handOver(bus);
        BusServer c = bus;
        assertNotNull(OnLoop.get(c, () -> session(c, reader.uniqueName).output().committedPidfd()),
                "the new bus holds the pidfd for the committed bytes' first sendmsg");
        int before = reader.fds.size();
        for (int i = 0; i < sent; i++) {
            MessageHeader m = reader.next();
            assertEquals("M", m.member(), "call " + i);
            assertEquals(1, m.unixFds(), "call " + i + ": the pidfd");
            assertEquals(500 + i, m.buffer().order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(m.bodyOffset()),
                    "call " + i + " in order, once");
        }
        assertEquals(sent, reader.fds.size() - before, "one pidfd with each copy");
        for (int k = before; k < reader.fds.size(); k++) {
            assertEquals("anon_inode:[pidfd]",
                    Files.readSymbolicLink(Path.of("/proc/self/fd/" + reader.fds.get(k))).toString());
        }
        reader.ping();
        sender.ping();
    }

    @Test
    void aHalfReadHeapFrameCrossesIntoTheNewBussOwnBuffer() throws Exception {
        conf = BusConfig.forAddress("unix:path=" + socket());
        // The old bus's direct budget holds its two scratch buffers and little more: a 1 MiB frame is read on the heap.
        BusServer bus = new BusServer(conf, org.kdbusbridge.core.bus.UserQuota.forHeap(Runtime.getRuntime().maxMemory(),
                null), new DirectBuffers(DirectBuffers.DEFAULT_MAX_IO_BUFFERS, 256 * 1024), transport);
        servers.add(bus);
        bus.start();
        RawClient recv = RawClient.open(socket());
        open.add(recv);
        RawClient send = RawClient.open(socket());
        open.add(send);
        byte[] body = body(1 << 20, 3);
        long serial = send.nextSerial();
        byte[] frame = MessageBuilder.methodCall(serial, WireFormat.NO_REPLY_EXPECTED, recv.uniqueName, "/heap", IFACE,
                "Heap", null, "uay", body);
        int half = frame.length / 2;
        send.write(Arrays.copyOf(frame, half));
        BusServer a = bus;
        OnLoop.await(a, "half of the frame read", 30, () -> unhandled(a, send.uniqueName) == half);
        assertTrue(OnLoop.get(a, () -> session(a, send.uniqueName).heldBufferBytes()) >= half,
                "the old bus holds it on the heap, not in place");
        bus = handOver(bus); // the new bus has the default budget: it reads the rest in place
        send.write(Arrays.copyOfRange(frame, half, frame.length));
        Msg m = recv.read();
        assertEquals(serial, m.serial());
        assertArrayEquals(body, bodyOf(m), "byte for byte");
        assertEquals(0, recv.sync(), "once");
        assertEquals(0, send.sync());
    }

    @Test
    void aFrameReadPartlyBeforeTheHandOverKeepsItsSendTimeCredentials() throws Exception {
        BusServer bus = start();
        FdClient reader = new FdClient(socket());
        open.add(reader);
        FdClient sender = new FdClient(socket());
        open.add(sender);
        long s = ++reader.serial;
        reader.writeAll(FdClient.frame(s, 0, RawClient.BUS_PATH, "org.kdbusbridge.Extensions1", "AttachMetadata",
                RawClient.BUS, "as", new BodyWriter().beginArray('s').writeString("pidfd").writeString("creds")
                        .endArray().toByteArray(), 0), null);
        assertEquals(WireFormat.METHOD_RETURN, reader.next().type(), "AttachMetadata");
        sender.ping(); // SO_PASSCRED is on from the sender's next read
        // A pidfd goes only with send-time creds, and those only if every read of the frame had the
        // same ones: a frame whose first read's creds were lost at the hand-over would come without it.
        byte[] frame = FdClient.frame(++sender.serial, WireFormat.NO_REPLY_EXPECTED, "/t", FdClient.IFACE, "M",
                reader.uniqueName, "u", new BodyWriter().writeUint32(77).toByteArray(), 0);
        sender.writeAll(Arrays.copyOf(frame, 30), null);
        BusServer a = bus;
        OnLoop.await(a, "30 bytes read", 20, () -> unhandled(a, sender.uniqueName) == 30);
        long firstPid = OnLoop.get(a, () -> session(a, sender.uniqueName).readCreds().firstPid());
        assertEquals(ProcessHandle.current().pid(), firstPid, "the first read's creds are this process's");
        bus = handOver(bus);
        BusServer b = bus;
        assertEquals(firstPid, (long) OnLoop.get(b, () -> session(b, sender.uniqueName).readCreds().firstPid()));
        sender.writeAll(Arrays.copyOfRange(frame, 30, frame.length), null);
        MessageHeader m = reader.next();
        assertEquals("M", m.member());
        assertEquals(1, m.unixFds(), "send-time creds, so the sender's pidfd came with it");
        assertEquals("anon_inode:[pidfd]", Files.readSymbolicLink(Path.of("/proc/self/fd/"
                + reader.fds.get(reader.fds.size() - 1))).toString());
        sender.ping();
    }

    @Test
    void aHeadPartSentFromTheScratchBufferCrossesOnce() throws Exception {
        TransportSettings t = transport; // no lent buffers: every flush goes through the loop's scratch
        transport = new TransportSettings(t.zeroCopyThreshold(), 0, t.spinNanos(), t.relaySpinNanos(), t.spinYield(), 0,
                t.processFd());
        BusServer bus = start();
        RawClient recv = RawClient.open(socket()); // stops reading
        open.add(recv);
        RawClient send = RawClient.open(socket());
        open.add(send);
        BusServer a = bus;
        int n = 0;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        // Until the socket took part of a message: the rest of it stays in the pool, its sent part
        // counted. A write is all or nothing for the kernel below half the send buffer, so the cut
        // comes where a 64 KiB scratch-full ends inside a message: calls go in batches.
        while (!OnLoop.get(a, () -> session(a, recv.uniqueName).output().headOffset() > 0)) {
            assertTrue(System.nanoTime() < deadline && n < 600, "no head part-sent after " + n + " calls");
            for (int k = 0; k < 40; k++, n++) {
                send.call(WireFormat.NO_REPLY_EXPECTED, recv.uniqueName, "/s", IFACE, "S", "uay", body(3000, n));
            }
            send.sync();
        }
        assertEquals(0, (int) OnLoop.get(a, () -> session(a, recv.uniqueName).output().committedBytes().length),
                "nothing committed outside the pool: the scratch was dropped after the flush");
        bus = handOver(bus);
        for (int i = 0; i < n; i++) {
            Msg m = recv.read();
            assertEquals("S", m.member(), "message " + i);
            assertArrayEquals(body(3000, i), bodyOf(m), "message " + i + " byte for byte, in order");
        }
        assertEquals(0, recv.sync(), "each once");
    }
}
