// Tests framing: both byte orders, buffer ByteOrder independence, lying/oversized lengths.
package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

class MessageFramingTest {
    static ByteOrder[] orders() {
        return new ByteOrder[] {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN};
    }

    private static byte[] prefix(ByteOrder o, int version, long bodyLen, long fieldsLen) {
        Wire w = new Wire(o);
        w.y(o == ByteOrder.LITTLE_ENDIAN ? 'l' : 'B').y(1).y(0).y(version).u32(bodyLen).u32(1).u32(fieldsLen);
        return w.bytes();
    }

    @Test
    void fewerThan16BytesNeedsMore() throws Exception {
        byte[] m = prefix(ByteOrder.LITTLE_ENDIAN, 1, 0, 0);
        assertEquals(-1, MessageFraming.frameLength(ByteBuffer.wrap(m), 0, 15));
        assertEquals(-1, MessageFraming.frameLength(ByteBuffer.wrap(m), 0, 0));
    }

    @ParameterizedTest
    @MethodSource("orders")
    void lengthOfRealMessageIndependentOfBufferOrder(ByteOrder o) throws Exception {
        byte[] body = Wire.body(o, w -> w.str("hello"));
        byte[] m = Wire.call(o, "s", body);
        for (ByteOrder bo : orders()) {
            assertEquals(m.length, MessageFraming.frameLength(ByteBuffer.wrap(m).order(bo), 0, 16));
        }
        // At a non-zero offset inside a larger buffer.
        byte[] big = new byte[m.length + 13];
        System.arraycopy(m, 0, big, 13, m.length);
        assertEquals(m.length, MessageFraming.frameLength(ByteBuffer.wrap(big), 13, 16));
    }

    @ParameterizedTest
    @MethodSource("orders")
    void computesPaddedFieldsPlusBody(ByteOrder o) throws Exception {
        assertEquals(16 + 8 + 5, MessageFraming.frameLength(ByteBuffer.wrap(prefix(o, 1, 5, 3)), 0, 16));
        assertEquals(16 + 16 + 0, MessageFraming.frameLength(ByteBuffer.wrap(prefix(o, 1, 0, 16)), 0, 16));
    }

    @Test
    void badEndiannessRejected() {
        byte[] m = prefix(ByteOrder.LITTLE_ENDIAN, 1, 0, 0);
        m[0] = 'x';
        ProtocolException e = assertThrows(ProtocolException.class, () -> MessageFraming.frameLength(ByteBuffer.wrap(m), 0, 16));
        assertTrue(e.reason().contains("endianness"));
    }

    @ParameterizedTest
    @MethodSource("orders")
    void badVersionRejected(ByteOrder o) {
        assertThrows(ProtocolException.class, () -> MessageFraming.frameLength(ByteBuffer.wrap(prefix(o, 2, 0, 0)), 0, 16));
        assertThrows(ProtocolException.class, () -> MessageFraming.frameLength(ByteBuffer.wrap(prefix(o, 0, 0, 0)), 0, 16));
    }

    @ParameterizedTest
    @MethodSource("orders")
    void lyingAndOversizedLengthsRejected(ByteOrder o) throws Exception {
        // Fields array over 2^26.
        assertThrows(ProtocolException.class, () -> MessageFraming.frameLength(ByteBuffer.wrap(prefix(o, 1, 0, WireFormat.MAX_ARRAY + 1)), 0, 16));
        // A body length of 0xffffffff (lying length).
        assertThrows(ProtocolException.class, () -> MessageFraming.frameLength(ByteBuffer.wrap(prefix(o, 1, 0xffffffffL, 0)), 0, 16));
        // Sum just over the cap.
        long body = WireFormat.MAX_MESSAGE_SIZE - 16 - 8 + 1;
        assertThrows(ProtocolException.class, () -> MessageFraming.frameLength(ByteBuffer.wrap(prefix(o, 1, body, 8)), 0, 16));
        // Exactly at the cap is fine.
        assertEquals(WireFormat.MAX_MESSAGE_SIZE, MessageFraming.frameLength(ByteBuffer.wrap(prefix(o, 1, body - 1, 8)), 0, 16));
        // Fields array exactly 2^26 is allowed if the total fits.
        assertEquals(16 + WireFormat.MAX_ARRAY, MessageFraming.frameLength(ByteBuffer.wrap(prefix(o, 1, 0, WireFormat.MAX_ARRAY)), 0, 16));
    }

    @Test
    void bufferPositionAndOrderUntouched() throws Exception {
        ByteBuffer b = ByteBuffer.wrap(prefix(ByteOrder.BIG_ENDIAN, 1, 4, 0)).order(ByteOrder.LITTLE_ENDIAN);
        b.position(3);
        assertEquals(20, MessageFraming.frameLength(b, 0, 16));
        assertEquals(3, b.position());
        assertEquals(ByteOrder.LITTLE_ENDIAN, b.order());
    }
}
