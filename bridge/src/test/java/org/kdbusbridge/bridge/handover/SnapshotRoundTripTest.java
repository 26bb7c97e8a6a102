// Invariants under test (issue 19, docs/handover.md section 8 step 1): an idle bus written to a
// format-v1 snapshot and restored into a second BusServer in the same JVM, over the very same
// client and listening sockets, answers GetId, Debug.Stats (GetStats, GetConnectionStats,
// GetAllMatchRules), ListNames, ListQueuedOwners and GetNameOwner exactly as before (the
// Serial counters aside: they count calls); the clients connected before keep their unique
// names, get signals through their carried rules, and call each other without reconnecting; a
// new client is accepted on the adopted listener under a unique name never used before; a bus
// holding what step 1 cannot carry refuses, names why, and keeps serving. Waits are on
// received messages with deadlines.
package org.kdbusbridge.bridge.handover;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.client.BusConnection;
import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.server.BusServer;
import org.kdbusbridge.bridge.server.HandOverRestore;
import org.kdbusbridge.bridge.transport.TransportSettings;

@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SnapshotRoundTripTest {
    private static final Duration T = Duration.ofSeconds(20);
    private static final String STATS = "org.freedesktop.DBus.Debug.Stats";
    private static final String SIG_IFACE = "org.example.Sig";
    private static final String EXT = "org.kdbusbridge.Extensions1";

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

    private String address() {
        return "unix:path=" + dir.resolve("bus");
    }

    private BusServer startBus() throws Exception {
        BusServer s = new BusServer(BusConfig.forAddress(address()), TransportSettings.fromSystemProperties());
        servers.add(s);
        s.start();
        return s;
    }

    private BusConnection client(String what) throws Exception {
        BusConnection c = BusConnection.open(address(), what);
        open.add(c);
        return c;
    }

    private static BusMessage ok(BusMessage reply, String what) {
        assertNotNull(reply, what + ": no reply");
        assertTrue(reply.isReturn(), what + ": " + reply);
        return reply;
    }

    private static long requestName(BusConnection c, String name, int flags) throws Exception {
        return ((Number) ok(c.callDriver("RequestName", "su", new Object[] {name, flags}, T), "RequestName " + name)
                .body().get(0)).longValue();
    }

    private static void addMatch(BusConnection c, String rule) throws Exception {
        ok(c.callDriver("AddMatch", "s", new Object[] {rule}, T), "AddMatch " + rule);
    }

    /** Every answer the comparison covers, asked by {@code c}, rendered; Serial (a call counter) left out. */
    private static Map<String, String> answers(BusConnection c, List<String> uniques) throws Exception {
        Map<String, String> out = new LinkedHashMap<>();
        out.put("GetId", BusMessage.render(ok(c.callDriver("GetId", "", new Object[0], T), "GetId").body()));
        out.put("GetStats", dict(ok(c.callDriver(STATS, "GetStats", "", new Object[0], T), "GetStats")));
        List<String> names = new ArrayList<>(strings(ok(c.callDriver("ListNames", "", new Object[0], T), "ListNames")));
        java.util.Collections.sort(names); // no order is promised (docs/handover.md, open questions)
        out.put("ListNames", names.toString());
        for (String n : names) {
            out.put("GetNameOwner " + n, BusMessage.render(
                    ok(c.callDriver("GetNameOwner", "s", new Object[] {n}, T), "GetNameOwner " + n).body()));
            if (!n.startsWith(":")) {
                out.put("ListQueuedOwners " + n, BusMessage.render(ok(c.callDriver("ListQueuedOwners", "s",
                        new Object[] {n}, T), "ListQueuedOwners " + n).body()));
            }
        }
        BusMessage rules = ok(c.callDriver(STATS, "GetAllMatchRules", "", new Object[0], T), "GetAllMatchRules");
        out.put("GetAllMatchRules", BusMessage.render(new TreeMap<>((Map<?, ?>) rules.body().get(0))));
        for (String u : uniques) {
            out.put("GetConnectionStats " + u, dict(ok(c.callDriver(STATS, "GetConnectionStats", "s",
                    new Object[] {u}, T), "GetConnectionStats " + u)));
            out.put("GetConnectionUnixUser " + u, BusMessage.render(ok(c.callDriver("GetConnectionUnixUser", "s",
                    new Object[] {u}, T), "GetConnectionUnixUser").body()));
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    private static List<String> strings(BusMessage m) {
        return (List<String>) m.body().get(0);
    }

    private static String dict(BusMessage m) {
        TreeMap<Object, Object> d = new TreeMap<>((Map<?, ?>) m.body().get(0));
        assertNotNull(d.remove("Serial"), "a Serial key");
        return BusMessage.render(d);
    }

    /** Retries while refused: a refusal changes nothing (the bus may still be writing a reply out). */
    private static Snapshot detach(BusServer s) throws Exception {
        long deadline = System.nanoTime() + T.toNanos();
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

    @Test
    void idleBusRestoresIntoASecondServerOverTheSameSockets() throws Exception {
        BusServer a = startBus();
        BusConnection svc = client("svc");
        BusConnection peer = client("peer");
        BusConnection third = client("third");
        BusConnection mon = client("mon");
        assertEquals(1, requestName(svc, "org.example.Svc", 0));
        assertEquals(1, requestName(svc, "org.example.Queue", 1)); // ALLOW_REPLACEMENT
        assertEquals(2, requestName(peer, "org.example.Queue", 0)); // IN_QUEUE, behind svc
        assertEquals(2, requestName(third, "org.example.Queue", 1)); // IN_QUEUE, third, ALLOW_REPLACEMENT stored
        assertEquals(1, requestName(peer, "org.example.Peer.B", 0));
        assertEquals(1, requestName(peer, "org.example.Peer.A", 0)); // acquisition order B, A
        String ping = "type='signal',interface='" + SIG_IFACE + "',member='Ping'";
        addMatch(peer, ping);
        addMatch(peer, ping); // a duplicate is a rule of its own
        addMatch(peer, "type='signal',arg0namespace='org.example'");
        addMatch(peer, "type='signal',path_namespace='/org/example',arg1path='/a/'");
        addMatch(third, "eavesdrop=true,type='method_call',interface='org.example.Nobody'");
        addMatch(third, "sender='org.example.Svc',arg0='it'\\''s, quoted'"); // a ' inside the value
        ok(peer.callDriver(EXT, "AttachMetadata", "as", new Object[] {List.of("creds", "comm", "drops")}, T), "Attach");
        mon.becomeMonitor();
        List<String> uniques = List.of(svc.uniqueName(), peer.uniqueName(), third.uniqueName());
        ok(peer.callDriver(EXT, "GetAttachedMetadata", "", new Object[0], T), "warm"); // its own peak, as below
        answers(svc, uniques); // once first: the asking raises svc's own PeakOutgoingBytes until it has seen every reply
        Map<String, String> before = answers(svc, uniques);
        assertEquals(before, answers(svc, uniques), "asking again changes nothing on the old bus");
        before.put("GetAttachedMetadata", BusMessage.render(ok(peer.callDriver(EXT, "GetAttachedMetadata", "",
                new Object[0], T), "GetAttachedMetadata").body()));

        Snapshot snap = detach(a);
        byte[] bytes = SnapshotWriter.write(snap);
        int memfd = SnapshotWriter.toSealedMemfd(snap);
        Snapshot read;
        try {
            read = SnapshotReader.readSealedMemfd(memfd); // the way the new program will get it
        } finally {
            org.kdbusbridge.bridge.memfd.SealedMemfd.close(memfd);
        }
        assertArrayEquals(bytes, SnapshotWriter.write(read), "read and written again, byte for byte");
        a.stop(); // the detached bus closes nothing of what it let go

        BusServer b = HandOverRestore.restore(read, BusConfig.forAddress(address()),
                TransportSettings.fromSystemProperties());
        servers.add(b);
        assertEquals(a.guid(), b.guid());
        Map<String, String> after = answers(svc, uniques);
        after.put("GetAttachedMetadata", BusMessage.render(ok(peer.callDriver(EXT, "GetAttachedMetadata", "",
                new Object[0], T), "GetAttachedMetadata").body()));
        assertTrue(after.get("GetAttachedMetadata").contains("creds"), after.get("GetAttachedMetadata"));
        assertEquals(before.keySet(), after.keySet());
        for (String k : before.keySet()) {
            assertEquals(before.get(k), after.get(k), k);
        }
        assertEquals("[\"" + svc.uniqueName() + "\"]",
                BusMessage.render(ok(svc.callDriver("GetNameOwner", "s", new Object[] {"org.example.Svc"}, T), "owner")
                        .body()), "the same socket keeps its unique name");

        // A signal through the carried rules: delivered once (duplicate rules, one copy), seen by the monitor.
        int peerMark = peer.received().size();
        int monMark = mon.received().size();
        BodyWriter w = new BodyWriter();
        w.writeString("hello after hand-over");
        svc.send(MessageBuilder.signal(svc.nextSerial(), "/org/example", SIG_IFACE, "Ping", null, null, "s",
                w.toByteArray()));
        BusMessage got = peer.awaitFrom(peerMark, m -> m.isSignal() && "Ping".equals(m.member()), T);
        assertNotNull(got, "the peer's carried rule matched");
        assertEquals(svc.uniqueName(), got.sender());
        assertTrue(got.metadata().isPresent(), "its carried AttachMetadata set still stamps what it receives");
        assertNotNull(mon.awaitFrom(monMark, m -> m.isSignal() && "Ping".equals(m.member()), T), "the monitor saw it");

        // The peer calls the service by its carried name; the service answers on its old socket.
        long serial = peer.nextSerial();
        int svcMark = svc.received().size();
        peer.send(MessageBuilder.methodCall(serial, 0, "org.example.Svc", "/org/example", "org.example.Svc", "Echo",
                null, null, null));
        BusMessage call = svc.awaitFrom(svcMark, m -> m.isCall() && "Echo".equals(m.member()), T);
        assertNotNull(call, "the call reached the service");
        assertEquals(peer.uniqueName(), call.sender());
        svc.send(MessageBuilder.methodReturn(svc.nextSerial(), call.serial(), call.sender(), null, null, null));
        BusMessage reply = peer.await(m -> m.isReturn() && m.replySerial() == serial, T);
        assertNotNull(reply, "the reply came back");
        assertEquals(svc.uniqueName(), reply.sender());
        assertEquals(1, peer.received().stream().filter(m -> m.isSignal() && "Ping".equals(m.member())
                && peer.received().indexOf(m) >= peerMark).count(), "the signal once");

        // A new client on the adopted listener: a unique name the old bus never gave.
        BusConnection late = client("late");
        assertTrue(!uniques.contains(late.uniqueName()) && !late.uniqueName().equals(mon.uniqueName()));
        long n = Long.parseLong(late.uniqueName().substring(3));
        for (String u : List.of(svc.uniqueName(), peer.uniqueName(), third.uniqueName(), mon.uniqueName())) {
            assertTrue(n > Long.parseLong(u.substring(3)), late.uniqueName() + " after " + u);
        }
        // ... and the restored bus takes a second hand-over the same way.
        Snapshot again = detach(b);
        assertEquals(5, again.connections().size());
        assertEquals(read.names().size(), again.names().size());
        b.stop();
        BusServer c = HandOverRestore.restore(SnapshotReader.read(SnapshotWriter.write(again)),
                BusConfig.forAddress(address()), TransportSettings.fromSystemProperties());
        servers.add(c);
        assertEquals(svc.uniqueName(), strings(ok(late.callDriver("ListQueuedOwners", "s",
                new Object[] {"org.example.Queue"}, T), "queue")).get(0));
    }

    @Test
    void aConnectionBeforeSaslCrossesWithAnOpenSlotAndThenSaysHello() throws Exception {
        BusServer a = startBus();
        BusConnection svc = client("svc");
        BusConnection peer = client("peer");
        assertEquals(1, requestName(svc, "org.example.Svc", 0));
        // An open reply slot: the service got a call and has not answered.
        long serial = peer.nextSerial();
        peer.send(MessageBuilder.methodCall(serial, 0, "org.example.Svc", "/", "org.example.Svc", "Slow", null, null,
                null));
        BusMessage call = svc.await(m -> m.isCall() && "Slow".equals(m.member()), T);
        assertNotNull(call);
        // A socket that has not begun SASL: seen once the stats count it.
        SocketChannel raw = SocketChannel.open(StandardProtocolFamily.UNIX);
        open.add(raw);
        raw.connect(UnixDomainSocketAddress.of(dir.resolve("bus")));
        long deadline = System.nanoTime() + T.toNanos();
        while (!dict(ok(svc.callDriver(STATS, "GetStats", "", new Object[0], T), "GetStats"))
                .contains("\"IncompleteConnections\": 1")) {
            assertTrue(System.nanoTime() < deadline, "the raw socket was never counted");
        }
        // Step 5: carried (its SASL state with it), not refused.
        Snapshot snap = a.detachForHandOver();
        Snapshot.Conn incomplete = snap.connections().stream().filter(c -> c.uniqueName() == null).findFirst()
                .orElseThrow();
        Snapshot.Session its = snap.sessions().stream().filter(x -> x.connectionId() == incomplete.id()).findFirst()
                .orElseThrow();
        assertNotNull(its.io().sasl(), "its SASL exchange is carried");
        assertEquals("WAIT_NUL", its.io().sasl().state());
        assertTrue(its.io().authRemainingMs() > 0, "with what auth_timeout had left");
        BusServer b = HandOverRestore.restore(SnapshotReader.read(SnapshotWriter.write(snap)),
                BusConfig.forAddress(address()), TransportSettings.fromSystemProperties());
        servers.add(b);
        assertTrue(dict(ok(svc.callDriver(STATS, "GetStats", "", new Object[0], T), "GetStats"))
                .contains("\"IncompleteConnections\": 1"), "still counted as incomplete");
        // The carried slot is still owed and answered once.
        svc.send(MessageBuilder.methodReturn(svc.nextSerial(), call.serial(), call.sender(), null, null, null));
        assertNotNull(peer.await(m -> m.isReturn() && m.replySerial() == serial, T), "the open slot's answer");
        // The raw socket now authenticates and says Hello on the new bus, and is answered a unique name.
        String uid = Long.toString(new com.sun.security.auth.module.UnixSystem().getUid());
        StringBuilder hex = new StringBuilder();
        for (char ch : uid.toCharArray()) {
            hex.append(String.format("%02x", (int) ch));
        }
        java.io.ByteArrayOutputStream w = new java.io.ByteArrayOutputStream();
        w.writeBytes(("\0AUTH EXTERNAL " + hex + "\r\nBEGIN\r\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        w.writeBytes(MessageBuilder.methodCall(1, 0, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                "org.freedesktop.DBus", "Hello", null, null, null));
        java.nio.ByteBuffer out = java.nio.ByteBuffer.wrap(w.toByteArray());
        while (out.hasRemaining()) {
            raw.write(out);
        }
        java.nio.ByteBuffer in = java.nio.ByteBuffer.allocate(4096);
        String got = "";
        while (!got.contains("NameAcquired")) {
            assertTrue(raw.read(in) > 0, "EOF before Hello's answer: " + got);
            got = new String(in.array(), 0, in.position(), java.nio.charset.StandardCharsets.ISO_8859_1);
        }
        assertTrue(got.startsWith("OK "), got);
        assertTrue(got.contains(":1."), "a unique name: " + got);
        assertTrue(dict(ok(svc.callDriver(STATS, "GetStats", "", new Object[0], T), "GetStats"))
                .contains("\"IncompleteConnections\": 0"), "complete after its Hello on the new bus");
    }

    /** The flags of section {@code id} in a written snapshot. */
    private static int sectionFlags(byte[] bytes, int id) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int at = b.getInt(12); // headerLen, after the magic and the format
        int count = b.getInt(at - 4);
        for (int i = 0; i < count; i++) {
            int sid = Short.toUnsignedInt(b.getShort(at));
            int flags = Short.toUnsignedInt(b.getShort(at + 2));
            if (sid == id) {
                return flags;
            }
            at += 16 + (int) b.getLong(at + 8);
        }
        throw new AssertionError("no section " + id);
    }

    @Test
    void partialIoRoundTripsAndIsGuardedForOlderReaders() throws Exception {
        Snapshot.Bus bus = new Snapshot.Bus("0123456789abcdef0123456789abcdef", "test", 5, 1, 3, 2, 7, 2, 1, 0, 0);
        List<FdTable.Entry> fds = List.of(new FdTable.Entry(5, FdTable.Kind.CLIENT, "socket:[1]"),
                new FdTable.Entry(6, FdTable.Kind.MESSAGE, "socket:[2]"),
                new FdTable.Entry(7, FdTable.Kind.SENDER_PIDFD, "anon_inode:[pidfd]"));
        Snapshot.Sasl sasl = new Snapshot.Sasl("WAIT_BEGIN", "NEGOTIATE_UN".getBytes(java.nio.charset.StandardCharsets.US_ASCII),
                40, 1, 1, 1000, false, true, "0123456789abcdef0123456789abcdef");
        Snapshot.PartialIo io = new Snapshot.PartialIo(sasl, 1234, new byte[] {'l', 1, 0, 1}, 10, 20, 30, true, false,
                new int[] {1}, 777, new int[0], 2);
        Snapshot.Session busy = new Snapshot.Session(3, 0, 10, 20, 30, true, false, false, new byte[] {9, 9}, 0, null, io);
        Snapshot.Session idle = new Snapshot.Session(4, 0, 10, 20, 30, false, false, false);
        Snapshot withIo = new Snapshot(bus, fds, List.of(), List.of(), List.of(), List.of(), List.of(), List.of(busy, idle));
        byte[] bytes = SnapshotWriter.write(withIo);
        assertEquals(Section.MUST_UNDERSTAND, sectionFlags(bytes, Section.PARTIAL_IO.id),
                "a reader that does not know PARTIAL_IO must refuse this snapshot");
        Snapshot.Session back = SnapshotReader.read(bytes).sessions().get(0);
        Snapshot.PartialIo r = back.io();
        assertEquals("WAIT_BEGIN", r.sasl().state());
        assertArrayEquals(sasl.line(), r.sasl().line());
        assertEquals(sasl.totalBytes(), r.sasl().totalBytes());
        assertEquals(sasl.failures(), r.sasl().failures());
        assertEquals(sasl.authUid(), r.sasl().authUid());
        assertTrue(r.sasl().unixFd() && !r.sasl().anonymous());
        assertEquals(sasl.serverGuid(), r.sasl().serverGuid());
        assertEquals(1234, r.authRemainingMs());
        assertArrayEquals(io.input(), r.input());
        assertEquals(List.of(10L, 20L, 30L, 1L, 0L), List.of(r.firstPid(), r.firstUid(), r.firstGid(),
                r.partialMixed() ? 1L : 0L, r.frameContinues() ? 1L : 0L));
        assertArrayEquals(new int[] {1}, r.pendingFdIndexes());
        assertEquals(777, r.pendingRemainingMs());
        assertEquals(2, r.committedPidfdIndex());
        assertArrayEquals(new byte[] {9, 9}, back.committed());
        assertEquals(Snapshot.PartialIo.NONE.carriesAnything(), SnapshotReader.read(bytes).sessions().get(1).io()
                .carriesAnything());
        // An idle bus: the guard is empty and optional, so older readers read it as before.
        byte[] plain = SnapshotWriter.write(new Snapshot(bus, fds, List.of(), List.of(), List.of(), List.of(), List.of(),
                List.of(idle)));
        assertEquals(0, sectionFlags(plain, Section.PARTIAL_IO.id));
        // A pending fd index naming a socket of the wrong kind is refused.
        Snapshot.PartialIo wrong = new Snapshot.PartialIo(null, Long.MIN_VALUE, null, -2, -2, -2, false, false,
                new int[] {0}, 5, null, -1);
        byte[] bad = SnapshotWriter.write(new Snapshot(bus, fds, List.of(), List.of(), List.of(), List.of(), List.of(),
                List.of(new Snapshot.Session(3, 0, 1, 1, 1, false, false, false, null, 0, null, wrong))));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SnapshotReader.read(bad)).getMessage()
                .contains("kind"));
    }

    @Test
    void theReaderRefusesADamagedOrNewerSnapshot() throws Exception {
        Snapshot s = new Snapshot(new Snapshot.Bus("0123456789abcdef0123456789abcdef", "test", 5, 1, 3, 2, 7, 2, 1, 0,
                0), List.of(), List.of(), List.of(), List.of(), List.of(), List.of(), List.of());
        byte[] good = SnapshotWriter.write(s);
        assertEquals(s.bus(), SnapshotReader.read(good).bus());
        byte[] flipped = good.clone();
        flipped[flipped.length / 2] ^= 1;
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SnapshotReader.read(flipped)).getMessage()
                .contains("CRC"));
        byte[] newer = good.clone();
        newer[8] = 2; // format 2
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SnapshotReader.read(newer)).getMessage()
                .contains("format 2"));
        byte[] cut = java.util.Arrays.copyOf(good, good.length - 1);
        assertThrows(IllegalArgumentException.class, () -> SnapshotReader.read(cut));
        assertNotEquals(0, good.length);
    }

    /**
     * Check mode's half (docs/handover.md section 5): the new program decodes a live bus's
     * snapshot and restores it into a bus without sockets, with the policy of its config; a
     * newer format or a snapshot that does not restore is refused, naming why. REQUEST carries
     * the check's time (a trailing field).
     */
    @Test
    void theCheckRestoresALiveSnapshotOfflineAndRefusesWhatWouldNotResume() throws Exception {
        BusServer a = startBus();
        BusConnection svc = client("svc");
        BusConnection peer = client("peer");
        BusConnection mon = client("mon");
        assertEquals(1, requestName(svc, "org.example.Svc", 0));
        assertEquals(2, requestName(peer, "org.example.Svc", 0));
        addMatch(peer, "type='signal',arg0namespace='org.example'");
        mon.becomeMonitor();
        Snapshot s = a.detachForHandOver().withRequest(new Snapshot.Request(2, 9, "reexec", 123));
        try {
            byte[] bytes = SnapshotWriter.write(s);
            assertEquals(new Snapshot.Request(2, 9, "reexec", 123), SnapshotReader.read(bytes).request());
            BusConfig config = BusConfig.forAddress(address());
            assertEquals("ok " + SnapshotWriter.FORMAT, org.kdbusbridge.bridge.server.HandOver.check(bytes, config));
            byte[] newer = bytes.clone();
            newer[8] = 2;
            assertTrue(assertThrows(IllegalArgumentException.class,
                    () -> org.kdbusbridge.bridge.server.HandOver.check(newer, config)).getMessage()
                    .contains("snapshot: snapshot format 2 is newer than this program reads (format 1)"));
            List<Snapshot.Name> names = new ArrayList<>(s.names());
            names.add(new Snapshot.Name("org.example.Lost", new long[] {999}, new int[] {0}));
            Snapshot broken = new Snapshot(s.bus(), s.fds(), s.listeners(), s.connections(), names, s.matches(),
                    s.monitors(), s.sessions(), s.departed(), s.messages(), s.pools(), s.replySlots(), s.request());
            String why = assertThrows(IllegalStateException.class,
                    () -> org.kdbusbridge.bridge.server.HandOver.check(SnapshotWriter.write(broken), config)).getMessage();
            assertTrue(why.startsWith("restore: ") && why.contains("999"), why);
        } finally {
            servers.add(HandOverRestore.restore(s, BusConfig.forAddress(address()), TransportSettings.fromSystemProperties()));
        }
        ok(peer.callDriver("GetNameOwner", "s", new Object[] {"org.example.Svc"}, T), "after the checks");
    }
}
