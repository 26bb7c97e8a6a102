// Invariants under test (issue 19, docs/handover.md section 8 step 4): messages queued in receive
// pools cross a hand-over (snapshot, format-v1 bytes, restore into a second BusServer in the same
// JVM over the same sockets). A broadcast queued for several receivers is one MESSAGES record
// that every POOLS entry refers to; slow readers whose socket is full and whose pool is near its
// max_outgoing_bytes get every message that was queued for them exactly once, in order, byte for
// byte (the part already taken into the output buffer, a part-sent head and an AttachMetadata
// copy included); the pool's drop counter and the queue ledger come through unchanged; unix fds
// in queued messages arrive with their message and are the very same sockets (same inode, and
// they still reach the other end). Open reply slots cross with the time their reply_timeout had
// left: one whose deadline falls in the pause gets its NoReply right after resume, exactly once;
// one still running keeps its remaining time (not a fresh timeout) and its answer is delivered
// once, as a requested reply. Waits are conditions with deadlines (on the loop thread or the
// monotonic clock), never sleeps.
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
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.handover.FdTable;
import org.kdbusbridge.bridge.handover.Snapshot;
import org.kdbusbridge.bridge.handover.SnapshotReader;
import org.kdbusbridge.bridge.handover.SnapshotWriter;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.core.connection.Connection;

