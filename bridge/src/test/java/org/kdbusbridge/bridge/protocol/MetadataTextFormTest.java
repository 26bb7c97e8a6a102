package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.bridge.metadata.MessageMetadata;

/**
 * The field's text form (format=text) and the UNIX_FDS rewrite for a pidfd: spliced into messages
 * of both byte orders it validates, is one printable-ASCII string, and reads back (MessageMetadata)
 * to the values the dictionary form gives.
 */
class MetadataTextFormTest {
    private static ByteOrder order(String o) {
        return o.equals("LE") ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN;
    }

    private static MetadataField.Encoder everything(MetadataField.Encoder e) {
        return e.putUint32("pid", 4242).putUint32("uid", 4_000_000_000L).putBoolean("creds-at-send", true)
                .putFd("pidfd", 0)
                .putUint32s("groups", new long[] {1, 2})
                .putText("comm", "my prog,=%".getBytes(StandardCharsets.UTF_8))
                .putText("exe", new byte[] {(byte) 0xff, 'x'})
                .putBytes("cmdline", "a b\0c\0".getBytes(StandardCharsets.UTF_8))
                .putText("cgroup", "/user.slice/é".getBytes(StandardCharsets.UTF_8))
                .putStrings("names", new String[] {"org.example.A", "org.example.B"})
                .putUint64("seq", -1L).putPair("timestamp", 5, 6);
    }

    @ParameterizedTest
    @ValueSource(strings = {"LE", "BE"})
    void textFormValidatesAndReadsBackLikeTheDictionary(String o) throws Exception {
        ByteOrder bo = order(o);
        byte[] msg = Wire.msg(bo, WireFormat.SIGNAL, 0, 9, new byte[0], Wire.path("/a"),
                Wire.s(WireFormat.INTERFACE, "org.example.I"), Wire.s(WireFormat.MEMBER, "M"));
        byte[] out = MetadataField.splice(ByteBuffer.wrap(msg), everything(new MetadataField.Encoder().begin(bo, true, -1)).end());
        MessageHeader h = Wire.wrap(out);
        int start = (Wire.wrap(msg).fieldsEnd() + 7) & ~7;
        assertEquals(MetadataField.CODE, out[start] & 0xff);
        assertEquals("s", new String(out, start + 2, out[start + 1], StandardCharsets.US_ASCII), "variant s");
        String text = new BodyReader(ByteBuffer.wrap(out), start + 4, h.fieldsEnd() - start - 4, bo, "s").readString();
        assertTrue(text.chars().allMatch(c -> c > 0x1f && c < 0x7f), "printable ASCII only: " + text);
        assertTrue(text.startsWith("pid=4242 uid=4000000000 creds-at-send=true pidfd=0 groups=1,2 comm=my%20prog%2C%3D%25 "),
                text);
        assertTrue(text.contains(" seq=18446744073709551615 timestamp=5,6"), text);

        MessageMetadata t = MessageMetadata.parse(out).orElseThrow();
        byte[] dictMsg = MetadataField.splice(ByteBuffer.wrap(msg), everything(new MetadataField.Encoder().begin(bo)).end());
        MessageMetadata d = MessageMetadata.parse(dictMsg).orElseThrow();
        assertEquals(d.keys(), t.keys());
        assertEquals(d.pid(), t.pid());
        assertEquals(d.uid(), t.uid());
        assertEquals(d.credsAtSend(), t.credsAtSend());
        assertEquals(d.pidfd(), t.pidfd());
        assertArrayEquals(d.groups().orElseThrow(), t.groups().orElseThrow());
        assertEquals("my prog,=%", t.comm().orElseThrow());
        assertArrayEquals(d.textBytes("exe").orElseThrow(), t.textBytes("exe").orElseThrow(), "non-UTF-8 bytes exact");
        assertArrayEquals(d.cmdline().orElseThrow(), t.cmdline().orElseThrow());
        assertEquals(d.cmdlineArgs(), t.cmdlineArgs());
        assertEquals("/user.slice/é", t.cgroup().orElseThrow());
        assertEquals(d.names(), t.names());
        assertEquals(List.of("org.example.A", "org.example.B"), t.names().orElseThrow());
        assertEquals(d.seq(), t.seq());
        assertEquals(d.timestamp(), t.timestamp());
    }

    @ParameterizedTest
    @ValueSource(strings = {"LE", "BE"})
    void aPidfdAddsUnixFdsOrCountsOneMore(String o) throws Exception {
        ByteOrder bo = order(o);
        byte[] none = Wire.msg(bo, WireFormat.SIGNAL, 0, 9, new byte[0], Wire.path("/a"),
                Wire.s(WireFormat.INTERFACE, "org.example.I"), Wire.s(WireFormat.MEMBER, "M"));
        for (boolean text : new boolean[] {false, true}) {
            MetadataField.Encoder e = new MetadataField.Encoder().begin(bo, text, 1).putFd("pidfd", 0).end();
            MessageHeader h = Wire.wrap(MetadataField.splice(ByteBuffer.wrap(none), e, -1, 1));
            assertEquals(1, h.unixFds(), "UNIX_FDS added");
            assertEquals(0, MessageMetadata.parse(bytes(h)).orElseThrow().pidfd().getAsInt());
        }
        byte[] body = Wire.body(bo, w -> w.u32(0).u32(1));
        byte[] two = Wire.msg(bo, WireFormat.SIGNAL, 0, 9, body, Wire.path("/a"),
                Wire.s(WireFormat.INTERFACE, "org.example.I"), Wire.s(WireFormat.MEMBER, "M"), Wire.g("hh"),
                Wire.u(WireFormat.UNIX_FDS, 2));
        int at = Wire.wrap(two).fieldValueOffset(WireFormat.UNIX_FDS);
        MetadataField.Encoder e = new MetadataField.Encoder().begin(bo, false, -1).putFd("pidfd", 2).end();
        MessageHeader h = Wire.wrap(MetadataField.splice(ByteBuffer.wrap(two), e, at, 3));
        h.validateBody();
        assertEquals(3, h.unixFds(), "the message's two and the pidfd");
        assertEquals(2, MessageMetadata.parse(bytes(h)).orElseThrow().pidfd().getAsInt());
    }

    private static byte[] bytes(MessageHeader h) {
        byte[] b = new byte[h.length()];
        h.buffer().get(h.offset(), b);
        return b;
    }
}
