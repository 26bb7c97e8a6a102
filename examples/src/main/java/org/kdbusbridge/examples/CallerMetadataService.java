// Example: a service that logs who called it, from the facts the bus attached to each call.
//
// It asks the bus org.kdbusbridge.Extensions1.AttachMetadata(["creds", "names", "seq",
// "timestamp", "comm"]) (docs/extensions.md, "Per-message metadata"), then owns
// org.kdbusbridge.examples.CallerMetadata and answers, on /org/kdbusbridge/examples/CallerMetadata,
// org.kdbusbridge.examples.Echo.Echo(s) -> s (and Peer.Ping, Introspectable.Introspect). For every
// call it answers it logs one line: the caller's pid, uid and gid when it *sent* the call (not
// when it connected), its comm, the well-known names it owned when the bus admitted the call,
// and the call's global sequence number and admission time.
//
// Why not dbus-java, as the other examples: dbus-java 5.2.2 on its own cannot receive a message
// carrying the field (it throws in its reader thread for header field codes >= 10); it can
// through org.kdbusbridge.bridge.client.dbusjava.DbusJavaMetadata (docs/extensions.md). This one
// shows the bridge artifact's small client, org.kdbusbridge.bridge.client.BusConnection, whose
// BusMessage.metadata() parses the field (org.kdbusbridge.bridge.metadata.MessageMetadata).
//
// Invariants: AttachMetadata is set before the name is requested, so every call to the name
// carries the field; one service thread answers calls in arrival order; messages already
// handled are let go of (BusConnection.discardBefore), so a long-running service keeps none.
// Run it: examples/bin/metadata-demo, or java ... CallerMetadataService [ADDRESS]
// (default: $DBUS_STARTER_ADDRESS, else $DBUS_SESSION_BUS_ADDRESS); it serves until the bus
// closes the connection or the JVM is stopped.
package org.kdbusbridge.examples;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.function.Consumer;

import org.kdbusbridge.bridge.client.BusConnection;
import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.bridge.metadata.MessageMetadata;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.WireFormat;

/** The caller-logging service: {@link #start} opts in, takes the name and serves on its own thread. */
public final class CallerMetadataService implements AutoCloseable {
    public static final String BUS_NAME = "org.kdbusbridge.examples.CallerMetadata";
    public static final String OBJECT_PATH = "/org/kdbusbridge/examples/CallerMetadata";
    public static final String INTERFACE = "org.kdbusbridge.examples.Echo";
    /** What the service asks the bus to attach to every message it receives. */
    public static final List<String> ITEMS = List.of("creds", "names", "seq", "timestamp", "comm");

    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final String INTROSPECTION = "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n"
            + " \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n"
            + "<node>\n"
            + "  <interface name=\"" + INTERFACE + "\">\n"
            + "    <method name=\"Echo\"><arg name=\"text\" type=\"s\" direction=\"in\"/>"
            + "<arg name=\"text\" type=\"s\" direction=\"out\"/></method>\n"
            + "  </interface>\n"
            + "  <interface name=\"org.freedesktop.DBus.Peer\"><method name=\"Ping\"/></interface>\n"
            + "  <interface name=\"org.freedesktop.DBus.Introspectable\">"
            + "<method name=\"Introspect\"><arg type=\"s\" direction=\"out\"/></method></interface>\n"
            + "</node>\n";

    private final BusConnection bus;
    private final Consumer<String> log;
    private final Thread server;

    private CallerMetadataService(BusConnection bus, Consumer<String> log) {
        this.bus = bus;
        this.log = log;
        this.server = new Thread(this::serve, "caller-metadata");
    }

    /**
     * Connects to {@code address}, asks for the metadata, takes {@link #BUS_NAME} and starts
     * answering calls; each answered call is one line to {@code log} (called on the service's thread).
     */
    public static CallerMetadataService start(String address, Consumer<String> log) throws IOException {
        BusConnection bus = BusConnection.open(address, "caller-metadata");
        try {
            expectReturn(bus.callDriver("org.kdbusbridge.Extensions1", "AttachMetadata", "as", new Object[] {ITEMS}, WAIT),
                    "AttachMetadata (is this kdbus-bridge?)");
            BusMessage owned = expectReturn(bus.callDriver("RequestName", "su",
                    new Object[] {BUS_NAME, 4 /* DO_NOT_QUEUE */}, WAIT), "RequestName");
            if (!Long.valueOf(1).equals(owned.body().get(0))) {
                throw new IOException(BUS_NAME + " is taken (RequestName answered " + owned.body().get(0) + ")");
            }
        } catch (IOException | RuntimeException e) {
            bus.close();
            throw e;
        }
        CallerMetadataService s = new CallerMetadataService(bus, log);
        s.server.start();
        return s;
    }

