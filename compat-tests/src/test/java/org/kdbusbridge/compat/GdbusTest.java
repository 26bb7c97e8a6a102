package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/** Scenario 2: GDBus (gdbus call / introspect / monitor). */
class GdbusTest {

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void callListNames(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            Cmd.Result r = Cmd.run(List.of("gdbus", "call", "--address", bus.address(), "--dest", "org.freedesktop.DBus",
                    "--object-path", "/org/freedesktop/DBus", "--method", "org.freedesktop.DBus.ListNames"), Buses.T);
            assertTrue(r.ok(), r.describe());
            // e.g. (['org.freedesktop.DBus', ':1.0'],)
            assertTrue(Pattern.compile("^\\(\\[.*'org\\.freedesktop\\.DBus'.*\\],\\)\\s*$", Pattern.DOTALL).matcher(r.stdout()).matches(), r.describe());
            assertTrue(Pattern.compile("':\\d+\\.\\d+'").matcher(r.stdout()).find(), "gdbus's own unique name listed\n" + r.describe());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void introspectDriver(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            Cmd.Result r = Cmd.run(List.of("gdbus", "introspect", "--address", bus.address(), "--dest", "org.freedesktop.DBus",
                    "--object-path", "/org/freedesktop/DBus"), Buses.T);
            assertTrue(r.ok(), r.describe());
            String out = r.stdout();
            assertTrue(out.contains("interface org.freedesktop.DBus {"), r.describe());
            for (String m : List.of("Hello(", "RequestName(", "ReleaseName(", "StartServiceByName(", "NameHasOwner(",
                    "ListNames(", "ListActivatableNames(", "AddMatch(", "RemoveMatch(", "GetNameOwner(",
                    "ListQueuedOwners(", "GetConnectionUnixUser(", "GetConnectionUnixProcessID(", "GetConnectionCredentials(",
                    "GetId(", "NameOwnerChanged(", "NameLost(", "NameAcquired(")) {
                assertTrue(out.contains(m), m + " in\n" + out);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void monitorSeesNameOwnerChanged(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start();
             Background mon = Background.start(List.of("gdbus", "monitor", "--address", bus.address(),
                     "--dest", "org.freedesktop.DBus"), Map.of())) {
            // gdbus sends its AddMatch before GetNameOwner, so once it printed the owner its rule is in place.
            assertNotNull(mon.stdout().awaitLine(l -> l.contains("is owned by"), Buses.T), mon.describe());
            try (RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
                // gdbus adds its signal subscription asynchronously after it printed the owner,
                // so a name taken too early can go unseen on either bus: take fresh names until
                // one is printed (bounded), then check how it was printed.
                String line = null;
                for (int i = 0; line == null && i < 20; i++) {
                    String name = "com.example.MonitorMe" + i;
                    Message r = c.callBus("RequestName", Buses.T, "su", name, 4L);
                    assertEquals(1L, r.arg(0), r.toString());
                    String want = "org.freedesktop.DBus.NameOwnerChanged ('" + name + "', '', '" + c.uniqueName() + "')";
                    line = mon.stdout().awaitLine(l -> l.contains(want), java.time.Duration.ofSeconds(1));
                }
                assertNotNull(line, "monitor printed a NameOwnerChanged\n" + mon.describe());
                assertTrue(line.startsWith("/org/freedesktop/DBus: "), line);
            }
            assertTrue(mon.process().isAlive(), "gdbus monitor is still running after a client left\n" + mon.describe());
        }
    }
}
