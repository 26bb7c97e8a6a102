package org.kdbusbridge.core.message;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ReadOnlyBufferException;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures;

class SealedPayloadTest {

    private static SealedPayload payload() {
        return new SealedPayload(new byte[] {1, 2, 3, 4, 5});
    }

    @Test
    void sizeAndBytes() {
        SealedPayload p = payload();
        assertEquals(5, p.size());
        assertEquals(1, p.byteAt(0));
        assertEquals(5, p.byteAt(4));
        assertThrows(IndexOutOfBoundsException.class, () -> p.byteAt(5));
        assertThrows(IndexOutOfBoundsException.class, () -> p.byteAt(-1));
    }

    @Test
    void lengthLimitsTheVisiblePart() {
        SealedPayload p = new SealedPayload(new byte[] {9, 8, 7, 6}, 2);
        assertEquals(2, p.size());
        assertThrows(IndexOutOfBoundsException.class, () -> p.byteAt(2));
        assertEquals(2, p.view().remaining());
        ByteBuffer dst = ByteBuffer.allocate(10);
        assertEquals(2, p.copyTo(0, dst));
        assertEquals(2, dst.position());
        assertThrows(IllegalArgumentException.class, () -> new SealedPayload(new byte[2], 3));
        assertThrows(IllegalArgumentException.class, () -> new SealedPayload(new byte[2], -1));
        assertEquals(0, new SealedPayload(new byte[0]).size());
    }

    @Test
    void viewIsReadOnlyAndDoesNotExposeTheArray() {
        SealedPayload p = payload();
        ByteBuffer v = p.view();
        assertTrue(v.isReadOnly());
        assertFalse(v.hasArray());
        assertThrows(ReadOnlyBufferException.class, () -> v.put(0, (byte) 99));
        assertThrows(ReadOnlyBufferException.class, () -> v.put((byte) 99));
        assertThrows(ReadOnlyBufferException.class, v::array);
        assertEquals(5, v.remaining());
        assertEquals(0, v.position());
        assertEquals(1, p.byteAt(0));
    }

    @Test
    void viewsAreIndependent() {
        SealedPayload p = payload();
        ByteBuffer v1 = p.view();
        v1.get();
        v1.get();
        ByteBuffer v2 = p.view();
        assertEquals(0, v2.position());
        assertEquals(1, v2.get());
        assertEquals(3, v1.get());
    }

    @Test
    void copyToCopiesAndTheCopyIsDetached() {
        SealedPayload p = payload();
        ByteBuffer dst = ByteBuffer.allocate(3);
        assertEquals(3, p.copyTo(1, dst));
        assertArrayEquals(new byte[] {2, 3, 4}, dst.array());
        dst.array()[0] = 42;
        assertEquals(2, p.byteAt(1), "writing to the copy leaves the payload alone");

        ByteBuffer rest = ByteBuffer.allocate(10);
        assertEquals(1, p.copyTo(4, rest));
        assertEquals(0, p.copyTo(5, rest), "nothing left");
        assertEquals(0, p.copyTo(0, ByteBuffer.allocate(0)), "no room");
    }

    @Test
    void messageCarriesPayloadSizeAndIsAdmittedOnce() {
        Message m = Fixtures.msg(Message.METHOD_CALL, 0, 3, Message.NO_REPLY_SERIAL, ":1.0", "/p", "a.b", "M", null,
                12, null);
        assertEquals(12, m.size());
        assertSame(ArgSource.NONE, m.args());
        assertNull(m.args().arg(0));
        assertTrue(m.expectsReply());
        assertFalse(m.isReply());
        assertNull(m.sender());
        assertEquals(0, m.seq());
        m.admit(null, 5);
        assertEquals(5, m.seq());
        assertThrows(IllegalStateException.class, () -> m.admit(null, 6));
        assertEquals(5, m.seq());

        Message noReply = Fixtures.call(":1.0", 4, Message.FLAG_NO_REPLY_EXPECTED, 0);
        assertFalse(noReply.expectsReply());
        assertTrue(Fixtures.reply(":1.0", 4).isReply());
        assertTrue(Fixtures.error(":1.0", 4).isReply());
        assertFalse(Fixtures.signal("M").expectsReply());
    }

    @org.junit.jupiter.api.Test
    void aDeferredPayloadIsEncodedOnceAndOnlyWhenRead() {
        int[] calls = {0};
        SealedPayload p = SealedPayload.deferred(() -> {
            calls[0]++;
            return new byte[] {1, 2, 3};
        });
        org.junit.jupiter.api.Assertions.assertTrue(p.isDeferred());
        org.junit.jupiter.api.Assertions.assertEquals(0, calls[0], "nothing read yet");
        org.junit.jupiter.api.Assertions.assertEquals(3, p.size());
        org.junit.jupiter.api.Assertions.assertEquals(2, p.byteAt(1));
        org.junit.jupiter.api.Assertions.assertEquals(3, p.view().remaining());
        org.junit.jupiter.api.Assertions.assertArrayEquals(new byte[] {1, 2, 3}, toArray(p.heapCopy()));
        org.junit.jupiter.api.Assertions.assertEquals(1, calls[0], "encoded exactly once");
        org.junit.jupiter.api.Assertions.assertFalse(p.isDeferred());
        org.junit.jupiter.api.Assertions.assertFalse(p.isDirect());
    }

    private static byte[] toArray(SealedPayload p) {
        byte[] b = new byte[p.size()];
        p.view().get(b);
        return b;
    }
}
