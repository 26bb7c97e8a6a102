// Invariants: TEST-ONLY (FaultRelay's client->bus direction). Bytes leave in the order they
// came, unchanged, except whole frames that the SignalDrop picks. Until the client's BEGIN line
// the stream is SASL text and passes as it is read; after it, only whole frames are written
// (a partial one waits in `pending`). A frame whose length can't be read switches to raw
// passthrough for good: the bus then refuses the stream itself, as it would without the relay.
// Single-threaded (one pump thread per connection).
package org.kdbusbridge.bridge.migration;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

import org.kdbusbridge.bridge.protocol.MessageFraming;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** One client's stream towards the bus, cut into D-Bus frames so that one signal can vanish. */
final class ClientFrames {
    private static final Logger LOG = LoggerFactory.getLogger(ClientFrames.class);
    private static final int MAX_SASL_LINE = 16 * 1024;

    private final SignalDrop drop;
    private final WritableByteChannel out;
    private final MessageHeader header = new MessageHeader();
    private final StringBuilder line = new StringBuilder();
    private boolean binary;
    private boolean raw;
    private byte[] pending = new byte[64 * 1024];
    private int have;

    ClientFrames(SignalDrop drop, WritableByteChannel out) {
        this.drop = drop;
        this.out = out;
    }

    /** Forwards what it can of {@code in} (consumed entirely). */
    void accept(ByteBuffer in) throws IOException {
        if (!binary && !raw) sasl(in);
        while (in.hasRemaining()) {
            if (raw) {
                write(in);
                return;
            }
            int n = Math.min(in.remaining(), pending.length - have);
            in.get(pending, have, n);
            have += n;
            cut();
        }
    }

    /** Forwards SASL text up to and including the BEGIN line; leaves the binary rest in {@code in}. */
    private void sasl(ByteBuffer in) throws IOException {
        int start = in.position();
        while (in.hasRemaining()) {
            byte b = in.get();
            if (b != '\n') {
                if (line.length() < MAX_SASL_LINE) line.append((char) (b & 0xff));
                continue;
            }
            // trim() also drops the credentials NUL the client sends first and the CR.
            boolean begin = line.toString().trim().equals("BEGIN");
            line.setLength(0);
            if (begin) {
                binary = true;
                break;
            }
        }
        write(in.duplicate().limit(in.position()).position(start));
    }

    /** Writes every whole frame in {@code pending} (but a dropped one) and keeps the partial rest. */
    private void cut() throws IOException {
        ByteBuffer view = ByteBuffer.wrap(pending, 0, have);
        int start = 0;
        long len;
        while (true) {
            try {
                len = MessageFraming.frameLength(view, start, have - start);
            } catch (ProtocolException e) {
                raw = true;
                write(view.duplicate().position(start));
                have = 0;
                return;
            }
            if (len < 0 || len > have - start) break;
            if (!drops(view, start, (int) len)) write(view.duplicate().limit(start + (int) len).position(start));
            start += (int) len;
        }
        System.arraycopy(pending, start, pending, 0, have - start);
        have -= start;
        if (len > pending.length) {
            byte[] bigger = new byte[(int) len]; // frameLength caps it at the 128 MiB maximum
            System.arraycopy(pending, 0, bigger, 0, have);
            pending = bigger;
        }
    }

    private boolean drops(ByteBuffer view, int start, int len) {
        try {
            header.wrap(view, start, len);
        } catch (ProtocolException e) {
            return false; // not ours to judge: the bus refuses it
        }
        if (!drop.drop(header)) return false;
        LOG.warn("TEST-ONLY fault relay: dropped {}", header);
        return true;
    }

    private void write(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) out.write(b);
    }
}
