// Invariants: one blocking socket; setup (SASL, Hello, AddMatch, AttachMetadata) completes in
// connect() before the reader thread starts, so the thread is the only reader afterwards and the
// only writer of Sync replies; counts are read by other threads only after done() returned.
package org.kdbusbridge.compat.bench;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.kdbusbridge.bridge.metadata.MessageMetadata;
import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.MessageFraming;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.protocol.WireFormat;

/**
 * The "metadata" workload's subscriber (issue 17's cost): a raw Java client, since the sd-bus
 * load generator cannot receive a message carrying header field 107. It subscribes to kbb-load
 * emit's Tick signals, optionally calls AttachMetadata(items) first, answers the emitter's Sync
 * calls and counts Ticks until Done. Every 64th Tick (and the first) is checked for the field:
 * present iff items were asked for. Its own CPU is the bench JVM's, not the bus's.
 */
final class MetadataReceiver implements AutoCloseable {
    private static final String IFACE = "org.kdbusbridge.Bench";
    private static final String PATH = "/org/kdbusbridge/Bench";

    private final SocketChannel ch;
    private final boolean wantField;
    private final String uniqueName;
    private final Thread reader;
    private final CountDownLatch done = new CountDownLatch(1);
    private final ByteBuffer in = ByteBuffer.allocate(1 << 16);
    private final MessageHeader h = new MessageHeader();
    private long serial;
    private long ticks;
    private long checked;
    private long fieldMismatches;
    private volatile Exception failure;

    private MetadataReceiver(SocketChannel ch, List<String> items) throws IOException {
        this.ch = ch;
        this.wantField = !items.isEmpty();
        sasl();
        uniqueName = call("org.freedesktop.DBus", "Hello", null, null);
        BodyWriter rule = new BodyWriter().writeString("type='signal',interface='" + IFACE + "',path='" + PATH + "'");
        call("org.freedesktop.DBus", "AddMatch", "s", rule.toByteArray());
        if (wantField) {
            BodyWriter w = new BodyWriter().beginArray('s');
            items.forEach(w::writeString);
            call("org.kdbusbridge.Extensions1", "AttachMetadata", "as", w.endArray().toByteArray());
        }
        reader = new Thread(this::readLoop, "metadata-receiver");
        reader.setDaemon(true);
        reader.start();
    }

    /** Connects to the bus socket at {@code socket}; {@code items} empty: no AttachMetadata. */
    static MetadataReceiver connect(Path socket, List<String> items) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return new MetadataReceiver(ch, items);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    String uniqueName() {
        return uniqueName;
    }

    /** Waits for Done; returns the Ticks received. Throws if the reader failed or a checked Tick had the wrong field. */
    long awaitDone(Duration timeout) throws Exception {
        if (!done.await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new IllegalStateException("metadata receiver: no Done within " + timeout + " (" + ticks + " ticks)");
        }
        if (failure != null) {
            throw failure;
        }
        if (fieldMismatches > 0) {
            throw new IllegalStateException("metadata receiver: " + fieldMismatches + " of " + checked
                    + " checked ticks " + (wantField ? "lacked" : "carried") + " field 107");
        }
        return ticks;
    }

    private void sasl() throws IOException {
        long uid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
        StringBuilder hex = new StringBuilder();
        for (byte b : Long.toString(uid).getBytes(StandardCharsets.US_ASCII)) {
            hex.append(String.format("%02x", b));
        }
        write(("\0AUTH EXTERNAL " + hex + "\r\n").getBytes(StandardCharsets.US_ASCII));
        StringBuilder line = new StringBuilder();
        ByteBuffer one = ByteBuffer.allocate(1);
        while (true) {
            one.clear();
            if (ch.read(one) < 0) {
                throw new EOFException("bus closed during SASL");
            }
            char c = (char) one.get(0);
            if (c == '\n') {
                break;
            }
            line.append(c);
        }
        if (!line.toString().startsWith("OK ")) {
            throw new IOException("SASL refused: " + line);
        }
        write("BEGIN\r\n".getBytes(StandardCharsets.US_ASCII));
    }

