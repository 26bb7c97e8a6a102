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
 * The matrix once more, with the real xdg-dbus-proxy in front of our bus: how `flatpak run` uses
 * kdbus-bridge today (and what bin/kdbus-bridge-proxy falls back to for a bus that is not ours).
 * Every case must give the same outcome as on dbus-daemon, so our bus is a drop-in under the proxy
 * too (outcomes that the bus itself produces: Spawn.ChildExited, UnknownMethod, ListQueuedOwners...).
 */
class EndpointMatrixProxyOnOursTest {
    private static MatrixWorld world;

    @BeforeAll
    static void start() throws Exception {
        Assumptions.assumeTrue(BusKind.selected().contains(BusKind.KDBUS_BRIDGE), "kdbus-bridge not selected (-Dcompat.buses)");
        world = MatrixWorld.start(BusKind.KDBUS_BRIDGE, SandboxFront.xdgDbusProxy());
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
