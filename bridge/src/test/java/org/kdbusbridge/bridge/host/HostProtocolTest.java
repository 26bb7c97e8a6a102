package org.kdbusbridge.bridge.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

class HostProtocolTest {
    private static HostProtocol.Request sample() {
        return new HostProtocol.Request("mnt:[1]", "net:[2]", List.of("--config-file=/x", "--print-address", "é"),
                "/work dir", List.of("A=1", "B==2", "NOEQ", "A=shadowed", "EMPTY="));
    }

    @Test
    void aRequestRoundTrips() throws Exception {
        byte[] wire = HostProtocol.encode(sample());
        ByteBuffer b = ByteBuffer.wrap(wire);
        int n = HostProtocol.bodyLength(b);
        assertEquals(wire.length - 8, n);
        assertEquals(sample(), HostProtocol.decode(ByteBuffer.wrap(wire, 8, n).slice()));
    }

    @Test
    void theEnvironmentMapKeepsTheFirstOfANameAndDropsEntriesWithoutEquals() {
        assertEquals(Map.of("A", "1", "B", "=2", "EMPTY", ""), sample().environment());
    }

    @Test
    void aWrongMagicOrAnOversizedBodyIsRefused() {
        ByteBuffer bad = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(0x12345678).putInt(4).flip();
        assertThrows(HostProtocol.MalformedException.class, () -> HostProtocol.bodyLength(bad));
        ByteBuffer big = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(HostProtocol.MAGIC)
                .putInt(HostProtocol.MAX_BODY + 1).flip();
        assertThrows(HostProtocol.MalformedException.class, () -> HostProtocol.bodyLength(big));
    }

    @Test
    void aCutOrPaddedBodyIsRefused() {
        byte[] wire = HostProtocol.encode(sample());
        ByteBuffer cut = ByteBuffer.wrap(wire, 8, wire.length - 9).slice();
        assertThrows(HostProtocol.MalformedException.class, () -> HostProtocol.decode(cut));
        byte[] padded = java.util.Arrays.copyOf(wire, wire.length + 1);
        ByteBuffer extra = ByteBuffer.wrap(padded, 8, padded.length - 8).slice();
        assertThrows(HostProtocol.MalformedException.class, () -> HostProtocol.decode(extra));
    }

    @Test
    void aStringLongerThanTheBodyIsRefused() {
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(1000).putInt(0).flip();
        assertThrows(HostProtocol.MalformedException.class, () -> HostProtocol.decode(b));
    }

    @Test
    void repliesAreTypeLengthPayload() {
        ByteBuffer r = ByteBuffer.wrap(HostProtocol.reply(HostProtocol.STOPPED, 7)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals('S', r.get());
        assertEquals(4, r.getInt());
        assertEquals(7, r.getInt());
        ByteBuffer a = ByteBuffer.wrap(HostProtocol.reply(HostProtocol.ADDRESS, "unix:path=/x")).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals('A', a.get());
        assertEquals(12, a.getInt());
    }
}
