package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bin/kdbus-bridge's class-data caches: one per JDK, jar and JVM options, shared by starts
 * that differ only in -D properties or -Xlog, and at most the newest eight kept.
 */
class LauncherCacheTest {
    private static final String SIGTERM = "15";
    private static final String SUFFIX = Runtime.version().feature() >= 25 ? ".aot" : ".jsa";

    private static List<String> argv(Path dir) {
        return List.of(DropInTest.BIN + "/kdbus-bridge", "--session", "--nofork", "--print-address",
                "--address=unix:path=" + dir.resolve("bus"));
    }

    /** Starts, checks it answers, stops; returns the bus's command line. */
    private static String startStop(Path dir, Map<String, String> env) throws Exception {
        try (WaitedBus bus = WaitedBus.start(argv(dir), env, dir)) {
            String cmdline = Files.readString(Path.of("/proc/" + bus.pid() + "/cmdline")).replace('\0', ' ');
            assertEquals("status 0", bus.kill(Integer.parseInt(SIGTERM)), bus.describe());
            return cmdline;
        }
    }

    private static long caches(Path cds) throws Exception {
        try (Stream<Path> s = Files.list(cds)) {
            return s.filter(p -> p.toString().endsWith(SUFFIX)).count();
        }
    }

    @Test
    void propertiesShareACacheAndOnlyTheNewestEightAreKept(@TempDir Path dir) throws Exception {
        Path cds = Files.createDirectory(dir.resolve("cds"));
        startStop(dir, Map.of("KDBUS_BRIDGE_CDS_DIR", cds.toString(), "KDBUS_BRIDGE_JAVA_OPTS", "-Dkdbus.test=1"));
        assertTrue(TrainedCache.await(cds, SUFFIX, java.time.Duration.ofSeconds(60)));
        String second = startStop(dir, Map.of("KDBUS_BRIDGE_CDS_DIR", cds.toString(), "KDBUS_BRIDGE_JAVA_OPTS",
                "-Dkdbus.test=2 -Xlog:gc:file=" + dir.resolve("gc.log")));
        assertTrue(second.contains(SUFFIX.equals(".aot") ? "-XX:AOTCache=" : "-XX:SharedArchiveFile="), second);
        assertEquals(1, caches(cds), "-D properties and -Xlog are not part of the key");

        for (int i = 0; i < 10; i++) { // caches of older option sets
            Path old = Files.writeString(cds.resolve("kdbus-bridge-0.0-" + i + SUFFIX), "old");
            Files.setLastModifiedTime(old, FileTime.fromMillis(1_000_000L * (i + 1)));
        }
        startStop(dir, Map.of("KDBUS_BRIDGE_CDS_DIR", cds.toString(), "KDBUS_BRIDGE_JAVA_OPTS", "-Xss700k"));
        assertTrue(TrainedCache.await(cds, SUFFIX, java.time.Duration.ofSeconds(60)));
        assertEquals(8, caches(cds), "seven kept and the new one");
        assertTrue(Files.exists(cds.resolve("kdbus-bridge-0.0-9" + SUFFIX)), "the newest old ones stay");
        assertTrue(!Files.exists(cds.resolve("kdbus-bridge-0.0-0" + SUFFIX)), "the oldest go");
    }

    @Test
    void theTrainingRunLeavesTheCallersLogFileAlone(@TempDir Path dir) throws Exception {
        Path cds = Files.createDirectory(dir.resolve("cds"));
        Path log = dir.resolve("gc.log");
        long pid;
        // No cache yet: this start trains one in the background while the bus runs.
        try (WaitedBus bus = WaitedBus.start(argv(dir), Map.of("KDBUS_BRIDGE_CDS_DIR", cds.toString(),
                "KDBUS_BRIDGE_JAVA_OPTS", "-Xlog:gc*:file=" + log + ":pid"), dir)) {
            pid = bus.pid();
            assertTrue(TrainedCache.await(cds, SUFFIX, java.time.Duration.ofSeconds(60)));
            assertEquals("status 0", bus.kill(Integer.parseInt(SIGTERM)), bus.describe());
        }
        List<String> lines = Files.readAllLines(log);
        assertTrue(lines.stream().anyMatch(l -> l.contains("Using Serial")), "the bus's own start is still there");
        for (String l : lines) {
            assertTrue(l.startsWith("[" + pid + "]"), "only the bus (pid " + pid + ") wrote it: " + l);
        }
    }
}
