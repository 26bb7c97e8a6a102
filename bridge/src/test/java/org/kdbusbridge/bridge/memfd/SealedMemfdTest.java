package org.kdbusbridge.bridge.memfd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import org.junit.jupiter.api.Test;

class SealedMemfdTest {
    @Test
    void createdSealedIsImmutableAndMapsReadOnly() throws Exception {
        byte[] data = "a payload that nobody can change".getBytes(StandardCharsets.UTF_8);
        int fd = SealedMemfd.create("test", data, true);
        try {
            assertTrue(SealedMemfd.isSealed(fd));
            MappedByteBuffer map = SealedMemfd.mapReadOnly(fd);
            byte[] back = new byte[map.remaining()];
            map.get(back);
            assertArrayEquals(data, back);
            assertThrows(IOException.class, () -> {
                try (FileChannel ch = FileChannel.open(Path.of("/proc/self/fd/" + fd), StandardOpenOption.WRITE)) {
                    ch.write(ByteBuffer.wrap(new byte[] {1}));
                }
            }, "F_SEAL_WRITE forbids writing");
        } finally {
            SealedMemfd.close(fd);
        }
    }

    @Test
    void unsealedIsReportedAsSuch() throws Exception {
        int fd = SealedMemfd.create("test", new byte[] {1, 2, 3}, false);
        try {
            assertFalse(SealedMemfd.isSealed(fd));
        } finally {
            SealedMemfd.close(fd);
        }
    }
}
