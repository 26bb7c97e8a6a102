// Invariants: one blocking unix socket channel per instance (a JDK SocketChannel for a path, a
// transport.ClientSocket for an abstract name); SASL EXTERNAL and Hello complete
// before the constructor returns (or it throws and the channel is closed); exactly one reader
// thread appends every received message, in arrival order, to an append-only list that
// waiters see under the same lock; writes are serialised by a lock; close() is idempotent and
// ends the reader. No message is ever dropped or reordered by this class; a caller may let go of
// the oldest ones (discardBefore), and indices stay those of the whole stream.
package org.kdbusbridge.bridge.client;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.MessageFraming;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.transport.ClientSocket;
import org.kdbusbridge.bridge.transport.UnixAddress.BadAddressException;

/**
 * A minimal D-Bus client over a unix socket: the migration tools' monitor (Hello, then
 * BecomeMonitor), the replayer's per-sender connections, the CLI's endpoint and top clients.
 * Every message it receives is kept, so callers can wait for one and read the whole stream
 * afterwards.
 */
public final class BusConnection implements AutoCloseable {
    private final ByteChannel channel;
    private final Object writeLock = new Object();
    private final Object lock = new Object();
    private final List<BusMessage> received = new ArrayList<>();
    /** Stream index of received.get(0): how many messages discardBefore let go of. */
    private int base;
    private final AtomicLong serials = new AtomicLong();
    private final Thread reader;
    private volatile boolean closed;
    private IOException readFailure;
    private boolean eof;
    private final String uniqueName;
    private final String serverGuid;

    private BusConnection(ByteChannel channel, String what, String expectedGuid) throws IOException {
        this.channel = channel;
        this.reader = new Thread(this::readLoop, "migration-" + what);
        this.reader.setDaemon(true);
        this.serverGuid = authenticate(expectedGuid);
        reader.start();
        long serial = nextSerial();
        send(MessageBuilder.methodCall(serial, 0, BusMessage.DRIVER, MessageBuilder.BUS_PATH,
                MessageBuilder.BUS_INTERFACE, "Hello", null, null, null));
        BusMessage reply = await(m -> m.isReply() && m.replySerial() == serial, Duration.ofSeconds(30));
        if (reply == null || !reply.isReturn() || reply.stringArg(0) == null) {
            close();
            throw new IOException("Hello failed: " + reply);
        }
        this.uniqueName = reply.stringArg(0);
    }

