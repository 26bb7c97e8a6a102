// Invariants: stateless; the output is a fresh array (or, spliceSenderDirect, a direct buffer,
// fresh or reused, position 0, limit = the message length, every padding byte written) holding
// one complete message in the input's byte order with the same fixed header (except the fields
// length), every known header field but SENDER copied byte-for-byte in original order, unknown
// fields dropped, exactly one SENDER appended, and the body bytes unchanged.
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Rewrites client messages for forwarding: stamps the bus-assigned SENDER. */
public final class MessageWriter {
    private MessageWriter() {}

    /**
     * Returns the message at offset in buf, as described by the already-wrapped h, with its header
     * fields rewritten: client SENDER and unknown fields dropped, SENDER=sender appended.
     * Field structs start 8-aligned relative to the message start in both input and output, so
     * copying them verbatim preserves their internal alignment.
     *
     * @throws ProtocolException if the result would exceed the maximum message size
     */
    public static byte[] spliceSender(ByteBuffer buf, int offset, MessageHeader h, String sender) throws ProtocolException {
        int total = splicedLength(buf, offset, h, sender);
        byte[] out = new byte[total]; // zeroed, so padding needs no writes
        splice(buf, offset, h, sender, ByteBuffer.wrap(out));
        return out;
    }

    /**
     * As {@link #spliceSender}, but into a fresh DIRECT buffer (position 0, limit = length), so a
     * large message can later be written to every receiver's socket straight from it.
     */
    public static ByteBuffer spliceSenderDirect(ByteBuffer buf, int offset, MessageHeader h, String sender) throws ProtocolException {
        return spliceSenderDirect(buf, offset, h, sender, ByteBuffer::allocateDirect);
    }

    /**
     * As above, into a direct buffer from {@code alloc} (called with the spliced length; it may
     * return a larger, reused buffer with stale bytes: every padding byte is written). The result
     * has position 0 and limit = the spliced length.
     */
    public static ByteBuffer spliceSenderDirect(ByteBuffer buf, int offset, MessageHeader h, String sender,
                                                java.util.function.IntFunction<ByteBuffer> alloc) throws ProtocolException {
        int total = splicedLength(buf, offset, h, sender);
        ByteBuffer out = alloc.apply(total);
        if (!out.isDirect() || out.capacity() < total) {
            throw new IllegalArgumentException("allocator gave " + out);
        }
        out.clear().limit(total);
        splice(buf, offset, h, sender, out);
        return out;
    }

    /** The length of the spliced message; checks the arguments and the maximum message size. */
    private static int splicedLength(ByteBuffer buf, int offset, MessageHeader h, String sender) throws ProtocolException {
        h.requireValid();
        if (h.buffer() != buf || h.offset() != offset) throw new IllegalArgumentException("header is wrapped over a different message");
        int senderLen = sender.length();
        for (int i = 0; i < senderLen; i++) {
            char c = sender.charAt(i);
            if (c == 0 || c > 0x7e) throw new IllegalArgumentException("sender must be an ASCII bus name");
        }
        long total = (long) bodyStart(h, senderLen) + h.bodyLength();
        if (total > WireFormat.MAX_MESSAGE_SIZE) throw new ProtocolException("message with SENDER would exceed maximum message size");
        return (int) total;
    }

    /** End of the rewritten header fields (before body padding). */
    private static int fieldsEnd(MessageHeader h, int senderLen) {
        int pos = WireFormat.FIXED_HEADER_SIZE;
        int n = h.knownFieldCount();
        for (int i = 0; i < n; i++) {
            int code = h.knownFieldCode(i);
            if (code == WireFormat.SENDER) continue;
            pos = WireFormat.align(pos, 8) + (h.structEnd(code) - h.structStart(code));
        }
        return WireFormat.align(pos, 8) + 8 + senderLen + 1; // y, "\1s\0", u32 length, bytes, NUL
    }

    private static int bodyStart(MessageHeader h, int senderLen) {
        return WireFormat.align(fieldsEnd(h, senderLen), 8);
    }

    /** Writes the spliced message at index 0 of {@code out}, padding included (absolute puts only). */
    private static void splice(ByteBuffer buf, int offset, MessageHeader h, String sender, ByteBuffer out) {
        ByteOrder order = h.byteOrder();
        int senderLen = sender.length();
        int fieldsLength = fieldsEnd(h, senderLen) - WireFormat.FIXED_HEADER_SIZE;
        int bodyStart = bodyStart(h, senderLen);
        int bodyLength = (int) h.bodyLength();
        out.put(0, buf, offset, 12);
        putInt(out, 12, fieldsLength, order);
        int pos = WireFormat.FIXED_HEADER_SIZE;
        int n = h.knownFieldCount();
        for (int i = 0; i < n; i++) {
            int code = h.knownFieldCode(i);
            if (code == WireFormat.SENDER) continue;
            pos = zeroTo(out, pos, WireFormat.align(pos, 8));
            int s = h.structStart(code);
            int len = h.structEnd(code) - s;
            out.put(pos, buf, s, len);
            pos += len;
        }
        pos = zeroTo(out, pos, WireFormat.align(pos, 8));
        out.put(pos, (byte) WireFormat.SENDER);
        out.put(pos + 1, (byte) 1);
        out.put(pos + 2, (byte) 's');
        out.put(pos + 3, (byte) 0);
        putInt(out, pos + 4, senderLen, order);
        pos += 8;
        for (int i = 0; i < senderLen; i++) out.put(pos + i, (byte) sender.charAt(i));
        zeroTo(out, pos + senderLen, bodyStart); // the string's NUL and the body's alignment
        out.put(bodyStart, buf, h.bodyOffset(), bodyLength);
    }

    /** Zeroes [from, to) (at most 8 padding bytes); returns to. Output buffers may be reused. */
    private static int zeroTo(ByteBuffer out, int from, int to) {
        for (int i = from; i < to; i++) out.put(i, (byte) 0);
        return to;
    }

    private static void putInt(ByteBuffer out, int at, int v, ByteOrder order) {
        out.putInt(at, out.order() == order ? v : Integer.reverseBytes(v));
    }
}
