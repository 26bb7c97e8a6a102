package org.kdbusbridge.compat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Stream;

/** Waits for bin/kdbus-bridge's background training run to leave its class-data cache. */
final class TrainedCache {
    private TrainedCache() {
    }

    /** True once {@code dir} holds a file ending in {@code suffix} and no ".training" lock. */
    static boolean await(Path dir, String suffix, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (Files.isDirectory(dir)) {
                try (Stream<Path> s = Files.list(dir)) {
                    boolean[] seen = new boolean[2];
                    s.forEach(f -> {
                        String n = f.getFileName().toString();
                        seen[0] |= n.endsWith(suffix);
                        seen[1] |= n.endsWith(".training");
                    });
                    if (seen[0] && !seen[1]) {
                        return true;
                    }
                }
            }
            Thread.sleep(20); // polling a condition with a deadline; the training is another process
        }
        return false;
    }
}
