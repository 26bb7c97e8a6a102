package org.kdbusbridge.compat.endpoint;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;

import org.kdbusbridge.compat.harness.BusKind;

/**
 * The matrix once more, with the real xdg-dbus-proxy in front of our bus: how `flatpak run` uses
 * kdbus-bridge today (and what bin/kdbus-bridge-proxy falls back to for a bus that is not ours).
 * Every case must give the same outcome as on dbus-daemon, so our bus is a drop-in under the proxy
 * too (some outcomes come from the bus itself: Spawn.ChildExited, UnknownMethod, ListQueuedOwners...).
 */
class EndpointMatrixProxyOnOursTest extends MatrixTestBase {
    @Override
    BusKind bus() {
        return BusKind.KDBUS_BRIDGE;
    }

    @Override
    Path front() {
        return SandboxFront.xdgDbusProxy();
    }

    /** The same real proxy as the reference, so only the bus behind it differs. */
    @Test
    void theFrontIsTheRealXdgDbusProxyOnOurBus() {
        assertTrue(Files.isExecutable(front()) && front().toString().equals("/usr/bin/xdg-dbus-proxy")
                && bus() == BusKind.KDBUS_BRIDGE, front() + " on " + bus());
    }
}
