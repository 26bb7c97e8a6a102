package org.kdbusbridge.bridge.capture;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.ArgSource;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;

/** The capture sink writes busctl-capture pcapng, off the caller's thread, and drops when full. */
class CaptureSinkTest {
    private static final Clock FIXED = Clock.fixed(Instant.ofEpochSecond(1_700_000_000L, 123_456_000), ZoneOffset.UTC);

    private static Message signal(byte[] bytes) {
        return new Message(Message.SIGNAL, 0, 1, Message.NO_REPLY_SERIAL, null, "/p", "com.example.I", "S", null,
                new SealedPayload(bytes), ArgSource.NONE);
    }

    private static Connection client(Bus bus) {
        Connection c = bus.connect(new Credentials(1, 1, 1), x -> { });
        bus.hello(c);
        return c;
    }

    record Block(int type, ByteBuffer body) { }

    private static List<Block> blocks(byte[] file) {
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        List<Block> out = new ArrayList<>();
        while (b.remaining() >= 12) {
            int start = b.position();
            int type = b.getInt();
            int len = b.getInt();
            assertEquals(0, len % 4, "block length is a multiple of 4");
            assertEquals(len, b.getInt(start + len - 4), "trailing block length");
            out.add(new Block(type, ByteBuffer.wrap(file, start + 8, len - 12).slice().order(ByteOrder.LITTLE_ENDIAN)));
            b.position(start + len);
        }
        assertEquals(0, b.remaining(), "no trailing garbage");
        return out;
    }

    @Test
    void writesBusctlStylePcapngInOrder(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("c.pcapng");
        Bus bus = new Bus(new BusLimits());
        CaptureSink sink = CaptureSink.open(f, 100, 1 << 20, FIXED);
        sink.attach(bus, new Credentials(0, 0, 1));
        Connection a = client(bus);
        byte[] small = {1, 2, 3, 4, 5};
        byte[] big = new byte[300_000]; // larger than the writer's staging buffer
        for (int i = 0; i < big.length; i++) {
            big[i] = (byte) (i * 31);
        }
        bus.send(a, signal(small));
        bus.send(a, signal(big));
        sink.detach();
        sink.close(10_000);
        bus.send(a, signal(small)); // after detach: not captured

        List<Block> bl = blocks(Files.readAllBytes(f));
        assertEquals(4, bl.size(), "SHB, IDB and two packets");
        assertEquals(Pcapng.SHB, bl.get(0).type());
        assertEquals(Pcapng.BYTE_ORDER_MAGIC, bl.get(0).body().getInt(0));
        assertEquals(1, bl.get(0).body().getShort(4), "pcapng 1.0");
        assertEquals(Pcapng.IDB, bl.get(1).type());
        assertEquals(231, bl.get(1).body().getShort(0), "DLT_DBUS");
        long micros = 1_700_000_000_123_456L;
        byte[][] want = {small, big};
        for (int i = 0; i < 2; i++) {
            ByteBuffer p = bl.get(2 + i).body();
            assertEquals(Pcapng.EPB, bl.get(2 + i).type());
            assertEquals(0, p.getInt(0), "interface 0");
            assertEquals(micros, ((long) p.getInt(4) << 32) | (p.getInt(8) & 0xffffffffL));
            assertEquals(want[i].length, p.getInt(12), "captured length");
            assertEquals(want[i].length, p.getInt(16), "original length");
            byte[] data = new byte[want[i].length];
            p.position(20);
            p.get(data);
            assertArrayEquals(want[i], data);
        }
        assertEquals(2, sink.written());
        assertEquals(0, sink.dropped());
    }

    @Test
    void fullQueueDropsAndCountsInsteadOfBlocking(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("c.pcapng");
        Bus bus = new Bus(new BusLimits());
        CaptureSink sink = CaptureSink.open(f, 0, 1 << 20, FIXED); // room for nothing
        sink.attach(bus, new Credentials(0, 0, 1));
        Connection a = client(bus);
        for (int i = 0; i < 5; i++) {
            bus.send(a, signal(new byte[] {(byte) i}));
        }
        sink.detach();
        sink.close(10_000);
        assertEquals(5, sink.dropped());
        assertEquals(0, sink.written());
        List<Block> bl = blocks(Files.readAllBytes(f));
        assertEquals(2, bl.size(), "header blocks only");
        assertFalse(Arrays.stream(bl.toArray(Block[]::new)).anyMatch(b -> b.type() == Pcapng.EPB));
    }
}
