// Invariants under test (issue 14, "SASL state and large frames on the heap"): the heap that
// sessions hold for input outside the shared buffers (carries, heap frames, SASL lines) is charged
// to the peer's uid and to the bus; a hold grows only within both budgets, shrinks always, and
// goes back to zero when the session closes; a connection whose frame would take the heap past
// its uid's budget is disconnected (logged once a minute per uid) while others are served; output
// a receiver does not read, when no output buffer can be lent, stays in its pool: no heap, no close.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.core.bus.UserQuota;
import org.kdbusbridge.core.connection.QueueQuota;
import org.kdbusbridge.bridge.transport.TransportSettings;

class InputHeapTest {
    private static final String IFACE = "org.kdbusbridge.InputHeap";

    @TempDir
    Path dir;

    private BusServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.stop();
        }
    }

    @Test
    void holdsGrowWithinBothBudgetsAndAlwaysShrink() {
        InputHeap h = new InputHeap(100, 150);
        assertTrue(h.resize(1, 0, 100));
        assertFalse(h.resize(1, 100, 101), "past the uid's budget");
        assertEquals(100, h.used(1), "a refused growth changes nothing");
        assertTrue(h.resize(2, 0, 50));
        assertFalse(h.resize(3, 0, 1), "past the bus's budget, whatever the uid holds");
        assertTrue(h.resize(1, 100, 20), "a shrink always happens");
        assertTrue(h.resize(3, 0, 80));
        assertEquals(150, h.total());
        assertTrue(h.resize(1, 20, 0));
        assertTrue(h.resize(2, 50, 0));
        assertTrue(h.resize(3, 80, 0));
        assertEquals(0, h.total());
        assertEquals(0, h.used(1));
        assertTrue(h.shouldLog(1, 0));
        assertFalse(h.shouldLog(1, 59_999));
        assertTrue(h.shouldLog(2, 59_999), "per uid");
        assertTrue(h.shouldLog(1, 60_000));
    }

    private <T> T onLoop(Supplier<T> q) throws Exception {
        return OnLoop.get(server, q);
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void aFramePastTheUidsInputBudgetDisconnectsOnlyItsConnection() throws Exception {
        long perUid = 512 * 1024;
        UserQuota q = new UserQuota(1 << 20, 1 << 21, UserQuota.MATCH_RULE_BASE, UserQuota.NAME_ENTRY_BASE,
                QueueQuota.UNLIMITED, perUid, 4 * perUid);
        // No direct memory beyond the two scratches: every large frame takes the heap path.
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")), q,
                new DirectBuffers(DirectBuffers.DEFAULT_MAX_IO_BUFFERS, 2L * DirectBuffers.IO_BUFFER),
                TransportSettings.fromSystemProperties().withZeroCopyThreshold(TransportSettings.ZERO_COPY_SIZE));
        server.start();
        Path socket = dir.resolve("bus");
        try (RawClient receiver = RawClient.open(socket); RawClient fits = RawClient.open(socket);
             RawClient tooBig = RawClient.open(socket)) {
            byte[] small = new byte[300 * 1024];
            new Random(14).nextBytes(small);
            byte[] smallBody = new BodyWriter().writeByteArray(small).toByteArray();
            // Each session keeps the small output array its SASL replies went through (charged).
            long idle = onLoop(() -> server.inputHeap().total());
            fits.signal(receiver.uniqueName, "/h", IFACE, "Fits", "ay", smallBody);
            Msg m = receiver.read();
            assertTrue(m.isSignal("Fits"), m.toString());
            assertArrayEquals(smallBody, Arrays.copyOfRange(m.frame(), m.bodyOffset(), m.bodyOffset() + m.bodyLength()));
            assertTrue(onLoop(() -> server.inputHeap().total()) <= idle, "the heap frame's hold went back");

            // Half of a 1 MiB frame: its whole length is charged before the array grows to it.
            byte[] frame = MessageBuilder.signal(tooBig.nextSerial(), "/h", IFACE, "TooBig", receiver.uniqueName,
                    null, "ay", new BodyWriter().writeByteArray(new byte[1 << 20]).toByteArray());
            boolean cutOff = false;
            try {
                tooBig.write(Arrays.copyOf(frame, frame.length / 2));
            } catch (java.io.IOException e) {
                cutOff = true; // the bus closed it as soon as the header said how long the frame is
            }
            assertTrue(cutOff || tooBig.awaitEof(10_000), "disconnected past its uid's input budget");
            assertTrue(onLoop(() -> server.inputHeap().total()) <= idle, "a closed session holds nothing");
            assertEquals(0, receiver.sync(), "the bus still answers; nothing of the refused frame arrived");
            fits.signal(receiver.uniqueName, "/h", IFACE, "Again", "ay", smallBody);
            assertTrue(receiver.read().isSignal("Again"), "a frame within the budget is still read");
        }
    }

    /**
     * With no output buffer to lend, what a receiver's socket does not take stays in its pool
     * (charged to the senders there), not on the heap: with an input-heap budget too small for
     * two ~64 KiB output carries, two never-reading receivers are throttled, not disconnected,
     * no heap is held for their output, and a reader is still served; once they read, they get
     * every message in order.
     */
    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void outputKeptForNonReadersHoldsNoHeapAndClosesNobody() throws Exception {
        long perUid = 100 * 1024; // room for one output carry of ~64 KiB, not two
        UserQuota q = new UserQuota(1 << 20, 1 << 21, UserQuota.MATCH_RULE_BASE, UserQuota.NAME_ENTRY_BASE,
                QueueQuota.UNLIMITED, perUid, 4 * perUid);
        // No I/O buffer to lend: every flush goes through the scratch.
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")), q,
                new DirectBuffers(0, 2L * DirectBuffers.IO_BUFFER), TransportSettings.fromSystemProperties());
        server.start();
        Path socket = dir.resolve("bus");
        try (RawClient a = RawClient.open(socket); RawClient b = RawClient.open(socket);
             RawClient reader = RawClient.open(socket); RawClient sender = RawClient.open(socket)) {
            for (RawClient r : List.of(a, b, reader)) {
                r.addMatch("type='signal',interface='" + IFACE + "'");
            }
            long idle = onLoop(() -> server.inputHeap().total());
            byte[] bytes = new byte[8 * 1024];
            new Random(14).nextBytes(bytes);
            long maxHeld = 0;
            int ticks = 400;
            for (int i = 0; i < ticks; i++) { // ~3.2 MiB: far past both sockets' buffers
                sender.signal(null, "/h", IFACE, "Tick", "uay", new BodyWriter().writeUint32(i).writeByteArray(bytes)
                        .toByteArray());
                assertTrue(reader.read().isSignal("Tick"), "the reader gets every one");
                maxHeld = Math.max(maxHeld, onLoop(() -> server.inputHeap().total()));
            }
            // At most the small input carries a session keeps (InputAssembler.CARRY_KEEP).
            assertTrue(maxHeld <= idle + 4L * InputAssembler.CARRY_KEEP,
                    "no heap held for unsent output: " + maxHeld + ", idle " + idle);
            assertEquals(0, sender.sync(), "the bus still answers the sender");
            for (RawClient r : List.of(a, b)) {
                assertTrue(onLoop(() -> server.bus().resolve(r.uniqueName) != null), r.uniqueName + " still connected");
            }
            for (RawClient r : List.of(a, b)) {
                for (int i = 0; i < ticks; i++) {
                    Msg m = r.read();
                    assertTrue(m.isSignal("Tick"), m.toString());
                    org.kdbusbridge.bridge.protocol.BodyReader br = m.body();
                    assertEquals(i, br.readUint32(), "in order on " + r.uniqueName);
                    assertArrayEquals(bytes, br.readByteArray(), "byte for byte on " + r.uniqueName);
                }
                assertEquals(0, r.sync(), "nothing more for " + r.uniqueName);
            }
        }
        // The bus sees the four closes when it next reads those sockets: wait for that, with a deadline.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        long held;
        while ((held = onLoop(() -> server.inputHeap().total())) != 0 && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertEquals(0L, held, "closed sessions hold nothing");
    }
}
