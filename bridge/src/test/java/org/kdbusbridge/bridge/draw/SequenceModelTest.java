// Invariants: every capture here is built in memory with our Pcapng writer (or a classic pcap
// header) and read back through CaptureReader, as the draw command reads a file.
package org.kdbusbridge.bridge.draw;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.capture.Pcapng;
import org.kdbusbridge.bridge.migration.CaptureReader;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.WireFormat;

class SequenceModelTest {
    static final String BUS = WireFormat.DRIVER_NAME;

    static byte[] strings(String... s) {
        BodyWriter w = new BodyWriter();
        for (String x : s) w.writeString(x);
        return w.toByteArray();
    }

    static byte[] call(long serial, String sender, String dest, String iface, String member, String sig, byte[] body) {
        return MessageBuilder.methodCall(serial, 0, dest, "/p", iface, member, sender, sig, body);
    }

    /** A session: Hello, RequestName, NameOwnerChanged, calls answered out of order, errors, signals. */
    static List<byte[]> session() {
        List<byte[]> l = new ArrayList<>();
        l.add(call(1, null, BUS, BUS, "Hello", null, null));                                          // 0
        l.add(MessageBuilder.methodReturn(1, 1, ":1.1", BUS, "s", strings(":1.1")));                 // 1
        BodyWriter rn = new BodyWriter().writeString("com.example.Svc").writeUint32(4);
        l.add(call(2, ":1.2", BUS, BUS, "RequestName", "su", rn.toByteArray()));                     // 2
        l.add(MessageBuilder.methodReturn(2, 2, ":1.2", BUS, "u", new BodyWriter().writeUint32(1).toByteArray())); // 3
        l.add(MessageBuilder.signal(3, "/org/freedesktop/DBus", BUS, "NameOwnerChanged", null, BUS, "sss",
                strings("com.example.Other", "", ":1.3")));                                           // 4
        l.add(call(5, ":1.1", "com.example.Svc", "com.example.I", "Ping", "s", strings("hello")));    // 5
        l.add(call(5, ":1.3", ":1.2", "com.example.I", "Ping", null, null));                         // 6 same serial, other sender
        l.add(MessageBuilder.methodReturn(9, 5, ":1.3", ":1.2", null, null));                        // 7 answers 6
        l.add(MessageBuilder.methodReturn(10, 5, ":1.1", ":1.2", "s", strings("pong")));             // 8 answers 5
        l.add(call(6, ":1.1", "com.example.Other", "com.example.I", "Fail", null, null));            // 9
        l.add(MessageBuilder.error(4, 6, ":1.1", ":1.3", "com.example.Error.Nope", "no"));           // 10
        l.add(call(7, ":1.1", "com.example.Gone", "com.example.I", "Ping", null, null));             // 11
        l.add(MessageBuilder.error(5, 7, ":1.1", BUS, "org.freedesktop.DBus.Error.ServiceUnknown", "gone")); // 12
        l.add(MessageBuilder.signal(11, "/p", "com.example.I", "Tick", null, ":1.2", null, null));   // 13 broadcast
        l.add(MessageBuilder.signal(12, "/p", "com.example.I", "Poke", ":1.1", ":1.2", null, null)); // 14 unicast
        l.add(MessageBuilder.methodReturn(13, 99, ":1.1", ":1.2", null, null));                      // 15 answers nothing
        return l;
    }

    static byte[] pcapng(List<byte[]> msgs, long t0, long step) {
        byte[] head = Pcapng.fileHeader("test");
        int size = head.length;
        for (byte[] m : msgs) size += Pcapng.PACKET_HEADER + m.length + Pcapng.trailerLength(m.length);
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        b.put(head);
        long t = t0;
        for (byte[] m : msgs) {
            Pcapng.packetHeader(b, t, m.length);
            b.put(m);
            Pcapng.packetTrailer(b, m.length);
            t += step;
        }
        return b.array();
    }

    static SequenceModel model(byte[] file, int max) throws IOException {
        CaptureReader.Capture c = CaptureReader.parse(file);
        return SequenceModel.build(c.messages(), CaptureClock.times(file), max);
    }

    static int col(SequenceModel m, String id) {
        return m.peers.stream().filter(p -> p.id.equals(id)).findFirst().orElseThrow(() -> new AssertionError(id)).column;
    }

