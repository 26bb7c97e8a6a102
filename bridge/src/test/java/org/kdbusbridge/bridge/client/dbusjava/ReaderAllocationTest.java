package org.kdbusbridge.bridge.client.dbusjava;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.lang.management.ManagementFactory;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import org.freedesktop.dbus.messages.Message;
import org.freedesktop.dbus.spi.message.IMessageReader;
import org.freedesktop.dbus.spi.message.InputStreamMessageReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.WireFormat;

/**
 * What the metadata reader allocates per message on the reading thread, against dbus-java's
 * own reader for the same frames (message creation included, the part both share): without the
 * field it is dbus-java's figure (the fields buffer is reused, the rest is what dbus-java needs
 * anyway); with it, one copy of the field and one map entry more. Printed for
 * docs/extensions.md; the bounds are generous, the figures are in the test's output.
 */
class ReaderAllocationTest {
    @TempDir
    Path dir;

    private static final int WARM = 20_000;
    private static final int MEASURED = 20_000;

    @Test
    void perMessageAllocationIsDbusJavasOwnPlusTheField() throws Exception {
        byte[] plain = MessageBuilder.encode(WireFormat.SIGNAL, 0, 3, "/org/example/Obj", "org.example.Iface", "Tick",
                null, MessageBuilder.NO_REPLY_SERIAL, null, ":1.7", "s", new byte[] {5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o', 0});
        List<byte[]> fields = new ArrayList<>(FieldStripTest.elements(plain));
        fields.add(FieldStripTest.metadataElementWithSeq(plain, 2)); // dictionary form
        byte[] fielded = FieldStripTest.withFields(plain, fields);

        long dbusJava = perMessage(plain, InputStreamMessageReader::new);
        long oursPlain = perMessage(plain, MetadataMessageReader::new);
        long oursFielded = perMessage(fielded, MetadataMessageReader::new);
        System.out.printf("bytes allocated per message on the reading thread: dbus-java's reader %d, "
                + "metadata reader %d without the field, %d with it (field %d bytes)%n",
                dbusJava, oursPlain, oursFielded, fielded.length - plain.length);
        assertTrue(oursPlain <= dbusJava + 64, "without the field: " + oursPlain + " vs " + dbusJava);
        assertTrue(oursFielded <= oursPlain + 2 * (fielded.length - plain.length) + 256,
                "with the field: " + oursFielded + " vs " + oursPlain);
    }

    private long perMessage(byte[] frame, Function<SocketChannel, IMessageReader> reader) throws Exception {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        for (int i = 0; i < WARM + MEASURED; i++) {
            o.write(frame);
        }
        byte[] all = o.toByteArray();
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(dir.resolve("a" + System.nanoTime())));
        try (SocketChannel w = SocketChannel.open(server.getLocalAddress()); SocketChannel r = server.accept()) {
            server.close();
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    w.write(ByteBuffer.wrap(all));
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            IMessageReader rd = reader.apply(r);
            com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
            for (int i = 0; i < WARM; i++) {
                assertNotNull(read(rd));
            }
            long before = mx.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < MEASURED; i++) {
                assertNotNull(read(rd));
            }
            long after = mx.getCurrentThreadAllocatedBytes();
            writer.get(60, TimeUnit.SECONDS);
            return (after - before) / MEASURED;
        }
    }

    /** dbus-java's reader answers null for a read that did not complete a frame: ask again. */
    private static Message read(IMessageReader rd) throws Exception {
        for (int tries = 0; tries < 100; tries++) {
            Message m = rd.readMessage();
            if (m != null) {
                return m;
            }
        }
        return null;
    }
}
