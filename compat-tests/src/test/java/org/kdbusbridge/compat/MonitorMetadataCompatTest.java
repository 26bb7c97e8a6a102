package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.LineReader;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;
import org.kdbusbridge.compat.harness.Wire;

/**
 * {@code --kdbus-monitor-metadata=ITEMS} with unmodified monitoring tools (issue 17): every
 * BecomeMonitor connection gets the AttachMetadata items, so libdbus's {@code dbus-monitor
 * --pcap} and {@code --binary} record header field 107 in the raw bytes (seq strictly increasing
 * in the order monitors see, the same seq on both, the senders' creds at send time), while
 * dbus-monitor's text mode still works (libdbus skips the unknown field). sd-bus drops every
 * message with the field, the BecomeMonitor reply included: {@code busctl monitor} cannot be
 * used with the option (pinned: its BecomeMonitor call times out).
 */
class MonitorMetadataCompatTest {
    static final String IFACE = "com.example.MonMeta";

    private static BusUnderTest bus(Path dir) throws IOException {
        return BusKind.KDBUS_BRIDGE.start(Path.of("/usr/share/dbus-1/session.conf"),
                "--address=unix:path=" + dir.resolve("bus"), "--kdbus-monitor-metadata=seq,creds");
    }

    /** Header field 107 of a raw message, decoded (a{sv}: key to variant), or null if absent. */
    @SuppressWarnings("unchecked")
    static Map<Object, Object> field107(byte[] raw) {
        Wire.Reader r = new Wire.Reader(raw, 0, raw.length, raw[0] == 'l');
        r.u8();
        r.u8();
        r.u8();
        r.u8();
        r.u32();
        r.u32();
        Map<Object, Object> found = null;
        for (Object o : (List<Object>) r.read("a(yv)")) {
            List<?> s = (List<?>) o;
            if ((((Byte) s.get(0)) & 0xff) == 107) {
                Wire.Variant v = (Wire.Variant) s.get(1);
                assertEquals("a{sv}", v.signature());
                assertNull(found, "one field 107");
                found = (Map<Object, Object>) v.value();
            }
        }
        return found;
    }

    private static Object item(Map<Object, Object> f, String key) {
        Object v = f.get(key);
        return v == null ? null : ((Wire.Variant) v).value();
    }

    /** A monitor tool's stdout as it grows, cut into the raw messages it wrote. */
    private static final class RawStream {
        private final ByteArrayOutputStream buf = new ByteArrayOutputStream();
        private boolean eof;

        RawStream(InputStream in) {
            Thread t = new Thread(() -> {
                byte[] b = new byte[8192];
                try {
                    int n;
                    while ((n = in.read(b)) >= 0) {
                        synchronized (this) {
                            buf.write(b, 0, n);
                            notifyAll();
                        }
                    }
                } catch (IOException ignored) {
                    // gone
                } finally {
                    synchronized (this) {
                        eof = true;
                        notifyAll();
                    }
                }
            }, "binary-pump");
            t.setDaemon(true);
            t.start();
        }

        /** dbus-monitor --binary: the messages back to back, nothing else. */
        synchronized List<byte[]> packets() {
            byte[] f = buf.toByteArray();
            List<byte[]> out = new ArrayList<>();
            int off = 0;
            while (off + 16 <= f.length) {
                int len = (int) Message.totalLength(Arrays.copyOfRange(f, off, off + 16));
                if (off + len > f.length) {
                    break;
                }
                out.add(Arrays.copyOfRange(f, off, off + len));
                off += len;
            }
            return out;
        }

