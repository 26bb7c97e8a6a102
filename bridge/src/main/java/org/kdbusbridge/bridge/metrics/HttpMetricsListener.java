package org.kdbusbridge.bridge.metrics;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.bridge.transport.LibC;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code --kdbus-metrics=http://127.0.0.1:PORT}: {@code GET /metrics} over HTTP/1.x answers the
 * same OpenMetrics dump as the unix socket, for a Prometheus scrape; another path is 404, another
 * method 405, a request that does not parse 400, one whose head exceeds {@link #MAX_REQUEST_BYTES}
 * 431. One request per connection ({@code Connection: close}).
 *
 * A TCP socket on the bus's own loop through LibC (socket, bind, listen, accept4, read, send are
 * all there): no thread, no JDK HTTP server (whose limits on request size and time are JVM-wide
 * system properties, with no bound on request time by default). Everything is non-blocking and
 * bounded as the unix listener: at most {@link #MAX_IN_FLIGHT} clients at once (one beyond that
 * is closed unanswered), each with one preallocated {@link #MAX_REQUEST_BYTES} buffer for its
 * request head, and {@link #TIMEOUT_MS} from accept to the last byte of the answer. The dump is
 * the loop's shared {@link MetricsDump}: rendered on the loop thread, never copied per client.
 */
public final class HttpMetricsListener {
    private static final Logger LOG = LoggerFactory.getLogger(HttpMetricsListener.class);
    public static final String PATH = "/metrics";
    static final int MAX_IN_FLIGHT = MetricsListener.MAX_IN_FLIGHT;
    static final long TIMEOUT_MS = MetricsListener.WRITE_TIMEOUT_MS;
    /** The request line and headers; a scrape sends a few hundred bytes. */
    static final int MAX_REQUEST_BYTES = 8192;
    private static final int BACKLOG = 16;
    private static final int MAX_ACCEPTS_PER_WAKEUP = 16;
    private static final long FD_EXHAUSTED_PAUSE_MS = 100;
    private static final int AF_INET = 2;
    private static final int AF_INET6 = 10;
    private static final int SO_REUSEADDR = 2;
    private static final LibC LIBC = LibC.INSTANCE;

    private final HttpAddress address;
    private final MetricsDump dump;
    private final long timeoutMs;
    private final Map<Integer, Client> inFlight = new HashMap<>();
    /** One request buffer per client slot, allocated at bind; a client holds one while open. */
    private final ArrayDeque<ByteBuffer> freeBuffers = new ArrayDeque<>();
    private int fd = -1;
    private int boundPort;
    private EventLoop loop;
    private boolean paused;
    private boolean closed;
    private long served;
    private long refused;
    private long errors;

    public HttpMetricsListener(HttpAddress address, MetricsDump dump) {
        this(address, dump, TIMEOUT_MS);
    }

    /** {@code timeoutMs}: accept to last byte written (tests shorten it). */
    HttpMetricsListener(HttpAddress address, MetricsDump dump, long timeoutMs) {
        this.address = address;
        this.dump = dump;
        this.timeoutMs = timeoutMs;
    }

    /** Binds and listens (any thread, before the loop serves it); the port is then {@link #port()}. */
    public void bind() throws IOException {
        int family = address.ipv6() ? AF_INET6 : AF_INET;
        int s = LIBC.socket(family, LibC.SOCK_STREAM | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC, 0);
        if (s < 0) {
            throw new IOException("metrics: socket: " + LibC.Native.strerror(LibC.Native.errno()));
        }
        ByteBuffer sa = ByteBuffer.allocateDirect(64).order(ByteOrder.nativeOrder());
        long addr = LibC.Native.address(sa);
        sa.putInt(0, 1);
        // A restarted bus rebinds its port at once, its old connections in TIME_WAIT or not.
        LIBC.setsockopt(s, LibC.SOL_SOCKET, SO_REUSEADDR, addr, 4);
        sa.putInt(0, 0);
        int len = sockaddr(sa, family, address.port());
        if (LIBC.bind(s, addr, len) < 0 || LIBC.listen(s, BACKLOG) < 0) {
            int e = LibC.Native.errno();
            LIBC.close(s);
            throw new IOException("metrics: cannot listen on " + address.url(address.port()) + ": "
                    + LibC.Native.strerror(e));
        }
        sa.putInt(48, 32);
        if (LIBC.getsockname(s, addr, addr + 48) < 0) {
            int e = LibC.Native.errno();
            LIBC.close(s);
            throw new IOException("metrics: getsockname: " + LibC.Native.strerror(e));
        }
        boundPort = ((sa.get(2) & 0xff) << 8) | (sa.get(3) & 0xff);
        for (int i = 0; i < MAX_IN_FLIGHT; i++) {
            freeBuffers.add(ByteBuffer.allocateDirect(MAX_REQUEST_BYTES));
        }
        fd = s;
    }

    /** sockaddr_in or sockaddr_in6 for the address, zeroed around; returns its length. */
    private int sockaddr(ByteBuffer sa, int family, int port) {
        for (int i = 0; i < 32; i++) {
            sa.put(i, (byte) 0);
        }
        sa.putShort(0, (short) family); // native order
        sa.put(2, (byte) (port >>> 8)); // network order
        sa.put(3, (byte) port);
        byte[] ip = address.ip();
        sa.put(address.ipv6() ? 8 : 4, ip);
        return address.ipv6() ? 28 : 16;
    }

    /** The port bound (the one asked for, or the one the kernel chose for port 0). */
    public int port() {
        return boundPort;
    }

    /** Where the metrics are, for the log. */
    public String url() {
        return address.url(boundPort);
    }

    /** Starts accepting; loop thread. */
    public void start(EventLoop loop) {
        this.loop = loop;
        loop.register(fd, EventLoop.READ, this::onAccept);
        LOG.info("Serving metrics at {}", url());
    }

    /** Answers with the dump in full; connections closed unanswered; other answers (404, 405, ...). */
    public long served() { return served; }

    public long refused() { return refused; }

    public long errors() { return errors; }

    int inFlight() { return inFlight.size(); }

    /** Stops accepting and closes clients still open; loop thread. */
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (fd >= 0) {
            if (loop != null) {
                loop.forgetBeforeClose(fd);
            }
            LIBC.close(fd);
        }
        for (Client c : inFlight.values().toArray(new Client[0])) {
            c.finish();
        }
    }

    private void onAccept(int readyFd, int events) {
        for (int i = 0; i < MAX_ACCEPTS_PER_WAKEUP && !closed; i++) {
            int cfd = LIBC.accept4(fd, 0L, 0L, LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC);
            if (cfd < 0) {
                int e = LibC.Native.errno();
                if (e == LibC.EINTR || e == LibC.ECONNABORTED) {
                    continue;
                }
                if (e == LibC.EMFILE || e == LibC.ENFILE || e == LibC.ENOBUFS || e == LibC.ENOMEM) {
                    LOG.warn("metrics: accept: {}; pausing accepts for {} ms", LibC.Native.strerror(e),
                            FD_EXHAUSTED_PAUSE_MS);
                    pause();
                } else if (e != LibC.EAGAIN) {
                    LOG.warn("metrics: accept: {}", LibC.Native.strerror(e));
                }
                return;
            }
            ByteBuffer buf = freeBuffers.poll();
            if (buf == null) { // MAX_IN_FLIGHT clients open
                refused++;
                LIBC.close(cfd);
                continue;
            }
            Client c = new Client(cfd, buf);
            try {
                loop.register(cfd, EventLoop.READ, c);
            } catch (RuntimeException e) {
                freeBuffers.add(buf);
                LIBC.close(cfd);
                continue;
            }
            inFlight.put(cfd, c);
            c.timer = loop.schedule(timeoutMs, c::finish);
        }
    }

    private void pause() {
        if (paused) {
            return;
        }
        paused = true;
        loop.modify(fd, 0);
        loop.schedule(FD_EXHAUSTED_PAUSE_MS, () -> {
            paused = false;
            if (!closed) {
                loop.modify(fd, EventLoop.READ);
            }
        });
    }

    /** The answer to a request head ({@code head} bytes 0..end), and whether it carries the dump. */
    record Answer(int status, String reason, boolean dump, boolean body) {
    }

    /** Parses the request head (everything before the blank line); package-private for tests. */
    static Answer answer(String head) {
        int eol = head.indexOf('\n');
        String line = (eol < 0 ? head : head.substring(0, eol)).strip();
        String[] parts = line.split(" ");
        if (parts.length != 3 || !parts[2].startsWith("HTTP/1.") || parts[1].isEmpty()) {
            return new Answer(400, "Bad Request", false, true);
        }
        String target = parts[1];
        int q = target.indexOf('?');
        String path = q < 0 ? target : target.substring(0, q);
        if (!path.equals(PATH)) {
            return new Answer(404, "Not Found", false, true);
        }
        return switch (parts[0]) {
            case "GET" -> new Answer(200, "OK", true, true);
            case "HEAD" -> new Answer(200, "OK", true, false);
            default -> new Answer(405, "Method Not Allowed", false, true);
        };
    }

    /** One client: its request head read into {@code buf}, then the answer written from it and the dump. */
    private final class Client implements EventLoop.IoHandler {
        final int cfd;
        final ByteBuffer buf;
        final long bufAddr;
        EventLoop.Timer timer;
        boolean writing;
        boolean done;
        /** The dump (a position of its own over the shared bytes), or null once written or if none. */
        ByteBuffer body;
        long bodyAddr;
        boolean counted;

        Client(int cfd, ByteBuffer buf) {
            this.cfd = cfd;
            this.buf = buf;
            this.bufAddr = LibC.Native.address(buf);
            buf.clear();
        }

        @Override
        public void onReady(int readyFd, int events) {
            if (done) {
                return;
            }
            if (!writing) {
                read();
            }
            if (writing && !done) {
                write();
            }
        }

        private void read() {
            while (buf.hasRemaining()) {
                long n = LIBC.read(cfd, bufAddr + buf.position(), buf.remaining());
                if (n < 0) {
                    int e = LibC.Native.errno();
                    if (e == LibC.EAGAIN) {
                        return; // the rest comes with the next READ (or the timeout)
                    }
                    if (e == LibC.EINTR) {
                        continue;
                    }
                    finish();
                    return;
                }
                if (n == 0) { // hung up before the request was complete
                    finish();
                    return;
                }
                buf.position(buf.position() + (int) n);
                int end = headEnd(buf);
                if (end >= 0) {
                    respond(answer(ascii(buf, end)));
                    return;
                }
            }
            respond(new Answer(431, "Request Header Fields Too Large", false, true));
        }

        private void respond(Answer a) {
            String text = a.dump() ? "" : a.status() + " " + a.reason() + "\n";
            ByteBuffer d = null;
            if (a.dump()) {
                try {
                    d = dump.current().duplicate();
                } catch (RuntimeException | OutOfMemoryError e) {
                    LOG.warn("metrics: cannot render the dump: {}", e.toString());
                    a = new Answer(500, "Internal Server Error", false, true);
                    text = "500 Internal Server Error\n";
                }
            }
            StringBuilder h = new StringBuilder(256);
            h.append("HTTP/1.1 ").append(a.status()).append(' ').append(a.reason()).append("\r\n");
            h.append("Content-Type: ").append(a.dump() ? OpenMetricsWriter.CONTENT_TYPE : "text/plain; charset=utf-8")
                    .append("\r\n");
            h.append("Content-Length: ").append(d != null ? d.remaining() : text.length()).append("\r\n");
            if (a.status() == 405) {
                h.append("Allow: GET, HEAD\r\n");
            }
            h.append("Cache-Control: no-store\r\nConnection: close\r\n\r\n");
            if (a.body() && d == null) {
                h.append(text);
            }
            buf.clear();
            buf.put(h.toString().getBytes(StandardCharsets.US_ASCII)).flip();
            if (a.body() && d != null) {
                body = d;
                bodyAddr = LibC.Native.address(d);
            }
            counted = a.dump();
            if (!a.dump()) {
                errors++;
            }
            writing = true;
            loop.modify(cfd, EventLoop.WRITE);
        }

        private void write() {
            if (!send(buf, bufAddr)) {
                return;
            }
            if (body != null && !send(body, bodyAddr)) {
                return;
            }
            if (counted) {
                served++;
            }
            discardInput();
            finish();
        }

        /**
         * Reads away what the client sent beyond the head (up to 64 KiB, what is there now): a
         * close with unread input sends a reset, which can destroy the answer before the client
         * reads it (a 431, a 405 with a body).
         */
        private void discardInput() {
            for (int i = 0; i < 8; i++) {
                buf.clear();
                if (LIBC.read(cfd, bufAddr, buf.capacity()) <= 0) {
                    return;
                }
            }
        }

        /** True once {@code b} is all sent; false if the socket is full (WRITE readiness comes) or failed. */
        private boolean send(ByteBuffer b, long addr) {
            while (b.hasRemaining()) {
                long n = LIBC.send(cfd, addr + b.position(), b.remaining(), LibC.MSG_NOSIGNAL);
                if (n < 0) {
                    int e = LibC.Native.errno();
                    if (e == LibC.EINTR) {
                        continue;
                    }
                    if (e != LibC.EAGAIN) {
                        finish();
                    }
                    return false;
                }
                b.position(b.position() + (int) n);
            }
            return true;
        }

        void finish() {
            if (done) {
                return;
            }
            done = true;
            if (timer != null) {
                timer.cancel();
            }
            inFlight.remove(cfd);
            loop.forgetBeforeClose(cfd);
            LIBC.close(cfd);
            freeBuffers.add(buf);
        }
    }

    /** The length of the head before its blank line (CRLF CRLF, or LF LF), or -1 if not there yet. */
    static int headEnd(ByteBuffer b) {
        int n = b.position();
        for (int i = 0; i + 1 < n; i++) {
            if (b.get(i) == '\n') {
                if (b.get(i + 1) == '\n') {
                    return i;
                }
                if (i + 2 < n && b.get(i + 1) == '\r' && b.get(i + 2) == '\n') {
                    return i;
                }
            }
        }
        return -1;
    }

    private static String ascii(ByteBuffer b, int len) {
        byte[] a = new byte[len];
        b.get(0, a);
        return new String(a, StandardCharsets.ISO_8859_1);
    }
}
