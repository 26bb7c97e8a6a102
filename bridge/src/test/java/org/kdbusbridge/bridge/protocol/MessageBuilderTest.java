// Tests that bus-built messages pass MessageHeader.wrap + validateBody with the expected fields.
package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

class MessageBuilderTest {
    @Test
    void methodReturnPassesValidation() throws Exception {
        byte[] body = new BodyWriter().writeString(":1.3").toByteArray();
        byte[] m = MessageBuilder.methodReturn(1, 77, ":1.3", MessageBuilder.BUS_NAME, "s", body);
        MessageHeader h = Wire.wrap(m);
        h.validateBody();
        assertEquals(WireFormat.METHOD_RETURN, h.type());
        assertEquals(77, h.replySerial());
        assertEquals(":1.3", h.destination());
        assertEquals("org.freedesktop.DBus", h.sender());
        assertEquals(":1.3", BodyReader.of(h).readString());
        assertEquals('l', m[0]);
    }

    @Test
    void errorHasStringBody() throws Exception {
        byte[] m = MessageBuilder.error(2, 5, ":1.9", MessageBuilder.BUS_NAME,
                "org.freedesktop.DBus.Error.ServiceUnknown", "The name is not activatable");
        MessageHeader h = Wire.wrap(m);
        h.validateBody();
        assertEquals(WireFormat.ERROR, h.type());
        assertEquals("org.freedesktop.DBus.Error.ServiceUnknown", h.errorName());
        assertEquals(5, h.replySerial());
        assertEquals("s", h.signature());
        assertEquals("The name is not activatable", BodyReader.of(h).readString());
    }

    @Test
    void signalWithAndWithoutDestination() throws Exception {
        byte[] body = new BodyWriter().writeString("a.b").writeString("").writeString(":1.4").toByteArray();
        MessageHeader h = Wire.wrap(MessageBuilder.signal(3, MessageBuilder.BUS_PATH, MessageBuilder.BUS_INTERFACE,
                "NameOwnerChanged", null, MessageBuilder.BUS_NAME, "sss", body));
        h.validateBody();
        assertNull(h.destination());
        assertEquals("NameOwnerChanged", h.member());
        h = Wire.wrap(MessageBuilder.signal(4, MessageBuilder.BUS_PATH, MessageBuilder.BUS_INTERFACE,
                "NameAcquired", ":1.4", MessageBuilder.BUS_NAME, "s", new BodyWriter().writeString("a.b").toByteArray()));
        h.validateBody();
        assertEquals(":1.4", h.destination());
        assertEquals(4, h.serial());
    }

    @Test
    void buildAllFieldsAndEmptyBody() throws Exception {
        byte[] m = MessageBuilder.build(WireFormat.METHOD_CALL, WireFormat.NO_REPLY_EXPECTED, 0xffffffffL, "/x", "a.b", "M",
                null, null, "a.c", ":1.1", null, null);
        MessageHeader h = Wire.wrap(m);
        h.validateBody();
        assertEquals(0xffffffffL, h.serial());
        assertEquals(0, h.bodyLength());
        assertNull(h.signature());
        assertTrue(h.hasFlag(WireFormat.NO_REPLY_EXPECTED));
        assertThrows(IllegalArgumentException.class, () -> MessageBuilder.build(WireFormat.METHOD_CALL, 0, 1, "/x", null, "M",
                null, null, null, null, null, new byte[] {1}));
    }

    @Test
    void successiveBuildsShareNoBytes() throws Exception {
        // The header is assembled in a reused per-thread writer: earlier results must not change.
        byte[] first = MessageBuilder.signal(1, "/a", "x.Y", "Z", null, MessageBuilder.BUS_NAME, "s",
                new BodyWriter().writeString("first").toByteArray());
        byte[] copy = first.clone();
        byte[] second = MessageBuilder.signal(2, "/a/much/longer/path", "x.Y", "Z", ":1.5", MessageBuilder.BUS_NAME,
                "s", new BodyWriter().writeString("second, longer").toByteArray());
        assertArrayEquals(copy, first);
        assertEquals("first", BodyReader.of(Wire.wrap(first)).readString());
        MessageHeader h = Wire.wrap(second);
        h.validateBody();
        assertEquals("/a/much/longer/path", h.path());
        assertEquals("second, longer", BodyReader.of(h).readString());
    }

    @Test
    void bodiesAboveTheScratchLimitBuildToo() throws Exception {
        byte[] big = new byte[10_000];
        java.util.Arrays.fill(big, (byte) 7);
        byte[] body = new BodyWriter().writeByteArray(big).toByteArray();
        MessageHeader h = Wire.wrap(MessageBuilder.methodReturn(3, 4, ":1.1", MessageBuilder.BUS_NAME, "ay", body));
        h.validateBody();
        assertEquals(body.length, h.bodyLength());
    }

