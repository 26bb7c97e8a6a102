package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.freedesktop.dbus.annotations.DBusInterfaceName;
import org.freedesktop.dbus.connections.impl.DBusConnection;
import org.freedesktop.dbus.connections.impl.DBusConnectionBuilder;
import org.freedesktop.dbus.errors.ServiceUnknown;
import org.freedesktop.dbus.exceptions.DBusException;
import org.freedesktop.dbus.exceptions.DBusExecutionException;
import org.freedesktop.dbus.interfaces.DBus;
import org.freedesktop.dbus.interfaces.DBusInterface;
import org.freedesktop.dbus.messages.DBusSignal;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;

/** Scenario 5: dbus-java (in-process client, native unix socket transport). */
class DbusJavaTest {

    @DBusInterfaceName("com.example.CompatEcho")
    public interface Echo extends DBusInterface {
        String echo(String in);

        class Ping extends DBusSignal {
            private final String payload;

            public Ping(String path, String payload) throws DBusException {
                super(path, payload);
                this.payload = payload;
            }

            public String getPayload() {
                return payload;
            }
        }
    }

    static final class EchoImpl implements Echo {
        @Override
        public String echo(String in) {
            return "echo:" + in;
        }

        @Override
        public String getObjectPath() {
            return "/com/example/CompatEcho";
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void nameObjectCallAndSignal(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start();
             DBusConnection server = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build();
             DBusConnection client = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build()) {
            assertTrue(server.getUniqueName().matches(":\\d+\\.\\d+"), server.getUniqueName());
            assertTrue(!server.getUniqueName().equals(client.getUniqueName()));
            server.requestBusName("com.example.CompatJava");
            server.exportObject("/com/example/CompatEcho", new EchoImpl());

            DBus driver = client.getRemoteObject("org.freedesktop.DBus", "/org/freedesktop/DBus", DBus.class);
            assertEquals(server.getUniqueName(), driver.GetNameOwner("com.example.CompatJava"));
            List<String> names = List.of(driver.ListNames());
            assertTrue(names.containsAll(List.of("org.freedesktop.DBus", "com.example.CompatJava",
                    server.getUniqueName(), client.getUniqueName())), names.toString());
            assertTrue(driver.NameHasOwner("com.example.CompatJava"));
            // dbus-java has no class for NameHasNoOwner: it surfaces as a plain DBusExecutionException.
            assertThrows(DBusExecutionException.class, () -> driver.GetNameOwner("com.example.Nope"));
            Echo missing = client.getRemoteObject("com.example.Nope", "/com/example/CompatEcho", Echo.class);
            assertThrows(ServiceUnknown.class, () -> missing.echo("x"));

            Echo remote = client.getRemoteObject("com.example.CompatJava", "/com/example/CompatEcho", Echo.class);
            assertEquals("echo:hello", remote.echo("hello"));

            CompletableFuture<String> got = new CompletableFuture<>();
            CompletableFuture<String> from = new CompletableFuture<>();
            try (AutoCloseable reg = client.addSigHandler(Echo.Ping.class, s -> {
                from.complete(s.getSource());
                got.complete(s.getPayload());
            })) {
                server.sendMessage(new Echo.Ping("/com/example/CompatEcho", "ping-1"));
                assertEquals("ping-1", got.get(20, TimeUnit.SECONDS));
                assertEquals(server.getUniqueName(), from.get(20, TimeUnit.SECONDS));
            }
        }
    }
}
