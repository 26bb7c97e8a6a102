package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * max_completed_connections and max_connections_per_user are enforced at Hello, as in
 * dbus-daemon: SASL completes, Hello gets LimitsExceeded (addressed to :not.active.yet), and
 * the socket stays open, unregistered, until the client leaves or auth_timeout (counted from
 * connect) runs out. Such a connection may retry Hello, gets AccessDenied for other driver
 * calls and is disconnected for messages to peers.
 */
class HelloLimitsTest {
    private static final String LIMITS = "org.freedesktop.DBus.Error.LimitsExceeded";
    private static final long AUTH_TIMEOUT_MS = 3000;

    private static Path config(Path dir, String limit) throws Exception {
        Path conf = dir.resolve("limits.conf");
        Files.writeString(conf, "<busconfig><type>session</type><listen>unix:path=" + dir.resolve("bus") + "</listen>"
                + "<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
                + "<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy>"
                + "<limit name=\"" + limit + "\">2</limit>"
                + "<limit name=\"auth_timeout\">" + AUTH_TIMEOUT_MS + "</limit>"
                + "</busconfig>\n");
        return conf;
    }

    private static Message hello(RawClient c) throws Exception {
        return c.call(Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "Hello"), Buses.SHORT);
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void maxCompletedConnectionsRefusesHelloAndKeepsTheSocket(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = kind.start(config(dir, "max_completed_connections"));
             RawClient a = RawClient.connectHello(bus.address(), Buses.T);
             RawClient b = RawClient.connectHello(bus.address(), Buses.T);
             RawClient late = RawClient.connect(bus.address(), Buses.T)) {
            Message refused = hello(late);
            assertEquals(LIMITS, refused.errorName, refused.toString());
            assertEquals("The maximum number of active connections has been reached", refused.arg(0));
            assertEquals(RawClient.BUS, refused.sender);
            assertEquals(":not.active.yet", refused.destination, "dbus-daemon's placeholder name");

            // Still connected and still unregistered.
            Message ping = late.call(Message.call(null, "/", "org.freedesktop.DBus.Peer", "Ping"), Buses.SHORT);
            assertEquals(Message.METHOD_RETURN, ping.type, ping.toString());
            Message getId = late.callBus("GetId", Buses.SHORT, null);
            assertEquals("org.freedesktop.DBus.Error.AccessDenied", getId.errorName, getId.toString());
            assertEquals("Client tried to send a message other than Hello without being registered", getId.arg(0));
            assertEquals(":not.active.yet", getId.destination);
            assertEquals(LIMITS, hello(late).errorName, "a retry is checked again");

            // Room again: the same connection may now register.
            b.close();
            Message ok = awaitHello(late, Buses.T);
            assertEquals(Message.METHOD_RETURN, ok.type, ok.toString());
            assertTrue(((String) ok.arg(0)).startsWith(":1."), ok.toString());
        }
    }

    /** Retries Hello until it succeeds (the bus notices a closed socket asynchronously). */
    private static Message awaitHello(RawClient c, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        Message r = hello(c);
        while (r.type == Message.ERROR && LIMITS.equals(r.errorName) && System.nanoTime() < deadline) {
            r = hello(c);
        }
        return r;
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void maxConnectionsPerUserNamesTheUid(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = kind.start(config(dir, "max_connections_per_user"));
             RawClient a = RawClient.connectHello(bus.address(), Buses.T);
             RawClient b = RawClient.connectHello(bus.address(), Buses.T);
             RawClient late = RawClient.connect(bus.address(), Buses.T)) {
            Message refused = hello(late);
            assertEquals(LIMITS, refused.errorName, refused.toString());
            assertEquals("The maximum number of active connections for UID " + RawClient.uid() + " has been reached",
                    refused.arg(0));
        }
    }

    /**
     * Real clients report the error instead of a lost connection: libdbus (dbus-send) its text,
     * GDBus the error name, sd-bus (busctl) the errno it maps LimitsExceeded to.
     */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void realClientsSeeLimitsExceeded(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = kind.start(config(dir, "max_completed_connections"));
             RawClient a = RawClient.connectHello(bus.address(), Buses.T);
             RawClient b = RawClient.connectHello(bus.address(), Buses.T)) {
            String text = "The maximum number of active connections has been reached";
            Cmd.Result send = Cmd.run(List.of("dbus-send", "--bus=" + bus.address(), "--print-reply",
                    "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.GetId"), Buses.T);
            assertFalse(send.ok(), send.describe());
            assertTrue(send.stderr().contains("message bus: " + text), send.describe());
            Cmd.Result gdbus = Cmd.run(List.of("gdbus", "call", "--address", bus.address(), "--dest",
                    "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus", "--method",
                    "org.freedesktop.DBus.GetId"), Buses.T);
            assertFalse(gdbus.ok(), gdbus.describe());
            assertTrue(gdbus.stderr().contains("GDBus.Error:" + LIMITS + ": " + text), gdbus.describe());
            Cmd.Result busctl = Cmd.run(List.of("busctl", "--address=" + bus.address(), "call",
                    "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId"), Buses.T);
            assertFalse(busctl.ok(), busctl.describe());
            assertTrue(busctl.stderr().contains("No buffer space available"), "ENOBUFS\n" + busctl.describe());
        }
    }

    /**
     * Refused connections stay bounded: auth_timeout (from connect, not from the refusal)
     * closes them; a message to a peer closes one at once.
     */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void refusedConnectionsAreClosedAtAuthTimeoutOrWhenTheyRoute(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = kind.start(config(dir, "max_completed_connections"));
             RawClient a = RawClient.connectHello(bus.address(), Buses.T);
             RawClient b = RawClient.connectHello(bus.address(), Buses.T);
             RawClient idle = RawClient.connect(bus.address(), Buses.T);
             RawClient router = RawClient.connect(bus.address(), Buses.T)) {
            long connected = System.nanoTime();
            assertEquals(LIMITS, hello(idle).errorName);
            assertEquals(LIMITS, hello(router).errorName);

            router.send(Message.call(a.uniqueName(), "/", "com.example.X", "Foo"));
            assertTrue(router.awaitEof(Buses.SHORT), "unregistered clients may not route");

            assertTrue(idle.awaitEof(Duration.ofMillis(AUTH_TIMEOUT_MS).plus(Buses.SHORT)), "closed by auth_timeout");
            long elapsedMs = (System.nanoTime() - connected) / 1_000_000;
            assertTrue(elapsedMs >= AUTH_TIMEOUT_MS - 500, "not before auth_timeout: " + elapsedMs + " ms");
            assertFalse(a.isEof(), "registered connections are not affected");
            a.sync(Buses.SHORT);
        }
    }
}
