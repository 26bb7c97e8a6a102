package org.kdbusbridge.compat.endpoint;

import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.kdbusbridge.compat.harness.BusKind;

/**
 * Issue 18's differential filter matrix, reference half: the real xdg-dbus-proxy in front of
 * /usr/bin/dbus-daemon must give every case's expected outcome (MatrixCases). Our half, the same
 * cases through bin/kdbus-bridge-proxy on our bus, is {@link EndpointMatrixOursTest}.
 *
 * <p>One dbus-daemon and one set of outside services serve all cases; one front per rule set; a
 * fresh sandboxed client per case, gone from the bus before the next case starts.
 */
class EndpointMatrixTest {
    private static MatrixWorld world;

    @BeforeAll
    static void start() throws Exception {
        Assumptions.assumeTrue(BusKind.selected().contains(BusKind.DBUS_DAEMON), "dbus-daemon not selected (-Dcompat.buses)");
        world = MatrixWorld.start(BusKind.DBUS_DAEMON, SandboxFront.xdgDbusProxy());
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
