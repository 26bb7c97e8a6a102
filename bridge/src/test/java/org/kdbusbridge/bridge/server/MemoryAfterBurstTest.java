// Invariants under test (issue 14, "memory goes back after a burst"): the spares a burst of large
// payloads leaves in the direct pool are trimmed even when the burst fell between two of the
// memory watch's looks (it looks every 500 ms, and a sub-second flood of 1 MiB messages that
// ends in disconnects leaves exactly MAX_SPARE_BYTES of spares, which is not more than the
// 8 MiB growth rule); and a departed connection is not kept reachable by the bus (the policy
// query kept the last check's sender and receiver, and with them their sessions). State is read
// on the loop thread; waits are conditions with deadlines.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.ref.WeakReference;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.core.connection.Connection;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MemoryAfterBurstTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private BusServer server;
    private final List<RawClient> clients = new ArrayList<>();

    private void start() throws Exception {
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")),
                TransportSettings.fromSystemProperties());
        server.start();
    }

    @AfterEach
    void stop() throws Exception {
        for (RawClient c : clients) {
            c.close();
        }
        if (server != null) {
            server.stop();
        }
    }

    private RawClient open() throws Exception {
        RawClient c = RawClient.open(dir.resolve("bus"));
        clients.add(c);
        return c;
    }

    private <T> T onLoop(Supplier<T> s) throws Exception {
        return OnLoop.get(server, s);
    }

    private void awaitOnLoop(String what, BooleanSupplier condition) throws Exception {
        OnLoop.await(server, what, 10, condition);
    }

    @Test
    void sparesOfABurstBetweenTwoLooksAreTrimmed() throws Exception {
        start();
        DirectBuffers pool = server.buffers();
        MemoryWatch watch = server.memoryWatch();
        // The first look sets the floor; the burst must come after it.
        awaitOnLoop("the memory watch's first look", () -> watch.looks() >= 1);
        long floor = onLoop(pool::heldBytes);
        long before = onLoop(watch::reclaims);
        // The burst, all within one loop step, so no look sees it: twelve 1 MiB payloads lent
        // and given back, as a flood to readers that then disconnect does.
        long spare = onLoop(() -> {
            List<ByteBuffer> lent = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                lent.add(pool.take(MIB));
            }
            lent.forEach(pool::give);
            return pool.spareBytes();
        });
        assertEquals(DirectBuffers.MAX_SPARE_BYTES, spare, "the burst leaves the most spares the pool keeps");
        assertTrue(onLoop(pool::highBytes) >= floor + 12L * MIB, "the high saw the burst");

        awaitOnLoop("the burst's spares trimmed", () -> pool.spareBytes() == 0 && pool.heldBytes() == floor);
        assertTrue(onLoop(watch::reclaims) > before, "one reclaim");
        assertEquals(floor, (long) onLoop(pool::highBytes), "a new high-water mark after the reclaim");
    }

    @Test
    void aDepartedConnectionIsNotKeptReachable() throws Exception {
        start();
        RawClient sender = open();
        RawClient receiver = open();
        // A unicast signal: its policy check names both as sender and receiver.
        sender.signal(receiver.uniqueName, "/a", "a.b", "S", null, null);
        RawClient.Msg got = receiver.read();
        assertEquals("S", got.member());
        WeakReference<Connection> sent = new WeakReference<>(onLoop(() -> server.bus().resolve(sender.uniqueName)));
        WeakReference<Connection> received = new WeakReference<>(onLoop(() -> server.bus().resolve(receiver.uniqueName)));
        assertNotNull(sent.get());
        assertNotNull(received.get());

        sender.close();
        receiver.close();
        clients.clear();
        awaitOnLoop("both gone", () -> server.bus().resolve(sender.uniqueName) == null
                && server.bus().resolve(receiver.uniqueName) == null);

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (sent.get() != null || received.get() != null) {
            if (System.nanoTime() > deadline) {
                fail("a departed connection is still reachable: sender " + (sent.get() != null) + ", receiver "
                        + (received.get() != null));
            }
            System.gc();
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
        }
    }
}
