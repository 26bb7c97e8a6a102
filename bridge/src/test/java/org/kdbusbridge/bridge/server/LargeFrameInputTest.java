// Invariants under test: a frame above InputAssembler.LARGE_IN_PLACE_MAX (up to the 128 MiB
// maximum) costs the bus only about what has arrived: its input buffer doubles only once full (a
// claimed 30 MiB frame trickled in 100 kB holds a few hundred kB, not 40 MiB); once half of it
// has arrived it moves into its payload buffer, reserving the missing half of
// BusServer.LARGE_FRAMES_RESERVE, and the rest is read straight there; the message arrives whole
// and the reservation goes back. Real sockets against a real BusServer; waits poll the loop's
// counters with a deadline.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
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
import org.kdbusbridge.bridge.transport.TransportSettings;

class LargeFrameInputTest {
    private static final TransportSettings SETTINGS =
            TransportSettings.fromSystemProperties().withZeroCopyThreshold(TransportSettings.ZERO_COPY_SIZE);
    private static final int BODY = 30 << 20; // above LARGE_IN_PLACE_MAX, under the default max_message_size (32 MiB)

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

    private <T> T onLoop(Supplier<T> s) throws Exception {
        return OnLoop.get(server, s);
    }

    private void await(String what, Supplier<Boolean> condition) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!onLoop(condition)) {
            assertTrue(System.nanoTime() < deadline, what);
            Thread.onSpinWait();
        }
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void aFrameAboveTheInPlaceMaximumCostsWhatArrivedAndMovesInPlaceAtHalf() throws Exception {
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")), SETTINGS);
        server.start();
        Path socket = dir.resolve("bus");
        byte[] body = new byte[BODY];
        new Random(7).nextBytes(body);
        byte[] frame = MessageBuilder.signal(7, "/z", "org.kdbusbridge.Large", "Huge", null, null, "ay",
                new BodyWriter(BODY + 8).writeByteArray(body).toByteArray());
        assertTrue(frame.length > InputAssembler.LARGE_IN_PLACE_MAX);
        RawClient receiver = RawClient.open(socket);
        open.add(receiver);
        receiver.addMatch("type='signal',member='Huge'");
        RawClient sender = RawClient.open(socket);
        open.add(sender);

        // A trickle: the buffer doubles only once full, so it holds about what arrived.
        int sent = 0;
        for (int i = 0; i < 10; i++, sent += 10_000) {
            sender.write(Arrays.copyOfRange(frame, sent, sent + 10_000));
            int arrived = sent + 10_000;
            await("the bus read " + arrived + " bytes", () -> server.carriedInputBytes() == arrived);
        }
        long held = onLoop(server::sessionBufferBytes);
        assertTrue(held <= 256 * 1024, held + " buffer bytes held for 100 kB of a claimed " + frame.length + "-byte frame");
        assertEquals(0, (long) onLoop(server::largeFramesReserved), "not in place yet");

        // Past half of it: it moves into its payload buffer and reserves what is still missing.
        int half = frame.length / 2 + 1;
        sender.write(Arrays.copyOfRange(frame, sent, half));
        await("moved in place", () -> server.largeFramesReserved() > 0);
        long reserved = onLoop(server::largeFramesReserved);
        assertTrue(reserved <= frame.length / 2, reserved + " reserved of a " + frame.length + "-byte frame");

        sender.write(Arrays.copyOfRange(frame, half, frame.length));
        Msg m = receiver.read();
        assertTrue(m.isSignal("Huge"), m.toString());
        assertEquals(sender.uniqueName, m.sender());
        assertArrayEquals(body, Arrays.copyOfRange(m.frame(), m.bodyOffset() + 4, m.bodyOffset() + 4 + BODY));
        await("the reservation went back", () -> server.largeFramesReserved() == 0);
    }
}
