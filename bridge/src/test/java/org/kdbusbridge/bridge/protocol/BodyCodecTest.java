// Tests BodyWriter/BodyReader round trips, the empty-array alignment rule and match-arg extraction.
package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BodyCodecTest {
    private static MessageHeader roundTrip(String sig, byte[] body) throws Exception {
        byte[] m = MessageBuilder.methodReturn(2, 1, ":1.1", "org.freedesktop.DBus", sig, body);
        MessageHeader h = Wire.wrap(m);
        h.validateBody();
        return h;
    }

    @Test
    void scalarsAndStringsRoundTrip() throws Exception {
        BodyWriter w = new BodyWriter()
                .writeByte(0xfe).writeBoolean(true).writeInt16(-3).writeUint16(65000).writeInt32(-7)
                .writeUint32(0xffffffffL).writeInt64(Long.MIN_VALUE).writeUint64(-1L).writeDouble(2.25)
                .writeString("h\u00e9").writeObjectPath("/a/b").writeSignature("a{sv}").writeUnixFd(0);
        byte[] body = w.toByteArray();
        assertEquals(body.length, w.size());
        MessageHeader h = Wire.wrap(MessageBuilder.build(WireFormat.METHOD_RETURN, 0, 2, null, null, null, null, 1L,
                null, null, "ybnqiuxtdsogh", body));
        h.validateBody(); // 'h' index 0 without a UNIX_FDS field: libdbus relays it too
        BodyReader r = BodyReader.of(h);
        assertEquals("y", r.nextTypeCode());
        assertEquals((byte) 0xfe, r.readByte());
        assertTrue(r.readBoolean());
        assertEquals(-3, r.readInt16());
        assertEquals(65000, r.readUint16());
        assertEquals(-7, r.readInt32());
        assertEquals(0xffffffffL, r.readUint32());
        assertEquals(Long.MIN_VALUE, r.readInt64());
        assertEquals(-1L, r.readUint64());
        assertEquals(2.25, r.readDouble());
        assertEquals("h\u00e9", r.readString());
        assertEquals("/a/b", r.readObjectPath());
        assertEquals("a{sv}", r.readSignature());
        assertEquals(0, r.readUnixFd());
        assertFalse(r.hasNext());
        assertNull(r.nextTypeCode());
        assertThrows(ProtocolException.class, r::readString);
    }

    @Test
    void arraysOfStructsAndDictOfVariants() throws Exception {
        BodyWriter w = new BodyWriter();
        w.beginArray('(');
        for (int i = 0; i < 3; i++) w.beginStruct().writeString("n" + i).writeUint32(i).endStruct();
        w.endArray();
        w.beginArray('{');
        w.beginDictEntry().writeString("i").writeVariant("i").writeInt32(-1).endDictEntry();
        w.beginDictEntry().writeString("as").writeVariant("as").beginArray('s').writeString("x").writeString("y").endArray().endDictEntry();
        w.beginDictEntry().writeString("ay").writeVariant("ay").writeByteArray(new byte[] {1, 2, 3}).endDictEntry();
        w.beginDictEntry().writeString("t").writeVariant("(bt)").beginStruct().writeBoolean(false).writeUint64(5).endStruct().endDictEntry();
        w.endArray();
        w.beginArray('s').writeString("p").writeString("q").endArray();
        MessageHeader h = roundTrip("a(su)a{sv}as", w.toByteArray());
        BodyReader r = BodyReader.of(h);
        assertEquals("a(su)", r.nextTypeCode());
        @SuppressWarnings("unchecked")
        List<Object> structs = (List<Object>) r.readValue();
        assertEquals(3, structs.size());
        assertArrayEquals(new Object[] {"n2", 2L}, (Object[]) structs.get(2));
        assertEquals("a{sv}", r.nextTypeCode());
        Map<String, Object> d = r.readDictStringVariant();
        assertEquals(List.of("i", "as", "ay", "t"), List.copyOf(d.keySet()));
        assertEquals(-1, d.get("i"));
        assertEquals(List.of("x", "y"), d.get("as"));
        assertArrayEquals(new byte[] {1, 2, 3}, (byte[]) d.get("ay"));
        assertArrayEquals(new Object[] {false, 5L}, (Object[]) d.get("t"));
        assertEquals(List.of("p", "q"), r.readStringArray());
        assertFalse(r.hasNext());
    }

    @Test
    void emptyArrayAlignmentRule() throws Exception {
        BodyWriter w = new BodyWriter().beginArray('(').endArray();
        byte[] b = w.toByteArray();
        assertEquals(8, b.length); // length + padding to 8, padding not counted
        assertArrayEquals(new byte[8], b);
        BodyWriter w2 = new BodyWriter().writeByte(1).beginArray('x').endArray().writeByte(2);
        byte[] b2 = w2.toByteArray();
        assertEquals(9, b2.length); // y, pad to 4, len, (already 8-aligned), y
        BodyWriter w3 = new BodyWriter().writeInt32(7).beginArray('t').writeUint64(9).endArray();
        byte[] b3 = w3.toByteArray();
        assertEquals(8, b3[4]); // length slot at 4, element data 8..16, no padding needed
        assertEquals(16, b3.length);
        MessageHeader h = roundTrip("a(ii)yatyuat", new BodyWriter().beginArray('(').endArray().writeByte(1)
                .beginArray('t').endArray().writeByte(2).writeUint32(3).beginArray('t').writeUint64(4).endArray().toByteArray());
        BodyReader r = BodyReader.of(h);
        assertEquals(List.of(), r.readValue());
        assertEquals((byte) 1, r.readByte());
        r.skip();
        assertEquals((byte) 2, r.readByte());
        assertEquals(3, r.readUint32());
        assertEquals(List.of(4L), r.readValue());
    }

    @Test
    void unbalancedContainersRejected() {
        assertThrows(IllegalStateException.class, () -> new BodyWriter().beginArray('s').toByteArray());
        assertThrows(IllegalStateException.class, () -> new BodyWriter().beginStruct().endArray());
    }

    @Test
    void readerTypeMismatchAndTruncation() throws Exception {
        byte[] body = new BodyWriter().writeUint32(5).toByteArray();
        BodyReader r = new BodyReader(ByteBuffer.wrap(body), 0, body.length, ByteOrder.LITTLE_ENDIAN, "u");
        assertThrows(ProtocolException.class, r::readString);
        BodyReader t = new BodyReader(ByteBuffer.wrap(body), 0, 2, ByteOrder.LITTLE_ENDIAN, "u");
        assertThrows(ProtocolException.class, t::readUint32);
        BodyReader bad = new BodyReader(ByteBuffer.wrap(body), 0, 4, ByteOrder.LITTLE_ENDIAN, "a{");
        assertFalse(bad.hasNext());
        assertThrows(ProtocolException.class, bad::readUint32);
    }

    @Test
    void bigEndianBodyRead() throws Exception {
        byte[] body = Wire.body(ByteOrder.BIG_ENDIAN, w -> w.str("abc").u32(0x01020304).array(4, x -> x.str("z")));
        BodyReader r = new BodyReader(ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN), 0, body.length, ByteOrder.BIG_ENDIAN, "suas");
        assertEquals("abc", r.readString());
        assertEquals(0x01020304L, r.readUint32());
        assertEquals(List.of("z"), r.readStringArray());
    }

    @Test
    void matchArgs() throws Exception {
        byte[] body = new BodyWriter().writeString("a0").writeUint32(1).writeObjectPath("/p2")
                .beginArray('s').writeString("x").endArray().writeString("a4").writeInt32(5).toByteArray();
        String[] out = new String[64];
        boolean[] isPath = new boolean[64];
        out[10] = "stale";
        isPath[10] = true;
        BodyReader.readMatchArgs(ByteBuffer.wrap(body), 0, body.length, ByteOrder.LITTLE_ENDIAN, "suoassi", out, isPath, 64);
        assertEquals("a0", out[0]);
        assertFalse(isPath[0]);
        assertNull(out[1]);
        assertEquals("/p2", out[2]);
        assertTrue(isPath[2]);
        assertNull(out[3]); // an array of strings is not a string arg
        assertEquals("a4", out[4]);
        assertNull(out[5]);
        assertNull(out[10]);
        assertFalse(isPath[10]);
        // Max limits how far we read.
        String[] o2 = new String[2];
        boolean[] p2 = new boolean[2];
        BodyReader.readMatchArgs(ByteBuffer.wrap(body), 0, body.length, ByteOrder.LITTLE_ENDIAN, "suoassi", o2, p2, 2);
        assertEquals("a0", o2[0]);
        assertNull(o2[1]);
        // Over a wrapped message, args past the first non-string still found.
        byte[] body2 = new BodyWriter().writeString("a0").writeUint32(1).writeObjectPath("/p2")
                .beginArray('s').writeString("x").endArray().writeString("a4").toByteArray();
        MessageHeader h = Wire.wrap(MessageBuilder.signal(3, "/", "a.b", "S", null, ":1.1", "suoass", body2));
        h.validateBody();
        BodyReader.readMatchArgs(h, out, isPath, 64);
        assertEquals("a4", out[4]);
        assertEquals("/p2", out[2]);
    }

    @Test
    void stringsEncodeAsUtf8WithLengthAndNul() {
        for (String v : new String[] {"", "a", ":1.42", "h\u00e9", "\u20ac x", "\ud83d\ude00", "plain ascii then \u00ff"}) {
            byte[] utf8 = v.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            byte[] got = new BodyWriter().writeByte(1).writeString(v).toByteArray();
            assertEquals(4 + 4 + utf8.length + 1, got.length, v); // byte, 3 pad, length, bytes, NUL
            int len = (got[4] & 0xff) | (got[5] & 0xff) << 8 | (got[6] & 0xff) << 16 | (got[7] & 0xff) << 24;
            assertEquals(utf8.length, len, v);
            assertArrayEquals(utf8, java.util.Arrays.copyOfRange(got, 8, 8 + utf8.length), v);
            assertEquals(0, got[got.length - 1]);
        }
    }

    @Test
    void containerStackGrowsFromNothing() throws Exception {
        // The stack is allocated by the first container and doubles; 40 nested structs in one array.
        BodyWriter w = new BodyWriter();
        w.beginArray('(');
        for (int i = 0; i < 40; i++) {
            w.beginStruct();
        }
        w.writeUint32(5);
        for (int i = 0; i < 40; i++) {
            w.endStruct();
        }
        w.endArray();
        byte[] b = w.toByteArray();
        assertEquals(4 + 4 + 4, b.length); // length word, padding to 8, the uint32
        assertEquals(4, b[0]); // the array length counts from the first element, after the padding
        assertThrows(IllegalStateException.class, () -> new BodyWriter().endStruct());
    }
}
