package org.kdbusbridge.compat.endpoint;

import java.nio.file.Path;

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
}
