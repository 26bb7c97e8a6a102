// Example: an activatable dbus-java service that exits when idle, without losing calls.
//
// It owns org.kdbusbridge.examples.IdleEcho and exports /org/kdbusbridge/examples/IdleEcho
// (interface org.kdbusbridge.examples.Echo, method Echo(s) -> s). The bus starts it on the first
// call (service file examples/services/org.kdbusbridge.examples.IdleEcho.service). After
// IDLE_SECONDS without a call it asks the bus org.kdbusbridge.Extensions1.DisconnectIfIdle():
//   - yes: nothing was queued for it and it owed no reply; the bus has already handed its name
//     back to the activator, so any call sent from now on starts a new instance. It exits.
//   - org.kdbusbridge.Error.NotIdle: a call arrived in the meantime; it keeps serving.
// Invariants: a call is either answered by this process or queued for the next one, never
// dropped; the process exits only after the bus said yes.
package org.kdbusbridge.examples;

import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.freedesktop.dbus.annotations.DBusInterfaceName;
import org.freedesktop.dbus.connections.IDisconnectCallback;
import org.freedesktop.dbus.connections.impl.DBusConnection;
import org.freedesktop.dbus.connections.impl.DBusConnectionBuilder;
import org.freedesktop.dbus.exceptions.DBusExecutionException;
import org.freedesktop.dbus.interfaces.DBusInterface;

/** The idle-exiting echo service; run by the bus through its service file. */
public final class IdleExitEchoService {
    public static final String BUS_NAME = "org.kdbusbridge.examples.IdleEcho";
    public static final String OBJECT_PATH = "/org/kdbusbridge/examples/IdleEcho";

    /** The bus's vendor interface (docs/extensions.md). */
    @DBusInterfaceName("org.kdbusbridge.Extensions1")
    public interface Extensions1 extends DBusInterface {
        /** Disconnects the caller only if nothing is queued for it and it owes no reply. */
        void DisconnectIfIdle();
    }

    private IdleExitEchoService() { }

    /** Where the bus that started us listens (DBUS_STARTER_ADDRESS), else the session bus. */
    static String address(String[] args) {
        if (args.length > 1) {
            return args[1];
        }
        String starter = System.getenv("DBUS_STARTER_ADDRESS");
        return starter != null ? starter : System.getenv("DBUS_SESSION_BUS_ADDRESS");
    }

    public static void main(String[] args) throws Exception {
        long idleMillis = (long) (Double.parseDouble(args.length > 0 ? args[0] : "5") * 1000);
        AtomicLong lastCall = new AtomicLong(System.nanoTime());
        // If the bus goes away (it was stopped, or it closed us after DisconnectIfIdle) there is
        // nothing left to serve: exit instead of lingering as an orphan.
        DBusConnection c = DBusConnectionBuilder.forAddress(address(args)).withShared(false)
                .withDisconnectCallback(new IDisconnectCallback() {
                    @Override
                    public void disconnectOnError(java.io.IOException e) {
                        Runtime.getRuntime().halt(0);
                    }
                }).build();
        c.exportObject(OBJECT_PATH, new EchoService.Echo() {
            @Override
            public String echo(String text) {
                lastCall.set(System.nanoTime());
                return text;
            }

            @Override
            public String getObjectPath() {
                return OBJECT_PATH;
            }
        });
        c.requestBusName(BUS_NAME);
        Extensions1 bus = c.getRemoteObject("org.freedesktop.DBus", "/org/freedesktop/DBus", Extensions1.class);
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
        long tick = Math.max(50, idleMillis / 4);
        timer.scheduleWithFixedDelay(() -> {
            if (System.nanoTime() - lastCall.get() < TimeUnit.MILLISECONDS.toNanos(idleMillis)) {
                return;
            }
            try {
                bus.DisconnectIfIdle();
            } catch (DBusExecutionException e) {
                lastCall.set(System.nanoTime()); // NotIdle: a call is on its way; serve it
                return;
            }
            System.out.println("IdleEcho: idle for " + idleMillis + " ms, the bus agreed; exiting");
            Runtime.getRuntime().halt(0); // the bus already closed our connection
        }, tick, tick, TimeUnit.MILLISECONDS);
        System.out.println("IdleEcho: serving " + BUS_NAME + " as " + c.getUniqueName());
    }
}
