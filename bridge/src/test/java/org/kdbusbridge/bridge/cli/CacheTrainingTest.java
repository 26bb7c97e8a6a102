package org.kdbusbridge.bridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The training run drives a whole bus: it must succeed, or the launcher never gets a cache. */
class CacheTrainingTest {
    @Test
    void trainingRunsItsWorkloadAgainstTheSessionConfig() {
        assertEquals(0, Main.run(new String[] {"train-cache"}));
    }

    @Test
    void aConfigThatCannotBeLoadedFailsTheTraining(@TempDir Path dir) throws Exception {
        Path bad = Files.writeString(dir.resolve("bad.conf"), "<busconfig><nonsense/>");
        assertEquals(1, Main.run(new String[] {"train-cache", bad.toString()}));
    }
}
