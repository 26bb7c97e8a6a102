package org.kdbusbridge.compat.harness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.function.Predicate;

/**
 * A tiny raw D-Bus client over a JDK 17 Unix domain socket: SASL EXTERNAL, minimal marshalling,
 * and a log of every message received (rendered as one-line transcripts).
 *
 * <p>Two reading modes: with a pump thread ({@link #connect}), every wait has a deadline; in direct
 * mode ({@link #connectDirect}, for the benchmark) the calling thread blocks on the socket.

 */
public final class RawClient implements AutoCloseable {
    /** Messages larger than this are refused by the client parser (the spec maximum is 128 MiB). */
    public static final long MAX_MESSAGE = 128L * 1024 * 1024;
    public static final String BUS = "org.freedesktop.DBus";
    public static final String BUS_PATH = "/org/freedesktop/DBus";

    private final SocketChannel ch;
    private final Object writeLock = new Object();
    private final boolean pumped;
    // input buffer shared with the pump thread (guarded by 'this' when pumped)
    private byte[] in = new byte[64 * 1024];
    private int inStart;
    private int inEnd;
    private boolean eof;
    private IOException readError;

    private long nextSerial = 1;
    // What went over the socket: every byte (SASL included), and the whole message frames alone.
    private final java.util.concurrent.atomic.AtomicLong socketBytesWritten = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong socketBytesRead = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong messageBytesSent = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong messageBytesReceived = new java.util.concurrent.atomic.AtomicLong();
    private String uniqueName;
    private String guid;
    private final List<Message> log = new ArrayList<>();

    private RawClient(SocketChannel ch, boolean pumped) {
        this.ch = ch;
        this.pumped = pumped;
        if (pumped) {
            Thread t = new Thread(this::pump, "raw-client-pump");
            t.setDaemon(true);
            t.start();
        }
    }

