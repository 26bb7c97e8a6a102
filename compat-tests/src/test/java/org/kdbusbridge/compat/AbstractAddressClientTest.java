package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.client.BusConnection;
import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * Our own client (bridge.client.BusConnection: the CLI's endpoint, top and proxy front) on a bus
 * that listens on {@code unix:abstract=}, as a session bus may (DBUS_SESSION_BUS_ADDRESS): the
 * real /usr/bin/dbus-daemon answers GetId through it, in process; and {@code kdbus-bridge
 * endpoint list}, a real process, reaches our bus through an address list whose first entries
 * cannot work, from --address= and from DBUS_SESSION_BUS_ADDRESS, with the JNI library and
 * with jnr-ffi (-Dkdbus.nativeLibrary=none); a wrong guid= is refused.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class AbstractAddressClientTest {
    private static final String BRIDGE = ProxyFrontTest.BRIDGE;
    private static final Duration T = Duration.ofSeconds(60);

    private static List<String> abstractBus(BusKind kind, String name) {
        return kind.command(List.of("--session", "--nofork", "--print-address", "--address=unix:abstract=" + name));
    }

    private static String guidOf(String address) {
        return address.substring(address.indexOf(",guid=") + ",guid=".length());
    }

    @Test
    void busConnectionCallsGetIdOnDbusDaemonOverAnAbstractSocket(@TempDir Path work) throws Exception {
        String name = "kbb-client-" + UUID.randomUUID();
        try (WaitedBus bus = WaitedBus.start(abstractBus(BusKind.DBUS_DAEMON, name), null, work)) {
            assertTrue(bus.address().startsWith("unix:abstract=" + name + ",guid="), bus.address());
            String guid = guidOf(bus.address());
            // Without the guid, behind a listen-only entry and a missing path: each fails, the next is tried.
            String list = "unix:tmpdir=/tmp;unix:path=" + work.resolve("none") + ";unix:abstract=" + name;
            for (String address : List.of(list, bus.address())) {
                try (BusConnection c = BusConnection.open(address, "abstract-getid")) {
                    assertEquals(guid, c.serverGuid(), address);
                    assertTrue(c.uniqueName().startsWith(":"), c.uniqueName());
                    BusMessage id = c.callDriver("GetId", "", new Object[0], Buses.T);
                    assertNotNull(id, "GetId answered over " + address);
                    assertTrue(id.isReturn(), id.toString());
                    // dbus-daemon's bus id is its own, not the listening socket's guid
                    assertTrue(id.stringArg(0).matches("[0-9a-f]{32}"), id.toString());
                }
            }
            IOException e = assertThrows(IOException.class, () -> BusConnection.open(
                    "unix:abstract=" + name + ",guid=0123456789abcdef0123456789abcdef", "abstract-wrong-guid"));
            assertTrue(e.getMessage().contains("'" + guid + "'"), e.getMessage());
        }
    }

    @Test
    void endpointListReachesOurAbstractBusThroughAList(@TempDir Path work) throws Exception {
        String name = "kbb-client-" + UUID.randomUUID();
        try (WaitedBus bus = WaitedBus.start(abstractBus(BusKind.KDBUS_BRIDGE, name), null, work)) {
            assertTrue(bus.address().startsWith("unix:abstract=" + name + ",guid="), bus.address());
            String list = "unix:runtime=yes;unix:path=" + work.resolve("none") + ";" + bus.address();
            for (Map<String, String> env : List.of(Map.of("KDBUS_BRIDGE_CDS", "0"),
                    Map.of("KDBUS_BRIDGE_CDS", "0", "KDBUS_BRIDGE_JAVA_OPTS", "-Dkdbus.nativeLibrary=none"))) {
                Cmd.Result r = Cmd.run(List.of(BRIDGE, "endpoint", "list", "--address=" + list), env, T);
                assertTrue(r.ok() && r.stdout().isEmpty(), env + ": " + r.describe());
                Map<String, String> session = new java.util.HashMap<>(env);
                session.put("DBUS_SESSION_BUS_ADDRESS", "unix:abstract=" + name);
                r = Cmd.run(List.of(BRIDGE, "endpoint", "list"), session, T);
                assertTrue(r.ok() && r.stdout().isEmpty(), env + " (from DBUS_SESSION_BUS_ADDRESS): " + r.describe());
            }
            Cmd.Result wrong = Cmd.run(List.of(BRIDGE, "endpoint", "list",
                    "--address=unix:abstract=" + name + ",guid=0123456789abcdef0123456789abcdef"),
                    Map.of("KDBUS_BRIDGE_CDS", "0"), T);
            assertTrue(!wrong.ok() && wrong.stderr().contains("'" + guidOf(bus.address()) + "'"), wrong.describe());
            Cmd.Result listenOnly = Cmd.run(List.of(BRIDGE, "endpoint", "list", "--address=unix:tmpdir=/tmp"),
                    Map.of("KDBUS_BRIDGE_CDS", "0"), T);
            assertTrue(!listenOnly.ok() && listenOnly.stderr().contains(
                    "cannot use the \"tmpdir\" option for an address to connect to, only in an address to listen on"),
                    listenOnly.describe());
        }
    }
}
