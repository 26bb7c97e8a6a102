// Invariants: one frame at a time, in order; a frame is handed to dbus-java only once whole,
// with field 107 taken out of its header and kept beside it (DbusJavaMetadata); partial reads
// keep their state for the next call; per frame it allocates the body and the rewritten header
// (dbus-java needs both as arrays) and, with field 107, one copy of that field.
package org.kdbusbridge.bridge.client.dbusjava;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

import org.freedesktop.dbus.exceptions.DBusException;
import org.freedesktop.dbus.exceptions.MessageFormatException;
import org.freedesktop.dbus.exceptions.MessageProtocolVersionException;
import org.freedesktop.dbus.messages.Message;
import org.freedesktop.dbus.messages.MessageFactory;
import org.freedesktop.dbus.spi.message.IMessageReader;
import org.kdbusbridge.bridge.protocol.ProtocolException;

/**
 * dbus-java's message reader for a connection that opted in to AttachMetadata: it frames the
 * stream itself, removes header field 107 (dbus-java keeps fields in a 10-slot table and would
 * fail on it), and builds the message through dbus-java's public {@code MessageFactory}. No fd
 * passing: the helper declines connections that negotiated it (MetadataSocketProvider).
 */
final class MetadataMessageReader implements IMessageReader {
    /** The specification's array maximum (64 MiB) and message maximum (128 MiB). */
    private static final int MAX_FIELDS = 1 << 26;
    private static final long MAX_MESSAGE = 1L << 27;
    /** A fields buffer grown past this for one frame is not kept for the next. */
    private static final int KEEP_FIELDS = 64 * 1024;

    private final SocketChannel channel;
    private final FieldStrip strip = new FieldStrip();
    private final byte[] fixed = new byte[16];
    private final ByteBuffer fixedBuf = ByteBuffer.wrap(fixed);
    private final byte[] fixed12 = new byte[12];
    private byte[] fields = new byte[512];
    private ByteBuffer fieldsBuf = ByteBuffer.wrap(fields);
    private ByteBuffer bodyBuf;
    private byte[] body;
    private int fieldsLength;
    private boolean big;
    private int stage;

    MetadataMessageReader(SocketChannel channel) {
        this.channel = channel;
    }

    @Override
    public Message readMessage() throws IOException, DBusException {
        if (stage == 0) {
            if (!fill(fixedBuf)) {
                return null;
            }
            startFrame();
            stage = 1;
        }
        if (stage == 1) {
            if (!fill(fieldsBuf)) {
                return null;
            }
            stage = 2;
        }
        if (!fill(bodyBuf)) {
            return null;
        }
        stage = 0;
        fixedBuf.clear();
        try {
            return finishFrame();
        } finally {
            body = null;
            bodyBuf = null;
            if (fields.length > KEEP_FIELDS) {
                fields = new byte[512];
                fieldsBuf = ByteBuffer.wrap(fields);
            }
        }
    }

    /** Reads the fixed header's lengths; a frame past the maximum ends the connection. */
    private void startFrame() throws IOException {
        if (fixed[0] != 'l' && fixed[0] != 'B') {
            throw new IOException("not a D-Bus message: byte order " + (fixed[0] & 0xff));
        }
        if (fixed[3] > Message.PROTOCOL) {
            throw new MessageProtocolVersionException("Protocol version " + fixed[3] + " is unsupported");
        }
        big = fixed[0] == 'B';
        long bodyLength = FieldStrip.getInt(fixed, 4, big) & 0xffffffffL;
        long fieldsLong = FieldStrip.getInt(fixed, 12, big) & 0xffffffffL;
        long padded = (fieldsLong + 7) & ~7L;
        if (fieldsLong > MAX_FIELDS || 16 + padded + bodyLength > MAX_MESSAGE) {
            throw new IOException("message too large: fields " + fieldsLong + ", body " + bodyLength);
        }
        fieldsLength = (int) fieldsLong;
        if (fields.length < padded) {
            fields = new byte[(int) padded];
            fieldsBuf = ByteBuffer.wrap(fields);
        }
        fieldsBuf.clear().limit((int) padded);
        body = new byte[(int) bodyLength];
        bodyBuf = ByteBuffer.wrap(body);
    }

    private Message finishFrame() throws IOException, DBusException {
        boolean found;
        try {
            found = strip.find(fields, fieldsLength, big);
        } catch (ProtocolException e) {
            // The frame was read whole, so the stream is still in step: only this message is lost.
            throw new MessageFormatException("malformed header fields: " + e.getMessage());
        }
        byte[] header = strip.dbusJavaHeader(fields, fieldsLength, big, found);
        System.arraycopy(fixed, 0, fixed12, 0, 12);
        Message m = MessageFactory.createMessage(fixed[1], fixed12, header, body, null);
        if (found) {
            DbusJavaMetadata.register(m, new DbusJavaMetadata.Attached(strip.elementAsMessage(fields, big)));
        }
        return m;
    }

    /** True once {@code b} is full; false if the channel had nothing more now (non-blocking). */
    private boolean fill(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            int n = channel.read(b);
            if (n < 0) {
                throw new EOFException("the bus closed the connection");
            }
            if (n == 0) {
                return false;
            }
        }
        return true;
    }

    @Override
    public boolean isClosed() {
        return !channel.isOpen();
    }

    @Override
    public void close() throws IOException {
        if (channel.isOpen()) {
            channel.close();
        }
    }
}
