// Example: CallerMetadataService's caller log, written with dbus-java.
//
// dbus-java 5.2.2 on its own cannot receive a message carrying AttachMetadata's header field
// (it throws in its reader thread for field codes >= 10); the bridge artifact's helper,
// org.kdbusbridge.bridge.client.dbusjava.DbusJavaMetadata, gives the connection a reader that
// takes the field out and keeps it beside each message (docs/extensions.md, "dbus-java and
// sd-bus"). The service connects through it, asks for ITEMS, exports
// org.kdbusbridge.examples.Echo on /org/kdbusbridge/examples/CallerMetadata, owns
// org.kdbusbridge.examples.DbusJavaCallerMetadata, and logs one line per Echo call it answers:
// the caller's send-time pid, uid and gid, comm, names, seq and admission time.
//
// Invariants: AttachMetadata is set before the object is exported and the name requested, so
// every call to the name carries the field; the log line is written by the handler thread of the
// call it describes (DbusJavaMetadata.ofCurrentCall). Needs dbus-java's native-unixsocket
// transport (no fd passing). Run it: java ... DbusJavaCallerMetadataService [ADDRESS]
// (default: $DBUS_STARTER_ADDRESS, else $DBUS_SESSION_BUS_ADDRESS).
package org.kdbusbridge.examples;

import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

import org.freedesktop.dbus.connections.impl.DBusConnection;
import org.freedesktop.dbus.connections.impl.DBusConnectionBuilder;
import org.freedesktop.dbus.exceptions.DBusException;
import org.kdbusbridge.bridge.client.dbusjava.DbusJavaMetadata;
import org.kdbusbridge.bridge.metadata.MessageMetadata;

/** The caller-logging service on dbus-java: {@link #start} opts in, exports the object and takes the name. */
public final class DbusJavaCallerMetadataService implements AutoCloseable {
    public static final String BUS_NAME = "org.kdbusbridge.examples.DbusJavaCallerMetadata";
    public static final String OBJECT_PATH = "/org/kdbusbridge/examples/CallerMetadata";
    /** What the service asks the bus to attach to every message it receives. */
    public static final List<String> ITEMS = CallerMetadataService.ITEMS;

    private final DBusConnection connection;

    private DbusJavaCallerMetadataService(DBusConnection connection) {
        this.connection = connection;
    }

    /** The exported object: answers Echo and logs its caller. */
    private static final class Logged implements EchoService.Echo {
        private final Consumer<String> log;

        Logged(Consumer<String> log) {
            this.log = log;
        }

        @Override
        public String echo(String text) {
            log.accept(describe("Echo", DBusConnection.getCallInfo().getSource(), DbusJavaMetadata.ofCurrentCall()));
            return text;
        }

        @Override
        public String getObjectPath() {
            return OBJECT_PATH;
        }
    }

    /**
     * Connects to {@code address} through the metadata helper, asks for {@link #ITEMS}, exports
     * the object and takes {@link #BUS_NAME}; each answered call is one line to {@code log}
     * (called on dbus-java's method-call thread).
     */
    public static DbusJavaCallerMetadataService start(String address, Consumer<String> log) throws DBusException {
        DBusConnection c = DbusJavaMetadata.connect(DBusConnectionBuilder.forAddress(address));
        try {
            DbusJavaMetadata.attach(c, ITEMS);
            c.exportObject(new Logged(log));
            c.requestBusName(BUS_NAME);
        } catch (DBusException | RuntimeException e) {
            c.disconnect();
            throw e;
        }
        return new DbusJavaCallerMetadataService(c);
    }

    public String uniqueName() {
        return connection.getUniqueName();
    }

    /** The same line CallerMetadataService.describe writes, from a dbus-java call's metadata. */
    public static String describe(String member, String sender, Optional<MessageMetadata> metadata) {
        StringBuilder sb = new StringBuilder("CallerMetadata: ").append(member).append(" from ").append(sender);
        MessageMetadata md = metadata.orElse(null);
        if (md == null) {
            return sb.append(" (no metadata: the bus did not attach any)").toString();
        }
        md.pid().ifPresent(v -> sb.append(" pid=").append(v));
        md.uid().ifPresent(v -> sb.append(" uid=").append(v));
        md.gid().ifPresent(v -> sb.append(" gid=").append(v));
        md.credsAtSend().ifPresent(v -> sb.append(" at-send=").append(v));
        md.comm().ifPresent(v -> sb.append(" comm=").append(v));
        md.names().ifPresent(v -> sb.append(" names=").append(v));
        md.seq().ifPresent(v -> sb.append(" seq=").append(v));
        md.timestamp().ifPresent(t -> sb.append(" admitted=").append(Instant.ofEpochSecond(0, t.realtimeNs())));
        return sb.toString();
    }

    @Override
    public void close() {
        connection.disconnect();
    }

    /** Serves until the JVM is stopped. */
    public static void main(String[] args) throws Exception {
        String address = CallerMetadataService.address(args);
        if (address == null) {
            System.err.println("usage: DbusJavaCallerMetadataService [ADDRESS] (or set DBUS_SESSION_BUS_ADDRESS)");
            System.exit(2);
        }
        DbusJavaCallerMetadataService s = start(address, line -> {
            System.out.println(line);
            System.out.flush();
        });
        System.out.println("CallerMetadata: serving " + BUS_NAME + " as " + s.uniqueName() + " (dbus-java), asking for " + ITEMS);
        System.out.flush();
        Thread.currentThread().join();
    }
}
