package org.kdbusbridge.bridge.capture;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Instant;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code --kdbus-capture=FILE}, our extension: every message monitors see is written to a
 * pcapng file in the format {@code busctl capture} writes (see {@link Pcapng}).
 *
 * The sink is a pseudo-connection the core treats as a monitor with no rules (it takes
 * messages with fds too: only the bytes are recorded). On the loop thread it only moves each
 * message's payload with its timestamp into a bounded queue and lets the message go at once;
 * a dedicated writer thread does all file I/O. A heap payload is shared as is; a direct
 * (large) one is copied, since its memory goes back when the last receiver has written it,
 * which may be before the writer gets to it. With {@code --kdbus-monitor-metadata} the sink
 * wants those items like a monitor (it counts in the bus's attach demand, so the facts are
 * stamped) and records each message as a monitor with that set receives it: the copy is the
 * one {@link Renderer} (the bus's MetadataRenderer) makes, with header field 107. Popping inside the offer is safe because the
 * core holds a message itself while routing it, so this pop never frees a payload that a
 * receiver offered after us still needs.
 *
 * Invariants: the event loop never blocks and never touches the file: when the queue is full
 * (by count or by bytes) the message is dropped and counted, and the first drop of each run
 * is logged; records reach the file in sequence order; {@link #close} writes out everything
 * queued, then closes the file (SIGTERM goes through it via the shutdown hook); a write error
 * is logged once and the rest is discarded, never retried on the loop.
 */
public final class CaptureSink implements ConnectionSink {
    private static final Logger LOG = LoggerFactory.getLogger(CaptureSink.class);
    public static final int DEFAULT_MAX_RECORDS = 16 * 1024;
    public static final long DEFAULT_MAX_BYTES = 64L * 1024 * 1024;
    private static final int STAGING = 256 * 1024;

    private record Record(long micros, SealedPayload payload) { }

    private static final Record END = new Record(0, new SealedPayload(new byte[0]));

    private final Path file;
    private final FileChannel channel;
    private final BlockingQueue<Record> queue;
    private final int maxRecords;
    private final long maxBytes;
    private final AtomicLong queuedBytes = new AtomicLong();
    private final AtomicLong dropped = new AtomicLong();
    private final AtomicLong written = new AtomicLong();
    private final Clock clock;
    private final Thread writer;
    private Bus bus;
    private Connection conn;
    /** The AttachMetadata items recorded with every message (MessageFacts bits), 0: the bytes as sent. */
    private int items;
    private Renderer renderer;
    /** Loop thread only: inside a run of drops (logged once per run). */
    private boolean dropping;
    private volatile boolean closed;

    private CaptureSink(Path file, FileChannel channel, int maxRecords, long maxBytes, Clock clock) {
        this.file = file;
        this.channel = channel;
        this.queue = new ArrayBlockingQueue<>(maxRecords + 1); // +1: room for END
        this.maxRecords = maxRecords;
        this.maxBytes = maxBytes;
        this.clock = clock;
        this.writer = new Thread(this::writeLoop, "kdbus-capture-writer");
        this.writer.setDaemon(true);
    }

    /** Creates (truncates) {@code file}, writes the pcapng header and starts the writer. */
    public static CaptureSink open(Path file) throws IOException {
        return open(file, DEFAULT_MAX_RECORDS, DEFAULT_MAX_BYTES, Clock.systemUTC());
    }

    public static CaptureSink open(Path file, int maxRecords, long maxBytes, Clock clock) throws IOException {
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        try {
            ByteBuffer header = ByteBuffer.wrap(Pcapng.fileHeader("kdbus-bridge " + versionOrUnknown()));
            while (header.hasRemaining()) {
                ch.write(header);
            }
        } catch (IOException e) {
            ch.close();
            throw e;
        }
        CaptureSink s = new CaptureSink(file, ch, maxRecords, maxBytes, clock);
        s.writer.start();
        return s;
    }

    private static String versionOrUnknown() {
        String v = CaptureSink.class.getPackage().getImplementationVersion();
        return v != null ? v : "0.1.0";
    }

    /**
     * A receiver's copy of a message with its metadata field (loop thread; a fresh heap array),
     * or null when it would be too large (then the message is recorded as sent).
     */
    @FunctionalInterface
    public interface Renderer {
        byte[] render(Message m, int items);
    }

    /** Loop thread: registers with the core as a rule-less monitor. */
    public void attach(Bus bus, Credentials credentials) {
        attach(bus, credentials, 0, null);
    }

    /**
     * Loop thread: registers with the core as a rule-less monitor that wants {@code items}
     * (0: none; else {@code renderer} is required) attached to every message it records.
     */
    public void attach(Bus bus, Credentials credentials, int items, Renderer renderer) {
        if (items != 0 && renderer == null) {
            throw new IllegalArgumentException("metadata items without a renderer");
        }
        this.bus = bus;
        this.conn = bus.attachCapture(credentials, this);
        if (items != 0) {
            this.items = items;
            this.renderer = renderer;
            bus.attachMetadata(conn, items);
        }
        LOG.info("Capturing every message to {} (pcapng, DLT_DBUS){}", file,
                items != 0 ? " with the monitor metadata field" : "");
    }

    /** Loop thread: the core offered messages; hand each to the writer or drop it. */
    @Override
    public void onQueued(Connection c) {
        Message m;
        while ((m = c.pool().peek()) != null) {
            // The writer thread outlives every queue's hold: a direct payload is freed when the
            // last queue lets go, so the writer gets a heap copy.
            SealedPayload p = copyOf(m);
            c.pool().pop();
            enqueue(p);
        }
    }

    /** The message as recorded: rendered with the metadata field when asked for, else the bytes as sent. */
    private SealedPayload copyOf(Message m) {
        if (items != 0) {
            byte[] rendered = renderer.render(m, items);
            if (rendered != null) {
                return new SealedPayload(rendered);
            }
        }
        return m.payload().heapCopy();
    }

    private void enqueue(SealedPayload p) {
        if (closed) {
            return;
        }
        boolean ok = queuedBytes.get() + p.size() <= maxBytes || queue.isEmpty();
        if (ok) {
            queuedBytes.addAndGet(p.size());
            ok = queue.size() < maxRecords && queue.offer(new Record(now(), p));
            if (!ok) {
                queuedBytes.addAndGet(-p.size());
            }
        }
        if (ok) {
            dropping = false;
            return;
        }
        long n = dropped.incrementAndGet();
        if (!dropping) {
            dropping = true;
            LOG.warn("Capture to {} is falling behind: message dropped ({} dropped so far)", file, n);
        }
    }

    private long now() {
        Instant t = clock.instant();
        return t.getEpochSecond() * 1_000_000L + t.getNano() / 1_000;
    }

    public long dropped() {
        return dropped.get();
    }

    public long written() {
        return written.get();
    }

    private void writeLoop() {
        ByteBuffer out = ByteBuffer.allocateDirect(STAGING).order(ByteOrder.LITTLE_ENDIAN);
        boolean failed = false;
        try {
            while (true) {
                Record r = queue.poll();
                if (r == null) {
                    failed = drain(out, failed); // idle: make what we have visible
                    r = queue.take();
                }
                if (r == END) {
                    break;
                }
                queuedBytes.addAndGet(-r.payload().size());
                if (failed) {
                    continue;
                }
                try {
                    append(out, r);
                    written.incrementAndGet();
                } catch (IOException e) {
                    failed = true;
                    LOG.error("Capture to {} failed, discarding the rest: {}", file, e.toString());
                }
            }
            drain(out, failed);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            try {
                channel.close();
            } catch (IOException e) {
                LOG.warn("Closing capture file {}: {}", file, e.toString());
            }
        }
    }

    private void append(ByteBuffer out, Record r) throws IOException {
        SealedPayload p = r.payload();
        int size = p.size();
        ensure(out, Pcapng.PACKET_HEADER);
        Pcapng.packetHeader(out, r.micros(), size);
        int captured = Math.min(size, Pcapng.SNAPLEN);
        int done = 0;
        while (done < captured) {
            if (!out.hasRemaining()) {
                flush(out);
            }
            done += p.copyTo(done, out.limit(out.position() + Math.min(out.remaining(), captured - done)));
            out.limit(out.capacity());
        }
        ensure(out, Pcapng.trailerLength(size));
        Pcapng.packetTrailer(out, size);
    }

    private void ensure(ByteBuffer out, int n) throws IOException {
        if (out.remaining() < n) {
            flush(out);
        }
    }

    private void flush(ByteBuffer out) throws IOException {
        out.flip();
        while (out.hasRemaining()) {
            channel.write(out);
        }
        out.clear();
    }

    private boolean drain(ByteBuffer out, boolean failed) {
        if (failed || out.position() == 0) {
            return failed;
        }
        try {
            flush(out);
            return false;
        } catch (IOException e) {
            LOG.error("Capture to {} failed, discarding the rest: {}", file, e.toString());
            return true;
        }
    }

    /**
     * Stops capturing and waits (up to {@code timeoutMs}) until everything queued is in the
     * file and the file is closed. Not on the loop thread: call it after the loop stopped, or
     * from a thread that may wait.
     */
    public void close(long timeoutMs) {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (!queue.offer(END, timeoutMs, TimeUnit.MILLISECONDS)) {
                LOG.warn("Capture writer for {} did not keep up at shutdown", file);
                writer.interrupt();
            }
            writer.join(timeoutMs);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        LOG.info("Capture to {} closed: {} messages written, {} dropped", file, written.get(), dropped.get());
    }

    /** Loop thread: detaches from the core (no more messages are offered). */
    public void detach() {
        if (bus != null && conn != null) {
            bus.attachMetadata(conn, 0); // no longer counted among those who want facts
            bus.detachCapture(conn);
        }
    }
}
