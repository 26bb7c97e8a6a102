// Invariants under test (issue 14, "Memory"): every direct buffer the bus allocates on its loop
// goes through DirectBuffers' budget, which stays below the JVM's direct-memory limit; past it a
// large frame or payload takes the heap instead (no allocateDirect that could fail, so never the
// JDK's System.gc()-and-sleep path), every message still arrives intact, the loop keeps
// answering, and the bytes lent return to zero. Real sockets against a real BusServer; waits
// are conditions with deadlines, bounded by @Timeout.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.core.bus.UserQuota;
import org.kdbusbridge.bridge.transport.TransportSettings;

class DirectBudgetTest {
    private static final int TINY_BUDGET = 256 * 1024;
    private static final String IFACE = "org.kdbusbridge.Budget";

    @TempDir
    Path dir;

    private BusServer server;
    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : open) {
            c.close();
        }
        if (server != null) {
            server.stop();
        }
    }

    // --- the pool on its own ------------------------------------------------------------

    @Test
    void aRequestPastTheBudgetIsRefusedNotAllocated() {
        long scratches = 2L * DirectBuffers.IO_BUFFER; // counted from the start
        DirectBuffers pool = new DirectBuffers(0, scratches + 256 * 1024);
        assertEquals(scratches, pool.heldBytes());
        ByteBuffer a = pool.take(200 * 1024);
        assertNotNull(a);
        assertEquals(256 * 1024, a.capacity(), "rounded to the granule: the rest of the budget");
        assertNull(pool.take(64 * 1024), "nothing left in the budget");
        assertEquals(1, pool.refusedCount());
        assertEquals(256 * 1024, pool.lentBytes());
        pool.give(a);
        assertEquals(0, pool.lentBytes());
        assertEquals(scratches + 256 * 1024, pool.heldBytes(), "kept spare");
        ByteBuffer b = pool.take(100 * 1024);
        assertNotNull(b, "the spare is released to make room for a buffer it cannot serve");
        assertEquals(0, pool.spareBytes());
        assertEquals(scratches + 128 * 1024, pool.heldBytes());
        assertNull(pool.take(1 << 20), "bigger than the whole budget");
        assertTrue(pool.peakHeldBytes() <= pool.budget());
    }

    @Test
    void ioBuffersAndScratchesCountAgainstTheBudget() {
        DirectBuffers pool = new DirectBuffers(8, 3 * DirectBuffers.IO_BUFFER);
        pool.inputScratch();
        pool.outputScratch();
        assertEquals(2L * DirectBuffers.IO_BUFFER, pool.heldBytes());
        ByteBuffer io = pool.takeIo();
        assertNotNull(io);
        assertNull(pool.takeIo(), "under the lending bound, but past the budget");
        assertNull(pool.take(1000));
        pool.giveIo(io);
        assertSame(io, pool.takeIo(), "a spare needs no new memory");
        pool.giveIo(io);
        assertNotNull(pool.take(1000), "the idle I/O spare is released to make room");
        assertEquals(3L * DirectBuffers.IO_BUFFER, pool.heldBytes());
    }

    @Test
    void theDefaultBudgetLeavesAMarginBelowTheJvmLimit() {
        assertEquals(512L << 20, DirectBuffers.parseSize("512m"));
        assertEquals(2L << 30, DirectBuffers.parseSize("2G"));
        assertEquals(65536, DirectBuffers.parseSize("65536"));
        assertEquals(-1, DirectBuffers.parseSize("lots"));
        assertEquals(768L << 20, DirectBuffers.defaultBudget(1L << 30), "a quarter kept back");
        assertEquals(32L << 20, DirectBuffers.defaultBudget(64L << 20), "at least 32 MiB kept back");
        assertEquals(0, DirectBuffers.defaultBudget(16L << 20));
        long limit = DirectBuffers.jvmDirectMemoryLimit();
        assertTrue(limit > 0);
        assertTrue(new DirectBuffers().budget() < limit);
    }

    // --- the bus with a tiny budget -------------------------------------------------------

    private Path start(long budget) throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        server = new BusServer(config, UserQuota.forHeap(Runtime.getRuntime().maxMemory(), null),
                new DirectBuffers(DirectBuffers.DEFAULT_MAX_IO_BUFFERS, budget),
                TransportSettings.fromSystemProperties().withZeroCopyThreshold(TransportSettings.ZERO_COPY_SIZE));
        server.start();
        return dir.resolve("bus");
    }

    /** Runs {@code q} on the loop thread (DirectBuffers is loop-only) and returns its answer. */
    private <T> T onLoop(Supplier<T> q) throws Exception {
        return OnLoop.get(server, q);
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] body(Msg m) {
        return Arrays.copyOfRange(m.frame(), m.bodyOffset(), m.bodyOffset() + m.bodyLength());
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void largeMessagesPastATinyBudgetAllArriveIntactAndTheLoopKeepsAnswering() throws Exception {
        Path socket = start(TINY_BUDGET);
        int pairs = 4;
        List<RawClient> senders = new ArrayList<>();
        List<RawClient> receivers = new ArrayList<>();
        for (int i = 0; i < pairs; i++) {
            RawClient r = RawClient.open(socket);
            open.add(r);
            receivers.add(r);
            RawClient s = RawClient.open(socket);
            open.add(s);
            senders.add(s);
        }
        RawClient bystander = RawClient.open(socket);
        open.add(bystander);

        // Per pair: two 1 MiB messages (never fit the budget) around a 100 KiB one (may fit).
        byte[][][] bodies = new byte[pairs][][];
        for (int i = 0; i < pairs; i++) {
            bodies[i] = new byte[][] {
                new BodyWriter(1 << 20).writeByteArray(random(1 << 20, i)).toByteArray(),
                new BodyWriter().writeByteArray(random(100 * 1024, 100 + i)).toByteArray(),
                new BodyWriter(1 << 20).writeByteArray(random((1 << 20) + 7, 200 + i)).toByteArray(),
            };
        }
        List<CompletableFuture<Void>> sending = new ArrayList<>();
        for (int i = 0; i < pairs; i++) {
            RawClient s = senders.get(i);
            String dest = receivers.get(i).uniqueName;
            byte[][] b = bodies[i];
            sending.add(CompletableFuture.runAsync(() -> {
                try {
                    for (byte[] one : b) {
                        s.signal(dest, "/b", IFACE, "Big", "ay", one);
                    }
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            }));
        }
        // While the senders write, the loop still answers someone else at once.
        assertEquals(0, bystander.sync(), "Ping answered while large frames arrive");
        CompletableFuture.allOf(sending.toArray(new CompletableFuture[0])).get(60, TimeUnit.SECONDS);
        assertEquals(0, bystander.sync(), "Ping answered once they are all queued");

        for (int i = 0; i < pairs; i++) {
            RawClient r = receivers.get(i);
            for (int k = 0; k < bodies[i].length; k++) {
                Msg m = r.read();
                assertTrue(m.isSignal("Big"), "receiver " + i + " message " + k + ": " + m);
                assertEquals(senders.get(i).uniqueName, m.sender());
                assertArrayEquals(bodies[i][k], body(m), "receiver " + i + " message " + k + " body");
            }
            assertEquals(0, r.sync(), "nothing more for receiver " + i);
        }
        assertTrue(onLoop(() -> server.buffers().refusedCount()) > 0, "the budget was actually reached");
        assertTrue(onLoop(() -> server.buffers().peakHeldBytes()) <= TINY_BUDGET, "never held past the budget");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (onLoop(() -> server.buffers().lentBytes()) != 0 && System.nanoTime() < deadline) {
            bystander.sync(); // each round trip lets the loop finish writing and free payloads
        }
        assertEquals(0L, onLoop(() -> server.buffers().lentBytes()), "every lent byte came back");
    }
}