    /** The encoding as the spec lays it out, with a fresh BodyWriter and String.getBytes: the oracle. */
    private static byte[] reference(int type, int flags, long serial, String path, String iface, String member,
                                    String errorName, Long replySerial, String destination, String sender,
                                    String signature, byte[] body) {
        if (body == null) body = new byte[0];
        BodyWriter w = new BodyWriter(128 + body.length);
        w.writeByte(WireFormat.LITTLE_ENDIAN).writeByte(type).writeByte(flags).writeByte(WireFormat.PROTOCOL_VERSION);
        w.writeUint32(body.length).writeUint32(serial);
        w.beginArray('(');
        for (Object[] f : new Object[][] {{WireFormat.PATH, "o", path}, {WireFormat.INTERFACE, "s", iface},
                {WireFormat.MEMBER, "s", member}, {WireFormat.ERROR_NAME, "s", errorName}}) {
            if (f[2] != null) {
                w.beginStruct().writeByte((Integer) f[0]).writeVariant((String) f[1]);
                utf8String(w, (String) f[2]).endStruct();
            }
        }
        if (replySerial != null) {
            w.beginStruct().writeByte(WireFormat.REPLY_SERIAL).writeVariant("u").writeUint32(replySerial.longValue()).endStruct();
        }
        for (Object[] f : new Object[][] {{WireFormat.DESTINATION, destination}, {WireFormat.SENDER, sender}}) {
            if (f[1] != null) {
                w.beginStruct().writeByte((Integer) f[0]).writeVariant("s");
                utf8String(w, (String) f[1]).endStruct();
            }
        }
        if (signature != null && !signature.isEmpty()) {
            w.beginStruct().writeByte(WireFormat.SIGNATURE).writeVariant("g").writeSignature(signature).endStruct();
        }
        w.endArray();
        w.padTo(8);
        w.writeRaw(body);
        return w.toByteArray();
    }

    /** A string as the spec has it, through String.getBytes (independent of BodyWriter.writeString). */
    private static BodyWriter utf8String(BodyWriter w, String s) {
        byte[] b = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        return w.writeUint32(b.length).writeRaw(b).writeByte(0);
    }

    @Test
    void buildAndEncodeAreByteForByteTheReferenceEncoding() throws Exception {
        // Every field present or absent, string lengths across the 4/8 alignment boundaries,
        // non-ASCII (2-, 3- and 4-byte UTF-8, an unpaired surrogate) where a header string may carry it.
        String[] strings = {null, "", "a", ":1.0", "org.freedesktop.DBus", "/org/freedesktop/DBus", "abcdefg",
                "abcdefgh", "abcdefghi", "Caf\u00e9", "\u20ac/\u4e2d", "x\ud83d\ude00y", "bad\ud800", "\udc00"};
        Long[] replySerials = {null, 0L, 1L, 127L, 128L, 0xFFFFFFFFL};
        byte[][] bodies = {null, {}, {1, 0, 0, 0}, new byte[13]};
        int checked = 0;
        for (int a = 0; a < strings.length; a++) {
            String path = strings[a];
            String iface = strings[(a + 3) % strings.length];
            String member = strings[(a + 5) % strings.length];
            String errorName = strings[(a + 7) % strings.length];
            for (int b = 0; b < strings.length; b++) {
                String destination = strings[b];
                String sender = strings[(b + a) % strings.length];
                for (Long rs : replySerials) {
                    for (byte[] body : bodies) {
                        boolean hasBody = body != null && body.length > 0;
                        for (String sig : hasBody ? new String[] {"u", "a{sv}ay" + "i".repeat(40)}
                                : new String[] {null, "", "s"}) {
                            byte[] want = reference(WireFormat.ERROR, 1, 0x80000001L + a, path, iface, member,
                                    errorName, rs, destination, sender, sig, body);
                            byte[] got = MessageBuilder.build(WireFormat.ERROR, 1, 0x80000001L + a, path, iface,
                                    member, errorName, rs, destination, sender, sig, body);
                            assertArrayEquals(want, got, () -> "path=" + path + " dest=" + destination
                                    + " replySerial=" + rs + " sig=" + sig);
                            byte[] encoded = MessageBuilder.encode(WireFormat.ERROR, 1, 0x80000001L + a, path, iface,
                                    member, errorName, rs == null ? MessageBuilder.NO_REPLY_SERIAL : rs, destination,
                                    sender, sig, body);
                            assertArrayEquals(want, encoded);
                            checked++;
                        }
                    }
                }
            }
        }
        assertTrue(checked > 5000, "combinations checked: " + checked);
    }

