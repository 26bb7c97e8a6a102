package org.kdbusbridge.bridge.embedded;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.UUID;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The extension registered as a field, starting its buses from a configured builder. */
@Timeout(120)
class KdbusBridgeExtensionOptionsTest {
    private static final String NAME = "kdbus-bridge-test-" + UUID.randomUUID();

    @RegisterExtension
    static final KdbusBridgeExtension BUS = new KdbusBridgeExtension(
            EmbeddedBus.builder().listen("unix:abstract=" + NAME).limit("max_names_per_connection", 8));

    @Test
    void usesTheBuildersListenAddress(EmbeddedBus bus, @BusAddress String address) throws Exception {
        assertTrue(address.startsWith("unix:abstract=" + NAME + ",guid=" + bus.guid()), address);
        assertTrue(bus.directory().isEmpty(), "no temporary directory for an explicit address");
        Cmd.Result r = Cmd.listNames(address);
        assertTrue(r.ok(), r.describe());
        assertEquals(0, r.exit());
    }
}
