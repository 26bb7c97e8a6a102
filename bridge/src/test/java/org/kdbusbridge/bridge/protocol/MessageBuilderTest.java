// Tests that bus-built messages pass MessageHeader.wrap + validateBody with the expected fields.
package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.*;

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
}
