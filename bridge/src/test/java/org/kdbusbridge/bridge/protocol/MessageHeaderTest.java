// Tests every header validation rule, good and bad, in both byte orders (messages crafted with Wire).
package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.*;
import static org.kdbusbridge.bridge.protocol.Wire.*;
import static org.kdbusbridge.bridge.protocol.WireFormat.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class MessageHeaderTest {
    static ByteOrder[] orders() {
        return new ByteOrder[] {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN};
    }

    private static void bad(byte[] m, String reasonFragment) {
        ProtocolException e = assertThrows(ProtocolException.class, () -> Wire.wrap(m));
        assertTrue(e.reason().contains(reasonFragment), () -> "reason '" + e.reason() + "' lacks '" + reasonFragment + "'");
    }

    private static final byte[] NO_BODY = new byte[0];

    @ParameterizedTest
    @MethodSource("orders")
    void validMethodCallAccessors(ByteOrder o) throws Exception {
        byte[] body = Wire.body(o, w -> w.str("x").u32(0xfffffffeL));
        byte[] m = msg(o, METHOD_CALL, NO_AUTO_START | ALLOW_INTERACTIVE_AUTHORIZATION, 0xfffffff0L, body,
                path("/a/b"), s(INTERFACE, "org.x.Y"), s(MEMBER, "Do"), s(DESTINATION, ":1.7"), s(SENDER, "org.x.Svc"),
                g("su"), u(UNIX_FDS, 0));
        MessageHeader h = Wire.wrap(m);
        assertEquals(o, h.byteOrder());
        assertEquals(METHOD_CALL, h.type());
        assertEquals(NO_AUTO_START | ALLOW_INTERACTIVE_AUTHORIZATION, h.flags());
        assertTrue(h.hasFlag(NO_AUTO_START));
        assertFalse(h.hasFlag(NO_REPLY_EXPECTED));
        assertEquals(0xfffffff0L, h.serial());
        assertEquals((int) 0xfffffff0L, h.serialInt());
        assertEquals(body.length, h.bodyLength());
        assertEquals(m.length - body.length, h.bodyOffset());
        assertEquals(0, h.bodyOffset() % 8);
        assertEquals("/a/b", h.path());
        assertEquals("org.x.Y", h.iface());
        assertEquals("Do", h.member());
        assertNull(h.errorName());
        assertEquals(":1.7", h.destination());
        assertEquals("org.x.Svc", h.sender());
        assertEquals("su", h.signature());
        assertFalse(h.hasReplySerial());
        assertEquals(0, h.unixFds());
        assertTrue(h.fieldEquals(MEMBER, "Do"));
        assertFalse(h.fieldEquals(MEMBER, "Dox"));
        assertFalse(h.fieldEquals(ERROR_NAME, "Do"));
        h.validateBody();
    }

    @ParameterizedTest
    @MethodSource("orders")
    void wrapAtOffsetInsideLargerBuffer(ByteOrder o) throws Exception {
        byte[] m = call(o, "s", Wire.body(o, w -> w.str("hi")));
        byte[] big = new byte[m.length + 5 + 9];
        System.arraycopy(m, 0, big, 5, m.length); // message start not 8-aligned in the buffer
        MessageHeader h = new MessageHeader();
        h.wrap(ByteBuffer.wrap(big), 5, m.length);
        assertEquals("Method", h.member());
        h.validateBody();
        assertEquals("hi", BodyReader.of(h).readString());
    }

    @ParameterizedTest
    @MethodSource("orders")
    void validOtherTypes(ByteOrder o) throws Exception {
        MessageHeader h = Wire.wrap(msg(o, SIGNAL, 0, 1, NO_BODY, path("/"), s(INTERFACE, "a.b"), s(MEMBER, "Sig")));
        assertEquals(SIGNAL, h.type());
        h = Wire.wrap(msg(o, ERROR, 0, 2, NO_BODY, s(ERROR_NAME, "a.b.Err"), u(REPLY_SERIAL, 9)));
        assertEquals("a.b.Err", h.errorName());
        assertTrue(h.hasReplySerial());
        assertEquals(9, h.replySerial());
        h = Wire.wrap(msg(o, METHOD_RETURN, 0, 3, NO_BODY, u(REPLY_SERIAL, 0xffffffffL), u(UNIX_FDS, 3)));
        assertEquals(0xffffffffL, h.replySerial());
        assertEquals(3, h.unixFds());
        assertNull(h.signature());
        h.validateBody();
    }

    @ParameterizedTest
    @MethodSource("orders")
    void fixedHeaderRules(ByteOrder o) {
        bad(msg(o, 0, 0, 1, NO_BODY, u(REPLY_SERIAL, 1)), "type 0");
        bad(msg(o, 5, 0, 1, NO_BODY, u(REPLY_SERIAL, 1)), "unknown message type 5");
        bad(msg(o, METHOD_RETURN, 0, 0, NO_BODY, u(REPLY_SERIAL, 1)), "serial is 0");
        byte[] m = msg(o, METHOD_RETURN, 0, 1, NO_BODY, u(REPLY_SERIAL, 1));
        MessageHeader h = new MessageHeader();
        assertThrows(ProtocolException.class, () -> h.wrap(ByteBuffer.wrap(m), 0, 12));
        byte[] longer = java.util.Arrays.copyOf(m, m.length + 8);
        assertThrows(ProtocolException.class, () -> h.wrap(ByteBuffer.wrap(longer), 0, longer.length));
        assertFalse(h.isValid());
        assertThrows(IllegalStateException.class, h::validateBody);
    }

    @ParameterizedTest
    @MethodSource("orders")
    void unknownFlagsIgnored(ByteOrder o) throws Exception {
        assertEquals(0xf8, Wire.wrap(msg(o, METHOD_RETURN, 0xf8, 1, NO_BODY, u(REPLY_SERIAL, 1))).flags());
    }

    @ParameterizedTest
    @MethodSource("orders")
    void eachKnownFieldNeedsItsType(ByteOrder o) {
        for (int code = 1; code <= 9; code++) {
            // Give every field the wrong type: 'u' for string-like fields, 's' for u fields.
            F wrong = fieldTypeCode(code) == 'u' ? s(code, "a.b") : u(code, 1);
            bad(msg(o, METHOD_RETURN, 0, 1, NO_BODY, u(REPLY_SERIAL, 1), wrong), "header field " + code);
        }
        // 'o' vs 's' confusion for PATH and a variant signature of two types.
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, s(PATH, "/a"), s(MEMBER, "M")), "expected 'o'");
        bad(msg(o, METHOD_RETURN, 0, 1, NO_BODY, new F(REPLY_SERIAL, "uu", w -> w.u32(1).u32(1))), "header field 5");
    }

    @ParameterizedTest
    @MethodSource("orders")
    void duplicateAndInvalidCodes(ByteOrder o) {
        bad(msg(o, METHOD_RETURN, 0, 1, NO_BODY, u(REPLY_SERIAL, 1), u(REPLY_SERIAL, 2)), "duplicate");
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a"), s(MEMBER, "M"), s(MEMBER, "M")), "duplicate");
        bad(msg(o, METHOD_RETURN, 0, 1, NO_BODY, u(REPLY_SERIAL, 1), u(0, 1)), "code 0");
    }

    @ParameterizedTest
    @MethodSource("orders")
    void unknownFieldsSkippedButValidated(ByteOrder o) throws Exception {
        MessageHeader h = Wire.wrap(msg(o, METHOD_RETURN, 0, 1, NO_BODY, new F(200, "a{sv}", w -> w.array(8, x -> {
            x.pad(8).str("k").sig("i").u32(5);
        })), u(REPLY_SERIAL, 4), new F(10, "(yt)", w -> w.pad(8).y(1).u64(7))));
        assertEquals(4, h.replySerial());
        bad(msg(o, METHOD_RETURN, 0, 1, NO_BODY, u(REPLY_SERIAL, 1), new F(50, "b", w -> w.u32(2))), "boolean");
        bad(msg(o, METHOD_RETURN, 0, 1, NO_BODY, u(REPLY_SERIAL, 1), new F(50, "ii", w -> w.u32(2).u32(2))), "single");
        bad(msg(o, METHOD_RETURN, 0, 1, NO_BODY, u(REPLY_SERIAL, 1), new F(50, "s", w -> w.strBytes(new byte[] {(byte) 0xff}))), "UTF-8");
    }

    @ParameterizedTest
    @MethodSource("orders")
    void requiredFields(ByteOrder o) throws Exception {
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, s(MEMBER, "M")), "PATH");
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a")), "MEMBER");
        Wire.wrap(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a"), s(MEMBER, "M"))); // interface optional
        bad(msg(o, SIGNAL, 0, 1, NO_BODY, path("/a"), s(MEMBER, "M")), "INTERFACE");
        bad(msg(o, SIGNAL, 0, 1, NO_BODY, s(INTERFACE, "a.b"), s(MEMBER, "M")), "PATH");
        bad(msg(o, SIGNAL, 0, 1, NO_BODY, path("/a"), s(INTERFACE, "a.b")), "MEMBER");
        bad(msg(o, ERROR, 0, 1, NO_BODY, u(REPLY_SERIAL, 1)), "ERROR_NAME");
        bad(msg(o, ERROR, 0, 1, NO_BODY, s(ERROR_NAME, "a.b")), "REPLY_SERIAL");
        bad(msg(o, METHOD_RETURN, 0, 1, NO_BODY), "REPLY_SERIAL");
        bad(msg(o, METHOD_RETURN, 0, 1, NO_BODY, u(REPLY_SERIAL, 0)), "REPLY_SERIAL is 0");
    }

    @ParameterizedTest
    @MethodSource("orders")
    void nameSyntax(ByteOrder o) throws Exception {
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a/"), s(MEMBER, "M")), "object path");
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a"), s(MEMBER, "M"), s(INTERFACE, "nodots")), "interface");
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a"), s(MEMBER, "9M")), "member");
        bad(msg(o, ERROR, 0, 1, NO_BODY, s(ERROR_NAME, "Err"), u(REPLY_SERIAL, 1)), "error name");
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a"), s(MEMBER, "M"), s(DESTINATION, "a..b")), "bus name");
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a"), s(MEMBER, "M"), s(SENDER, ":1")), "bus name");
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a"), s(MEMBER, "M"), g("a")), "signature");
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a"), new F(MEMBER, "s", w -> w.u32(1).raw(new byte[] {'M', 'X'}))), "NUL");
        MessageHeader h = Wire.wrap(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a"), s(MEMBER, "M"), s(DESTINATION, ":1.99")));
        assertEquals(":1.99", h.destination());
        h = Wire.wrap(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/a"), s(MEMBER, "M"), s(DESTINATION, "org.freedesktop.DBus")));
        assertTrue(h.fieldEquals(DESTINATION, "org.freedesktop.DBus"));
    }

    @ParameterizedTest
    @MethodSource("orders")
    void localRules(ByteOrder o) throws Exception {
        bad(msg(o, METHOD_CALL, 0, 1, NO_BODY, path(LOCAL_PATH), s(MEMBER, "M")), "reserved path");
        bad(msg(o, SIGNAL, 0, 1, NO_BODY, path("/a"), s(INTERFACE, LOCAL_INTERFACE), s(MEMBER, "M")), "reserved interface");
        // Prefixes of the reserved names are fine.
        Wire.wrap(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/org/freedesktop/DBus/Local2"), s(MEMBER, "M")));
        Wire.wrap(msg(o, METHOD_CALL, 0, 1, NO_BODY, path("/org/freedesktop/DBus"), s(INTERFACE, "org.freedesktop.DBus.Locale"), s(MEMBER, "M")));
    }

    @ParameterizedTest
    @MethodSource("orders")
    void paddingAndBodyWithoutSignature(ByteOrder o) throws Exception {
        bad(msg(o, METHOD_RETURN, 0, 1, new byte[] {1}, u(REPLY_SERIAL, 1)), "no SIGNATURE");
        byte[] m = msg(o, METHOD_RETURN, 0, 1, NO_BODY, u(REPLY_SERIAL, 1));
        // fields: (8-byte struct) ends at 24 = already aligned; add a field that ends unaligned, then dirty the pad.
        byte[] m2 = msg(o, METHOD_RETURN, 0, 1, NO_BODY, u(REPLY_SERIAL, 1), s(DESTINATION, "a.b"));
        assertTrue(m2.length > m.length);
        byte[] dirty = m2.clone();
        dirty[dirty.length - 1] = 1; // last byte is padding after the fields array
        bad(dirty, "padding");
        // Non-zero padding between two field structs.
        byte[] m3 = msg(o, METHOD_RETURN, 0, 1, NO_BODY, g(""), u(REPLY_SERIAL, 1));
        byte[] dirty3 = m3.clone();
        dirty3[16 + 6] = 7; // padding after the empty signature value (y,"g",len 0,NUL), before the next struct
        bad(dirty3, "padding");
    }

    @Test
    void driverNameAndPathDecodeToSharedConstants() throws Exception {
        byte[] m = MessageBuilder.methodCall(5, 0, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                "org.freedesktop.DBus", "AddMatch", null, "s", new BodyWriter().writeString("type='signal'").toByteArray());
        MessageHeader h = Wire.wrap(m);
        assertSame(WireFormat.DRIVER_NAME, h.destination());
        assertSame(WireFormat.DRIVER_NAME, h.iface());
        assertSame(WireFormat.DRIVER_PATH, h.path());
        assertEquals("AddMatch", h.member());
        // Same length, different bytes: decoded, not mistaken for the constant.
        byte[] other = MessageBuilder.methodCall(6, 0, "org.freedesktop.DBuX", "/org/freedesktop/DBuX",
                "org.freedesktop.DBuX", "M", null, null, null);
        MessageHeader o = Wire.wrap(other);
        assertEquals("org.freedesktop.DBuX", o.destination());
        assertEquals("/org/freedesktop/DBuX", o.path());
    }

    @Test
    void stringsDecodeFromAHeapBufferAtAnArrayOffset() throws Exception {
        byte[] m = MessageBuilder.methodCall(5, 0, ":1.7", "/a/b", null, "Ping", null, "s",
                new BodyWriter().writeString("Caf\u00e9 \u20ac").toByteArray());
        byte[] bigger = new byte[m.length + 24];
        System.arraycopy(m, 0, bigger, 24, m.length);
        java.nio.ByteBuffer slice = java.nio.ByteBuffer.wrap(bigger, 24, m.length).slice()
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        assertEquals(24, slice.arrayOffset());
        MessageHeader h = new MessageHeader();
        h.wrap(slice, 0, m.length);
        assertEquals(":1.7", h.destination());
        assertEquals("/a/b", h.path());
        assertEquals("Ping", h.member());
        assertEquals("Caf\u00e9 \u20ac", BodyReader.of(h).readString());
    }

    @Test
    void aFieldEqualToTheLastMessagesReusesItsStringAndADifferentOneIsDecoded() throws Exception {
        MessageHeader h = new MessageHeader();
        byte[] a = MessageBuilder.methodCall(1, 0, ":1.5", "/a/b", "x.y", "Frob", null, null, null);
        byte[] b = MessageBuilder.methodCall(2, 0, ":1.5", "/a/c", "x.y", "Frob", null, null, null);
        byte[] c = MessageBuilder.methodCall(3, 0, ":1.6", "/a/b", "x.z", "Frob2", null, null, null);
        h.wrap(ByteBuffer.wrap(a).order(ByteOrder.LITTLE_ENDIAN), 0, a.length);
        String dest = h.destination();
        String member = h.member();
        String path = h.path();
        h.wrap(ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN), 0, b.length);
        assertSame(dest, h.destination());
        assertSame(member, h.member());
        assertEquals("/a/c", h.path());
        assertNotSame(path, h.path());
        h.wrap(ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN), 0, c.length);
        assertEquals(":1.6", h.destination());
        assertEquals("x.z", h.iface());
        assertEquals("Frob2", h.member());
        assertEquals("/a/b", h.path());
        assertNull(h.errorName());
        assertNull(h.signature());
    }
}
