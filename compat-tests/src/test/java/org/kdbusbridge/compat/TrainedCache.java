package org.kdbusbridge.compat;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchService;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/** Waits for bin/kdbus-bridge's background training run to leave its class-data cache. */
final class TrainedCache {
    private TrainedCache() {
    }

    /**
     * True once {@code dir} holds a file ending in {@code suffix} and no ".training" lock; woken
     * by the directory's own change events (inotify), never by a timer.
     */
    static boolean await(Path dir, String suffix, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        Files.createDirectories(dir);
        try (WatchService watch = FileSystems.getDefault().newWatchService()) {
            dir.register(watch, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_DELETE,
                    StandardWatchEventKinds.ENTRY_MODIFY);
            while (true) {
                if (trained(dir, suffix)) { // checked after registering: no change can slip between
                    return true;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                var key = watch.poll(left, TimeUnit.NANOSECONDS);
                if (key == null) {
                    return trained(dir, suffix);
                }
                key.pollEvents();
                key.reset();
            }
        }
    }

    private static boolean trained(Path dir, String suffix) throws IOException {
        boolean cache = false;
        boolean lock = false;
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String n = p.getFileName().toString();
                cache |= n.endsWith(suffix);
                lock |= n.endsWith(".training");
            }
        }
        return cache && !lock;
    }
}