    /** Opens the socket only (no authentication), with a pump thread. */
    public static RawClient open(String address) throws IOException {
        SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(Addresses.unixPath(address)));
        return new RawClient(ch, true);
    }

    /** Opens and authenticates (no Hello). */
    public static RawClient connect(String address, Duration timeout) throws IOException {
        RawClient c = open(address);
        c.authenticate(timeout);
        return c;
    }

    /** Opens, authenticates and says Hello; the Hello reply and NameAcquired stay in the log. */
    public static RawClient connectHello(String address, Duration timeout) throws IOException {
        RawClient c = connect(address, timeout);
        c.hello(timeout);
        return c;
    }

    /** Direct mode (no pump thread, blocking reads): for the benchmark. */
    public static RawClient connectDirect(String address) throws IOException {
        SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(Addresses.unixPath(address)));
        RawClient c = new RawClient(ch, false);
        c.authenticate(Duration.ofSeconds(30));
        return c;
    }

    public static long uid() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith("Uid:")) {
                    return Long.parseLong(l.substring(4).trim().split("\\s+")[0]);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        throw new IllegalStateException("no Uid: in /proc/self/status");
    }

    public static String hex(String s) {
        StringBuilder sb = new StringBuilder();
        for (byte b : s.getBytes(StandardCharsets.US_ASCII)) {
            sb.append(String.format("%02x", b));
        }
        return sb.toString();
    }

    /** The SASL bytes a client sends first: NUL + AUTH EXTERNAL hex(uid). */
    public static byte[] authLine() {
        return ("\0AUTH EXTERNAL " + hex(Long.toString(uid())) + "\r\n").getBytes(StandardCharsets.US_ASCII);
    }

    public void authenticate(Duration timeout) throws IOException {
        writeRaw(authLine());
        String ok = readLine(timeout);
        if (ok == null || !ok.startsWith("OK ")) {
            throw new IOException("authentication failed: " + ok);
        }
        guid = ok.substring(3).trim();
        writeRaw("BEGIN\r\n".getBytes(StandardCharsets.US_ASCII));
    }

    /** Sends Hello, waits for its reply and returns the unique name. */
    public String hello(Duration timeout) throws IOException {
        Message r = call(Message.call(BUS, BUS_PATH, BUS, "Hello"), timeout);
        if (r.type != Message.METHOD_RETURN) {
            throw new IOException("Hello failed: " + r);
        }
        uniqueName = (String) r.arg(0);
        return uniqueName;
    }

    /** Every byte written to the socket so far, the SASL exchange included. */
    public long socketBytesWritten() {
        return socketBytesWritten.get();
    }

    /** Every byte read from the socket so far (parsed or not yet), the SASL replies included. */
    public long socketBytesRead() {
        return socketBytesRead.get();
    }

    /** The whole frames (fixed header, header fields, padding, body) of the messages sent so far. */
    public long messageBytesSent() {
        return messageBytesSent.get();
    }

    /** The whole frames of the messages parsed from the socket so far. */
    public long messageBytesReceived() {
        return messageBytesReceived.get();
    }

    public String uniqueName() {
        return uniqueName;
    }

    public String guid() {
        return guid;
    }

    // ---------------------------------------------------------------- writing

    public void writeRaw(byte[] b) throws IOException {
        synchronized (writeLock) {
            ByteBuffer bb = ByteBuffer.wrap(b);
            while (bb.hasRemaining()) {
                socketBytesWritten.addAndGet(ch.write(bb));
            }
        }
    }

    /** Sends with the next serial; returns that serial. */
    public long send(Message m) throws IOException {
        byte[] bytes;
        long s;
        synchronized (writeLock) {
            s = nextSerial++;
            bytes = m.encode(s);
            writeRaw(bytes);
            messageBytesSent.addAndGet(bytes.length);
        }
        return s;
    }

    /** Sends a method call and waits for its reply (return or error). */
    public Message call(Message m, Duration timeout) throws IOException {
        return awaitReply(send(m), timeout);
    }

    /** A driver call: destination/path/interface org.freedesktop.DBus. */
    public Message callBus(String member, Duration timeout, String sig, Object... args) throws IOException {
        Message m = Message.call(BUS, BUS_PATH, BUS, member);
        if (sig != null && !sig.isEmpty()) {
            m.body(sig, args);
        }
        return call(m, timeout);
    }

    // ---------------------------------------------------------------- reading

    private void pump() {
        ByteBuffer chunk = ByteBuffer.allocate(64 * 1024);
        try {
            while (true) {
                chunk.clear();
                int n = ch.read(chunk);
                if (n < 0) {
                    break;
                }
                socketBytesRead.addAndGet(n);
                synchronized (this) {
                    append(chunk.array(), n);
                    notifyAll();
                }
            }
        } catch (IOException e) {
            synchronized (this) {
                readError = e;
            }
        } finally {
            synchronized (this) {
                eof = true;
                notifyAll();
            }
        }
    }

    private void append(byte[] b, int n) {
        if (inEnd + n > in.length) {
            int live = inEnd - inStart;
            if (live + n <= in.length && inStart > 0) {
                System.arraycopy(in, inStart, in, 0, live);
            } else {
                byte[] nb = new byte[Math.max(in.length * 2, live + n)];
                System.arraycopy(in, inStart, nb, 0, live);
                in = nb;
            }
            inStart = 0;
            inEnd = live;
        }
        System.arraycopy(b, 0, in, inEnd, n);
        inEnd += n;
    }

    /**
     * Makes at least {@code need} bytes available; false on EOF or deadline (pumped mode).
     * Must hold the monitor in pumped mode.
     */
    private boolean fill(int need, long deadlineNanos) throws IOException {
        if (!pumped) {
            ByteBuffer chunk = ByteBuffer.allocate(Math.max(64 * 1024, need));
            while (inEnd - inStart < need) {
                chunk.clear();
                int n = ch.read(chunk);
                if (n < 0) {
                    eof = true;
                    return false;
                }
                socketBytesRead.addAndGet(n);
                append(chunk.array(), n);
            }
            return true;
        }
        while (inEnd - inStart < need) {
            if (eof) {
                return false;
            }
            long left = deadlineNanos - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            try {
                wait(Math.max(1, left / 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted");
            }
        }
        return true;
    }

    /** Reads one SASL line (without CRLF); null on EOF or deadline. */
    public synchronized String readLine(Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        int scanned = 0;
        while (true) {
            for (int i = inStart + scanned; i + 1 < inEnd; i++) {
                if (in[i] == '\r' && in[i + 1] == '\n') {
                    String line = new String(in, inStart, i - inStart, StandardCharsets.US_ASCII);
                    inStart = i + 2;
                    return line;
                }
            }
            scanned = Math.max(0, inEnd - inStart - 1);
            if (!fill(inEnd - inStart + 1, deadline)) {
                return null;
            }
        }
    }

    /** Reads the next message from the socket (not from the log); null on EOF or deadline. */
    private synchronized Message readMessage(long deadlineNanos) throws IOException {
        if (!fill(16, deadlineNanos)) {
            return null;
        }
        byte[] fixed = Arrays.copyOfRange(in, inStart, inStart + 16);
        long total = Message.totalLength(fixed);
        if (total < 0 || total > MAX_MESSAGE + 4096) {
            throw new IOException("bus sent an unparseable header: " + Arrays.toString(fixed));
        }
        if (!fill((int) total, deadlineNanos)) {
            return null;
        }
        byte[] data = Arrays.copyOfRange(in, inStart, inStart + (int) total);
        messageBytesReceived.addAndGet(total);
        inStart += (int) total;
        if (inStart == inEnd) {
            inStart = inEnd = 0;
        }
        return Message.decode(data);
    }

    /** Direct mode: next message, blocking; null at EOF. */
    public Message next() throws IOException {
        return readMessage(Long.MAX_VALUE);
    }

    /** Waits for the first not-yet-taken message matching {@code p}; every message read is logged. */
    public Message await(Predicate<Message> p, Duration timeout, boolean take) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (log) {
            for (Message m : log) {
                if (p.test(m)) {
                    return m;
                }
            }
        }
        while (true) {
            Message m = readMessage(deadline);
            if (m == null) {
                return null;
            }
            synchronized (log) {
                log.add(m);
            }
            if (p.test(m)) {
                return m;
            }
        }
    }

    /** Waits for the reply to {@code serial}; throws if it does not come before the deadline. */
    public Message awaitReply(long serial, Duration timeout) throws IOException {
        Message r = await(m -> (m.type == Message.METHOD_RETURN || m.type == Message.ERROR) && m.replySerial == serial,
                timeout, false);
        if (r == null) {
            throw new IOException("no reply to serial " + serial + " within " + timeout
                    + (isEof() ? " (disconnected)" : "") + "; log so far:\n" + String.join("\n", transcript()));
        }
        return r;
    }

    /** Waits for a signal with this member; null at the deadline. */
    public Message awaitSignal(String member, Duration timeout) throws IOException {
        return await(m -> m.type == Message.SIGNAL && member.equals(m.member), timeout, false);
    }

    /**
     * Barrier: a Peer.Ping to the bus driver; when its reply arrives, everything the bus queued for this
     * connection before it has been read. The ping reply itself is dropped from the log.
     */
    public void sync(Duration timeout) throws IOException {
        Message r = call(Message.call(BUS, BUS_PATH, "org.freedesktop.DBus.Peer", "Ping"), timeout);
        synchronized (log) {
            log.remove(r);
        }
    }

    /** Waits until the peer closed the connection; false at the deadline. Discards any data. */
    public boolean awaitEof(Duration timeout) {
        if (!pumped) {
            throw new IllegalStateException("awaitEof needs pumped mode");
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (this) {
            while (!eof) {
                inStart = inEnd = 0;
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                try {
                    wait(Math.max(1, left / 1_000_000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
            return true;
        }
    }

    public synchronized boolean isEof() {
        return eof;
    }

    /** All messages received so far, in order. */
    public List<Message> messages() {
        synchronized (log) {
            return new ArrayList<>(log);
        }
    }

    /** One line per message received so far. */
    public List<String> transcript() {
        List<String> out = new ArrayList<>();
        for (Message m : messages()) {
            out.add(m.transcript());
        }
        return out;
    }

    /** Returns the transcript and empties the log. */
    public List<String> drainTranscript() {
        synchronized (log) {
            List<String> out = transcript();
            log.clear();
            return out;
        }
    }

    public void clearLog() {
        synchronized (log) {
            log.clear();
        }
    }

    /** Drops messages matching {@code p} from the log. */
    public void forget(Predicate<Message> p) {
        synchronized (log) {
            for (Iterator<Message> it = log.iterator(); it.hasNext(); ) {
                if (p.test(it.next())) {
                    it.remove();
                }
            }
        }
    }

    @Override
    public void close() {
        try {
            ch.close();
        } catch (IOException ignored) {
            // ignore
        }
    }
}
