// Test helper: a minimal D-Bus client over a JDK UNIX-domain SocketChannel. Non-blocking with a
// Selector so that every read has a deadline; nothing is read unless a test asks for it (so a
// client can play a slow reader simply by not being asked).
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.MessageFraming;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.protocol.WireFormat;

final class RawClient implements AutoCloseable {
    static final long TIMEOUT_MS = 10_000;
    static final String BUS = "org.freedesktop.DBus";
    static final String BUS_PATH = "/org/freedesktop/DBus";

    /** One received message, decoded eagerly (the frame is copied). */
    record Msg(int type, int flags, long serial, long replySerial, String sender, String destination, String path,
               String iface, String member, String errorName, String signature, byte[] frame, int bodyOffset,
               int bodyLength) {
        BodyReader body() {
            ByteBuffer b = ByteBuffer.wrap(frame);
            ByteOrder order = frame[0] == 'B' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
            return new BodyReader(b, bodyOffset, bodyLength, order, signature);
        }

        String string0() throws ProtocolException {
            return body().readString();
        }

        boolean isSignal(String member) {
            return type == WireFormat.SIGNAL && member.equals(this.member);
        }

        @Override
        public String toString() {
            return "Msg[type=" + type + " serial=" + serial + " reply=" + replySerial + " sender=" + sender
                    + " dest=" + destination + " " + iface + "." + member + " err=" + errorName + " sig=" + signature + "]";
        }
    }

    final SocketChannel ch;
    private final Selector selector;
    private final SelectionKey key;
    private ByteBuffer in = ByteBuffer.allocate(64 * 1024); // write mode
    private boolean eof;
    private long serial;
    String uniqueName;

    private RawClient(SocketChannel ch) throws IOException {
        this.ch = ch;
        ch.configureBlocking(false);
        this.selector = Selector.open();
        this.key = ch.register(selector, 0);
    }

    static RawClient connect(Path socket) throws IOException {
        return new RawClient(SocketChannel.open(UnixDomainSocketAddress.of(socket)));
    }

    long nextSerial() {
        return ++serial;
    }

    // --- output ---------------------------------------------------------------------------