    @Test
    void joinsCallsToRepliesBySenderAndSerialAndPlacesPeers() throws IOException {
        SequenceModel m = model(pcapng(session(), 1_000_000, 250), SequenceModel.MAX_MESSAGES);
        assertEquals(16, m.messages.size());
        assertEquals(0, m.undecodable);
        assertEquals(0, m.notDrawn);
        // columns: the driver first, then by first appearance; Hello's sender learnt from its reply
        assertEquals(List.of(BUS, ":1.1", ":1.2", ":1.3", "com.example.Gone"), m.peers.stream().map(p -> p.id).toList());
        assertEquals(Set.of("com.example.Svc"), m.peers.get(col(m, ":1.2")).names);
        assertEquals(Set.of("com.example.Other"), m.peers.get(col(m, ":1.3")).names);
        assertTrue(m.peers.get(col(m, ":1.1")).names.isEmpty());

        List<SequenceModel.Msg> x = m.messages;
        assertEquals(col(m, ":1.1"), x.get(0).from);
        assertEquals(1, x.get(0).reply);
        assertEquals(0, x.get(1).replyOf);
        assertEquals(3, x.get(2).reply);
        // a call to a well-known name is drawn to its owner's column
        assertEquals(col(m, ":1.2"), x.get(5).to);
        assertEquals(8, x.get(5).reply);
        assertEquals(5, x.get(8).replyOf);
        assertEquals(7, x.get(6).reply);
        assertEquals(6, x.get(7).replyOf);
        assertEquals("'pong'", x.get(8).body);
        // the name owned through NameOwnerChanged only, and its error
        assertEquals(col(m, ":1.3"), x.get(9).to);
        assertEquals(10, x.get(9).reply);
        assertEquals(WireFormat.ERROR, x.get(10).type);
        assertEquals("com.example.Error.Nope", x.get(10).errorName);
        // a name nobody owns gets its own column; the driver's error comes from the driver
        assertEquals(12, x.get(11).reply);
        assertEquals(col(m, BUS), x.get(12).from);
        assertEquals("org.freedesktop.DBus.Error.ServiceUnknown", x.get(12).errorName);
        assertEquals(SequenceModel.BROADCAST, x.get(13).to);
        assertEquals(col(m, ":1.1"), x.get(14).to);
        assertEquals(-1, x.get(15).replyOf);
        // times: 250 µs apart in the capture
        assertEquals(1_000_000 + 250 * 8, x.get(8).micros);
        assertEquals("'com.example.Svc', 4", x.get(2).body);
    }

    @Test
    void aWellKnownNameWithoutOwnerGetsItsOwnColumn() throws IOException {
        SequenceModel m = model(pcapng(session(), 0, 1), SequenceModel.MAX_MESSAGES);
        // com.example.Gone: no owner anywhere in the capture
        int gone = m.messages.get(11).to;
        assertEquals("com.example.Gone", m.peers.get(gone).id);
    }

    @Test
    void drawsAtMostTheLimitAndCountsTheRest() throws IOException {
        byte[] junk = {1, 2, 3};
        List<byte[]> l = new ArrayList<>(session());
        l.add(3, junk);
        SequenceModel m = model(pcapng(l, 0, 1), 5);
        assertEquals(5, m.messages.size());
        assertEquals(1, m.undecodable);
        assertEquals(16 - 5, m.notDrawn);
        String page = HtmlRenderer.render(m, "t");
        assertTrue(page.contains("\"notDrawn\":11"), "the page says it was cut");
    }

    @Test
    void classicPcapTimesInMicrosAndNanos() throws IOException {
        List<byte[]> l = session().subList(0, 2);
        for (int magic : new int[] {0xa1b2c3d4, 0xa1b23c4d}) {
            ByteBuffer b = ByteBuffer.allocate(24 + 2 * 16 + l.get(0).length + l.get(1).length).order(ByteOrder.BIG_ENDIAN);
            b.putInt(magic).putShort((short) 2).putShort((short) 4).putInt(0).putInt(0).putInt(65535).putInt(231);
            int frac = magic == 0xa1b2c3d4 ? 500 : 500_000;
            for (byte[] m : l) b.putInt(7).putInt(frac).putInt(m.length).putInt(m.length).put(m);
            assertArrayEquals(new long[] {7_000_500, 7_000_500}, CaptureClock.times(b.array()));
            assertEquals(2, model(b.array(), 100).messages.size());
        }
        assertNull(CaptureClock.times(new byte[10]));
    }

    @Test
    void capturedStringsAreEscapedInThePage(@TempDir Path dir) throws IOException {
        String evil = "</script><img src=x onerror=alert(1)>&\u2028'\"";
        List<byte[]> l = new ArrayList<>();
        l.add(MessageBuilder.signal(1, "/p", "com.example.I", "Evil", null, ":1.9", "s", strings(evil)));
        Path cap = dir.resolve("c.pcapng");
        Files.write(cap, pcapng(l, 5, 1));
        Path out = dir.resolve("page.html");
        assertEquals(0, DrawCommand.run(new String[] {cap.toString(), "-o", out.toString()}));
        String page = Files.readString(out);
        assertFalse(page.contains("<img"), "no captured markup reaches the page");
        assertFalse(page.contains("\u2028"));
        assertEquals(2, page.split("</script>", -1).length - 1, "only the page's own two script ends");
        assertTrue(page.contains("\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)\\u003e\\u0026"), page);
        assertFalse(page.matches("(?s).*(src|href)=\"(https?:|//).*"), "nothing fetched from the network");
        assertEquals(2, DrawCommand.run(new String[] {dir.resolve("missing").toString()}));
    }
}
