package org.kdbusbridge.bridge.server;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;

import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.MetadataField;
import org.kdbusbridge.bridge.protocol.ProtocolException;

/** Test helper: finds the AttachMetadata header field in a raw message and decodes its a{sv}. */
final class MetadataFields {
    private MetadataFields() { }

    /** The decoded field, or null if the message has none. */
    static Map<String, Object> find(byte[] frame) throws ProtocolException {
        ByteBuffer b = ByteBuffer.wrap(frame);
        ByteOrder order = frame[0] == 'B' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        b.order(order);
        int end = 16 + b.getInt(12);
        int p = 16;
        Map<String, Object> found = null;
        while (p < end) {
            p = (p + 7) & ~7;
            int code = frame[p] & 0xff;
            int sigLen = frame[p + 1] & 0xff;
            String sig = new String(frame, p + 2, sigLen, java.nio.charset.StandardCharsets.US_ASCII);
            int value = p + 3 + sigLen;
            BodyReader r = new BodyReader(b, value, end - value, order, sig);
            if (code == MetadataField.CODE) {
                if (found != null) {
                    throw new AssertionError("two metadata fields");
                }
                found = r.readDictStringVariant();
            } else {
                r.skip();
            }
            p = r.position();
        }
        return found;
    }
}
