// Example: a D-Bus service written with dbus-java.
//
// It owns the well-known name org.kdbusbridge.examples.EchoService and exports one object,
// /org/kdbusbridge/examples/Echo, implementing org.kdbusbridge.examples.Echo:
//   method Echo(s text) -> (s text)     returns its argument unchanged
//   signal Echoed(s text)               emitted for every Echo call, before the reply
// Invariants: the object is exported before the name is requested, so whoever sees the name
// (NameOwnerChanged, GetNameOwner) can call the object at once; close() releases both with the
// connection. Run it against any bus: java ... org.kdbusbridge.examples.EchoService [ADDRESS]
// (default: $DBUS_SESSION_BUS_ADDRESS); it serves until the JVM is stopped (Ctrl-C, SIGTERM).
package org.kdbusbridge.examples;

import java.io.IOException;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.freedesktop.dbus.annotations.DBusInterfaceName;
import org.freedesktop.dbus.annotations.DBusMemberName;
import org.freedesktop.dbus.connections.impl.DBusConnection;
import org.freedesktop.dbus.connections.impl.DBusConnectionBuilder;
import org.freedesktop.dbus.exceptions.DBusException;
import org.freedesktop.dbus.exceptions.DBusExecutionException;
import org.freedesktop.dbus.interfaces.DBusInterface;
import org.freedesktop.dbus.messages.DBusSignal;

/** The echo service: {@link #start(String)} connects, exports the object and takes the name. */
public final class EchoService implements AutoCloseable {
    public static final String BUS_NAME = "org.kdbusbridge.examples.EchoService";
    public static final String OBJECT_PATH = "/org/kdbusbridge/examples/Echo";

    /** The D-Bus interface, shared by the service and its dbus-java clients. */
    @DBusInterfaceName("org.kdbusbridge.examples.Echo")
    public interface Echo extends DBusInterface {
        /** {@code Echo(s) -> s}: returns text unchanged (and emits {@link Echoed}). */
        @DBusMemberName("Echo")
        String echo(String text);

        /** {@code Echoed(s)}: sent by the service for each Echo call. dbus-java needs signal
         *  classes nested in their interface. */
        class Echoed extends DBusSignal {
            private final String text;

            public Echoed(String path, String text) throws DBusException {
                super(path, text);
                this.text = text;
            }

            public String getText() {
                return text;
            }
        }
    }

    private final DBusConnection connection;

    private EchoService(DBusConnection connection) {
        this.connection = connection;
    }

    /**
     * Connects to address (a private, unshared connection), exports the object and requests
     * {@link #BUS_NAME}.
     *
     * @throws DBusException if the bus cannot be reached or the name is already owned
     */
    public static EchoService start(String address) throws DBusException {
        DBusConnection c = DBusConnectionBuilder.forAddress(address).withShared(false).build();
        try {
            c.exportObject(OBJECT_PATH, new EchoObject(c));
            c.requestBusName(BUS_NAME);
        } catch (DBusException | RuntimeException e) {
            try {
                c.close();
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
        return new EchoService(c);
    }

    /** The service connection's unique name, e.g. {@code :1.0}: the owner of {@link #BUS_NAME}. */
    public String uniqueName() {
        return connection.getUniqueName();
    }

    /** Disconnects; the bus then drops the name and the object with the connection. */
    @Override
    public void close() throws IOException {
        connection.close();
    }

    /** The address to serve on: the first argument, else {@code DBUS_SESSION_BUS_ADDRESS}; null if neither. */
    static String resolveAddress(String[] args, Map<String, String> env) {
        if (args.length > 0 && !args[0].isBlank()) {
            return args[0];
        }
        String fromEnv = env.get("DBUS_SESSION_BUS_ADDRESS");
        return fromEnv == null || fromEnv.isBlank() ? null : fromEnv;
    }

    public static void main(String[] args) throws Exception {
        String address = resolveAddress(args, System.getenv());
        if (address == null) {
            System.err.println("usage: EchoService [ADDRESS]   (or set DBUS_SESSION_BUS_ADDRESS)");
            System.exit(2);
        }
        EchoService service = start(address);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                service.close();
            } catch (IOException e) {
                System.err.println("EchoService: closing the connection failed: " + e);
            }
            stopped.countDown();
        }, "echo-service-shutdown"));
        System.out.println("EchoService: " + BUS_NAME + " (" + service.uniqueName() + ") serves "
                + OBJECT_PATH + " on " + address);
        stopped.await();
    }

    /** The exported object. */
    private static final class EchoObject implements Echo {
        private final DBusConnection connection;

        EchoObject(DBusConnection connection) {
            this.connection = connection;
        }

        @Override
        public String echo(String text) {
            try {
                connection.sendMessage(new Echoed(OBJECT_PATH, text));
            } catch (DBusException e) {
                throw new DBusExecutionException("Could not emit Echoed: " + e.getMessage());
            }
            return text;
        }

        @Override
        public String getObjectPath() {
            return OBJECT_PATH;
        }
    }
}
