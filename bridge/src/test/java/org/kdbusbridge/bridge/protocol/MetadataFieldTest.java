package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The AttachMetadata header field: spliced into messages of both byte orders, it validates and leaves the rest alone. */
class MetadataFieldTest {

    private static ByteOrder order(String o) {
        return o.equals("LE") ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN;
    }

    @ParameterizedTest
    @ValueSource(strings = {"LE", "BE"})
    void splicedFieldValidatesAndKeepsHeaderAndBody(String o) throws Exception {
        ByteOrder bo = order(o);
        // Body lengths that leave the old fields end at every alignment are covered by the
        // three member lengths below (the fields array end moves by 1..7 bytes).
        for (String member : List.of("M", "Mem", "Member7")) {
            byte[] body = Wire.body(bo, w -> w.str("hello").u32(42));
            byte[] msg = Wire.msg(bo, WireFormat.SIGNAL, 0, 9, body, Wire.path("/a/b"),
                    Wire.s(WireFormat.INTERFACE, "org.example.I"), Wire.s(WireFormat.MEMBER, member),
                    Wire.g("su"), Wire.s(WireFormat.SENDER, ":1.7"));
            MessageHeader before = Wire.wrap(msg);
            MetadataField.Encoder e = new MetadataField.Encoder().begin(bo)
                    .putUint32("pid", 4242).putUint32("uid", 1000).putBoolean("creds-at-send", true)
                    .putStrings("names", new String[] {"org.example.A", "org.example.B"})
                    .putUint64("seq", 0x1_0000_0002L).putPair("timestamp", 5, 6)
                    .putText("comm", "bash".getBytes(StandardCharsets.UTF_8))
                    .putText("exe", new byte[] {(byte) 0xff, 'x'}) // not UTF-8: goes as ay
                    .putBytes("cmdline", "a\0b\0".getBytes(StandardCharsets.UTF_8))
                    .putUint32s("groups", new long[] {1, 2, 3}).end();
            byte[] out = MetadataField.splice(ByteBuffer.wrap(msg), e);
            MessageHeader h = Wire.wrap(out); // full validation, unknown field included
            h.validateBody();
            assertEquals(0, (h.bodyOffset() - h.offset()) % 8, "body 8-aligned");
            assertEquals(out.length, h.bodyOffset() + h.bodyLength(), "message length is header + body");
            assertArrayEquals(body, Arrays.copyOfRange(out, h.bodyOffset(), out.length), "body unchanged");
            assertArrayEquals(Arrays.copyOfRange(msg, 0, 12), Arrays.copyOfRange(out, 0, 12), "fixed header but the fields length");
            assertArrayEquals(Arrays.copyOfRange(msg, 16, before.fieldsEnd()), Arrays.copyOfRange(out, 16, before.fieldsEnd()),
                    "existing fields byte-for-byte");
            assertEquals(member, h.member());
            assertEquals(":1.7", h.sender());
            // The field is the last one; decode it.
            int start = (before.fieldsEnd() + 7) & ~7;
            assertEquals(MetadataField.CODE, out[start] & 0xff);
            Map<String, Object> d = new BodyReader(ByteBuffer.wrap(out), start + 8, h.fieldsEnd() - start - 8, bo, "a{sv}")
                    .readDictStringVariant();
            assertEquals(4242L, d.get("pid"));
            assertEquals(1000L, d.get("uid"));
            assertEquals(Boolean.TRUE, d.get("creds-at-send"));
            assertEquals(List.of("org.example.A", "org.example.B"), d.get("names"));
            assertEquals(0x1_0000_0002L, d.get("seq"));
            assertArrayEquals(new Object[] {5L, 6L}, (Object[]) d.get("timestamp"));
            assertEquals("bash", d.get("comm"));
            assertArrayEquals(new byte[] {(byte) 0xff, 'x'}, (byte[]) d.get("exe"));
            assertArrayEquals("a\0b\0".getBytes(StandardCharsets.UTF_8), (byte[]) d.get("cmdline"));
            assertEquals(List.of(1L, 2L, 3L), d.get("groups"));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"LE", "BE"})
    void emptyDictionaryAndNoBodyValidate(String o) throws Exception {
        ByteOrder bo = order(o);
        byte[] msg = Wire.msg(bo, WireFormat.SIGNAL, 0, 3, new byte[0], Wire.path("/a"),
                Wire.s(WireFormat.INTERFACE, "org.example.I"), Wire.s(WireFormat.MEMBER, "M"));
        byte[] out = MetadataField.splice(ByteBuffer.wrap(msg), new MetadataField.Encoder().begin(bo).end());
        MessageHeader h = Wire.wrap(out);
        h.validateBody();
        assertEquals(out.length, h.bodyOffset());
        assertTrue(out.length > msg.length);
    }

    @org.junit.jupiter.api.Test
    void aSpliceThatWouldPassTheArrayCapOrTheMessageMaximumIsRefused() {
        org.junit.jupiter.api.Assertions.assertTrue(MetadataField.fits(1L << 26, 1L << 27));
        org.junit.jupiter.api.Assertions.assertFalse(MetadataField.fits((1L << 26) + 8, (1L << 26) + 100),
                "header fields past the 64 MiB array cap, however small the body");
        org.junit.jupiter.api.Assertions.assertFalse(MetadataField.fits(1000, (1L << 27) + 1), "past 128 MiB");
    }
}
