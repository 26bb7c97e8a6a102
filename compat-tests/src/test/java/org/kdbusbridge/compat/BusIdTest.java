package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.bridge.client.BusConnection;
import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * The bus ID and the server GUIDs, as the D-Bus specification has them and dbus-daemon 1.14
 * does: GetId's bus ID is 32 hex digits and not the guid of any address the bus listens on;
 * with two {@code <listen>} elements each address has a guid of its own, in the printed address
 * and in the SASL OK line of a client that came through it; a client (libdbus's dbus-send, our
 * BusConnection) connecting with that guid in the address succeeds, with the other address's
 * guid it fails; {@code --address} replaces the config's listen elements (one address). Run on
 * dbus-daemon and on our bus, real processes and sockets.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class BusIdTest {
    private static final Pattern ENTRY = Pattern.compile("unix:path=([^,;]+),guid=([0-9a-f]{32})");

    private static Path config(Path dir) throws IOException {
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, "<busconfig><type>session</type>"
                + "<listen>unix:path=" + dir.resolve("one") + "</listen>"
                + "<listen>unix:path=" + dir.resolve("two") + "</listen>"
                + "<auth>EXTERNAL</auth><policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
                + "<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>");
        return conf;
    }

    /** Socket path -> guid, from the printed address (dbus-daemon prints its entries last listen first). */
    private static Map<String, String> entries(String address) {
        Map<String, String> out = new TreeMap<>();
        for (String e : address.split(";")) {
            Matcher m = ENTRY.matcher(e);
            assertTrue(m.matches(), "entry '" + e + "' of " + address);
            assertEquals(null, out.put(m.group(1), m.group(2)), "one entry per socket: " + address);
        }
        return out;
    }

    private static String getId(BusConnection c) throws IOException {
        BusMessage m = c.callDriver("GetId", "", new Object[0], Buses.T);
        assertTrue(m != null && m.isReturn(), String.valueOf(m));
        return m.stringArg(0);
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void getIdIsTheBusIdAndEachListenAddressHasItsOwnGuid(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = kind.start(config(dir))) {
            Map<String, String> guids = entries(bus.address());
            String one = dir.resolve("one").toString();
            String two = dir.resolve("two").toString();
            assertEquals(List.of(one, two), List.copyOf(guids.keySet()), bus.address());
            assertNotEquals(guids.get(one), guids.get(two), "each server its own guid: " + bus.address());

            String busId = null;
            for (String path : List.of(one, two)) {
                String address = "unix:path=" + path + ",guid=" + guids.get(path);
                try (BusConnection c = BusConnection.open(address, "bus-id")) {
                    assertEquals(guids.get(path), c.serverGuid(), "SASL OK through " + path);
                    String id = getId(c);
                    assertTrue(id.matches("[0-9a-f]{32}"), id);
                    assertFalse(guids.containsValue(id), "GetId " + id + " is no address's guid: " + bus.address());
                    if (busId != null) {
                        assertEquals(busId, id, "one bus ID through either address");
                    }
                    busId = id;
                }
                // libdbus checks the guid= of the address against the server's.
                Cmd.Result r = Cmd.run(List.of("dbus-send", "--bus=" + address, "--print-reply=literal",
                        "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.GetId"), Buses.T);
                assertTrue(r.ok(), r.describe());
                assertEquals(busId, r.stdout().strip(), r.describe());
            }
            // The other address's guid is a different server: refused by libdbus and by BusConnection.
            String crossed = "unix:path=" + one + ",guid=" + guids.get(two);
            Cmd.Result r = Cmd.run(List.of("dbus-send", "--bus=" + crossed, "--print-reply=literal",
                    "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.GetId"), Buses.T);
            assertFalse(r.ok(), r.describe());
            IOException e = assertThrows(IOException.class, () -> BusConnection.open(crossed, "bus-id-crossed"));
            assertTrue(e.getMessage().contains(guids.get(one)), e.getMessage());
        }
    }

    /**
     * Ours only (dbus-daemon has no hand-over): after {@code kdbus-bridge --replace} (a real
     * exec, docs/handover.md) the printed addresses still hold, guids included: a client kept from
     * before sees the same bus ID, new clients through each old printed entry get the same guid.
     */
    @org.junit.jupiter.api.Test
    void aHandOverKeepsTheBusIdAndEveryAddresssGuid(@TempDir Path dir) throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(BusKind.selected().contains(BusKind.KDBUS_BRIDGE), "our bus selected");
        Path conf = config(dir);
        try (WaitedBus bus = WaitedBus.start(List.of(DropInTest.BIN + "/kdbus-bridge", "--config-file=" + conf,
                "--nofork", "--print-address"), Map.of("KDBUS_BRIDGE_HOST", "0"), dir);
             BusConnection kept = BusConnection.open(bus.address(), "bus-id-kept")) {
            Map<String, String> guids = entries(bus.address());
            String busId = getId(kept);
            String first = bus.address().split(";")[0];
            Cmd.Result r = Cmd.run(List.of(DropInTest.BIN + "/kdbus-bridge", "--replace", "--address=" + first),
                    Map.of(), HandOverFailureTest.REEXEC);
            assertTrue(r.ok(), r.describe() + "\n" + bus.describe());
            assertEquals(busId, getId(kept), "the same bus ID after the hand-over\n" + bus.describe());
            for (Map.Entry<String, String> e : guids.entrySet()) {
                try (BusConnection c = BusConnection.open("unix:path=" + e.getKey() + ",guid=" + e.getValue(),
                        "bus-id-after")) {
                    assertEquals(e.getValue(), c.serverGuid(), e.getKey() + " after the hand-over\n" + bus.describe());
                    assertEquals(busId, getId(c));
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void addressReplacesTheConfigsListenElements(BusKind kind, @TempDir Path dir) throws Exception {
        Path only = dir.resolve("only");
        try (BusUnderTest bus = kind.start(config(dir), "--address=unix:path=" + only)) {
            Map<String, String> guids = entries(bus.address());
            assertEquals(List.of(only.toString()), List.copyOf(guids.keySet()), bus.address());
            assertFalse(Files.exists(dir.resolve("one")) || Files.exists(dir.resolve("two")), "no config listener");
            try (BusConnection c = BusConnection.open(bus.address(), "bus-id-address")) {
                assertEquals(guids.get(only.toString()), c.serverGuid());
                assertNotEquals(c.serverGuid(), getId(c));
            }
        }
    }
}
