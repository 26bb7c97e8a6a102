// Invariants: stateless; reads only [offset, offset+16) with absolute gets in the message's own
// byte order (never the buffer's ByteOrder setting); never returns a length > MAX_MESSAGE_SIZE.
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Determines the total length of a D-Bus message from its fixed 16-byte header prefix. */
public final class MessageFraming {
    private MessageFraming() {}

    /**
     * @return -1 if fewer than 16 bytes are available, else the total message length
     *         (16 + header fields array length padded to 8 + body length)
     * @throws ProtocolException if the prefix is malformed or the message would exceed 128 MiB;
     *         checked before any of it is buffered, so a lying length cannot make us allocate
     */
    public static long frameLength(ByteBuffer buf, int offset, int available) throws ProtocolException {
        if (available < WireFormat.FIXED_HEADER_SIZE) return -1;
        ByteOrder order = Bytes.orderOf(buf.get(offset));
        int version = buf.get(offset + 3) & 0xff;
        if (version != WireFormat.PROTOCOL_VERSION) {
            throw new ProtocolException("unsupported protocol version " + version);
        }
        long bodyLength = Bytes.getUint32(buf, offset + 4, order);
        long fieldsLength = Bytes.getUint32(buf, offset + 12, order);
        if (fieldsLength > WireFormat.MAX_ARRAY) {
            throw new ProtocolException("header fields array length " + fieldsLength + " exceeds 2^26");
        }
        if (bodyLength > WireFormat.MAX_MESSAGE_SIZE) {
            throw new ProtocolException("body length " + bodyLength + " exceeds maximum message size");
        }
        long total = WireFormat.FIXED_HEADER_SIZE + ((fieldsLength + 7) & ~7L) + bodyLength;
        if (total > WireFormat.MAX_MESSAGE_SIZE) {
            throw new ProtocolException("message length " + total + " exceeds maximum message size " + WireFormat.MAX_MESSAGE_SIZE);
        }
        return total;
    }
}