    void write(byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TIMEOUT_MS);
        while (b.hasRemaining()) {
            if (ch.write(b) == 0) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    fail("write did not complete within " + TIMEOUT_MS + " ms (" + b.remaining() + " bytes left)");
                }
                key.interestOps(SelectionKey.OP_WRITE);
                selector.select(Math.max(1, left));
                selector.selectedKeys().clear();
                key.interestOps(0);
            }
        }
    }

    void writeAscii(String s) throws IOException {
        write(s.getBytes(StandardCharsets.US_ASCII));
    }

    /** Sends a method call; returns its serial. */
    long call(int flags, String dest, String path, String iface, String member, String sig, byte[] body)
            throws IOException {
        long s = nextSerial();
        write(MessageBuilder.methodCall(s, flags, dest, path, iface, member, null, sig, body));
        return s;
    }

    long callDriver(String member, String sig, byte[] body) throws IOException {
        return call(0, BUS, BUS_PATH, BUS, member, sig, body);
    }

    long callDriver(String member, String arg) throws IOException {
        return callDriver(member, "s", new BodyWriter().writeString(arg).toByteArray());
    }

    long signal(String dest, String path, String iface, String member, String sig, byte[] body) throws IOException {
        long s = nextSerial();
        write(MessageBuilder.signal(s, path, iface, member, dest, null, sig, body));
        return s;
    }

    // --- input ----------------------------------------------------------------------------

    /** Reads more bytes, waiting until the deadline; false on EOF (or reset), or on timeout. */
    private boolean fill(long deadlineNanos) throws IOException {
        if (eof) {
            return false;
        }
        if (!in.hasRemaining()) {
            ByteBuffer bigger = ByteBuffer.allocate(in.capacity() * 2);
            in.flip();
            bigger.put(in);
            in = bigger;
        }
        while (true) {
            int n;
            try {
                n = ch.read(in);
            } catch (IOException e) {
                eof = true; // ECONNRESET: the bus dropped us with data unread
                return false;
            }
            if (n < 0) {
                eof = true;
                return false;
            }
            if (n > 0) {
                return true;
            }
            long left = TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime());
            if (left <= 0) {
                return false;
            }
            key.interestOps(SelectionKey.OP_READ);
            selector.select(left);
            selector.selectedKeys().clear();
            key.interestOps(0);
        }
    }

    private static long deadline(long ms) {
        return System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
    }

    /** One CRLF-terminated SASL line, without the CRLF. */
    String readLine() throws IOException {
        long deadline = deadline(TIMEOUT_MS);
        while (true) {
            for (int i = 0; i + 1 < in.position(); i++) {
                if (in.get(i) == '\r' && in.get(i + 1) == '\n') {
                    byte[] line = new byte[i];
                    in.flip();
                    in.get(line);
                    in.get();
                    in.get();
                    in.compact();
                    return new String(line, StandardCharsets.US_ASCII);
                }
            }
            if (!fill(deadline)) {
                fail(eof ? "EOF while waiting for a SASL line" : "timed out waiting for a SASL line");
            }
        }
    }

    /** The next message, or a test failure after the deadline or on EOF. */
    Msg read() throws IOException {
        Msg m = readOrNull(TIMEOUT_MS);
        if (m == null) {
            fail(eof ? "EOF while waiting for a message" : "timed out waiting for a message");
        }
        return m;
    }

    Msg readOrNull(long timeoutMs) throws IOException {
        long deadline = deadline(timeoutMs);
        while (true) {
            Msg m = tryParse();
            if (m != null) {
                return m;
            }
            if (!fill(deadline)) {
                return null;
            }
        }
    }

    private Msg tryParse() throws IOException {
        long len;
        try {
            len = MessageFraming.frameLength(in, 0, in.position());
        } catch (ProtocolException e) {
            throw new IOException("bus sent a bad frame: " + e.getMessage(), e);
        }
        if (len < 0) {
            return null;
        }
        if (len > in.capacity()) {
            ByteBuffer bigger = ByteBuffer.allocate((int) len);
            in.flip();
            bigger.put(in);
            in = bigger;
            return null;
        }
        if (in.position() < len) {
            return null;
        }
        byte[] frame = new byte[(int) len];
        in.flip();
        in.get(frame);
        in.compact();
        MessageHeader h = new MessageHeader();
        try {
            h.wrap(ByteBuffer.wrap(frame), 0, frame.length);
            h.validateBody();
        } catch (ProtocolException e) {
            throw new IOException("bus sent an invalid message: " + e.getMessage(), e);
        }
        return new Msg(h.type(), h.flags(), h.serial(), h.hasReplySerial() ? h.replySerial() : -1, h.sender(),
                h.destination(), h.path(), h.iface(), h.member(), h.errorName(), h.signature(), frame,
                h.bodyOffset(), (int) h.bodyLength());
    }

    /** True if the bus closes the connection before the deadline; anything it sends is discarded. */
    boolean awaitEof(long timeoutMs) throws IOException {
        long deadline = deadline(timeoutMs);
        while (!eof) {
            in.clear();
            if (!fill(deadline) && !eof) {
                return false;
            }
        }
        return true;
    }

    boolean isEof() {
        return eof;
    }

    // --- conveniences ---------------------------------------------------------------------

    static String hexUid(long uid) {
        StringBuilder sb = new StringBuilder();
        for (byte b : Long.toString(uid).getBytes(StandardCharsets.US_ASCII)) {
            sb.append(String.format("%02x", b));
        }
        return sb.toString();
    }

    static long myUid() {
        return new com.sun.security.auth.module.UnixSystem().getUid();
    }

    /** The server guid of the last SASL OK {@link #authenticate()} read, or null. */
    String serverGuid;

    /** NUL + AUTH EXTERNAL, expects OK, sends BEGIN. */
    void authenticate() throws IOException {
        write(new byte[] {0});
        writeAscii("AUTH EXTERNAL " + hexUid(myUid()) + "\r\n");
        String ok = readLine();
        assertTrue(ok.startsWith("OK "), ok);
        serverGuid = ok.substring(3).trim();
        writeAscii("BEGIN\r\n");
    }

    /** Sends Hello and consumes its reply and NameAcquired; returns the unique name. */
    String hello() throws IOException, ProtocolException {
        long s = callDriver("Hello", null, null);
        Msg reply = read();
        assertEquals(WireFormat.METHOD_RETURN, reply.type(), reply.toString());
        assertEquals(s, reply.replySerial());
        uniqueName = reply.string0();
        Msg acquired = read();
        assertTrue(acquired.isSignal("NameAcquired"), acquired.toString());
        assertEquals(uniqueName, acquired.string0());
        return uniqueName;
    }

    /** Connects, authenticates and says Hello. */
    static RawClient open(Path socket) throws IOException, ProtocolException {
        RawClient c = connect(socket);
        c.authenticate();
        c.hello();
        return c;
    }

    /** Reads the next message and checks it is the method return for {@code serial}. */
    Msg expectReturn(long serial) throws IOException {
        Msg m = read();
        assertEquals(WireFormat.METHOD_RETURN, m.type(), "expected a return for " + serial + ", got " + m);
        assertEquals(serial, m.replySerial(), m.toString());
        return m;
    }

    /** Reads the next message and checks it is the error {@code name} for {@code serial}. */
    Msg expectError(long serial, String name) throws IOException {
        Msg m = read();
        assertEquals(WireFormat.ERROR, m.type(), "expected error " + name + ", got " + m);
        assertEquals(name, m.errorName(), m.toString());
        assertEquals(serial, m.replySerial(), m.toString());
        return m;
    }

    void addMatch(String rule) throws IOException {
        expectReturn(callDriver("AddMatch", rule));
    }

    /**
     * Round-trips a Ping through the bus. The bus handles one connection's messages in order
     * and queues to one receiver in order, so everything routed to this client before the Ping
     * was handled arrives before its reply: returns those messages' count (the reply excluded).
     */
    int sync() throws IOException {
        long s = call(0, BUS, BUS_PATH, "org.freedesktop.DBus.Peer", "Ping", null, null);
        int before = 0;
        while (true) {
            Msg m = read();
            if (m.type() == WireFormat.METHOD_RETURN && m.replySerial() == s) {
                return before;
            }
            before++;
        }
    }

    @Override
    public void close() throws IOException {
        try {
            selector.close();
        } finally {
            ch.close();
        }
    }
}
