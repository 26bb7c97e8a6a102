// Invariants under test: an idle or still-authenticating session holds no 64 KiB buffer; a
// partial frame survives between read bursts (copied out of the loop's shared input buffer);
// SASL with BEGIN and Hello in one write works; output buffers are lent only while output is
// pending, and when none can be lent the bus still serves everyone (from the scratch, without
// blocking) and lends again once buffers come back. State is read on the loop thread; waits are
// conditions with deadlines.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.bridge.transport.TransportSettings;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SessionBuffersTest {
    private static final String PEER = "org.freedesktop.DBus.Peer";

    @TempDir
    Path dir;

    private BusServer server;
    private final List<RawClient> clients = new ArrayList<>();

    private void start() throws Exception {
        start(TransportSettings.fromSystemProperties());
    }

    private void start(TransportSettings transport) throws Exception {
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")), transport);
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

    private RawClient connect() throws Exception {
        RawClient c = RawClient.connect(dir.resolve("bus"));
        clients.add(c);
        return c;
    }

    private RawClient open() throws Exception {
        RawClient c = connect();
        c.authenticate();
        c.hello();
        return c;
    }

    private <T> T onLoop(Supplier<T> s) throws Exception {
        return OnLoop.get(server, s);
    }

    private void awaitOnLoop(String what, BooleanSupplier condition) throws Exception {
        OnLoop.await(server, what, 10, condition);
    }

    private static void ping(RawClient c) throws Exception {
        c.expectReturn(c.call(0, RawClient.BUS, RawClient.BUS_PATH, PEER, "Ping", null, null));
    }

    @Test
    void idleAndAuthenticatingSessionsHoldNoIoBuffer() throws Exception {
        start();
        List<RawClient> idle = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            RawClient c = open();
            ping(c);
            idle.add(c);
        }
        RawClient half = connect(); // mid-SASL: AUTH answered, no BEGIN yet
        half.write(new byte[] {0});
        half.writeAscii("AUTH EXTERNAL " + RawClient.hexUid(RawClient.myUid()) + "\r\n");
        assertTrue(half.readLine().startsWith("OK "));
        assertEquals(0, (int) onLoop(() -> server.buffers().ioLent()), "no output buffer lent while nothing is pending");
        long held = onLoop(server::sessionBufferBytes);
        assertTrue(held <= 21 * 1024L, "21 idle sessions hold " + held + " bytes of buffers");
        assertEquals(0L, (long) onLoop(server::carriedInputBytes));
        for (RawClient c : idle) {
            ping(c); // still served
        }
    }

    @Test
    void saslBeginAndHelloInOneWrite() throws Exception {
        start();
        RawClient c = connect();
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        all.write(0);
        all.write(("AUTH EXTERNAL " + RawClient.hexUid(RawClient.myUid()) + "\r\nBEGIN\r\n").getBytes());
        long hello = c.nextSerial();
        all.write(MessageBuilder.methodCall(hello, 0, RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "Hello",
                null, null, null));
        long ping = c.nextSerial();
        all.write(MessageBuilder.methodCall(ping, 0, RawClient.BUS, RawClient.BUS_PATH, PEER, "Ping", null, null, null));
        c.write(all.toByteArray());
        assertTrue(c.readLine().startsWith("OK "));
        Msg reply = c.expectReturn(hello);
        assertTrue(reply.string0().startsWith(":1."), reply.toString());
        assertTrue(c.read().isSignal("NameAcquired"));
        c.expectReturn(ping);
    }

    @Test
    void aPartialFrameIsKeptAcrossBursts() throws Exception {
        start();
        RawClient a = open();
        RawClient b = open();
        byte[] body = new BodyWriter().writeString("payload").writeByteArray(pattern(3000)).toByteArray();
        for (int cut : new int[] {5, 16, 100, 2000}) {
            long serial = a.nextSerial();
            byte[] frame = MessageBuilder.methodCall(serial, WireFormat.NO_REPLY_EXPECTED, b.uniqueName, "/o",
                    "com.example.I", "M", null, "say", body);
            a.write(Arrays.copyOf(frame, cut));
            awaitOnLoop(cut + " bytes kept", () -> server.carriedInputBytes() == cut);
            assertEquals(0, (int) onLoop(() -> server.buffers().ioLent()));
            a.write(Arrays.copyOfRange(frame, cut, frame.length));
            Msg m = b.read();
            assertEquals("M", m.member(), m.toString());
            assertEquals(serial, m.serial());
            assertEquals("payload", m.string0());
            awaitOnLoop("nothing kept after the frame", () -> server.carriedInputBytes() == 0);
        }
    }

    @Test
    void outputBuffersAreLentWhilePendingAndExhaustionNeitherBlocksNorSticks() throws Exception {
        start(TransportSettings.fromSystemProperties().withIoBuffers(1));
        RawClient sender = open();
        RawClient slow1 = open();
        RawClient slow2 = open();
        RawClient other = open();
        int count = 300;
        byte[][] bodies = new byte[count][];
        for (int i = 0; i < count; i++) {
            bodies[i] = new BodyWriter().writeUint32(i).writeByteArray(pattern(4000 + i)).toByteArray();
        }
        // slow1 reads nothing: its socket fills and the one lendable buffer stays with it.
        for (int i = 0; i < count; i++) {
            sender.call(WireFormat.NO_REPLY_EXPECTED, slow1.uniqueName, "/o", "com.example.I", "M", "uay", bodies[i]);
        }
        awaitOnLoop("slow1 holds the one buffer", () -> server.buffers().ioLent() == 1);
        // slow2 fills up too: no buffer to lend, so it is written from the scratch; the unsent
        // rest stays in its pool.
        for (int i = 0; i < count; i++) {
            sender.call(WireFormat.NO_REPLY_EXPECTED, slow2.uniqueName, "/o", "com.example.I", "M", "uay", bodies[i]);
        }
        awaitOnLoop("a lend was refused", () -> server.buffers().ioRefusedCount() > 0);
        // slow2's unsent bytes wait in its pool: nothing beside slow1's lent buffer is held.
        awaitOnLoop("slow2 keeps its rest in its pool",
                () -> server.bus().resolve(slow2.uniqueName).pool().bytes() > 0);
        assertTrue(onLoop(server::sessionBufferBytes) < DirectBuffers.IO_BUFFER + 16 * 1024,
                "no copy of slow2's rest on the heap");
        assertEquals(1, (int) onLoop(() -> server.buffers().ioLent()));
        long t0 = System.nanoTime();
        for (int i = 0; i < 50; i++) {
            ping(other); // served without a lent buffer
        }
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(ms < 5_000, "50 pings took " + ms + " ms with the pool empty");
        for (RawClient slow : List.of(slow1, slow2)) {
            for (int i = 0; i < count; i++) {
                org.kdbusbridge.bridge.protocol.BodyReader r = slow.read().body();
                assertEquals(i, r.readUint32(), "order on " + slow.uniqueName);
                assertArrayEquals(pattern(4000 + i), r.readByteArray(), "bytes on " + slow.uniqueName);
            }
        }
        awaitOnLoop("every buffer back", () -> server.buffers().ioLent() == 0);
        long before = onLoop(() -> server.buffers().ioRefusedCount());
        ping(slow1);
        ping(slow2);
        assertEquals(before, (long) onLoop(() -> server.buffers().ioRefusedCount()), "lending again");
        assertEquals(0, (int) onLoop(() -> server.buffers().ioLent()));
    }

    private static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + n);
        }
        return b;
    }
}