    /**
     * Connects to a D-Bus address list as libdbus does: the list is checked whole first, then
     * each entry is tried in order ({@code unix:path=}, {@code unix:abstract=}; listen-only and
     * other transports fail their entry) until one connects; if none does, the first entry's
     * error is thrown. The connected entry's {@code guid=}, if any, must be the server's. Once
     * connected, a failed authentication or Hello is final, as in libdbus (no next entry).
     */
    public static BusConnection open(String address, String what) throws IOException {
        List<ClientAddress.Entry> entries;
        try {
            entries = ClientAddress.parseList(address);
        } catch (BadAddressException e) {
            throw new IOException("Bad D-Bus address '" + address + "': " + e.getMessage(), e);
        }
        IOException first = null;
        for (ClientAddress.Entry entry : entries) {
            ByteChannel ch;
            try {
                ch = connect(entry);
            } catch (IOException e) {
                if (first == null) {
                    first = e;
                }
                continue;
            }
            try {
                return new BusConnection(ch, what, entry.guid());
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
        }
        throw new IOException("Failed to connect to the bus at '" + address + "': " + first.getMessage(), first);
    }

    private static ByteChannel connect(ClientAddress.Entry entry) throws IOException {
        switch (entry.kind()) {
            case PATH: {
                SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                try {
                    ch.connect(UnixDomainSocketAddress.of(Path.of(entry.value())));
                    return ch;
                } catch (IOException | RuntimeException e) {
                    ch.close();
                    throw new IOException("Failed to connect to socket " + entry.value() + ": " + e.getMessage(), e);
                }
            }
            case ABSTRACT:
                return ClientSocket.connectAbstract(entry.valueBytes());
            default:
                throw new IOException(entry.refusal());
        }
    }

    /** The socket path of the first {@code unix:path=} entry of a D-Bus address. */
    public static Path socketPath(String address) throws IOException {
        try {
            for (ClientAddress.Entry e : ClientAddress.parseList(address)) {
                if (e.kind() == ClientAddress.Kind.PATH) {
                    return Path.of(e.value());
                }
            }
        } catch (BadAddressException e) {
            throw new IOException("Bad D-Bus address '" + address + "': " + e.getMessage(), e);
        }
        throw new IOException("no unix:path= entry in the address '" + address + "'");
    }

    /** The GUID the server sent in its SASL OK. */
    public String serverGuid() {
        return serverGuid;
    }

    /** SASL EXTERNAL; returns the server's GUID, checked against the address's guid= if it had one. */
    private String authenticate(String expectedGuid) throws IOException {
        long uid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
        StringBuilder hex = new StringBuilder();
        for (byte b : Long.toString(uid).getBytes(StandardCharsets.US_ASCII)) {
            hex.append(String.format("%02x", b));
        }
        writeFully(ByteBuffer.wrap(("\0AUTH EXTERNAL " + hex + "\r\n").getBytes(StandardCharsets.US_ASCII)));
        String line = readLine();
        if (!line.startsWith("OK ")) {
            throw new IOException("SASL EXTERNAL refused: " + line);
        }
        String guid = line.substring(3).trim();
        // libdbus drops the connection when the server is not the one the address named
        if (expectedGuid != null && !expectedGuid.equals(guid)) {
            throw new IOException("The address asked for the server with GUID '" + expectedGuid
                    + "' and the server's GUID is '" + guid + "'");
        }
        writeFully(ByteBuffer.wrap("BEGIN\r\n".getBytes(StandardCharsets.US_ASCII)));
        return guid;
    }

    private String readLine() throws IOException {
        StringBuilder sb = new StringBuilder();
        ByteBuffer one = ByteBuffer.allocate(1);
        while (sb.length() < 4096) {
            one.clear();
            if (channel.read(one) < 0) throw new EOFException("bus closed during authentication");
            char c = (char) one.get(0);
            if (c == '\n') return sb.toString().trim();
            sb.append(c);
        }
        throw new IOException("SASL line too long");
    }

    private void writeFully(ByteBuffer b) throws IOException {
        synchronized (writeLock) {
            while (b.hasRemaining()) {
                channel.write(b);
            }
        }
    }

    public String uniqueName() {
        return uniqueName;
    }

    public long nextSerial() {
        return serials.incrementAndGet();
    }

    /** Sends one complete message as is. */
    public void send(byte[] message) throws IOException {
        writeFully(ByteBuffer.wrap(message));
    }

    /** Calls a driver method with string/uint32 arguments and waits for the reply. */
    public BusMessage callDriver(String member, String signature, Object[] args, Duration timeout) throws IOException {
        return callDriver(member.equals("BecomeMonitor") ? "org.freedesktop.DBus.Monitoring" : MessageBuilder.BUS_INTERFACE,
                member, signature, args, timeout);
    }

    /**
     * As {@link #callDriver(String, String, Object[], Duration)} on another interface of the
     * driver, e.g. {@code org.kdbusbridge.Extensions1} (AttachMetadata takes "as").
     */
    public BusMessage callDriver(String iface, String member, String signature, Object[] args, Duration timeout)
            throws IOException {
        BodyWriter w = new BodyWriter();
        for (int i = 0; i < signature.length(); i++) {
            switch (signature.charAt(i)) {
                case 's' -> w.writeString((String) args[i]);
                case 'u' -> w.writeUint32(((Number) args[i]).longValue());
                case 'a' -> { // only "as"
                    w.beginArray('s');
                    for (Object o : (List<?>) args[i]) w.writeString((String) o);
                    w.endArray();
                    i++;
                }
                default -> throw new IllegalArgumentException("unsupported signature " + signature);
            }
        }
        long serial = nextSerial();
        send(MessageBuilder.methodCall(serial, 0, BusMessage.DRIVER, MessageBuilder.BUS_PATH, iface, member, null,
                signature.isEmpty() ? null : signature, w.toByteArray()));
        return await(m -> m.isReply() && m.replySerial() == serial, timeout);
    }

    /** BecomeMonitor([], 0): from now on this connection only receives. */
    public void becomeMonitor() throws IOException {
        BusMessage r = callDriver("BecomeMonitor", "asu", new Object[] {List.of(), null, 0}, Duration.ofSeconds(30));
        if (r == null || !r.isReturn()) {
            throw new IOException("BecomeMonitor failed: " + r);
        }
    }

    private void readLoop() {
        ByteBuffer prefix = ByteBuffer.allocate(WireFormat.FIXED_HEADER_SIZE);
        try {
            while (!closed) {
                prefix.clear();
                if (!readFully(prefix)) break;
                long len = MessageFraming.frameLength(prefix, 0, prefix.capacity());
                ByteBuffer whole = ByteBuffer.allocate((int) len);
                whole.put(prefix.array());
                if (!readFully(whole)) throw new EOFException("bus closed mid-message");
                BusMessage m = BusMessage.decode(whole.array());
                synchronized (lock) {
                    received.add(m);
                    lock.notifyAll();
                }
            }
        } catch (IOException | ProtocolException e) {
            synchronized (lock) {
                if (!closed) readFailure = e instanceof IOException io ? io : new IOException(e.getMessage(), e);
            }
        } finally {
            synchronized (lock) {
                eof = true;
                lock.notifyAll();
            }
        }
    }

    private boolean readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (channel.read(b) < 0) {
                if (b.position() == 0) return false;
                throw new EOFException("bus closed mid-message");
            }
        }
        return true;
    }

    /** The first received message matching {@code p}, waiting up to {@code timeout}; null if none. */
    public BusMessage await(Predicate<BusMessage> p, Duration timeout) {
        return awaitFrom(0, p, timeout);
    }

    /**
     * As {@link #await}, considering only messages at stream index {@code from} or later (the
     * index counts every message received, also those {@link #discardBefore} let go of).
     */
    public BusMessage awaitFrom(int from, Predicate<BusMessage> p, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (lock) {
            int i = from;
            while (true) {
                for (i = Math.max(i, base); i - base < received.size(); i++) {
                    if (p.test(received.get(i - base))) return received.get(i - base);
                }
                long left = deadline - System.nanoTime();
                if (eof || left <= 0) return null;
                try {
                    lock.wait(Math.max(1, left / 1_000_000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }
        }
    }

    /**
     * Lets go of the messages before stream index {@code index}, so a long-running reader (a
     * service answering calls) does not keep its whole stream; {@link #received()} then starts
     * there.
     */
    public void discardBefore(int index) {
        synchronized (lock) {
            int n = Math.min(index - base, received.size());
            if (n > 0) {
                received.subList(0, n).clear();
                base += n;
            }
        }
    }

    /** True once the reader stopped: the bus closed the connection, a read failed, or close(). */
    public boolean ended() {
        synchronized (lock) {
            return eof;
        }
    }

    /** Everything received so far (since the last {@link #discardBefore}), in arrival order. */
    public List<BusMessage> received() {
        synchronized (lock) {
            return List.copyOf(received);
        }
    }

    /** The reason the reader stopped early, or null. */
    public IOException failure() {
        synchronized (lock) {
            return readFailure;
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing left to do
        }
    }
}
