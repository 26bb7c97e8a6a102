package org.kdbusbridge.compat.endpoint;

import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Disabled;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.kdbusbridge.compat.harness.BusKind;

/**
 * Issue 18's differential filter matrix, our half: the same cases and expected outcomes as
 * {@link EndpointMatrixTest}, through bin/kdbus-bridge-proxy (same command line, same --fd protocol)
 * in front of our bus. A missing front fails here (SandboxFront says so); it never skips.
 */
@Disabled("kdbus-bridge-proxy not built yet: issue 18")
class EndpointMatrixOursTest {
    private static MatrixWorld world;

    @BeforeAll
    static void start() throws Exception {
        Assumptions.assumeTrue(BusKind.selected().contains(BusKind.KDBUS_BRIDGE), "kdbus-bridge not selected (-Dcompat.buses)");
        world = MatrixWorld.start(BusKind.KDBUS_BRIDGE, SandboxFront.ourFront());
    }

    @AfterAll
    static void stop() {
        if (world != null) {
            world.close();
        }
    }

    @TestFactory
    Stream<DynamicTest> matrix() {
        return MatrixRunner.tests(() -> world);
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
