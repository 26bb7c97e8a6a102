package org.kdbusbridge.bridge.client.dbusjava;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.freedesktop.dbus.messages.DBusSignal;
import org.freedesktop.dbus.messages.Message;
import org.freedesktop.dbus.messages.MessageFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.metadata.MessageMetadata;

/**
 * The dbus-java metadata reader over a real unix socket: frames with field 107 anywhere in the
 * header, both byte orders, a 1 MiB body, written in small pieces, come out as dbus-java
 * messages equal to those without the field, each with its own metadata; a frame without the
 * field has none; a partial frame on a non-blocking channel keeps its state.
 */
class MetadataMessageReaderTest {
    @TempDir
    Path dir;

    private SocketChannel[] pair() throws Exception {
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(dir.resolve("s" + System.nanoTime())));
        SocketChannel client = SocketChannel.open(server.getLocalAddress());
        SocketChannel accepted = server.accept();
        server.close();
        return new SocketChannel[] {client, accepted};
    }

    /**
     * {@code base} with field 107 (seq = {@code seq}; the text form for odd seqs) inserted as
     * element {@code at} (clamped to the last place).
     */
    private static byte[] withMetadata(byte[] base, int at, long seq) throws Exception {
        List<byte[]> fields = new ArrayList<>(FieldStripTest.elements(base));
        fields.add(Math.min(at, fields.size()), FieldStripTest.metadataElementWithSeq(base, seq));
        return FieldStripTest.withFields(base, fields);
    }

    @Test
    void framesWithTheFieldComeOutWholeWithTheirMetadata() throws Exception {
        List<byte[]> bases = new ArrayList<>(FieldStripTest.baseMessages());
        byte[] big = new byte[1 << 20];
        for (int i = 0; i < big.length; i++) {
            big[i] = (byte) (i * 31);
        }
        bases.add(FieldStripTest.wire(new MessageFactory((byte) 'B').createSignal(":1.5", "/big", "org.example.Big",
                "Blob", "ay", (Object) big)));
        bases.add(FieldStripTest.wire(new MessageFactory((byte) 'l').createSignal(":1.6", "/big", "org.example.Big",
                "Blob", "ay", (Object) big)));
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        List<Long> seqs = new ArrayList<>();
        for (int i = 0; i < bases.size(); i++) {
            if (i % 5 == 4) {
                stream.write(bases.get(i)); // every fifth without the field
                seqs.add(null);
            } else {
                long seq = 1000 + i;
                stream.write(withMetadata(bases.get(i), i, seq));
                seqs.add(seq);
            }
        }
        byte[] all = stream.toByteArray();
        SocketChannel[] p = pair();
        try (SocketChannel w = p[0]; SocketChannel r = p[1]) {
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    // Pieces of 1000 bytes: frames are split at every place across reads.
                    for (int off = 0; off < all.length; off += 1000) {
                        w.write(ByteBuffer.wrap(all, off, Math.min(1000, all.length - off)));
                    }
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            MetadataMessageReader reader = new MetadataMessageReader(r);
            for (int i = 0; i < bases.size(); i++) {
                Message m = reader.readMessage();
                assertNotNull(m, "blocking reads give whole messages");
                byte[] base = bases.get(i);
                int bo = FieldStripTest.bodyOffset(base);
                Message plain = MessageFactory.createMessage(base[1], Arrays.copyOf(base, 12),
                        FieldStripTest.dbusJavaHeader(base), Arrays.copyOfRange(base, bo, base.length), null);
                assertEquals(plain.getSource(), m.getSource(), "message " + i);
                assertEquals(plain.getName(), m.getName());
                assertEquals(plain.getSerial(), m.getSerial());
                assertArrayEquals(plain.getParameters(), m.getParameters(), "body of message " + i);
                if (seqs.get(i) == null) {
                    assertTrue(DbusJavaMetadata.of(m).isEmpty(), "no field, no metadata: " + i);
                } else {
                    MessageMetadata md = DbusJavaMetadata.of(m).orElseThrow();
                    assertEquals(seqs.get(i).longValue(), md.seq().getAsLong(), "message " + i + "'s own metadata");
                    assertEquals(4242, md.pid().getAsLong());
                }
            }
            writer.get(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void aPartialFrameOnANonBlockingChannelWaitsForTheRest() throws Exception {
        byte[] frame = withMetadata(FieldStripTest.baseMessages().get(0), 1, 7);
        SocketChannel[] p = pair();
        try (SocketChannel w = p[0]; SocketChannel r = p[1]) {
            r.configureBlocking(false);
            MetadataMessageReader reader = new MetadataMessageReader(r);
            assertNull(reader.readMessage(), "nothing sent yet");
            for (int cut : new int[] {5, 20, 40}) {
                // Each piece is in the socket once write returns (a unix stream socket).
                w.write(ByteBuffer.wrap(frame, cut == 5 ? 0 : cut == 20 ? 5 : 20, cut == 5 ? 5 : cut == 20 ? 15 : 20));
                assertNull(reader.readMessage(), "partial at " + cut);
            }
            w.write(ByteBuffer.wrap(frame, 40, frame.length - 40));
            Message m = reader.readMessage();
            assertNotNull(m);
            assertEquals("Echo", m.getName());
            assertEquals(7, DbusJavaMetadata.of(m).orElseThrow().seq().getAsLong());
        }
    }
}
