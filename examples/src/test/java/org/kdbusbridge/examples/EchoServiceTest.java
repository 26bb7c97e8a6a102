package org.kdbusbridge.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.freedesktop.dbus.connections.impl.DBusConnection;
import org.freedesktop.dbus.connections.impl.DBusConnectionBuilder;
import org.freedesktop.dbus.exceptions.DBusException;
import org.freedesktop.dbus.interfaces.DBus;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.kdbusbridge.bridge.embedded.BusAddress;
import org.kdbusbridge.bridge.embedded.KdbusBridgeExtension;
import org.kdbusbridge.examples.EchoService.Echo;

/** The echo service on an embedded kdbus-bridge bus, called by dbus-java (and GDBus) clients. */
@Timeout(120)
@ExtendWith(KdbusBridgeExtension.class)
class EchoServiceTest {
    private static EchoService service;
    private static DBusConnection client;
    private static Echo echo;

    @BeforeAll
    static void startServiceAndClient(@BusAddress String address) throws Exception {
        service = EchoService.start(address);
        client = DBusConnectionBuilder.forAddress(address).withShared(false).build();
        echo = client.getRemoteObject(EchoService.BUS_NAME, EchoService.OBJECT_PATH, Echo.class);
    }

    @AfterAll
    static void stop() throws Exception {
        if (client != null) {
            client.close();
        }
        if (service != null) {
            service.close();
        }
    }

    @Test
    void echoReturnsItsArgument() {
        assertEquals("hello", echo.echo("hello"));
        assertEquals("", echo.echo(""));
        assertEquals("grüße, 世界", echo.echo("grüße, 世界"));
    }

    @Test
    void echoEmitsTheEchoedSignal() throws Exception {
        CompletableFuture<Echo.Echoed> got = new CompletableFuture<>();
        try (AutoCloseable handler = client.addSigHandler(Echo.Echoed.class, s -> {
            if ("ping-1".equals(s.getText())) {
                got.complete(s);
            }
        })) {
            assertEquals("ping-1", echo.echo("ping-1"));
            Echo.Echoed signal = got.get(20, TimeUnit.SECONDS);
            assertEquals(service.uniqueName(), signal.getSource());
            assertEquals(EchoService.OBJECT_PATH, signal.getPath());
            assertEquals("org.kdbusbridge.examples.Echo", signal.getInterface());
            assertEquals("Echoed", signal.getName());
        }
    }

    @Test
    void theServiceOwnsItsName() throws Exception {
        DBus driver = client.getRemoteObject("org.freedesktop.DBus", "/org/freedesktop/DBus", DBus.class);
        assertEquals(service.uniqueName(), driver.GetNameOwner(EchoService.BUS_NAME));
        assertTrue(List.of(driver.ListNames()).contains(EchoService.BUS_NAME));
    }

    @Test
    void aSecondInstanceCannotTakeTheName(@BusAddress String address) throws Exception {
        DBusException e = assertThrows(DBusException.class, () -> EchoService.start(address));
        assertTrue(e.getMessage().contains("bus name"), e.getMessage());
        DBus driver = client.getRemoteObject("org.freedesktop.DBus", "/org/freedesktop/DBus", DBus.class);
        assertEquals(service.uniqueName(), driver.GetNameOwner(EchoService.BUS_NAME), "the first instance keeps it");
    }

    @Test
    void gdbusCallsTheSameMethod(@BusAddress String address) throws Exception {
        Process p = new ProcessBuilder("gdbus", "call", "--address", address, "--dest", EchoService.BUS_NAME,
                "--object-path", EchoService.OBJECT_PATH, "--method", "org.kdbusbridge.examples.Echo.Echo", "from gdbus")
                .redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> {
            try {
                return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (java.io.IOException e) {
                return e.toString();
            }
        });
        boolean finished = p.waitFor(20, TimeUnit.SECONDS);
        if (!finished) {
            p.destroyForcibly();
        }
        assertTrue(finished, "gdbus finished in time");
        String output = out.get(5, TimeUnit.SECONDS);
        assertEquals(0, p.exitValue(), output);
        assertEquals("('from gdbus',)", output.strip());
    }

    @Test
    void mainTakesTheAddressFromArgumentsOrEnvironment() {
        Map<String, String> env = Map.of("DBUS_SESSION_BUS_ADDRESS", "unix:path=/env");
        assertEquals("unix:path=/arg", EchoService.resolveAddress(new String[] {"unix:path=/arg"}, env));
        assertEquals("unix:path=/env", EchoService.resolveAddress(new String[0], env));
        assertNull(EchoService.resolveAddress(new String[0], Map.of()));
    }
}
