package org.kdbusbridge.bridge.server;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.ArgSource;
import org.kdbusbridge.core.message.SealedPayload;

/**
 * argN values of a forwarded message, decoded from its sealed bytes on first use only,
 * so messages no argN rule looks at are never decoded.
 */
final class PayloadArgs implements ArgSource {
    private final SealedPayload payload;
    private final String signature;
    private String[] values;
    private boolean[] isPath;

    PayloadArgs(SealedPayload payload, String signature) {
        this.payload = payload;
        this.signature = signature;
    }

    private void decode() {
        int max = MatchRule.MAX_ARG + 1;
        values = new String[max];
        isPath = new boolean[max];
        if (signature == null || signature.isEmpty()) {
            return;
        }
        ByteBuffer b = payload.view();
        ByteOrder order = b.get(0) == 'B' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        b.order(order);
        int fieldsLen = b.getInt(12);
        int bodyOffset = 16 + ((fieldsLen + 7) & ~7);
        int bodyLen = b.getInt(4);
        try {
            BodyReader.readMatchArgs(b, bodyOffset, bodyLen, order, signature, values, isPath, max);
        } catch (ProtocolException e) {
            // Already validated on receipt; a failure here just means "no such arg".
        }
    }

    @Override
    public String arg(int index) {
        if (values == null) {
            decode();
        }
        return index < values.length ? values[index] : null;
    }

    @Override
    public boolean isObjectPath(int index) {
        if (values == null) {
            decode();
        }
        return index < isPath.length && isPath[index];
    }
}
