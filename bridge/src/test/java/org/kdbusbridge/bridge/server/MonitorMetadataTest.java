// Invariants under test (issue 17, monitors and captures): a connection that called
// AttachMetadata and then BecomeMonitor keeps its set, and its monitor copies carry header field
// 107 with the right seq (strictly increasing, the order monitors see) and the senders' creds;
// --kdbus-monitor-metadata gives a monitor that asked for nothing the owner's items (on top of its
// own), never to an ordinary receiver; the capture records every message rendered with that set
// (seq in increasing order, creds on client messages) and `kdbus-bridge replay` of such a capture
// answers as recorded (the bus drops the unknown header fields a client sends). Waits are on
// received messages or conditions with deadlines.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.capture.CaptureSink;
import org.kdbusbridge.bridge.client.BusConnection;
import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.driver.Driver;
import org.kdbusbridge.bridge.migration.AllowList;
import org.kdbusbridge.bridge.migration.BusLauncher;
import org.kdbusbridge.bridge.migration.CaptureReader;
import org.kdbusbridge.bridge.migration.ReplayCommand;
import org.kdbusbridge.bridge.migration.Replayer;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.core.message.MessageFacts;

@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MonitorMetadataTest {
    private static final String IFACE = "org.kdbusbridge.MonMeta";

    @TempDir
    Path dir;
    private BusServer server;
    private final List<AutoCloseable> open = new ArrayList<>();

    private Path start(int monitorMetadata, CaptureSink capture) throws Exception {
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")),
                TransportSettings.fromSystemProperties());
        server.setMonitorMetadata(monitorMetadata);
        if (capture != null) {
            server.setCapture(capture);
        }
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

    private static Msg answer(RawClient c, long serial) throws Exception {
        while (true) {
            Msg m = c.read();
            if (m.replySerial() == serial) {
                return m;
            }
        }
    }

    private static void attach(RawClient c, String... items) throws Exception {
        Msg ok = answer(c, c.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.kdbusbridge.Extensions1",
                "AttachMetadata", "as", strings(items)));
        assertEquals(WireFormat.METHOD_RETURN, ok.type(), ok.toString());
    }

    private static void becomeMonitor(RawClient c) throws Exception {
        long s = c.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
                "asu", new BodyWriter().beginArray('s').endArray().writeUint32(0).toByteArray());
        Msg ok = answer(c, s);
        assertEquals(WireFormat.METHOD_RETURN, ok.type(), ok.toString());
    }

    /** A monitor's copies up to and including the signal {@code last} (the monitor sees its own NameLost etc. first). */
    private static List<Msg> monitored(RawClient monitor, String last) throws Exception {
        List<Msg> got = new ArrayList<>();
        while (true) {
            Msg m = monitor.read();
            got.add(m);
            if (m.isSignal(last)) {
                return got;
            }
        }
    }

    /** Two senders' signals, alternating, each admitted before the next is sent; then "End". */
    private static void traffic(RawClient a, RawClient b) throws Exception {
        for (int i = 0; i < 3; i++) {
            a.signal(null, "/m", IFACE, "FromA", "u", new BodyWriter().writeUint32(i).toByteArray());
            a.sync();
            b.signal(null, "/m", IFACE, "FromB", "u", new BodyWriter().writeUint32(i).toByteArray());
            b.sync();
        }
        a.signal(null, "/m", IFACE, "End", null, null);
    }

    /** Every copy carries the field; seq strictly increasing; client signals carry the sender's creds at send time. */
    private static void assertFieldOnEveryCopy(List<Msg> copies, boolean creds) throws Exception {
        long last = 0;
        int signals = 0;
        for (Msg m : copies) {
            Map<String, Object> f = MetadataFields.find(m.frame());
            assertNotNull(f, "a monitor copy carries the field: " + m);
            long seq = (Long) f.get("seq");
            assertTrue(seq > last, "seq strictly increasing in monitor order: " + seq + " after " + last + " at " + m);
            last = seq;
            if (m.type() == WireFormat.SIGNAL && IFACE.equals(m.iface())) {
                signals++;
                if (creds) {
                    assertEquals(ProcessHandle.current().pid(), f.get("pid"), f.toString());
                    assertEquals(RawClient.myUid(), f.get("uid"), f.toString());
                    assertEquals(Boolean.TRUE, f.get("creds-at-send"), f.toString());
                }
            } else if ("org.freedesktop.DBus".equals(m.sender())) {
                assertNull(f.get("uid"), "a bus message has no sender creds: " + f);
            } else if (creds && m.sender() != null && m.sender().startsWith(":")) {
                // A client's calls to the driver (its Hello, the Pings of sync()) too.
                assertEquals(ProcessHandle.current().pid(), f.get("pid"), m + " " + f);
            }
        }
        assertEquals(7, signals, "every signal was monitored");
    }

    @Test
    void attachMetadataThenBecomeMonitorKeepsTheSetOnTheMonitorCopies() throws Exception {
        Path socket = start(0, null);
        RawClient meta = client(socket);
        RawClient plain = client(socket);
        attach(meta, "seq", "creds");
        becomeMonitor(meta);
        becomeMonitor(plain);
        RawClient a = client(socket);
        RawClient b = client(socket);
        traffic(a, b);
        List<Msg> withField = monitored(meta, "End");
        assertFieldOnEveryCopy(withField, true);
        List<Msg> without = monitored(plain, "End");
        for (Msg m : without) {
            assertNull(MetadataFields.find(m.frame()), "a monitor that asked for nothing gets the bytes as before: " + m);
        }
        // The same messages in the same order on both monitors (the field aside).
        assertEquals(without.stream().map(Msg::toString).toList().subList(without.size() - 7, without.size()),
                withField.stream().map(Msg::toString).toList().subList(withField.size() - 7, withField.size()));
    }

    /**
     * A monitor is never handed a sender's pidfd: a connection that asked for pidfd and creds
     * (fd passing negotiated) and then became a monitor gets creds on its copies, no pidfd
     * entry, no UNIX_FDS and no fd; the bus no longer counts it as wanting pidfd.
     */
    @Test
    void aMonitorThatAskedForPidfdGetsCredsButNoPidfdAndNoFd() throws Exception {
        Path socket = start(0, null);
        FdClient mon = new FdClient(socket);
        open.add(mon);
        long s = ++mon.serial;
        mon.writeAll(FdClient.frame(s, 0, RawClient.BUS_PATH, "org.kdbusbridge.Extensions1", "AttachMetadata",
                RawClient.BUS, "as", strings("pidfd", "creds"), 0), null);
        org.kdbusbridge.bridge.protocol.MessageHeader ok = mon.next();
        assertEquals(WireFormat.METHOD_RETURN, ok.type());
        assertEquals(1, server.bus().metadataWanting(MessageFacts.PIDFD), "it wants pidfd");
        s = ++mon.serial;
        mon.writeAll(FdClient.frame(s, 0, RawClient.BUS_PATH, "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
                RawClient.BUS, "asu", new BodyWriter().beginArray('s').endArray().writeUint32(0).toByteArray(), 0),
                null);
        org.kdbusbridge.bridge.protocol.MessageHeader h;
        do {
            h = mon.next();
        } while (h.replySerial() != s);
        assertEquals(WireFormat.METHOD_RETURN, h.type());
        FdClient receiver = new FdClient(socket);
        open.add(receiver);
        FdClient sender = new FdClient(socket);
        open.add(sender);
        sender.send(receiver.uniqueName, "u", new BodyWriter().writeUint32(7).toByteArray(), null);
        assertEquals("M", receiver.next().member(), "delivered");
        do {
            h = mon.next();
        } while (!("M".equals(h.member()) && h.type() == WireFormat.METHOD_CALL));
        byte[] frame = new byte[h.length()];
        h.buffer().get(h.offset(), frame);
        Map<String, Object> f = MetadataFields.find(frame);
        assertNotNull(f, "the monitor copy carries the field");
        assertEquals(ProcessHandle.current().pid(), f.get("pid"), f.toString());
        assertNull(f.get("pidfd"), "no pidfd entry: " + f);
        assertEquals(0, h.unixFds(), "no UNIX_FDS for a pidfd");
        assertTrue(mon.fds.isEmpty(), "no fd handed to the monitor: " + mon.fds);
        assertEquals(0, server.bus().metadataWanting(MessageFacts.PIDFD), "the monitor's set lost pidfd");
    }

    /**
     * A monitor that asked for pidfd in the text form only: pidfd goes, and with it the form (a
     * form without items is no set), so its copies carry no field 107 at all, not an empty one.
     */
    @Test
    void aMonitorThatAskedOnlyForPidfdAsTextGetsNoFieldAtAll() throws Exception {
        Path socket = start(0, null);
        FdClient mon = new FdClient(socket);
        open.add(mon);
        long s = ++mon.serial;
        mon.writeAll(FdClient.frame(s, 0, RawClient.BUS_PATH, "org.kdbusbridge.Extensions1", "AttachMetadata",
                RawClient.BUS, "as", strings("pidfd", "format=text"), 0), null);
        assertEquals(WireFormat.METHOD_RETURN, mon.next().type());
        s = ++mon.serial;
        mon.writeAll(FdClient.frame(s, 0, RawClient.BUS_PATH, "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
                RawClient.BUS, "asu", new BodyWriter().beginArray('s').endArray().writeUint32(0).toByteArray(), 0),
                null);
        org.kdbusbridge.bridge.protocol.MessageHeader h;
        do {
            h = mon.next();
        } while (h.replySerial() != s);
        assertEquals(WireFormat.METHOD_RETURN, h.type());
        FdClient receiver = new FdClient(socket);
        open.add(receiver);
        FdClient sender = new FdClient(socket);
        open.add(sender);
        sender.send(receiver.uniqueName, "u", new BodyWriter().writeUint32(7).toByteArray(), null);
        assertEquals("M", receiver.next().member(), "delivered");
        do {
            h = mon.next();
        } while (!("M".equals(h.member()) && h.type() == WireFormat.METHOD_CALL));
        byte[] frame = new byte[h.length()];
        h.buffer().get(h.offset(), frame);
        assertNull(MetadataFields.find(frame), "no field 107: the set is empty");
        assertEquals(0, server.bus().metadataWanted(), "nothing wanted bus-wide");
    }

    @Test
    void theOwnersOptionGivesEveryMonitorTheItemsAndNobodyElse() throws Exception {
        Path socket = start(Driver.monitorMetadataItems("seq,creds"), null);
        RawClient mon = client(socket);
        RawClient own = client(socket);
        RawClient receiver = client(socket);
        receiver.addMatch("type='signal',interface='" + IFACE + "'");
        attach(own, "names");
        becomeMonitor(mon);
        becomeMonitor(own);
        RawClient a = client(socket);
        RawClient b = client(socket);
        traffic(a, b);
        assertFieldOnEveryCopy(monitored(mon, "End"), true);
        List<Msg> ownCopies = monitored(own, "End");
        assertFieldOnEveryCopy(ownCopies, true);
        Map<String, Object> f = MetadataFields.find(ownCopies.get(ownCopies.size() - 1).frame());
        assertEquals(List.of(), f.get("names"), "its own items stay, the owner's are added: " + f);
        for (int i = 0; i < 7; i++) {
            Msg m = receiver.read();
            assertNull(MetadataFields.find(m.frame()), "an ordinary receiver gets no field: " + m);
        }
    }

    @Test
    void theOptionRefusesUnknownAndUnsupportedItems() {
        assertEquals(MessageFacts.SEQ | MessageFacts.CREDS, Driver.monitorMetadataItems("seq,creds"));
        for (String bad : List.of("seq,bogus", "pidfd", "drops", "", "seq,")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Driver.monitorMetadataItems(bad), bad);
            assertTrue(e.getMessage().contains("'"), e.getMessage());
        }
    }

    /** The migration workload of DifferentialRunnerTest: a name, three signals, driver calls. */
    private static void workload(String address) throws Exception {
        try (BusConnection a = BusConnection.open(address, "a"); BusConnection b = BusConnection.open(address, "b")) {
            assertNotNull(a.callDriver("RequestName", "su", new Object[] {"com.example.MonMeta", 0}, Duration.ofSeconds(10)));
            for (int i = 1; i <= 3; i++) {
                a.send(MessageBuilder.signal(a.nextSerial(), "/d", "com.example.MonMeta", "Tick", null, null, "s",
                        new BodyWriter().writeString("tick" + i).toByteArray()));
            }
            assertNotNull(b.callDriver("GetNameOwner", "s", new Object[] {"com.example.Nope"}, Duration.ofSeconds(10)));
            assertNotNull(b.callDriver("GetNameOwner", "s", new Object[] {"com.example.MonMeta"}, Duration.ofSeconds(10)));
            assertNotNull(a.callDriver("GetId", "", new Object[0], Duration.ofSeconds(10)));
        }
    }

    @Test
    void theCaptureRecordsTheFieldInSeqOrderAndReplays() throws Exception {
        Path file = dir.resolve("bus.pcapng");
        CaptureSink capture = CaptureSink.open(file);
        Path socket = start(Driver.monitorMetadataItems("seq,creds"), capture);
        String address = "unix:path=" + socket;
        workload(address);
        // Every message so far has been offered to the capture once this round trip is answered.
        RawClient last = client(socket);
        last.sync();
        server.stop(); // flushes and closes the capture
        server = null;

        CaptureReader.Capture cap = CaptureReader.read(file);
        assertTrue(cap.messages().size() > 20, "captured " + cap.messages().size());
        long lastSeq = 0;
        int ticks = 0;
        for (byte[] raw : cap.messages()) {
            Map<String, Object> f = MetadataFields.find(raw);
            BusMessage m = BusMessage.decode(raw);
            assertNotNull(f, "every captured message carries the field: " + m.qualifiedMember());
            long seq = (Long) f.get("seq");
            assertTrue(seq > lastSeq, "records in seq order: " + seq + " after " + lastSeq);
            lastSeq = seq;
            if (m.isSignal() && "Tick".equals(m.member())) {
                ticks++;
            }
            if (m.sender() != null && m.sender().startsWith(":")) {
                // Every client message, its calls to the driver included, with the sender's creds.
                assertEquals(ProcessHandle.current().pid(), f.get("pid"), m.qualifiedMember() + " " + f);
                assertEquals(RawClient.myUid(), f.get("uid"), m.qualifiedMember() + " " + f);
            }
            if (m.fromDriver()) {
                assertNull(f.get("uid"), "a bus message has no sender creds: " + f);
            }
        }
        assertEquals(3, ticks);

        List<String> notes = new ArrayList<>();
        List<BusMessage> recording = Replayer.decodeAll(cap.messages(), notes);
        assertTrue(notes.isEmpty(), notes.toString());
        try (var bus = BusLauncher.ours().start(Files.createTempDirectory(dir, "replay"))) {
            Replayer.Result r = new Replayer(AllowList.standard(), Duration.ofSeconds(10)).replay(recording, bus.address());
            assertTrue(r.matches(), r.report().render() + r.notes() + r.recorded().render() + r.replayed().render());
            assertTrue(r.sent() >= 7, "sent " + r.sent());
            assertTrue(r.notes().isEmpty(), r.notes().toString());
        }
        assertEquals(0, ReplayCommand.run(new String[] {file.toString()}), "kdbus-bridge replay FILE: same");
    }
}
