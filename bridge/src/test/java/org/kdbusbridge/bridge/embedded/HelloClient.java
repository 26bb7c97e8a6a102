// Test helper: the smallest real D-Bus client, on a plain JDK SocketChannel. It authenticates
// with EXTERNAL, sends Hello and reads the reply; every read has a deadline (a Selector with a
// timeout), so a bus that does not answer fails the test instead of hanging it.
package org.kdbusbridge.bridge.embedded;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.transport.UnixAddress;

final class HelloClient implements AutoCloseable {
    private static final long TIMEOUT_MS = 10_000;

    private final SocketChannel ch;
    private final Selector selector;
    private ByteBuffer in = ByteBuffer.allocate(4096);
    /** The guid from the server's SASL OK line. */
    final String serverGuid;
    /** The unique name the bus assigned in its reply to Hello. */
    final String uniqueName;

    private HelloClient(SocketChannel ch) throws IOException {
        this.ch = ch;
        ch.configureBlocking(false);
        selector = Selector.open();
        ch.register(selector, SelectionKey.OP_READ);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TIMEOUT_MS);
        String uid = Long.toString(new com.sun.security.auth.module.UnixSystem().getUid());
        StringBuilder hex = new StringBuilder();
        for (byte b : uid.getBytes(StandardCharsets.US_ASCII)) {
            hex.append(String.format("%02x", b));
        }
        write(("\0AUTH EXTERNAL " + hex + "\r\n").getBytes(StandardCharsets.US_ASCII));
        String ok = readLine(deadline);
        if (!ok.startsWith("OK ")) {
            throw new IOException("SASL: expected OK, got '" + ok + "'");
        }
        serverGuid = ok.substring(3);
        write("BEGIN\r\n".getBytes(StandardCharsets.US_ASCII));
        write(MessageBuilder.methodCall(1, 0, MessageBuilder.BUS_NAME, MessageBuilder.BUS_PATH,
                MessageBuilder.BUS_INTERFACE, "Hello", null, null, null));
        uniqueName = readHelloReply(deadline);
    }

    /** Connects to the first address of a {@code unix:path=...} address list. */
    static HelloClient connect(String address) throws IOException {
        UnixAddress a = UnixAddress.parseList(address).get(0);
        if (a.kind() != UnixAddress.Kind.PATH) {
            throw new IllegalArgumentException("HelloClient speaks only unix:path=, not " + address);
        }
        return new HelloClient(SocketChannel.open(UnixDomainSocketAddress.of(a.value())));
    }

    private void write(byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) {
            if (ch.write(b) < 0) {
                throw new IOException("write failed");
            }
        }
    }

    /** Reads until in holds at least n bytes; fails at the deadline or on EOF. */
    private void fill(int n, long deadline) throws IOException {
        while (in.position() < n) {
            if (!in.hasRemaining()) {
                ByteBuffer bigger = ByteBuffer.allocate(Math.max(in.capacity() * 2, n));
                in.flip();
                in = bigger.put(in);
                continue;
            }
            int r = ch.read(in);
            if (r < 0) {
                throw new IOException("EOF from the bus after " + in.position() + " bytes");
            }
            if (r == 0) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    throw new IOException("The bus did not answer within " + TIMEOUT_MS + " ms");
                }
                selector.select(left);
                selector.selectedKeys().clear();
            }
        }
    }

    private String readLine(long deadline) throws IOException {
        for (int want = 2; ; want = in.position() + 1) {
            fill(want, deadline);
            for (int i = 0; i + 1 < in.position(); i++) {
                if (in.get(i) == '\r' && in.get(i + 1) == '\n') {
                    byte[] line = new byte[i];
                    in.flip();
                    in.get(line).position(i + 2);
                    in.compact();
                    return new String(line, StandardCharsets.US_ASCII);
                }
            }
        }
    }

    /** The first message after BEGIN must be Hello's METHOD_RETURN; its body is one string. */
    private String readHelloReply(long deadline) throws IOException {
        fill(16, deadline);
        ByteOrder order = in.get(0) == 'l' ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN;
        ByteBuffer view = in.duplicate().order(order);
        int type = in.get(1);
        int bodyLength = view.getInt(4);
        int fieldsLength = view.getInt(12);
        int bodyStart = 16 + ((fieldsLength + 7) & ~7);
        fill(bodyStart + bodyLength, deadline);
        view = in.duplicate().order(order);
        if (type != WireFormat.METHOD_RETURN) {
            throw new IOException("Hello was answered with message type " + type);
        }
        int len = view.getInt(bodyStart);
        byte[] name = new byte[len];
        view.position(bodyStart + 4);
        view.get(name);
        return new String(name, StandardCharsets.UTF_8);
    }

    @Override
    public void close() throws IOException {
        selector.close();
        ch.close();
    }
}
