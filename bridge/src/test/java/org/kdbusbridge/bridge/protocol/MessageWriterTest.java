// Tests sender splicing: SENDER replaced, unknown fields dropped, body identical, result re-validates.
package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.*;
import static org.kdbusbridge.bridge.protocol.Wire.*;
import static org.kdbusbridge.bridge.protocol.WireFormat.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class MessageWriterTest {
    static ByteOrder[] orders() {
        return new ByteOrder[] {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN};
    }

    @ParameterizedTest
    @MethodSource("orders")
    void senderReplacedUnknownDroppedBodyIdentical(ByteOrder o) throws Exception {
        byte[] body = Wire.body(o, w -> w.str("payload").u64(42).array(8, x -> x.pad(8).str("k").sig("u").u32(3)));
        byte[] m = msg(o, METHOD_CALL, NO_AUTO_START, 1234, body,
                new F(77, "ay", w -> w.array(1, x -> x.y(1).y(2).y(3))),
                path("/org/x"), s(SENDER, ":1.999"), s(INTERFACE, "org.x.I"), s(MEMBER, "Go"),
                new F(200, "s", w -> w.str("junk")), s(DESTINATION, "org.x.Svc"), g("sta{sv}"), u(UNIX_FDS, 0));
        MessageHeader h = Wire.wrap(m);
        h.validateBody();
        ByteBuffer bb = ByteBuffer.wrap(m).order(Wire.other(o));
        h.wrap(bb, 0, m.length);
        byte[] out = MessageWriter.spliceSender(bb, 0, h, ":1.5");

        MessageHeader r = Wire.wrap(out);
        r.validateBody();
        assertEquals(o, r.byteOrder());
        assertEquals(":1.5", r.sender());
        assertEquals(1234, r.serial());
        assertEquals(NO_AUTO_START, r.flags());
        assertEquals("/org/x", r.path());
        assertEquals("org.x.I", r.iface());
        assertEquals("Go", r.member());
        assertEquals("org.x.Svc", r.destination());
        assertEquals("sta{sv}", r.signature());
        assertTrue(r.has(UNIX_FDS));
        assertArrayEquals(body, Arrays.copyOfRange(out, r.bodyOffset(), out.length));
        // Exactly the expected fields: rebuild the expected message by hand and compare bytes.
        byte[] expected = msg(o, METHOD_CALL, NO_AUTO_START, 1234, body,
                path("/org/x"), s(INTERFACE, "org.x.I"), s(MEMBER, "Go"),
                s(DESTINATION, "org.x.Svc"), g("sta{sv}"), u(UNIX_FDS, 0), s(SENDER, ":1.5"));
        assertArrayEquals(expected, out);
        assertEquals(out.length, MessageFraming.frameLength(ByteBuffer.wrap(out), 0, out.length));
    }

    @ParameterizedTest
    @MethodSource("orders")
    void senderAddedWhenAbsentAtOffset(ByteOrder o) throws Exception {
        byte[] m = msg(o, METHOD_RETURN, 0, 9, new byte[0], u(REPLY_SERIAL, 8), s(DESTINATION, ":1.1"));
        byte[] big = new byte[m.length + 3];
        System.arraycopy(m, 0, big, 3, m.length);
        ByteBuffer bb = ByteBuffer.wrap(big);
        MessageHeader h = new MessageHeader();
        h.wrap(bb, 3, m.length);
        byte[] out = MessageWriter.spliceSender(bb, 3, h, "org.freedesktop.DBus");
        MessageHeader r = Wire.wrap(out);
        r.validateBody();
        assertEquals("org.freedesktop.DBus", r.sender());
        assertEquals(8, r.replySerial());
        assertEquals(":1.1", r.destination());
        assertEquals(0, r.bodyLength());
    }

    @ParameterizedTest
    @MethodSource("orders")
    void mismatchedHeaderRejected(ByteOrder o) throws Exception {
        byte[] m = msg(o, METHOD_RETURN, 0, 9, new byte[0], u(REPLY_SERIAL, 8));
        MessageHeader h = Wire.wrap(m);
        assertThrows(IllegalArgumentException.class, () -> MessageWriter.spliceSender(ByteBuffer.wrap(m), 0, h, ":1.1"));
    }

    @ParameterizedTest
    @MethodSource("orders")
    void splicingIntoAReusedDirectBufferWritesEveryPaddingByte(ByteOrder o) throws Exception {
        // Pooled payload buffers hold the previous message's bytes: the result must not depend on them.
        byte[] body = Wire.body(o, w -> w.str("payload").u64(42));
        byte[] m = msg(o, SIGNAL, 0, 77, body, path("/a/b/c"), s(INTERFACE, "org.x.I"), s(MEMBER, "Tick"), g("st"));
        MessageHeader h = Wire.wrap(m);
        h.validateBody();
        ByteBuffer in = ByteBuffer.wrap(m);
        h.wrap(in, 0, m.length);
        byte[] expected = MessageWriter.spliceSender(in, 0, h, ":1.12345");
        ByteBuffer dirty = ByteBuffer.allocateDirect(expected.length + 100);
        while (dirty.hasRemaining()) dirty.put((byte) 0xA5);
        ByteBuffer out = MessageWriter.spliceSenderDirect(in, 0, h, ":1.12345", n -> dirty);
        assertSame(dirty, out);
        assertEquals(0, out.position());
        assertEquals(expected.length, out.limit());
        byte[] got = new byte[expected.length];
        out.get(0, got);
        assertArrayEquals(expected, got);
        assertThrows(IllegalArgumentException.class,
                () -> MessageWriter.spliceSenderDirect(in, 0, h, ":1.1", n -> ByteBuffer.allocateDirect(n - 1)));
    }

    @ParameterizedTest
    @MethodSource("orders")
    void splicingInPlaceGivesTheSameBytesWithoutMovingTheBody(ByteOrder o) throws Exception {
        byte[] body = Wire.body(o, w -> w.str("payload").u64(42).array(8, x -> x.pad(8).str("k").sig("u").u32(3)));
        byte[] m = msg(o, METHOD_CALL, NO_AUTO_START, 1234, body,
                new F(77, "ay", w -> w.array(1, x -> x.y(1).y(2).y(3))),
                path("/org/x"), s(SENDER, ":1.999"), s(INTERFACE, "org.x.I"), s(MEMBER, "Go"),
                new F(200, "s", w -> w.str("junk")), s(DESTINATION, "org.x.Svc"), g("sta{sv}"), u(UNIX_FDS, 0));
        String sender = ":1." + "7".repeat(200); // a long name: the header grows
        ByteBuffer heap = ByteBuffer.wrap(m);
        MessageHeader h = new MessageHeader();
        h.wrap(heap, 0, m.length);
        byte[] expected = MessageWriter.spliceSender(heap, 0, h, sender);

        int headroom = MessageWriter.MAX_HEADER_GROWTH;
        ByteBuffer buf = ByteBuffer.allocateDirect(headroom + m.length);
        for (int i = 0; i < headroom; i++) buf.put(i, (byte) 0x5A); // stale bytes before the frame
        buf.put(headroom, m);
        MessageHeader inBuf = new MessageHeader();
        inBuf.wrap(buf, headroom, m.length);
        inBuf.validateBody();
        int bodyAt = inBuf.bodyOffset();
        int start = MessageWriter.spliceSenderInPlace(buf, headroom, inBuf, sender);
        assertEquals(headroom + m.length - expected.length, start, "ends where the original ended");
        byte[] got = new byte[expected.length];
        buf.get(start, got);
        assertArrayEquals(expected, got);
        assertEquals(bodyAt, start + (expected.length - body.length), "the body did not move");

        ByteBuffer tight = ByteBuffer.allocateDirect(m.length);
        tight.put(0, m);
        MessageHeader t = new MessageHeader();
        t.wrap(tight, 0, m.length);
        assertThrows(IllegalArgumentException.class, () -> MessageWriter.spliceSenderInPlace(tight, 0, t, sender));
    }

    @org.junit.jupiter.api.Test
    void inPlaceAndCopyingSplicesAgreeOnRandomMessages() throws Exception {
        java.util.Random r = new java.util.Random(20261127);
        for (int n = 0; n < 3000; n++) {
            byte[] m = FuzzMessages.randomValid(r).encode();
            String sender = ":1." + "9".repeat(1 + r.nextInt(250));
            ByteBuffer heap = ByteBuffer.wrap(m);
            MessageHeader h = new MessageHeader();
            h.wrap(heap, 0, m.length);
            byte[] expected = MessageWriter.spliceSender(heap, 0, h, sender);

            int offset = MessageWriter.MAX_HEADER_GROWTH + r.nextInt(16);
            ByteBuffer buf = ByteBuffer.allocateDirect(offset + m.length + 3);
            for (int i = 0; i < buf.capacity(); i++) buf.put(i, (byte) r.nextInt());
            buf.put(offset, m);
            MessageHeader in = new MessageHeader();
            in.wrap(buf, offset, m.length);
            int start = MessageWriter.spliceSenderInPlace(buf, offset, in, sender);
            byte[] got = new byte[offset + m.length - start];
            buf.get(start, got);
            assertArrayEquals(expected, got, "message " + n);
            MessageHeader again = new MessageHeader();
            again.wrap(buf, start, got.length);
            again.validateBody();
            assertEquals(sender, again.sender());
        }
    }
}
