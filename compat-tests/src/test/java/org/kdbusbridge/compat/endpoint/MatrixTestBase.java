package org.kdbusbridge.compat.endpoint;

import java.nio.file.Path;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;
import org.kdbusbridge.compat.harness.BusKind;

/**
 * The matrix against one bus and one front: every case as a dynamic test, plus the front's --fd and
 * --args protocol. One world (bus, outside services, a front per rule set) serves the whole class.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class MatrixTestBase {
    private MatrixWorld world;

    abstract BusKind bus();

    abstract Path front();

    /** "ruleSet/caseId" to this bus's outcome where it differs from the proxy on purpose (none by default). */
    java.util.Map<String, String> deliberate() {
        return java.util.Map.of();
    }

    @BeforeAll
    void start() throws Exception {
        Assumptions.assumeTrue(BusKind.selected().contains(bus()), bus() + " not selected (-Dcompat.buses)");
        world = MatrixWorld.start(bus(), front());
    }

    @AfterAll
    void stop() {
        if (world != null) {
            world.close();
        }
    }

    @TestFactory
    Stream<DynamicTest> matrix() {
        return MatrixRunner.tests(() -> world, deliberate());
    }

    @Test
    void frontExitsWhenItsFdCloses() throws Exception {
        MatrixRunner.checkLifetime(world);
    }

    @Test
    void frontReadsItsCommandLineFromArgsFd() throws Exception {
        MatrixRunner.checkArgsFd(world);
    }
}
