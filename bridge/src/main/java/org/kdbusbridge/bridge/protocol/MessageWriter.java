// Invariants: stateless; the output is a fresh array holding one complete message in the input's
// byte order with the same fixed header (except the fields length), every known header field but
// SENDER copied byte-for-byte in original order, unknown fields dropped, exactly one SENDER
// appended, and the body bytes unchanged.
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
        h.requireValid();
        if (h.buffer() != buf || h.offset() != offset) throw new IllegalArgumentException("header is wrapped over a different message");
        int senderLen = sender.length();
        for (int i = 0; i < senderLen; i++) {
            char c = sender.charAt(i);
            if (c == 0 || c > 0x7e) throw new IllegalArgumentException("sender must be an ASCII bus name");
        }
        ByteOrder order = h.byteOrder();
        // Pass 1: size.
        int pos = WireFormat.FIXED_HEADER_SIZE;
        int n = h.knownFieldCount();
        for (int i = 0; i < n; i++) {
            int code = h.knownFieldCode(i);
            if (code == WireFormat.SENDER) continue;
            pos = WireFormat.align(pos, 8) + (h.structEnd(code) - h.structStart(code));
        }
        pos = WireFormat.align(pos, 8) + 8 + senderLen + 1; // y, "\1s\0", u32 length, bytes, NUL
        int fieldsLength = pos - WireFormat.FIXED_HEADER_SIZE;
        int bodyStart = WireFormat.align(pos, 8);
        int bodyLength = (int) h.bodyLength();
        long total = (long) bodyStart + bodyLength;
        if (total > WireFormat.MAX_MESSAGE_SIZE) throw new ProtocolException("message with SENDER would exceed maximum message size");

        // Pass 2: copy. New arrays are zeroed, so padding needs no writes.
        byte[] out = new byte[(int) total];
        buf.get(offset, out, 0, 12);
        Bytes.putInt(out, 12, fieldsLength, order);
        pos = WireFormat.FIXED_HEADER_SIZE;
        for (int i = 0; i < n; i++) {
            int code = h.knownFieldCode(i);
            if (code == WireFormat.SENDER) continue;
            pos = WireFormat.align(pos, 8);
            int s = h.structStart(code);
            int len = h.structEnd(code) - s;
            buf.get(s, out, pos, len);
            pos += len;
        }
        pos = WireFormat.align(pos, 8);
        out[pos] = WireFormat.SENDER;
        out[pos + 1] = 1;
        out[pos + 2] = 's';
        out[pos + 3] = 0;
        Bytes.putInt(out, pos + 4, senderLen, order);
        pos += 8;
        for (int i = 0; i < senderLen; i++) out[pos + i] = (byte) sender.charAt(i);
        buf.get(h.bodyOffset(), out, bodyStart, bodyLength);
        return out;
    }
}
