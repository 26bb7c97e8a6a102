package org.kdbusbridge.compat.endpoint;

import java.nio.file.Path;

import org.junit.jupiter.api.Disabled;
import org.kdbusbridge.compat.harness.BusKind;

/**
 * Issue 18's differential filter matrix, our half: the same cases and expected outcomes as
 * {@link EndpointMatrixTest}, through bin/kdbus-bridge-proxy (same command line, same --fd and
 * --args protocol) in front of our bus. A missing front fails every case (SandboxFront says so);
 * it never skips. Remove the one @Disabled line once the front exists.
 */
@Disabled("kdbus-bridge-proxy not built yet: issue 18")
class EndpointMatrixOursTest extends MatrixTestBase {
    @Override
    BusKind bus() {
        return BusKind.KDBUS_BRIDGE;
    }

    @Override
    Path front() {
        return SandboxFront.ourFront();
    }
}
