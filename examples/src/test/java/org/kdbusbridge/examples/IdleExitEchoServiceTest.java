package org.kdbusbridge.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.freedesktop.dbus.connections.impl.DBusConnection;
import org.freedesktop.dbus.connections.impl.DBusConnectionBuilder;
import org.freedesktop.dbus.interfaces.DBus;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.embedded.EmbeddedBus;
import org.kdbusbridge.examples.EchoService.Echo;

/**
 * The activatable IdleExitEchoService on an embedded bus: the first call starts it, it exits
 * on idle through DisconnectIfIdle (its name goes away), and the next call starts it again.
 */
@Timeout(120)
class IdleExitEchoServiceTest {
    @Test
    void activatedExitsWhenIdleAndComesBack(@TempDir Path dir) throws Exception {
        Path services = Files.createDirectories(dir.resolve("services"));
        String java = ProcessHandle.current().info().command().orElse("java");
        Files.writeString(services.resolve(IdleExitEchoService.BUS_NAME + ".service"),
                "[D-BUS Service]\nName=" + IdleExitEchoService.BUS_NAME + "\nExec=\"" + java + "\" -cp \""
                        + System.getProperty("java.class.path") + "\" " + IdleExitEchoService.class.getName() + " 0.5\n");
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.serviceDirs().add(services.toString());
        try (EmbeddedBus bus = EmbeddedBus.start(config);
             DBusConnection client = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build()) {
            LinkedBlockingQueue<String> newOwners = new LinkedBlockingQueue<>();
            client.addSigHandler(DBus.NameOwnerChanged.class, s -> {
                if (IdleExitEchoService.BUS_NAME.equals(s.name)) {
                    newOwners.add(s.newOwner);
                }
            });
            Echo echo = client.getRemoteObject(IdleExitEchoService.BUS_NAME, IdleExitEchoService.OBJECT_PATH, Echo.class);
            assertEquals("first", echo.echo("first"), "the bus started the service for this call");
            String owner = newOwners.poll(60, TimeUnit.SECONDS);
            assertTrue(owner != null && owner.startsWith(":1."), "acquired by " + owner);
            assertEquals("", newOwners.poll(60, TimeUnit.SECONDS), "the service gave its name back when idle");
            assertEquals("second", echo.echo("second"), "the bus started it again");
            DBus driver = client.getRemoteObject("org.freedesktop.DBus", "/org/freedesktop/DBus", DBus.class);
            assertTrue(driver.NameHasOwner(IdleExitEchoService.BUS_NAME));
        } finally {
            // The services the bus started are this JVM's children: none may outlive the test
            // (they share its stdout, and Maven waits for that to close).
            ProcessHandle.current().descendants().forEach(ProcessHandle::destroyForcibly);
        }
    }
}
