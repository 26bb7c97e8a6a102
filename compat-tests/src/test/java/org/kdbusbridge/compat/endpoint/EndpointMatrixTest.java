package org.kdbusbridge.compat.endpoint;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;

import org.kdbusbridge.compat.harness.BusKind;

/**
 * Issue 18's differential filter matrix, reference half: the real xdg-dbus-proxy in front of
 * /usr/bin/dbus-daemon must give every case's expected outcome (MatrixCases lists them). Our half,
 * the same cases through bin/kdbus-bridge-proxy on our bus, is {@link EndpointMatrixOursTest}.
 *
 * <p>One dbus-daemon and one set of outside services serve all cases; one front per rule set; a
 * fresh sandboxed client per case, gone from the bus before the next case starts.
 * {@code -Dendpoint.matrix.repeat=N} runs the matrix N times over.
 */
class EndpointMatrixTest extends MatrixTestBase {
    @Override
    BusKind bus() {
        return BusKind.DBUS_DAEMON;
    }

    @Override
    Path front() {
        return SandboxFront.xdgDbusProxy();
    }

    /** The reference front is Debian's xdg-dbus-proxy binary, not a script of ours. */
    @Test
    void theFrontIsTheRealXdgDbusProxy() {
        assertTrue(Files.isExecutable(front()) && front().toString().equals("/usr/bin/xdg-dbus-proxy"), front() + "");
    }
}
