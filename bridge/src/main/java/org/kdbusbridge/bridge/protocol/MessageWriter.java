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

    /**
     * The length of the spliced message (what {@link #spliceSenderDirect} asks its allocator
     * for); checks the arguments and the maximum message size.
     */
    public static int splicedLength(ByteBuffer buf, int offset, MessageHeader h, String sender) throws ProtocolException {
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
        splice(buf, offset, h, sender, out, 0, true);
    }

    /**
     * Splices in place: the message at [offset, offset + h.length()) of a DIRECT buffer keeps its
     * body where it is, and the rewritten header is written to end exactly where the body starts,
     * growing into the bytes before {@code offset} (at most {@link #MAX_HEADER_GROWTH}). Returns
     * the index where the spliced message now starts; it ends where the original did. No body
     * byte is copied: what a large message costs is reading it, once.
     *
     * @throws IllegalArgumentException if there is not enough room before offset
     */
    public static int spliceSenderInPlace(ByteBuffer buf, int offset, MessageHeader h, String sender) throws ProtocolException {
        splicedLength(buf, offset, h, sender);
        int origBodyStart = h.bodyOffset() - offset;
        int newBodyStart = bodyStart(h, sender.length());
        int start = offset + origBodyStart - newBodyStart;
        if (start < 0) throw new IllegalArgumentException("no room for the spliced header before offset " + offset);
        byte[] original = new byte[origBodyStart]; // the new header overlaps the old one: read it first
        buf.get(offset, original);
        splice(ByteBuffer.wrap(original), 0, h, sender, buf, start, false);
        return start;
    }

    /**
     * How much longer than the client's a spliced header can be: one SENDER field (8 + a name of
     * at most 255 bytes + NUL) plus up to 7 bytes of alignment on each side, rounded up.
     */
    public static final int MAX_HEADER_GROWTH = 288;

    /**
     * The splice itself. Header bytes are read from {@code src}, where the message's byte at
     * h.offset() is at {@code srcBase}; the result is written at {@code outBase} of {@code out};
     * the body is copied only if {@code copyBody} (else it is already in place after the header).
     */
    private static void splice(ByteBuffer src, int srcBase, MessageHeader h, String sender, ByteBuffer out,
                               int outBase, boolean copyBody) {
        ByteOrder order = h.byteOrder();
        int senderLen = sender.length();
        int fieldsLength = fieldsEnd(h, senderLen) - WireFormat.FIXED_HEADER_SIZE;
        int bodyStart = bodyStart(h, senderLen);
        int bodyLength = (int) h.bodyLength();
        int delta = srcBase - h.offset(); // header position p is at src index p + delta
        out.put(outBase, src, srcBase, 12);
        putInt(out, outBase + 12, fieldsLength, order);
        int pos = WireFormat.FIXED_HEADER_SIZE;
        int n = h.knownFieldCount();
        for (int i = 0; i < n; i++) {
            int code = h.knownFieldCode(i);
            if (code == WireFormat.SENDER) continue;
            pos = zeroTo(out, outBase, pos, WireFormat.align(pos, 8));
            int s = h.structStart(code);
            int len = h.structEnd(code) - s;
            out.put(outBase + pos, src, s + delta, len);
            pos += len;
        }
        pos = zeroTo(out, outBase, pos, WireFormat.align(pos, 8));
        int at = outBase + pos;
        out.put(at, (byte) WireFormat.SENDER);
        out.put(at + 1, (byte) 1);
        out.put(at + 2, (byte) 's');
        out.put(at + 3, (byte) 0);
        putInt(out, at + 4, senderLen, order);
        pos += 8;
        for (int i = 0; i < senderLen; i++) out.put(outBase + pos + i, (byte) sender.charAt(i));
        zeroTo(out, outBase, pos + senderLen, bodyStart); // the string's NUL and the body's alignment
        if (copyBody) {
            out.put(outBase + bodyStart, src, h.bodyOffset() + delta, bodyLength);
        }
    }

    /** Zeroes [base+from, base+to) (at most 8 padding bytes); returns to. Output buffers may be reused. */
    private static int zeroTo(ByteBuffer out, int base, int from, int to) {
        for (int i = from; i < to; i++) out.put(base + i, (byte) 0);
        return to;
    }

    private static void putInt(ByteBuffer out, int at, int v, ByteOrder order) {
        out.putInt(at, out.order() == order ? v : Integer.reverseBytes(v));
    }
}