@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SnapshotMessagesTest {
    private static final LibC LIBC = LibC.INSTANCE;
    private static final String TICK = "org.example.Tick";
    /** Broadcasts of about 4 KiB: far past a socket's buffer, near the pools' limit below. */
    private static final int TICKS = 120;
    /** max_outgoing_bytes: the slow readers' pools end up full-ish (some ticks may be dropped). */
    private static final long POOL_BYTES = 400_000;
    /** Plain calls to the fd reader first (they fill its socket), then FD_CALLS calls with a fd each. */
    private static final int PLAIN_CALLS = 80;
    private static final int FD_CALLS = 5;

    @TempDir
    Path dir;
    private final List<BusServer> servers = new ArrayList<>();
    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : open) {
            c.close();
        }
        for (BusServer s : servers) {
            s.stop();
        }
    }

    private BusConfig config() {
        BusConfig c = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        c.limits().maxOutgoingBytes = POOL_BYTES;
        return c;
    }

    private static byte[] tickBody(int i) {
        byte[] pad = new byte[4000];
        Arrays.fill(pad, (byte) i);
        return new BodyWriter().writeUint32(i).writeByteArray(pad).toByteArray();
    }

    private static byte[] callBody(int i, boolean fd) {
        BodyWriter w = new BodyWriter().writeUint32(i);
        if (fd) {
            w.writeUnixFd(0);
        }
        byte[] pad = new byte[3000];
        Arrays.fill(pad, (byte) (i * 7));
        return w.writeByteArray(pad).toByteArray();
    }

    private static Snapshot detach(BusServer s) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (true) {
            try {
                return s.detachForHandOver();
            } catch (Snapshot.Refused e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.onSpinWait();
            }
        }
    }

    private static String link(int fd) throws Exception {
        return Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
    }

    /** Waits, without sleeping, until the monotonic clock passes {@code nanos}. */
    private static void untilClockPasses(long nanos) {
        while (System.nanoTime() <= nanos) {
            Thread.onSpinWait();
        }
    }

    @Test
    void replySlotsKeepTheTimeTheyHadLeft() throws Exception {
        long timeout = 1500;
        BusConfig conf = config();
        conf.limits().replyTimeout = timeout;
        BusServer a = new BusServer(conf, TransportSettings.fromSystemProperties());
        servers.add(a);
        a.start();
        Path socket = dir.resolve("bus");
        RawClient svc = RawClient.open(socket);
        open.add(svc);
        RawClient caller = RawClient.open(socket);
        open.add(caller);
        long t0 = System.nanoTime();
        long early = caller.call(0, svc.uniqueName, "/s", "org.example.Slow", "Early", null, null);
        assertEquals("Early", svc.read().member());
        long earlyOpened = System.nanoTime(); // its slot opened before this
        untilClockPasses(t0 + TimeUnit.MILLISECONDS.toNanos(1000));
        long t1 = System.nanoTime();
        long late = caller.call(0, svc.uniqueName, "/s", "org.example.Slow", "Late", null, null);
        Msg lateCall = svc.read();
        assertEquals("Late", lateCall.member());

        Snapshot snap = detach(a);
        assertEquals(2, snap.replySlots().size());
        Snapshot.Slot e = snap.replySlots().get(0);
        Snapshot.Slot l = snap.replySlots().get(1);
        assertEquals(early, e.serial(), "written in the callee's opening order");
        assertEquals(late, l.serial());
        assertTrue(e.remainingMs() > 0 && e.remainingMs() < timeout - 900, "early slot left " + e.remainingMs()
                + " ms: what was left, not a fresh reply_timeout");
        assertTrue(l.remainingMs() > e.remainingMs() && l.remainingMs() <= timeout, "late slot left " + l.remainingMs());
        long quotaBefore = a.bus().quotaUsedTotal(); // its loop has stopped: nothing changes it now
        Snapshot read = SnapshotReader.read(SnapshotWriter.write(snap));
        // The pause outlasts the early slot's deadline, not the late one's.
        untilClockPasses(earlyOpened + TimeUnit.MILLISECONDS.toNanos(timeout + 20));
        BusServer b = HandOverRestore.restore(read, conf, TransportSettings.fromSystemProperties());
        servers.add(b);

        Msg noReply = caller.read();
        assertEquals(WireFormat.ERROR, noReply.type(), noReply.toString());
        assertEquals("org.freedesktop.DBus.Error.NoReply", noReply.errorName());
        assertEquals(early, noReply.replySerial());
        long lateDeadline = t1 + TimeUnit.MILLISECONDS.toNanos(timeout);
        assertTrue(System.nanoTime() < lateDeadline, "the late slot must still be open for the rest of this test");
        svc.write(org.kdbusbridge.bridge.protocol.MessageBuilder.methodReturn(svc.nextSerial(), late, caller.uniqueName,
                null, null, null));
        Msg answer = caller.read();
        assertEquals(WireFormat.METHOD_RETURN, answer.type(), answer.toString());
        assertEquals(late, answer.replySerial());
        assertEquals(svc.uniqueName, answer.sender());
        // Past the late slot's old deadline: no second NoReply for either call, nothing else at all.
        untilClockPasses(lateDeadline + TimeUnit.MILLISECONDS.toNanos(100));
        OnLoop.get(b, () -> null); // the loop has run its due timers
        assertEquals(0, caller.sync(), "one NoReply and one answer, each once");
        Connection callerNow = OnLoop.get(b, () -> b.bus().resolve(caller.uniqueName));
        assertEquals(0, (int) OnLoop.get(b, callerNow::pendingOutgoingReplies), "no reply expected any more");
        assertEquals(quotaBefore - 2 * org.kdbusbridge.core.bus.UserQuota.REPLY_SLOT_COST,
                (long) OnLoop.get(b, () -> b.bus().quotaUsedTotal()), "both slots' charges given back, once");
    }

    @Test
    void messagesFromASenderThatLeftStillArriveOnceInOrder() throws Exception {
        BusServer a = new BusServer(config(), TransportSettings.fromSystemProperties());
        servers.add(a);
        a.start();
        Path socket = dir.resolve("bus");
        RawClient reader = RawClient.open(socket);
        open.add(reader);
        reader.addMatch("type='signal',interface='" + TICK + "'");
        RawClient leaver = RawClient.open(socket);
        String gone = leaver.uniqueName;
        int n = 80;
        for (int i = 0; i < n; i++) {
            leaver.signal(null, "/t", TICK, "Tick", "uay", tickBody(i));
        }
        leaver.sync();
        leaver.close();
        OnLoop.await(a, "the sender's departure seen", 20, () -> a.bus().resolve(gone) == null);
        Connection r = OnLoop.get(a, () -> a.bus().resolve(reader.uniqueName));
        assertTrue(OnLoop.get(a, () -> r.pool().messages()) > 0, "the reader's pool holds the sender's ticks");

        Snapshot snap = detach(a);
        assertEquals(1, snap.departed().size(), "the sender is carried as DEPARTED");
        assertEquals(gone, snap.departed().get(0).uniqueName());
        Snapshot read = SnapshotReader.read(SnapshotWriter.write(snap));
        BusServer b = HandOverRestore.restore(read, config(), TransportSettings.fromSystemProperties());
        servers.add(b);
        for (int i = 0; i < n; i++) {
            Msg m = reader.read();
            byte[] body = Arrays.copyOfRange(m.frame(), m.bodyOffset(), m.bodyOffset() + m.bodyLength());
            assertArrayEquals(tickBody(i), body, "tick " + i + " in order");
            assertEquals(gone, m.sender());
        }
        assertEquals(0, reader.sync(), "each once");
        assertEquals(null, OnLoop.get(b, () -> b.bus().resolve(gone)), "the stub is not a connection");
        OnLoop.await(b, "the departed sender's charges released", 20, () -> b.bus().queued().totalBytes() == 0);
    }

    @Test
    void aLargeQueuedMessageStaysInADirectBuffer() throws Exception {
        BusServer a = new BusServer(config(), TransportSettings.fromSystemProperties());
        servers.add(a);
        a.start();
        Path socket = dir.resolve("bus");
        RawClient svc = RawClient.open(socket);
        open.add(svc);
        RawClient reader = RawClient.open(socket);
        open.add(reader);
        reader.addMatch("type='signal',interface='" + TICK + "'");
        int small = 70; // past the reader's socket buffer: the large one waits in its pool
        for (int i = 0; i < small; i++) {
            svc.signal(null, "/t", TICK, "Tick", "uay", tickBody(i));
        }
        byte[] pad = new byte[300 * 1024];
        for (int i = 0; i < pad.length; i++) {
            pad[i] = (byte) (i * 13);
        }
        byte[] bigBody = new BodyWriter().writeUint32(small).writeByteArray(pad).toByteArray();
        svc.signal(null, "/t", TICK, "Big", "uay", bigBody);
        svc.sync();
        Connection r = OnLoop.get(a, () -> a.bus().resolve(reader.uniqueName));
        assertTrue(OnLoop.get(a, () -> {
            for (int i = 0; i < r.pool().messages(); i++) {
                if ("Big".equals(r.pool().peek(i).member())) {
                    return r.pool().peek(i).payload().isDirect();
                }
            }
            return false;
        }), "the large signal waits in the reader's pool, in a direct buffer");
        Snapshot snap = detach(a);
        BusServer b = HandOverRestore.restore(SnapshotReader.read(SnapshotWriter.write(snap)), config(),
                TransportSettings.fromSystemProperties());
        servers.add(b);
        Connection nr = OnLoop.get(b, () -> b.bus().resolve(reader.uniqueName));
        assertTrue(OnLoop.get(b, () -> {
            for (int i = 0; i < nr.pool().messages(); i++) {
                if ("Big".equals(nr.pool().peek(i).member())) {
                    return nr.pool().peek(i).payload().isDirect();
                }
            }
            return false;
        }), "restored into one of the new bus's direct buffers");
        for (int i = 0; i < small; i++) {
            assertEquals("Tick", reader.read().member(), "tick " + i);
        }
        Msg big = reader.read();
        assertEquals("Big", big.member());
        assertArrayEquals(bigBody, Arrays.copyOfRange(big.frame(), big.bodyOffset(), big.bodyOffset() + big.bodyLength()),
                "byte for byte, written from the new buffer");
        assertEquals(0, reader.sync());
        OnLoop.await(b, "the buffer given back", 20, () -> b.bus().queued().totalBytes() == 0);
    }

    /** Extensions1.PeekQueued from {@code c}: its serial. */
    private static long peek(RawClient c) throws Exception {
        return c.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.kdbusbridge.Extensions1", "PeekQueued", null, null);
    }

    @Test
    void aQueuedPeekAnswerKeepsItsPlace() throws Exception {
        BusServer a = new BusServer(config(), TransportSettings.fromSystemProperties());
        servers.add(a);
        a.start();
        Path socket = dir.resolve("bus");
        RawClient svc = RawClient.open(socket);
        open.add(svc);
        RawClient reader = RawClient.open(socket);
        open.add(reader);
        reader.addMatch("type='signal',interface='" + TICK + "'");
        int n = 80;
        for (int i = 0; i < n; i++) {
            svc.signal(null, "/t", TICK, "Tick", "uay", tickBody(i));
        }
        svc.sync();
        long first = peek(reader); // its answer waits behind the ticks the reader has not read
        Connection r = OnLoop.get(a, () -> a.bus().resolve(reader.uniqueName));
        OnLoop.await(a, "the peek answered into the pool", 20, () -> r.peekAnswerAt() >= 0);

        Snapshot snap = detach(a);
        long at = snap.connections().stream().filter(c -> c.id() == r.id()).findFirst().orElseThrow().peekAnswerAt();
        assertTrue(at >= 0, "the answer's pool position is carried");
        BusServer b = HandOverRestore.restore(SnapshotReader.read(SnapshotWriter.write(snap)), config(),
                TransportSettings.fromSystemProperties());
        servers.add(b);
        Connection nr = OnLoop.get(b, () -> b.bus().resolve(reader.uniqueName));
        assertEquals(at, (long) OnLoop.get(b, nr::peekAnswerAt));
        long pushed = OnLoop.get(b, () -> nr.pool().pushedCount());
        long second = peek(reader); // refused: the first answer is still queued (the carried position says so)
        // Handled before the reader reads a byte (its answer is queued): nothing of the pool moved meanwhile.
        OnLoop.await(b, "the second peek handled", 20, () -> nr.pool().pushedCount() == pushed + 1);
        for (int i = 0; i < n; i++) {
            Msg m = reader.read();
            assertEquals("Tick", m.member(), "tick " + i + ": " + m);
        }
        reader.expectReturn(first);
        Msg refused = reader.read();
        assertEquals(WireFormat.ERROR, refused.type(), "the second peek is refused: " + refused);
        assertEquals(second, refused.replySerial());
        reader.expectReturn(peek(reader)); // read: the next peek is answered
    }

    @Test
    void queuedBroadcastsSlowReadersAndFdsCrossOnceInOrder() throws Exception {
        BusServer a = new BusServer(config(), TransportSettings.fromSystemProperties());
        servers.add(a);
        a.start();
        Path socket = dir.resolve("bus");
        RawClient svc = RawClient.open(socket);
        open.add(svc);
        RawClient r1 = RawClient.open(socket);
        open.add(r1);
        RawClient r2 = RawClient.open(socket);
        open.add(r2);
        for (RawClient r : List.of(r1, r2)) {
            r.addMatch("type='signal',interface='" + TICK + "'");
        }
        // r2 also wants metadata: its queued copies are rendered per receiver when they are sent, from
        // facts taken at admission (the sender's /proc comm, and a pidfd every queued tick holds).
        byte[] items = new BodyWriter().beginArray('s').writeString("creds").writeString("timestamp")
                .writeString("comm").endArray().toByteArray();
        r2.expectReturn(r2.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.kdbusbridge.Extensions1",
                "AttachMetadata", "as", items));
        FdClient sender = new FdClient(socket);
        open.add(sender);
        FdClient fdReader = new FdClient(socket);
        open.add(fdReader);
        // Somebody wants pidfds: from now on every admitted message holds its sender's (shared) pidfd.
        FdClient wanter = new FdClient(socket);
        open.add(wanter);
        wanter.writeAll(FdClient.frame(++wanter.serial, 0, RawClient.BUS_PATH, "org.kdbusbridge.Extensions1",
                "AttachMetadata", RawClient.BUS, "as", new BodyWriter().beginArray('s').writeString("pidfd").endArray()
                        .toByteArray(), 0), null);
        assertEquals(WireFormat.METHOD_RETURN, wanter.next().type(), "AttachMetadata pidfd");

        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(java.nio.ByteOrder.nativeOrder());
        assertEquals(0, LIBC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, LibC.Native.address(sv)));
        int keep = sv.getInt(0);
        int passed = sv.getInt(4);
        try {
            for (int i = 0; i < TICKS; i++) {
                svc.signal(null, "/t", TICK, "Tick", "uay", tickBody(i));
            }
            for (int i = 0; i < PLAIN_CALLS + FD_CALLS; i++) {
                boolean fd = i >= PLAIN_CALLS;
                sender.send(fdReader.uniqueName, fd ? "uhay" : "uay", callBody(i, fd), fd ? new int[] {passed} : null);
            }
            svc.sync();
            sender.ping(); // everything above was routed
            Connection c1 = OnLoop.get(a, () -> a.bus().resolve(r1.uniqueName));
            Connection c2 = OnLoop.get(a, () -> a.bus().resolve(r2.uniqueName));
            Connection cf = OnLoop.get(a, () -> a.bus().resolve(fdReader.uniqueName));
            long[] before = OnLoop.get(a, () -> new long[] {c1.pool().messages(), c2.pool().messages(),
                    cf.pool().messages(), c1.pool().dropped(), c2.pool().dropped(), a.bus().queued().totalBytes(),
                    a.bus().queued().totalFds(), c1.pool().bytes(), c2.pool().bytes(), cf.pool().fds()});
            assertTrue(before[0] > 10 && before[1] > 10, "the slow readers' pools hold ticks: " + Arrays.toString(before));
            assertTrue(before[7] > POOL_BYTES / 2, "r1's pool is full-ish: " + before[7]);
            assertEquals(FD_CALLS, before[9], "every fd call waits in the fd reader's pool");

            Snapshot snap = detach(a);
            Snapshot read = SnapshotReader.read(SnapshotWriter.write(snap));
            assertArrayEquals(SnapshotWriter.write(snap), SnapshotWriter.write(read), "read and written again");
            // One MESSAGES record per distinct message: the ticks both pools hold are shared.
            int entries = 0;
            for (Snapshot.Pool p : read.pools()) {
                entries += p.messages().length;
            }
            assertTrue(read.messages().size() < entries, read.messages().size() + " messages for " + entries + " entries");
            Set<Integer> p1 = new HashSet<>();
            Set<Integer> p2 = new HashSet<>();
            for (Snapshot.Pool p : read.pools()) {
                for (int m : p.messages()) {
                    (p.connectionId() == c1.id() ? p1 : p2).add(m);
                }
            }
            p1.retainAll(p2);
            assertTrue(!p1.isEmpty(), "a tick queued for both readers is one record");
            // Where the socket stopped taking bytes decides whether a head is part-copied (headOffset,
            // a rendered copy for r2); an output buffer it did not take is always there to carry.
            assertTrue(read.sessions().stream().anyMatch(x -> x.committed().length > 0),
                    "an output buffer the socket did not take is carried");
            System.out.println("carried output: " + read.sessions().stream().map(x -> x.committed().length + "/"
                    + x.headOffset() + "/" + x.renderedHead().length).toList());
            assertTrue(read.messages().stream().anyMatch(m -> m.facts() != null && m.facts().process() != null
                    && m.facts().process().comm() != null), "the sender's /proc facts are carried");
            long senderPidfds = read.fds().stream().filter(e -> e.kind() == FdTable.Kind.SENDER_PIDFD).count();
            assertTrue(senderPidfds >= 1 && senderPidfds <= 2, senderPidfds
                    + " sender pidfds: one per sending connection at most, shared by the messages that hold it");
            long messageFds = read.fds().stream().filter(e -> e.kind() == FdTable.Kind.MESSAGE).count();
            assertEquals(FD_CALLS, messageFds, "each queued fd once in FDS");

            BusServer b = HandOverRestore.restore(read, config(), TransportSettings.fromSystemProperties());
            servers.add(b);
            Connection n1 = OnLoop.get(b, () -> b.bus().resolve(r1.uniqueName));
            Connection n2 = OnLoop.get(b, () -> b.bus().resolve(r2.uniqueName));
            assertEquals(before[3], (long) OnLoop.get(b, () -> n1.pool().dropped()), "r1's drops carried");
            assertEquals(before[4], (long) OnLoop.get(b, () -> n2.pool().dropped()), "r2's drops carried");

            String comm = Files.readString(Path.of("/proc/self/comm")).trim();
            Set<Long> carriedWithComm = new HashSet<>();
            for (Snapshot.Msg m : read.messages()) {
                if ("Tick".equals(m.member()) && m.facts() != null && m.facts().process() != null
                        && m.facts().process().comm() != null) {
                    carriedWithComm.add(m.serial());
                }
            }
            int renderedAfter = 0;
            // Every tick each reader was given, once, in order, byte for byte; then nothing more.
            for (RawClient r : List.of(r1, r2)) {
                long dropped = r == r1 ? before[3] : before[4];
                int got = 0;
                int last = -1;
                while (got + dropped < TICKS) {
                    Msg m = r.read();
                    assertEquals("Tick", m.member(), r.uniqueName + ": " + m);
                    byte[] body = Arrays.copyOfRange(m.frame(), m.bodyOffset(), m.bodyOffset() + m.bodyLength());
                    int i = ByteBuffer.wrap(body).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(0);
                    assertTrue(i > last, r.uniqueName + ": tick " + i + " after " + last);
                    assertArrayEquals(tickBody(i), body, r.uniqueName + " tick " + i);
                    assertEquals(svc.uniqueName, m.sender());
                    if (r == r2 && carriedWithComm.contains(m.serial())) { // rendered by the new bus from carried facts
                        var md = org.kdbusbridge.bridge.metadata.MessageMetadata.parse(m.frame()).orElseThrow();
                        assertEquals(comm, md.comm().orElse(null), "tick " + i + " keeps its sender's comm");
                        assertTrue(md.timestamp().isPresent(), "tick " + i + " keeps its admission time");
                        renderedAfter++;
                    }
                    last = i;
                    got++;
                }
                assertEquals(TICKS - 1, last, r.uniqueName + " got the last tick");
                assertEquals(0, r.sync(), "nothing more for " + r.uniqueName);
            }
            assertTrue(renderedAfter > 0, "some of r2's ticks were rendered after the hand-over from carried facts");
            // The fd reader: every call in order, each fd with its message, the same socket.
            String passedLink = link(passed);
            for (int i = 0; i < PLAIN_CALLS + FD_CALLS; i++) {
                MessageHeader h = fdReader.next();
                assertEquals("M", h.member());
                byte[] got = new byte[(int) h.bodyLength()];
                h.buffer().get(h.bodyOffset(), got);
                boolean fd = i >= PLAIN_CALLS;
                assertArrayEquals(callBody(i, fd), got, "call " + i);
                assertEquals(fd ? 1 : 0, h.unixFds(), "call " + i);
            }
            assertEquals(FD_CALLS, fdReader.fds.size(), "one fd per fd call");
            for (int k = 0; k < FD_CALLS; k++) {
                int fd = fdReader.fds.get(k);
                assertEquals(passedLink, link(fd), "the same socket inode");
                ByteBuffer ping = ByteBuffer.allocateDirect(1).put(0, (byte) k);
                assertEquals(1, LIBC.write(fd, LibC.Native.address(ping), 1));
                ByteBuffer pong = ByteBuffer.allocateDirect(1);
                assertEquals(1, LIBC.read(keep, LibC.Native.address(pong), 1));
                assertEquals((byte) k, pong.get(0));
            }
            OnLoop.await(b, "every pool written out", 20, () -> n1.pool().isEmpty() && n2.pool().isEmpty());
            OnLoop.await(b, "the ledger empty again", 20, () -> b.bus().queued().totalBytes() == 0
                    && b.bus().queued().totalFds() == 0);
            fdReader.ping();
            svc.expectReturn(svc.call(0, RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "GetId", null, null));
        } finally {
            LIBC.close(passed);
            LIBC.close(keep);
        }
    }
}