    public String uniqueName() {
        return bus.uniqueName();
    }

    private static BusMessage expectReturn(BusMessage reply, String what) throws IOException {
        if (reply == null || !reply.isReturn()) {
            throw new IOException(what + " failed: " + (reply == null ? "no reply" : reply.errorName() + " " + reply.body()));
        }
        return reply;
    }

    private void serve() {
        int next = 0; // from the stream's start: a call sent to us right after RequestName is answered too
        while (true) {
            BusMessage m = bus.awaitFrom(next, x -> true, Duration.ofSeconds(1));
            if (m == null) {
                if (bus.ended()) {
                    return;
                }
                continue;
            }
            next++;
            bus.discardBefore(next);
            if (m.isCall()) {
                try {
                    answer(m);
                } catch (IOException e) {
                    return; // the bus went away
                }
            }
        }
    }

    private void answer(BusMessage call) throws IOException {
        String iface = call.iface();
        String member = call.member();
        boolean ours = OBJECT_PATH.equals(call.path());
        if (ours && (iface == null || INTERFACE.equals(iface)) && "Echo".equals(member) && "s".equals(call.signature())) {
            reply(call, "s", new BodyWriter().writeString(call.stringArg(0)).toByteArray());
        } else if ("org.freedesktop.DBus.Peer".equals(iface) && "Ping".equals(member)) {
            reply(call, null, null);
        } else if (ours && "org.freedesktop.DBus.Introspectable".equals(iface) && "Introspect".equals(member)) {
            reply(call, "s", new BodyWriter().writeString(INTROSPECTION).toByteArray());
        } else {
            if (!noReply(call)) {
                bus.send(MessageBuilder.error(bus.nextSerial(), call.serial(), call.sender(), null,
                        "org.freedesktop.DBus.Error.UnknownMethod", "No method " + call.qualifiedMember()
                                + " with signature '" + call.signature() + "' on " + call.path()));
            }
            return;
        }
        log.accept(describe(call));
    }

    private void reply(BusMessage call, String signature, byte[] body) throws IOException {
        if (!noReply(call)) {
            bus.send(MessageBuilder.methodReturn(bus.nextSerial(), call.serial(), call.sender(), null, signature, body));
        }
    }

    private static boolean noReply(BusMessage call) {
        return (call.flags() & WireFormat.NO_REPLY_EXPECTED) != 0;
    }

    /**
     * One log line for a call, e.g. {@code CallerMetadata: Echo from :1.7 pid=4242 uid=1000
     * gid=1000 at-send=true comm=python3 names=[org.example.A] seq=57 admitted=2026-12-03T14:50:01.123456789Z}.
     */
    public static String describe(BusMessage call) {
        StringBuilder sb = new StringBuilder("CallerMetadata: ").append(call.member()).append(" from ").append(call.sender());
        MessageMetadata md = call.metadata().orElse(null);
        if (md == null) {
            return sb.append(" (no metadata: the bus did not attach any)").toString();
        }
        md.pid().ifPresent(v -> sb.append(" pid=").append(v));
        md.uid().ifPresent(v -> sb.append(" uid=").append(v));
        md.gid().ifPresent(v -> sb.append(" gid=").append(v));
        // false: the bus had no send-time credentials for these bytes; the connect-time ones stood in.
        md.credsAtSend().ifPresent(v -> sb.append(" at-send=").append(v));
        md.comm().ifPresent(v -> sb.append(" comm=").append(v));
        md.names().ifPresent(v -> sb.append(" names=").append(v));
        md.seq().ifPresent(v -> sb.append(" seq=").append(v));
        md.timestamp().ifPresent(t -> sb.append(" admitted=")
                .append(Instant.ofEpochSecond(0, t.realtimeNs())));
        return sb.toString();
    }

    /** Where to connect: the argument, else the bus that started us, else the session bus. */
    static String address(String[] args) {
        if (args.length > 0) {
            return args[0];
        }
        String starter = System.getenv("DBUS_STARTER_ADDRESS");
        return starter != null ? starter : System.getenv("DBUS_SESSION_BUS_ADDRESS");
    }

    /** Serves until the bus closes the connection. */
    public static void main(String[] args) throws Exception {
        String address = address(args);
        if (address == null) {
            System.err.println("usage: CallerMetadataService [ADDRESS] (or set DBUS_SESSION_BUS_ADDRESS)");
            System.exit(2);
        }
        try (CallerMetadataService s = start(address, line -> {
            System.out.println(line);
            System.out.flush();
        })) {
            System.out.println("CallerMetadata: serving " + BUS_NAME + " as " + s.uniqueName() + ", asking for " + ITEMS);
            System.out.flush();
            s.server.join();
        }
    }

    @Override
    public void close() {
        bus.close();
        try {
            server.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