    /** A driver call, answered before anything else can matter (signals meanwhile are skipped); returns arg 0 if a string. */
    private String call(String iface, String member, String sig, byte[] body) throws IOException {
        long s = ++serial;
        write(MessageBuilder.methodCall(s, 0, "org.freedesktop.DBus", "/org/freedesktop/DBus", iface, member, null, sig, body));
        while (true) {
            byte[] m = readFrame();
            try {
                h.wrap(ByteBuffer.wrap(m), 0, m.length);
            } catch (ProtocolException e) {
                throw new IOException(e);
            }
            if (h.replySerial() != s || (h.type() != WireFormat.METHOD_RETURN && h.type() != WireFormat.ERROR)) {
                continue;
            }
            if (h.type() == WireFormat.ERROR) {
                throw new IOException(member + " failed: " + h.errorName());
            }
            try {
                return "s".equals(h.signature()) ? BodyReader.of(h).readString() : null;
            } catch (ProtocolException e) {
                throw new IOException(e);
            }
        }
    }

    private byte[] readFrame() throws IOException {
        ByteBuffer prefix = ByteBuffer.allocate(WireFormat.FIXED_HEADER_SIZE);
        readFully(prefix);
        long len;
        try {
            len = MessageFraming.frameLength(prefix, 0, prefix.capacity());
        } catch (ProtocolException e) {
            throw new IOException(e);
        }
        ByteBuffer whole = ByteBuffer.allocate((int) len);
        whole.put(prefix.array());
        readFully(whole);
        return whole.array();
    }

    private void readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new EOFException("bus closed");
            }
        }
    }

    private void write(byte[] b) throws IOException {
        ByteBuffer bb = ByteBuffer.wrap(b);
        while (bb.hasRemaining()) {
            ch.write(bb);
        }
    }

    /** Many frames per read: a 64 KiB buffer, frames handled in place, a partial one compacted to the front. */
    private void readLoop() {
        try {
            while (true) {
                if (ch.read(in) < 0) {
                    throw new EOFException("bus closed before Done");
                }
                in.flip();
                while (in.remaining() >= WireFormat.FIXED_HEADER_SIZE) {
                    int at = in.position();
                    long len = MessageFraming.frameLength(in, at, in.remaining());
                    if (len > in.capacity()) {
                        throw new IOException("frame of " + len + " bytes: not a bench Tick");
                    }
                    if (len < 0 || len > in.remaining()) {
                        break;
                    }
                    if (handle(at, (int) len)) {
                        return;
                    }
                    in.position(at + (int) len);
                }
                in.compact();
            }
        } catch (Exception e) {
            failure = e;
        } finally {
            done.countDown();
        }
    }

    /** One frame at [at, at+len) of {@code in}; true on Done. */
    private boolean handle(int at, int len) throws IOException, ProtocolException {
        h.wrap(in, at, len);
        if (h.type() == WireFormat.SIGNAL && h.fieldEquals(WireFormat.INTERFACE, IFACE)) {
            if (h.fieldEquals(WireFormat.MEMBER, "Tick")) {
                if (ticks++ % 64 == 0) {
                    checked++;
                    boolean has = MessageMetadata.parse(in.duplicate().position(at)).isPresent();
                    if (has != wantField) {
                        fieldMismatches++;
                    }
                }
                return false;
            }
            return h.fieldEquals(WireFormat.MEMBER, "Done");
        }
        if (h.type() == WireFormat.METHOD_CALL && h.fieldEquals(WireFormat.MEMBER, "Sync")) {
            write(MessageBuilder.methodReturn(++serial, h.serial(), h.sender(), null, null, null));
        }
        return false;
    }

    @Override
    public void close() {
        try {
            ch.close();
        } catch (IOException ignored) {
            // nothing left to do
        }
    }
}
