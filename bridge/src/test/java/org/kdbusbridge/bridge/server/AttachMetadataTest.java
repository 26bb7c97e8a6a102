package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.bridge.transport.TransportSettings;

/** AttachMetadata end to end in one JVM: raw clients over real sockets against a BusServer. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AttachMetadataTest {
    private static final String IFACE = "org.kdbusbridge.MetaTest";

    @TempDir
    Path dir;
    private BusServer server;
    private final List<AutoCloseable> open = new ArrayList<>();

    private Path start() throws Exception {
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")),
                TransportSettings.fromSystemProperties().withZeroCopyThreshold(TransportSettings.ZERO_COPY_SIZE));
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

    private RawClient client(Path socket) throws Exception {
        RawClient c = RawClient.open(socket);
        open.add(c);
        return c;
    }

    private static byte[] strings(String... items) {
        BodyWriter w = new BodyWriter().beginArray('s');
        for (String s : items) {
            w.writeString(s);
        }
        return w.endArray().toByteArray();
    }

    private static Msg attach(RawClient c, String... items) throws Exception {
        return answer(c, ext(c, "AttachMetadata", "as", strings(items)));
    }

    /** Calls a method of our Extensions1 interface on the bus; returns the serial. */
    private static long ext(RawClient c, String member, String sig, byte[] body) throws Exception {
        return c.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.kdbusbridge.Extensions1", member, sig, body);
    }

    /** The reply or error to {@code serial}, skipping anything queued before it. */
    private static Msg answer(RawClient c, long serial) throws Exception {
        while (true) {
            Msg m = c.read();
            if (m.replySerial() == serial) {
                return m;
            }
        }
    }

    private static byte[] body(Msg m) {
        return Arrays.copyOfRange(m.frame(), m.bodyOffset(), m.bodyOffset() + m.bodyLength());
    }

    @Test
    void optedInReceiverGetsSeqNamesTimestampCredsOthersGetTheMessageAsBefore() throws Exception {
        Path socket = start();
        RawClient meta = client(socket);
        RawClient plain = client(socket);
        Msg ok = attach(meta, "creds", "names", "seq", "timestamp");
        assertEquals(WireFormat.METHOD_RETURN, ok.type(), ok.toString());
        Map<String, Object> onReply = MetadataFields.find(ok.frame());
        assertNotNull(onReply, "the bus's reply to AttachMetadata already carries the field");
        assertTrue((Long) onReply.get("seq") > 0, onReply.toString());
        assertNull(onReply.get("uid"), "a bus message has no sender creds: " + onReply);
        meta.addMatch("type='signal',interface='" + IFACE + "'");
        plain.addMatch("type='signal',interface='" + IFACE + "'");

        RawClient a = client(socket);
        RawClient b = client(socket);
        Msg got = answer(a, a.callDriver("RequestName", "su",
                new BodyWriter().writeString("org.kdbusbridge.MetaA").writeUint32(4).toByteArray()));
        assertEquals(WireFormat.METHOD_RETURN, got.type(), got.toString());
        byte[] payload = new BodyWriter().writeString("x").toByteArray();
        long before = System.nanoTime();
        long wallBefore = System.currentTimeMillis();
        for (int i = 0; i < 3; i++) {
            // Each signal is admitted before the next is sent (a round trip on its own socket),
            // so the admission order is A, B, A, B, ...
            a.signal(null, "/m", IFACE, "FromA", "s", payload);
            a.sync();
            b.signal(null, "/m", IFACE, "FromB", "s", payload);
            b.sync();
        }
        long after = System.nanoTime();
        long lastSeq = 0;
        long pid = ProcessHandle.current().pid();
        for (int i = 0; i < 6; i++) {
            Msg m = meta.read();
            Msg p = plain.read();
            assertEquals(i % 2 == 0 ? "FromA" : "FromB", m.member(), m.toString());
            assertEquals(m.member(), p.member());
            Map<String, Object> f = MetadataFields.find(m.frame());
            assertNotNull(f, "opted-in receiver gets the field");
            assertNull(MetadataFields.find(p.frame()), "a receiver that did not ask gets no field");
            assertArrayEquals(body(p), body(m), "same body");
            assertEquals(p.sender(), m.sender());
            assertTrue(m.frame().length > p.frame().length);
            long seq = (Long) f.get("seq");
            assertTrue(seq > lastSeq, "seq strictly increasing in admission order: " + seq + " after " + lastSeq);
            lastSeq = seq;
            assertEquals(i % 2 == 0 ? List.of("org.kdbusbridge.MetaA") : List.of(), f.get("names"), f.toString());
            Object[] ts = (Object[]) f.get("timestamp");
            long mono = (Long) ts[0];
            long wall = (Long) ts[1];
            assertTrue(mono >= before && mono <= after, "monotonic ns at admission " + mono + " in [" + before + ", " + after + "]");
            assertTrue(wall / 1_000_000 >= wallBefore - 1 && wall / 1_000_000 <= System.currentTimeMillis() + 1, "realtime ns");
            assertEquals(pid, f.get("pid"), f.toString());
            assertEquals(RawClient.myUid(), f.get("uid"));
            assertEquals(Boolean.TRUE, f.get("creds-at-send"), "creds from SCM_CREDENTIALS: " + f);
        }
        assertNull(plain.readOrNull(200), "nothing more for the plain receiver");
    }

    @Test
    void getClearAndUnknownItems() throws Exception {
        Path socket = start();
        RawClient c = client(socket);
        Msg none = answer(c, ext(c, "GetAttachedMetadata", null, null));
        assertEquals(List.of(), none.body().readStringArray());
        assertNull(MetadataFields.find(none.frame()), "no set, no field");
        attach(c, "timestamp", "seq");
        Msg set = answer(c, ext(c, "GetAttachedMetadata", null, null));
        assertEquals(List.of("seq", "timestamp"), set.body().readStringArray(), "documented order");
        Msg bad = answer(c, ext(c, "AttachMetadata", "as", strings("seq", "bogus")));
        assertEquals("org.freedesktop.DBus.Error.InvalidArgs", bad.errorName(), bad.toString());
        assertTrue(bad.string0().contains("'bogus'"), bad.string0());
        Msg still = answer(c, ext(c, "GetAttachedMetadata", null, null));
        assertEquals(List.of("seq", "timestamp"), still.body().readStringArray(), "a refused call changes nothing");
        Msg pidfd = answer(c, ext(c, "AttachMetadata", "as", strings("pidfd")));
        assertEquals("org.freedesktop.DBus.Error.NotSupported", pidfd.errorName(), "no fds negotiated: " + pidfd);
        attach(c); // empty: clears
        Msg cleared = answer(c, ext(c, "GetAttachedMetadata", null, null));
        assertEquals(List.of(), cleared.body().readStringArray());
        assertNull(MetadataFields.find(cleared.frame()), "cleared: the field is gone again");
    }

    @Test
    void largeZeroCopyMessageIsRenderedIntactForTheOptedInReceiverOnly() throws Exception {
        Path socket = start();
        RawClient meta = client(socket);
        RawClient plain = client(socket);
        attach(meta, "seq", "creds");
        meta.addMatch("type='signal',interface='" + IFACE + "'");
        plain.addMatch("type='signal',interface='" + IFACE + "'");
        RawClient sender = client(socket);
        byte[] big = new byte[(1 << 20) + 5];
        new java.util.Random(7).nextBytes(big);
        byte[] payload = new BodyWriter(big.length + 16).writeByteArray(big).toByteArray();
        sender.signal(null, "/m", IFACE, "Big", "ay", payload);
        Msg m = meta.read();
        Msg p = plain.read();
        assertArrayEquals(payload, body(m), "body intact in the rendered copy");
        assertArrayEquals(payload, body(p), "body intact in the zero-copy one");
        assertNotNull(MetadataFields.find(m.frame()));
        assertNull(MetadataFields.find(p.frame()));
    }

    /** A slow opted-in reader's rendered copy of a large message is charged to its uid's heap budget until written. */
    @Test
    void largeRenderedCopyIsChargedWhileItWaits() throws Exception {
        Path socket = start();
        RawClient meta = client(socket);
        attach(meta, "seq");
        meta.addMatch("type='signal',interface='" + IFACE + "'");
        RawClient sender = client(socket);
        long uid = RawClient.myUid();
        long before = onLoop(() -> server.inputHeap().used(uid));
        byte[] big = new byte[8 << 20]; // far more than the socket buffers take: most of it waits
        byte[] payload = new BodyWriter(big.length + 16).writeByteArray(big).toByteArray();
        sender.signal(null, "/m", IFACE, "Big", "ay", payload);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        long held;
        while ((held = onLoop(() -> server.inputHeap().used(uid))) < before + big.length) {
            assertTrue(System.nanoTime() < deadline, "rendered copy charged: " + held + " bytes held");
            Thread.onSpinWait();
        }
        Msg m = meta.read();
        assertArrayEquals(payload, body(m));
        assertNotNull(MetadataFields.find(m.frame()));
        meta.sync(); // the bus has written it all by now: the charge is gone
        assertTrue(onLoop(() -> server.inputHeap().used(uid)) < before + big.length, "charge given back");
    }

    /**
     * A copy the receiver's heap budget cannot take is not made: the message goes without the
     * field (zero-copy), the receiver stays connected, and the next message carries the field.
     * A sender cannot get an opted-in receiver disconnected by sending it something large.
     */
    @Test
    void aCopyPastTheHeapBudgetGoesWithoutTheFieldAndClosesNobody() throws Exception {
        long perUid = 512 * 1024; // smaller than the 2 MiB message below
        org.kdbusbridge.core.bus.UserQuota q = new org.kdbusbridge.core.bus.UserQuota(1 << 20, 1 << 21,
                org.kdbusbridge.core.bus.UserQuota.MATCH_RULE_BASE, org.kdbusbridge.core.bus.UserQuota.NAME_ENTRY_BASE,
                org.kdbusbridge.core.connection.QueueQuota.UNLIMITED, perUid, 4 * perUid);
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")), q, new DirectBuffers(),
                TransportSettings.fromSystemProperties().withZeroCopyThreshold(TransportSettings.ZERO_COPY_SIZE));
        server.start();
        Path socket = dir.resolve("bus");
        RawClient meta = client(socket);
        attach(meta, "seq");
        meta.addMatch("type='signal',interface='" + IFACE + "'");
        RawClient sender = client(socket);
        byte[] big = new byte[2 << 20];
        new java.util.Random(11).nextBytes(big);
        byte[] payload = new BodyWriter(big.length + 16).writeByteArray(big).toByteArray();
        sender.signal(null, "/m", IFACE, "Big", "ay", payload);
        sender.signal(null, "/m", IFACE, "Small", "u", new BodyWriter().writeUint32(5).toByteArray());
        Msg m = meta.read();
        assertTrue(m.isSignal("Big"), m.toString());
        assertArrayEquals(payload, body(m), "delivered whole");
        assertNull(MetadataFields.find(m.frame()), "no copy past the budget: no field");
        Msg small = meta.read();
        assertTrue(small.isSignal("Small"), small.toString());
        assertNotNull(MetadataFields.find(small.frame()), "the next one carries the field again");
        assertEquals(0, meta.sync(), "still connected");
        assertEquals(0L, onLoop(() -> server.inputHeap().used(RawClient.myUid()) > perUid ? 1L : 0L));
    }

    private <T> T onLoop(java.util.concurrent.Callable<T> c) throws Exception {
        java.util.concurrent.CompletableFuture<T> f = new java.util.concurrent.CompletableFuture<>();
        server.loop().execute(() -> {
            try {
                f.complete(c.call());
            } catch (Exception e) {
                f.completeExceptionally(e);
            }
        });
        return f.get(20, TimeUnit.SECONDS);
    }

    @Test
    void procItemsOfTheSender() throws Exception {
        Path socket = start();
        RawClient meta = client(socket);
        attach(meta, "groups", "comm", "exe", "cmdline", "cgroup");
        meta.addMatch("type='signal',interface='" + IFACE + "'");
        RawClient sender = client(socket);
        sender.signal(null, "/m", IFACE, "P", null, null);
        Map<String, Object> f = MetadataFields.find(meta.read().frame());
        assertNotNull(f);
        long pid = ProcessHandle.current().pid();
        Path proc = Path.of("/proc", Long.toString(pid));
        assertEquals(Files.readString(proc.resolve("comm")).trim(), f.get("comm"));
        assertEquals(Files.readSymbolicLink(proc.resolve("exe")).toString(), f.get("exe"));
        byte[] cmdline = Files.readAllBytes(proc.resolve("cmdline"));
        assertArrayEquals(Arrays.copyOf(cmdline, Math.min(cmdline.length, SenderProcess.CMDLINE_MAX)),
                (byte[]) f.get("cmdline"), "cmdline, its first 4 KiB");
        assertTrue(f.get("groups") instanceof List, f.toString());
        assertNotNull(f.get("cgroup"), f.toString());
        assertNull(f.get("seq"), "only what was asked: " + f);
        String status = Files.readString(proc.resolve("status"));
        String groupsLine = status.lines().filter(l -> l.startsWith("Groups:")).findFirst().orElseThrow();
        List<Long> expected = new ArrayList<>();
        for (String g : groupsLine.substring(7).trim().split("\\s+")) {
            if (!g.isEmpty()) {
                expected.add(Long.parseLong(g));
            }
        }
        assertEquals(expected, f.get("groups"));
        String cg = Files.readString(proc.resolve("cgroup"));
        assertTrue(cg.contains(String.valueOf(f.get("cgroup"))), cg + " vs " + f.get("cgroup"));
    }

    private static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02x", x & 0xff));
        }
        return sb.toString();
    }

    /**
     * One frame, two writers: a process writes the first half of a signal, forks, and its child
     * (sharing the socket) writes the rest. The read that completed the frame carries the
     * child's creds, which do not speak for the frame: the connect-time ones stand in, marked,
     * and no /proc facts. A frame the parent writes in two halves keeps its send-time creds.
     */
    @Test
    void aFrameFinishedByAnotherProcessGetsTheMarkedConnectTimeCreds() throws Exception {
        Path socket = start();
        RawClient meta = client(socket);
        attach(meta, "creds", "comm");
        meta.addMatch("type='signal',interface='" + IFACE + "'");
        byte[] hello = org.kdbusbridge.bridge.protocol.MessageBuilder.methodCall(1, 0, RawClient.BUS, RawClient.BUS_PATH,
                RawClient.BUS, "Hello", null, null, null);
        byte[] body = new BodyWriter().writeString("x".repeat(200)).toByteArray();
        byte[] split = org.kdbusbridge.bridge.protocol.MessageBuilder.signal(2, "/m", IFACE, "Split", null, null, "s", body);
        byte[] whole = org.kdbusbridge.bridge.protocol.MessageBuilder.signal(3, "/m", IFACE, "Whole", null, null, "s", body);
        Path script = Path.of(AttachMetadataTest.class.getResource("split_frame_writer.py").toURI());
        Process py = new ProcessBuilder("/usr/bin/python3", script.toString(), socket.toString(), hex(hello), hex(split),
                hex(whole)).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            String line = new java.io.BufferedReader(new java.io.InputStreamReader(py.getInputStream())).readLine();
            assertNotNull(line, "the writer printed its pids");
            String[] pids = line.trim().split("\\s+");
            assertEquals(2, pids.length, Arrays.toString(pids));
            long parent = Long.parseLong(pids[0]);
            long child = Long.parseLong(pids[1]);
            Msg first = meta.read();
            assertEquals("Split", first.member(), first.toString());
            Map<String, Object> f = MetadataFields.find(first.frame());
            assertEquals(Boolean.FALSE, f.get("creds-at-send"), "two writers' reads: not the send-time creds: " + f);
            assertEquals(parent, f.get("pid"), "the connect-time pid (the parent), not the child's " + child + ": " + f);
            assertNull(f.get("comm"), "no /proc facts without send-time creds: " + f);
            Msg second = meta.read();
            assertEquals("Whole", second.member(), second.toString());
            Map<String, Object> g = MetadataFields.find(second.frame());
            assertEquals(Boolean.TRUE, g.get("creds-at-send"), "one writer, however many reads: " + g);
            assertEquals(parent, g.get("pid"), g.toString());
            assertEquals("python3", g.get("comm"), g.toString());
        } finally {
            py.getOutputStream().close();
            assertTrue(py.waitFor(20, TimeUnit.SECONDS));
        }
    }
}
