package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * {@code bin/kdbus-bridge endpoint add --max-connections=N} (issue 18) on our bus: the option
 * reaches AddEndpoint as its {@code max-connections} metadata ({@code u}), so the endpoint takes N
 * connections and closes the next one at accept with the bus's log line naming the key; a value
 * the bus would refuse is refused by the command, with status 1, before anything is bound.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class EndpointCommandTest {
    private static final String BRIDGE = ProxyFrontTest.BRIDGE;
    private static final Map<String, String> NO_CDS = Map.of("KDBUS_BRIDGE_CDS", "0");
    private static final Duration T = Duration.ofSeconds(60);

    @Test
    void maxConnectionsCapsTheEndpoint(@TempDir Path dir) throws Exception {
        Path socket = dir.resolve("capped");
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start();
             Background add = Background.start(List.of(BRIDGE, "endpoint", "add", "--address=" + bus.address(),
                     "--app-id=org.example.Capped", "--max-connections=2", socket.toString(), "--filter"), NO_CDS)) {
            String line = add.stdout().awaitLine(l -> l.contains(" unix:path="), T);
            assertNotNull(line, add.describe());
            String id = line.substring(0, line.indexOf(' '));
            String address = line.substring(line.indexOf(' ') + 1);
            assertTrue(address.startsWith("unix:path=" + socket), line);
            try (RawClient a = RawClient.connectHello(address, Buses.T);
                 RawClient b = RawClient.connectHello(address, Buses.T);
                 RawClient third = RawClient.open(address)) {
                // The third is closed at accept, before it could authenticate.
                assertTrue(third.awaitEof(Buses.T), "the connection over max-connections was closed");
                // Logged before the close, and stderr is the file itself: there once EOF was seen.
                String log = Files.readString(bus.stderrLog());
                assertTrue(log.contains("Closing connection to endpoint " + id + " (app id \"org.example.Capped\")"
                        + " because it would exceed resource limit (max-connections=2)"), log);
                // The two within the cap still work.
                a.sync(Buses.T);
                b.sync(Buses.T);
            }
            Cmd.Result list = Cmd.run(List.of(BRIDGE, "endpoint", "list", "--address=" + bus.address()), NO_CDS, Buses.T);
            assertTrue(list.ok() && list.stdout().startsWith(id + "\t" + address + "\torg.example.Capped\t"), list.describe());
        }
    }

    @Test
    void aValueTheBusWouldRefuseIsRefusedFirst(@TempDir Path dir) throws Exception {
        Path socket = dir.resolve("never");
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start()) {
            Cmd.Result r = Cmd.run(List.of(BRIDGE, "endpoint", "add", "--address=" + bus.address(), "--max-connections=0",
                    socket.toString()), NO_CDS, Buses.T);
            assertEquals(1, r.exitCode(), r.describe());
            assertTrue(r.stderr().contains("--max-connections wants a whole number from 1 to 4294967295, not '0'"),
                    r.describe());
            assertFalse(Files.exists(socket), "nothing was bound");
            Cmd.Result list = Cmd.run(List.of(BRIDGE, "endpoint", "list", "--address=" + bus.address()), NO_CDS, Buses.T);
            assertTrue(list.ok() && list.stdout().isEmpty(), list.describe());
        }
    }
}
