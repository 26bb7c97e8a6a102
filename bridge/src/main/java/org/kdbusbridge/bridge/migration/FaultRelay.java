// Invariants: TEST-ONLY. A relay in front of one bus, reached only through the bus's address:
// each connection accepted on its socket gets its own connection to the bus and two pump
// threads. Bytes pass unchanged both ways, but for the one signal the SignalDrop picks in the
// client->bus direction (ClientFrames). An end of stream is passed on as a half-close; an I/O
// error closes both sides. close() stops accepting, closes every connection and removes the
// socket file; it is idempotent.
package org.kdbusbridge.bridge.migration;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

import org.kdbusbridge.bridge.client.BusConnection;

/**
 * Fault injection as a decorator outside the bus (docs/migration.md, "Seeded divergence"): the
 * bus under test is unchanged and knows nothing of it.
 *
 * <p>Limitations, none of which the migration tests meet: no unix fds pass (a byte relay carries
 * no SCM_RIGHTS, so a client that negotiates fds and sends one fails; the tools' own
 * {@link BusConnection} never negotiates them), and the bus sees the relay's credentials (its pid)
 * instead of the client's.
 */
public final class FaultRelay implements AutoCloseable {
    private final Path socket;
    private final Path upstream;
    private final SignalDrop drop;
    private final ServerSocketChannel server;
    private final Set<SocketChannel> open = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    private FaultRelay(Path socket, Path upstream, SignalDrop drop, ServerSocketChannel server) {
        this.socket = socket;
        this.upstream = upstream;
        this.drop = drop;
        this.server = server;
    }

    /** Listens on {@code socket} (a new path) and relays every connection to the bus at {@code busAddress}. */
    public static FaultRelay start(Path socket, String busAddress, SignalDrop drop) throws IOException {
        Path upstream = BusConnection.socketPath(busAddress);
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            server.bind(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            server.close();
            throw e;
        }
        FaultRelay relay = new FaultRelay(socket, upstream, drop, server);
        daemon("fault-relay-accept", relay::acceptLoop).start();
        return relay;
    }

    /** The address clients use instead of the bus's. */
    public String address() {
        return "unix:path=" + escape(socket.toString());
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel client;
            try {
                client = server.accept();
            } catch (IOException e) {
                return; // closed
            }
            SocketChannel bus = null;
            try {
                bus = SocketChannel.open(StandardProtocolFamily.UNIX);
                bus.connect(UnixDomainSocketAddress.of(upstream));
            } catch (IOException e) {
                closeQuietly(client);
                closeQuietly(bus);
                continue;
            }
            relay(client, bus);
        }
    }

    private void relay(SocketChannel client, SocketChannel bus) {
        open.add(client);
        open.add(bus);
        if (closed) { // close() may have run between accept and here
            closeBoth(client, bus);
            return;
        }
        AtomicInteger ended = new AtomicInteger();
        ClientFrames up = new ClientFrames(drop, bus);
        daemon("fault-relay-up", () -> pump(client, bus, up::accept, ended)).start();
        daemon("fault-relay-down", () -> pump(bus, client, b -> writeFully(client, b), ended)).start();
    }

    private interface Sink {
        void accept(ByteBuffer b) throws IOException;
    }

    private void pump(SocketChannel from, SocketChannel to, Sink sink, AtomicInteger ended) {
        ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
        try {
            while (from.read(buf.clear()) >= 0) {
                sink.accept(buf.flip());
            }
            to.shutdownOutput(); // the other side sees the end as it would without the relay
            if (ended.incrementAndGet() == 2) closeBoth(from, to);
        } catch (IOException e) {
            closeBoth(from, to);
        }
    }

    private static void writeFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    private void closeBoth(SocketChannel a, SocketChannel b) {
        closeQuietly(a);
        closeQuietly(b);
        open.remove(a);
        open.remove(b);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        closeQuietly(server);
        for (SocketChannel ch : open) closeQuietly(ch);
        open.clear();
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            // a stale socket in a temporary work directory is harmless
        }
    }

    private static Thread daemon(String name, Runnable r) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c == null) return;
        try {
            c.close();
        } catch (Exception e) {
            // closing on the way out: nothing left to do with the error
        }
    }

    /** D-Bus address value escaping: bytes outside [-0-9A-Za-z_/.\*] become %XX. */
    static String escape(String value) {
        StringBuilder sb = new StringBuilder();
        for (byte b : value.getBytes(StandardCharsets.UTF_8)) {
            char c = (char) (b & 0xff);
            if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || "-_/.\\*".indexOf(c) >= 0) {
                sb.append(c);
            } else {
                sb.append('%').append(String.format("%02x", (int) c));
            }
        }
        return sb.toString();
    }
}
