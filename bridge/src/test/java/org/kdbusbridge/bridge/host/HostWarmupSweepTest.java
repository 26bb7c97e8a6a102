package org.kdbusbridge.bridge.host;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A killed host's warm-up directory goes when the next host warms up; a live one's stays. */
class HostWarmupSweepTest {
    @Test
    void onlyWarmupDirectoriesUntouchedForAMinuteGo(@TempDir Path tmp) throws IOException {
        Path stale = Files.createDirectory(tmp.resolve(HostWarmup.PREFIX + "123"));
        Files.writeString(stale.resolve("bus.conf"), "<busconfig/>");
        Files.setLastModifiedTime(stale, FileTime.fromMillis(System.currentTimeMillis() - 3_600_000));
        Path live = Files.createDirectory(tmp.resolve(HostWarmup.PREFIX + "456"));
        Path other = Files.createDirectory(tmp.resolve("something-else"));
        Files.setLastModifiedTime(other, FileTime.fromMillis(System.currentTimeMillis() - 3_600_000));
        HostWarmup.sweepStale(tmp);
        assertFalse(Files.exists(stale));
        assertTrue(Files.isDirectory(live));
        assertTrue(Files.isDirectory(other));
    }
}