        synchronized List<byte[]> await(Predicate<List<Message>> p, Duration timeout) throws InterruptedException {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                List<byte[]> raw = packets();
                if (p.test(raw.stream().map(Message::decode).toList())) {
                    return raw;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0 || eof) {
                    return null;
                }
                wait(Math.max(1, left / 1_000_000));
            }
        }
    }

    private static Process startBinary(List<String> argv) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(argv).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        Cmd.sanitize(pb.environment());
        return pb.start();
    }

    private static void stop(Process p) throws InterruptedException {
        p.destroy();
        if (!p.waitFor(5, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            p.waitFor(5, TimeUnit.SECONDS);
        }
    }

    private static Message signal(String member, long i) {
        Message m = new Message();
        m.type = Message.SIGNAL;
        m.path = "/m";
        m.iface = IFACE;
        m.member = member;
        return i < 0 ? m : m.body("u", i);
    }

    private static boolean hasEnd(List<Message> msgs) {
        return msgs.stream().anyMatch(m -> m.type == Message.SIGNAL && "End".equals(m.member));
    }

    /**
     * The monitor copies of {@code raw} (after the tool's own NameLost, i.e. once it is a
     * monitor) all carry the field, seq strictly increasing; our signals carry this JVM's creds.
     * Returns "member seq" of our signals, in the order recorded.
     */
    private static List<String> checkRecorded(String tool, List<byte[]> raw) {
        String text = PcapStream.describe(raw.stream().map(Message::decode).toList());
        int start = -1;
        for (int i = 0; i < raw.size(); i++) {
            if ("NameLost".equals(Message.decode(raw.get(i)).member)) {
                start = i + 1;
                break;
            }
        }
        assertTrue(start > 0, tool + " recorded its own NameLost\n" + text);
        long last = 0;
        List<String> ours = new ArrayList<>();
        for (byte[] p : raw.subList(start, raw.size())) {
            Message m = Message.decode(p);
            Map<Object, Object> f = field107(p);
            assertNotNull(f, tool + ": every monitor copy carries field 107: " + m.transcript());
            long seq = (Long) item(f, "seq");
            assertTrue(seq > last, tool + ": seq strictly increasing: " + seq + " after " + last + " at " + m.transcript());
            last = seq;
            if (IFACE.equals(m.iface)) {
                assertEquals(ProcessHandle.current().pid(), item(f, "pid"), tool + " " + f);
                assertEquals(RawClient.uid(), item(f, "uid"), tool + " " + f);
                assertEquals(Boolean.TRUE, item(f, "creds-at-send"), tool + " " + f);
                ours.add(m.member + " " + seq);
            } else if (RawClient.BUS.equals(m.sender)) {
                assertNull(item(f, "uid"), tool + ": a bus message has no sender creds: " + f);
            }
        }
        assertEquals(List.of("FromA", "FromB", "FromA", "FromB", "FromA", "FromB", "End"),
                ours.stream().map(s -> s.split(" ")[0]).toList(), tool + ": in admission order\n" + text);
        return ours;
    }

    @Test
    void dbusMonitorPcapAndBinaryRecordTheFieldAndItsTextModeStillWorks(@TempDir Path dir) throws Exception {
        try (BusUnderTest bus = bus(dir);
             Background text = Background.start(List.of("dbus-monitor", "--address", bus.address()), Map.of())) {
            Process pcapTool = startBinary(List.of("dbus-monitor", "--pcap", "--address", bus.address()));
            Process binTool = startBinary(List.of("dbus-monitor", "--binary", "--address", bus.address()));
            try (PcapStream pcap = new PcapStream(pcapTool.getInputStream());
                 LineReader pcapErr = new LineReader(pcapTool.getErrorStream(), "pcap-err");
                 LineReader binErr = new LineReader(binTool.getErrorStream(), "bin-err")) {
                RawStream bin = new RawStream(binTool.getInputStream());
                // Each is a monitor once it recorded its own NameLost.
                assertNotNull(pcap.await(m -> PcapStream.hasMember(m, Message.SIGNAL, "NameLost"), Buses.T), pcapErr.text());
                assertNotNull(bin.await(m -> PcapStream.hasMember(m, Message.SIGNAL, "NameLost"), Buses.T), binErr.text());
                assertNotNull(text.stdout().awaitLine(l -> l.contains("member=NameLost"), Buses.T), text.describe());

                try (RawClient a = RawClient.connectHello(bus.address(), Buses.T);
                     RawClient b = RawClient.connectHello(bus.address(), Buses.T)) {
                    for (long i = 0; i < 3; i++) {
                        // Each admitted before the next is sent: the admission order is A, B, A, B, ...
                        a.send(signal("FromA", i));
                        a.sync(Buses.T);
                        b.send(signal("FromB", i));
                        b.sync(Buses.T);
                    }
                    a.send(signal("End", -1));
                    a.sync(Buses.T);
                }
                List<Message> pcapMsgs = pcap.await(MonitorMetadataCompatTest::hasEnd, Buses.T);
                assertNotNull(pcapMsgs, pcapErr.text());
                List<byte[]> binRaw = bin.await(MonitorMetadataCompatTest::hasEnd, Buses.T);
                assertNotNull(binRaw, binErr.text());
                List<String> fromPcap = checkRecorded("dbus-monitor --pcap", PcapStream.packets(pcap.bytes()));
                List<String> fromBinary = checkRecorded("dbus-monitor --binary", binRaw);
                assertEquals(fromPcap, fromBinary, "both monitors saw the same seq for each message");

                // The text mode skips the unknown field and prints every message as usual.
                assertNotNull(text.stdout().awaitLine(l -> l.contains("member=End"), Buses.T), text.describe());
                List<String> lines = text.stdout().all();
                assertEquals(3, lines.stream().filter(l -> l.startsWith("signal ") && l.contains("member=FromA")).count(),
                        text.describe());
                assertEquals(3, lines.stream().filter(l -> l.startsWith("signal ") && l.contains("member=FromB")).count(),
                        text.describe());
                assertTrue(text.process().isAlive() && pcapTool.isAlive() && binTool.isAlive(), text.describe());
                assertFalse(text.stderr().text().contains("unable to enable new-style monitoring"), text.describe());
            } finally {
                stop(pcapTool);
                stop(binTool);
            }
        }
    }

    /**
     * sd-bus (systemd 252) drops a message whose header it cannot skip (EBADMSG), the reply to
     * its BecomeMonitor included, which carries the field too: busctl monitor never starts.
     * Pinned so that a change either way (sd-bus learning to skip it, or the bus sparing the
     * reply) is noticed and docs/extensions.md updated. With format=text among the option's items
     * busctl monitor works (AttachMetadataSdBusTest).
     */
    @Test
    void busctlMonitorCannotBeUsedWithTheOption(@TempDir Path dir) throws Exception {
        try (BusUnderTest bus = bus(dir)) {
            Cmd.Result r = Cmd.run(List.of("busctl", "--address=" + bus.address(), "--timeout=3", "monitor"),
                    Duration.ofSeconds(30));
            assertFalse(r.ok(), r.describe());
            assertTrue(r.stderr().contains("Call to org.freedesktop.DBus.Monitoring.BecomeMonitor failed: Connection timed out"),
                    r.describe());
            // The bus itself is fine: an ordinary client is still served.
            try (RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
                c.sync(Buses.T);
            }
        }
    }
}
