package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/** Our sealed-memfd extension with dbus-python clients: unsealed refused, sealed and non-memfd delivered. */
class SealedMemfdTest {
    @Test
    void receiverThatAskedGetsOnlySealedMemfds(@TempDir Path dir) throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(BusKind.selected().contains(BusKind.KDBUS_BRIDGE));
        Path py = dir.resolve("sealed_memfd.py");
        try (InputStream in = SealedMemfdTest.class.getResourceAsStream("sealed_memfd.py")) {
            Files.copy(in, py);
        }
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start();
             Background service = Background.start(List.of("/usr/bin/python3", py.toString(), "service", bus.address()), null)) {
            assertNotNull(service.stdout().awaitLine("ready"::equals, Buses.T), service.describe());
            Cmd.Result r = Cmd.run(List.of("/usr/bin/python3", py.toString(), "client", bus.address()), Map.of(), Buses.T);
            assertTrue(r.ok(), r.describe() + "\n" + service.describe());
            String out = r.stdout();
            assertTrue(out.contains("unsealed refused org.kdbusbridge.Error.UnsealedPayload"), r.describe());
            assertTrue(out.contains("sealed sealed payload"), r.describe());
            assertTrue(out.contains("pipe through a pipe"), r.describe());
            assertTrue(out.contains("signals 1"), "only the sealed broadcast reached the service\n" + r.describe());
        }
    }
}
