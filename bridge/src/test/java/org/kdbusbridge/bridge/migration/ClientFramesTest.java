// Invariants: no sockets; the relay's client->bus filter is fed byte streams in every chunking
// and must write them back unchanged but for the one frame SignalDrop picks.
package org.kdbusbridge.bridge.migration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;

class ClientFramesTest {
    private static final byte[] SASL = "\0AUTH EXTERNAL 31303030\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n"
            .getBytes(StandardCharsets.US_ASCII);

    private static byte[] tick(long serial, String text, String destination) {
        return MessageBuilder.signal(serial, "/d", "com.example.Diff", "Tick", destination, null, "s",
                new BodyWriter().writeString(text).toByteArray());
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) out.writeBytes(p);
        return out.toByteArray();
    }

    /** Feeds {@code in} in chunks of {@code chunk} bytes and returns what was forwarded. */
    private static byte[] relay(SignalDrop drop, byte[] in, int chunk) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ClientFrames f = new ClientFrames(drop, Channels.newChannel(out));
        for (int i = 0; i < in.length; i += chunk) {
            f.accept(ByteBuffer.wrap(in, i, Math.min(chunk, in.length - i)));
        }
        return out.toByteArray();
    }

    @Test
    void exactlyTheNthSignalWithTheMemberVanishesInEveryChunking() throws Exception {
        byte[] call = MessageBuilder.methodCall(2, 0, "org.freedesktop.DBus", MessageBuilder.BUS_PATH,
                MessageBuilder.BUS_INTERFACE, "GetId", null, null, null);
        byte[] t1 = tick(1, "tick1", null);
        byte[] t2 = tick(3, "tick2", null);
        byte[] t3 = tick(4, "tick3", null);
        byte[] in = concat(SASL, t1, call, t2, t3);
        byte[] expected = concat(SASL, t1, call, t3);
        for (int chunk : new int[] {1, 3, 7, 16, 64, in.length}) {
            SignalDrop drop = SignalDrop.dropSignal("Tick", 2);
            assertArrayEquals(expected, relay(drop, in, chunk), "chunk " + chunk);
            assertEquals(1, drop.dropped());
        }
    }

    @Test
    void aSignalToTheDriverIsNotCountedAndALargeFrameGrowsTheBuffer() throws Exception {
        byte[] toDriver = tick(1, "x", "org.freedesktop.DBus");
        byte[] big = tick(2, "y".repeat(200_000), null);
        byte[] dropped = tick(3, "z", null);
        SignalDrop drop = SignalDrop.dropSignal("Tick", 2);
        assertArrayEquals(concat(SASL, toDriver, big), relay(drop, concat(SASL, toDriver, big, dropped), 4096));
        assertEquals(1, drop.dropped());
    }

    @Test
    void anUnframeableStreamPassesUntouched() throws Exception {
        byte[] junk = concat(SASL, "not a D-Bus frame at all, version byte wrong".getBytes(StandardCharsets.US_ASCII),
                tick(1, "tick1", null));
        SignalDrop drop = SignalDrop.dropSignal("Tick", 1);
        assertArrayEquals(junk, relay(drop, junk, 5));
        assertEquals(0, drop.dropped());
    }

    @Test
    void theSpecSyntaxIsMemberOrMemberColonN() {
        assertEquals("drop signal Tick #1", SignalDrop.parse("Tick").toString());
        assertEquals("drop signal Tick #3", SignalDrop.parse("Tick:3").toString());
    }
}
