package org.kdbusbridge.bridge.metrics;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import java.util.function.LongPredicate;
import java.util.function.Supplier;

import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.bridge.transport.UnixListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code --kdbus-metrics=unix:path=PATH}: a socket that writes one OpenMetrics dump to whoever
 * connects, then closes (as dbus-broker's metrics socket; nothing is read from the client). The
 * dump is rendered on the loop thread when the client is accepted (one consistent snapshot) and
 * written without blocking: what the socket does not take at once waits for WRITE readiness. A
 * client that has not taken its dump within {@link #WRITE_TIMEOUT_MS} is closed; at most
 * {@link #MAX_IN_FLIGHT} dumps are held at once (a client beyond that is closed unanswered), so
 * the listener holds at most that many dumps, each bounded by the writer's series cap. Only the
 * bus's own uid and root may read it (the labels name peers, their uids and command lines).
 */
public final class MetricsListener {
    private static final Logger LOG = LoggerFactory.getLogger(MetricsListener.class);
    static final int MAX_IN_FLIGHT = 4;
    static final long WRITE_TIMEOUT_MS = 5_000;

    private final UnixAddress address;
    private final MetricsDump dump;
    private final LongPredicate uidAllowed;
    private final long writeTimeoutMs;
    private final Map<Integer, Pending> inFlight = new HashMap<>();
    private UnixListener listener;
    private EventLoop loop;
    private long served;
    private long refused;

    /**
     * @param dump       the exposition (rendered on the loop thread, shared with other listeners)
     * @param uidAllowed which peer uids may read it
     */
    public MetricsListener(UnixAddress address, MetricsDump dump, LongPredicate uidAllowed) {
        this(address, dump, uidAllowed, WRITE_TIMEOUT_MS);
    }

    /** Renders every dump afresh (tests). */
    MetricsListener(UnixAddress address, Supplier<byte[]> dump, LongPredicate uidAllowed, long writeTimeoutMs) {
        this(address, new MetricsDump(dump, null), uidAllowed, writeTimeoutMs);
    }

    /** {@code writeTimeoutMs}: how long a client may take to read its dump (tests shorten it). */
    MetricsListener(UnixAddress address, MetricsDump dump, LongPredicate uidAllowed, long writeTimeoutMs) {
        this.writeTimeoutMs = writeTimeoutMs;
        this.address = address;
        this.dump = dump;
        this.uidAllowed = uidAllowed;
    }

    /** Parses {@code unix:path=PATH} (the only form offered); IllegalArgumentException otherwise. */
    public static UnixAddress parseAddress(String value) {
        UnixAddress a = UnixAddress.parse(value);
        if (a.kind() != UnixAddress.Kind.PATH) {
            throw new IllegalArgumentException("only unix:path=PATH is supported: " + value);
        }
        return a;
    }

    /** Binds the socket (any thread, before the loop serves it). */
    public void bind() throws IOException {
        listener = UnixListener.bind(address, null);
    }

    /** Starts accepting; loop thread. */
    public void start(EventLoop loop) {
        this.loop = loop;
        listener.start(loop, this::onAccept);
    }

    /** Dumps served in full, and clients closed without one (tests, logs). */
    public long served() { return served; }

    public long refused() { return refused; }

    /** Dumps being written now (loop thread). */
    int inFlight() { return inFlight.size(); }

    /** Stops accepting, removes the socket file and closes clients still reading; loop thread. */
    public void close() {
        if (listener != null) {
            listener.close();
        }
        for (Pending p : inFlight.values().toArray(new Pending[0])) {
            p.finish();
        }
    }

    private void onAccept(SocketConnection conn) {
        long uid = conn.peer().uid();
        if (inFlight.size() >= MAX_IN_FLIGHT || !uidAllowed.test(uid)) {
            refused++;
            LOG.debug("metrics: closing client uid {} unanswered ({} dumps in flight)", uid, inFlight.size());
            conn.close();
            return;
        }
        ByteBuffer rendered;
        try {
            rendered = dump.current();
        } catch (RuntimeException | OutOfMemoryError e) {
            LOG.warn("metrics: cannot render the dump: {}", e.toString());
            conn.close();
            return;
        }
        Pending p = new Pending(conn, rendered.duplicate()); // its own position, the shared bytes
        inFlight.put(conn.fd(), p);
        try {
            loop.register(conn.fd(), EventLoop.WRITE, p);
        } catch (RuntimeException e) {
            inFlight.remove(conn.fd());
            conn.close();
            return;
        }
        p.timer = loop.schedule(writeTimeoutMs, p::finish);
        p.onReady(conn.fd(), EventLoop.WRITE);
    }

    /** One client's dump on its way out. */
    private final class Pending implements EventLoop.IoHandler {
        final SocketConnection conn;
        final ByteBuffer buf;
        final int fd;
        EventLoop.Timer timer;
        boolean done;

        Pending(SocketConnection conn, ByteBuffer buf) {
            this.conn = conn;
            this.buf = buf;
            this.fd = conn.fd();
        }

        @Override
        public void onReady(int readyFd, int events) {
            if (done) {
                return;
            }
            try {
                while (buf.hasRemaining()) {
                    if (conn.write(buf) == 0) {
                        return; // socket full: wait for WRITE readiness (or the timeout)
                    }
                }
                served++;
            } catch (IOException e) {
                LOG.debug("metrics: client went away: {}", e.getMessage());
            }
            finish();
        }

        void finish() {
            if (done) {
                return;
            }
            done = true;
            if (timer != null) {
                timer.cancel();
            }
            inFlight.remove(fd);
            loop.forgetBeforeClose(fd);
            conn.close();
        }
    }
}