    @Test
    void encodedDriverRepliesPassValidation() throws Exception {
        List<byte[]> messages = new ArrayList<>();
        messages.add(MessageBuilder.encode(WireFormat.METHOD_RETURN, WireFormat.NO_REPLY_EXPECTED, 7, null, null, null,
                null, 0xFFFFFFFFL, ":1.42", MessageBuilder.BUS_NAME, null, null));
        messages.add(MessageBuilder.encode(WireFormat.ERROR, WireFormat.NO_REPLY_EXPECTED, 8, null, null, null,
                "org.freedesktop.DBus.Error.MatchRuleInvalid", 3, ":1.42", MessageBuilder.BUS_NAME, "s",
                new BodyWriter().writeString("Key \u00e9 unknown\n").toByteArray()));
        messages.add(MessageBuilder.encode(WireFormat.SIGNAL, WireFormat.NO_REPLY_EXPECTED, 9, MessageBuilder.BUS_PATH,
                MessageBuilder.BUS_INTERFACE, "NameAcquired", null, MessageBuilder.NO_REPLY_SERIAL, ":1.42",
                MessageBuilder.BUS_NAME, "s", new BodyWriter().writeString(":1.42").toByteArray()));
        for (byte[] m : messages) {
            MessageHeader h = Wire.wrap(m);
            h.validateBody();
            assertEquals(m.length, h.length());
        }
        MessageHeader r = Wire.wrap(messages.get(0));
        assertEquals(0xFFFFFFFFL, r.replySerial());
        assertEquals(0, r.bodyLength());
        assertFalse(Wire.wrap(messages.get(2)).hasReplySerial());
        assertEquals("Key \u00e9 unknown\n", BodyReader.of(Wire.wrap(messages.get(1))).readString());
    }

    @Test
    void encodeRefusesWhatBuildRefused() {
        assertThrows(IllegalArgumentException.class, () -> MessageBuilder.encode(WireFormat.SIGNAL, 0, 1, "/x", "a.b",
                "M", null, MessageBuilder.NO_REPLY_SERIAL, null, null, "", new byte[] {1}));
        assertThrows(IllegalArgumentException.class, () -> MessageBuilder.encode(WireFormat.SIGNAL, 0, 1, "/x", "a.b",
                "M", null, MessageBuilder.NO_REPLY_SERIAL, null, null, "y".repeat(256), new byte[] {1}));
    }

    @Test
    void directStringArrayIsTheSameBytesAsTheHeapOne() throws Exception {
        List<String> names = new ArrayList<>();
        for (int i = 0; i < 5000; i++) {
            names.add(i % 7 == 0 ? "org.example.N\u00e9" + i : ":1." + i); // odd lengths, some non-ASCII
        }
        MessageBuilder.StringArray body = new MessageBuilder.StringArray(names);
        byte[] heap = MessageBuilder.encode(WireFormat.METHOD_RETURN, WireFormat.NO_REPLY_EXPECTED, 9, null, null,
                null, null, 4, ":1.7", MessageBuilder.BUS_NAME, "as", body, 0);
        java.nio.ByteBuffer[] taken = new java.nio.ByteBuffer[1];
        java.nio.ByteBuffer direct = MessageBuilder.encodeDirect(WireFormat.METHOD_RETURN,
                WireFormat.NO_REPLY_EXPECTED, 9, null, null, null, null, 4, ":1.7", MessageBuilder.BUS_NAME, "as",
                body, 1024, n -> taken[0] = java.nio.ByteBuffer.allocateDirect(n + 100).limit(n));
        assertSame(taken[0], direct);
        assertEquals(0, direct.position());
        byte[] copy = new byte[direct.remaining()];
        direct.duplicate().get(copy);
        assertArrayEquals(heap, copy);
        MessageHeader h = Wire.wrap(copy);
        h.validateBody();
        BodyReader r = BodyReader.of(h);
        assertEquals(names, r.readStringArray());
    }

    @Test
    void directEncodingDeclinesSmallMessagesAndARefusedBuffer() {
        MessageBuilder.StringArray body = new MessageBuilder.StringArray(List.of("a", "b"));
        assertNull(MessageBuilder.encodeDirect(WireFormat.METHOD_RETURN, 0, 1, null, null, null, null, 1, ":1.1",
                MessageBuilder.BUS_NAME, "as", body, 1 << 16, n -> {
                    throw new AssertionError("a small reply must not take a buffer");
                }));
        assertNull(MessageBuilder.encodeDirect(WireFormat.METHOD_RETURN, 0, 1, null, null, null, null, 1, ":1.1",
                MessageBuilder.BUS_NAME, "as", body, 0, n -> null));
    }
}
