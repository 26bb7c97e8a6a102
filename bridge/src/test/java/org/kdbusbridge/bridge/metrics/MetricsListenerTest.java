// Invariants under test: a reader gets the whole dump then end of file; at most MAX_IN_FLIGHT
// dumps are held at once (a client beyond that gets end of file at once, with nothing); a
// client that does not read is closed after the write timeout, which frees its slot; a uid the
// predicate refuses gets nothing. The loop is never blocked: the test reads its state through it.
package org.kdbusbridge.bridge.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.bridge.transport.UnixAddress;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MetricsListenerTest {
    /** Far more than a unix socket's buffer, so a client that does not read keeps it in flight. */
    private static final int BIG = 8 << 20;

    @TempDir
    Path dir;

    private final EventLoop loop = new EventLoop("metrics-test");
    private MetricsListener listener;
    private final List<SocketChannel> open = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (SocketChannel c : open) {
            c.close();
        }
        if (listener != null) {
            onLoop(() -> {
                listener.close();
                return null;
            });
        }
        loop.shutdown();
        loop.awaitTermination(5000);
    }

    private <T> T onLoop(Supplier<T> q) throws Exception {
        CompletableFuture<T> f = new CompletableFuture<>();
        loop.execute(() -> f.complete(q.get()));
        return f.get(10, TimeUnit.SECONDS);
    }

    private void await(String what, BooleanSupplier c) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!onLoop(c::getAsBoolean)) {
            if (System.nanoTime() > deadline) {
                fail("not within 20 s: " + what);
            }
            Thread.onSpinWait();
        }
    }

    private void start(byte[] dump, boolean allowed, long timeoutMs) throws Exception {
        Path socket = dir.resolve("metrics");
        listener = new MetricsListener(UnixAddress.path(socket.toString(), null), () -> dump, uid -> allowed, timeoutMs);
        listener.bind();
        loop.start();
        onLoop(() -> {
            listener.start(loop);
            return null;
        });
    }

    private SocketChannel connect() throws Exception {
        SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(dir.resolve("metrics")));
        open.add(c);
        return c;
    }

    private static byte[] readAll(SocketChannel c) throws Exception {
        InputStream in = Channels.newInputStream(c);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        in.transferTo(out);
        return out.toByteArray();
    }

    private static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) ('a' + i % 26);
        }
        return b;
    }

    @Test
    void aReaderGetsTheWholeDump() throws Exception {
        byte[] dump = pattern(BIG);
        start(dump, true, 30_000);
        assertArrayEquals(dump, readAll(connect()));
        await("served", () -> listener.served() == 1 && listener.inFlight() == 0);
    }

    @Test
    void inFlightDumpsAreBoundedAndNonReadersTimeOut() throws Exception {
        start(pattern(BIG), true, 1_000);
        for (int i = 0; i < MetricsListener.MAX_IN_FLIGHT; i++) {
            connect(); // never read
        }
        await("all in flight", () -> listener.inFlight() == MetricsListener.MAX_IN_FLIGHT);
        SocketChannel late = connect();
        assertEquals(0, readAll(late).length); // closed unanswered
        await("refused", () -> listener.refused() == 1);
        // The non-readers are closed by the timeout, which frees the slots.
        await("timed out", () -> listener.inFlight() == 0);
        assertEquals(0, onLoop(listener::served));
        assertEquals(BIG, readAll(connect()).length);
    }

    @Test
    void aRefusedUidGetsNothing() throws Exception {
        start(pattern(100), false, 1_000);
        assertEquals(0, readAll(connect()).length);
        await("refused", () -> listener.refused() == 1);
        assertTrue(onLoop(listener::served) == 0);
    }

    @Test
    void aDumpIsRenderedAgainOnlyWhenTheBusChanged() throws Exception {
        Path socket = dir.resolve("metrics");
        java.util.concurrent.atomic.AtomicInteger renders = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicLong version = new java.util.concurrent.atomic.AtomicLong(1);
        listener = new MetricsListener(UnixAddress.path(socket.toString(), null), new MetricsDump(
                () -> ("dump " + renders.incrementAndGet()).getBytes(java.nio.charset.StandardCharsets.US_ASCII),
                version::get), uid -> true);
        listener.bind();
        loop.start();
        onLoop(() -> {
            listener.start(loop);
            return null;
        });
        for (int i = 0; i < 5; i++) { // a client reconnecting in a loop
            assertEquals("dump 1", new String(readAll(connect()), java.nio.charset.StandardCharsets.US_ASCII));
        }
        version.set(2); // the bus changed
        assertEquals("dump 2", new String(readAll(connect()), java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(2, renders.get());
    }
}
