package org.kdbusbridge.bridge.activation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServiceDirWatcherTest {

    private static final long DEADLINE_S = 10;

    @Test
    void noticesNewAndRemovedFiles(@TempDir Path tmp) throws Exception {
        Path dir = Files.createDirectory(tmp.resolve("services"));
        ServiceRegistry registry = ServiceRegistry.of(List.of(dir));
        registry.rescan();
        // the callback does what the lead's will: rescan off the loop, publish the names
        LinkedBlockingQueue<Set<String>> changes = new LinkedBlockingQueue<>();
        try (ServiceDirWatcher w = new ServiceDirWatcher(List.of(dir, tmp.resolve("not-yet")), () -> {
            if (registry.rescan()) {
                changes.add(registry.snapshot().keySet());
            }
        })) {
            assertEquals(List.of(dir), w.start(), "only existing directories are watched");

            Path f = ServiceRegistryTest.write(dir, "org.example.New.service", "org.example.New", "/bin/true");
            assertEquals(Set.of("org.example.New"), changes.poll(DEADLINE_S, TimeUnit.SECONDS));

            Files.delete(f);
            assertEquals(Set.of(), changes.poll(DEADLINE_S, TimeUnit.SECONDS));
        }
    }

    @Test
    void burstsAreCoalesced(@TempDir Path tmp) throws Exception {
        // each callback records how many files it saw; a callback per event would see fewer than 20
        LinkedBlockingQueue<Long> seen = new LinkedBlockingQueue<>();
        Runnable count = () -> {
            try (var s = Files.list(tmp)) {
                seen.add(s.count());
            } catch (java.io.IOException e) {
                seen.add(-1L);
            }
        };
        try (ServiceDirWatcher w = new ServiceDirWatcher(List.of(tmp), count, java.time.Duration.ofSeconds(1))) {
            w.start();
            for (int i = 0; i < 20; i++) {
                Files.writeString(tmp.resolve("f" + i + ".service"), "x");
            }
            assertEquals(20L, seen.poll(DEADLINE_S, TimeUnit.SECONDS), "one callback after the whole burst");
            Files.writeString(tmp.resolve("marker.service"), "x");
            // callbacks are serial: a second callback for the burst would arrive before this one
            assertEquals(21L, seen.poll(DEADLINE_S, TimeUnit.SECONDS), "next callback is the marker's");
        }
    }

    @Test
    void closeStopsTheThread(@TempDir Path tmp) throws Exception {
        ServiceDirWatcher w = new ServiceDirWatcher(List.of(tmp), () -> { });
        w.start();
        w.close();
        w.close();
        assertTrue(w.awaitStopped(TimeUnit.SECONDS.toMillis(DEADLINE_S)));
    }
}
