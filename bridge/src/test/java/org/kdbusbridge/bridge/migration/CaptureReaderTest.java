// Invariants: builds capture files in memory in the three formats and asserts the messages read
// back are the bytes written, in order; truncated packets are counted, not returned.
package org.kdbusbridge.bridge.migration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.capture.Pcapng;
import org.kdbusbridge.bridge.protocol.MessageBuilder;

class CaptureReaderTest {
    static final byte[] M1 = MessageBuilder.signal(1, "/a", "a.b", "One", null, ":1.1", null, null);
    static final byte[] M2 = MessageBuilder.signal(2, "/a", "a.b", "Two", null, ":1.1", null, null);

    @Test
    void readsOurPcapng() throws IOException {
        byte[] head = Pcapng.fileHeader("test");
        ByteBuffer b = ByteBuffer.allocate(head.length + 200 + M1.length + M2.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(head);
        for (byte[] m : new byte[][] {M1, M2}) {
            Pcapng.packetHeader(b, 1234, m.length);
            b.put(m);
            Pcapng.packetTrailer(b, m.length);
        }
        byte[] file = new byte[b.position()];
        b.flip().get(file);
        CaptureReader.Capture c = CaptureReader.parse(file);
        assertEquals("pcapng", c.format());
        assertEquals(2, c.messages().size());
        assertArrayEquals(M1, c.messages().get(0));
        assertArrayEquals(M2, c.messages().get(1));
    }

    @Test
    void readsClassicPcapInBothByteOrdersAndSkipsTruncated() throws IOException {
        for (ByteOrder order : new ByteOrder[] {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN}) {
            ByteBuffer b = ByteBuffer.allocate(24 + 3 * 16 + 2 * M1.length + M2.length).order(order);
            b.putInt(0xa1b2c3d4).putShort((short) 2).putShort((short) 4).putInt(0).putInt(0).putInt(65535).putInt(231);
            b.putInt(1).putInt(0).putInt(M1.length).putInt(M1.length).put(M1);
            b.putInt(1).putInt(0).putInt(M1.length).putInt(M1.length + 5).put(M1); // truncated
            b.putInt(1).putInt(0).putInt(M2.length).putInt(M2.length).put(M2);
            CaptureReader.Capture c = CaptureReader.parse(b.array());
            assertEquals("pcap", c.format());
            assertEquals(2, c.messages().size(), order.toString());
            assertEquals(1, c.truncated());
            assertArrayEquals(M2, c.messages().get(1));
        }
    }

    @Test
    void refusesOtherFiles() {
        assertThrows(IOException.class, () -> CaptureReader.parse(new byte[40]));
        ByteBuffer b = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0xa1b2c3d4).putShort((short) 2).putShort((short) 4).putInt(0).putInt(0).putInt(65535).putInt(1);
        assertThrows(IOException.class, () -> CaptureReader.parse(b.array()));
    }
}
