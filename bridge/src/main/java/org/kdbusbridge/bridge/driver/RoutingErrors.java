package org.kdbusbridge.bridge.driver;

import java.util.function.Consumer;

import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.Delivery;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.Message;

/**
 * The D-Bus error a sender gets when the core refused to route its message: every error name
 * and text for a {@link Delivery} result lives here, beside the driver's other errors.
 * The texts are dbus-daemon's where clients or tests compare them.
 */
public final class RoutingErrors {
    /** Anything but Hello (or an unaddressed message) from a client that has not said Hello. */
    public static final String NOT_REGISTERED = "Client tried to send a message other than Hello without being registered";

    private final Bus bus;
    private final DriverEmitter emitter;
    /** Where a message refused by a full receiver queue is logged (rate-limited by the caller). */
    private final Consumer<String> queueFullLog;

    public RoutingErrors(Bus bus, DriverEmitter emitter, Consumer<String> queueFullLog) {
        this.bus = bus;
        this.emitter = emitter;
        this.queueFullLog = queueFullLog;
    }

    /** Answers {@code m}, sent by {@code from}, with the error for {@code d}; OK and the rest send nothing. */
    public void reply(Connection from, Message m, Delivery d) {
        String dest = m.destination();
        switch (d) {
            case SERVICE_UNKNOWN -> error(from, m, DBusErrors.SERVICE_UNKNOWN,
                    "The name " + dest + " was not provided by any .service files");
            case NAME_HAS_NO_OWNER -> error(from, m, DBusErrors.NAME_HAS_NO_OWNER, "Name \"" + dest + "\" does not exist");
            case RECIPIENT_FULL -> {
                queueFullLog.accept("Message to " + dest + " from " + from
                        + " dropped: the recipient's queue is full (max_outgoing_bytes)");
                error(from, m, DBusErrors.LIMITS_EXCEEDED, "The destination service \"" + dest + "\" has a full message queue");
            }
            // The same answer; the core logged the uid's refusal once a minute, so no line per message.
            case QUEUE_QUOTA -> error(from, m, DBusErrors.LIMITS_EXCEEDED,
                    "The destination service \"" + dest + "\" has a full message queue");
            case TOO_MANY_REPLIES -> error(from, m, DBusErrors.LIMITS_EXCEEDED,
                    "The maximum number of pending replies per connection has been reached (max_replies_per_connection="
                            + bus.limits().maxRepliesPerConnection + ")");
            // dbus-daemon answers even a call sent with NO_REPLY_EXPECTED (bus_dispatch's error path).
            case ACCESS_DENIED -> error(from, m, DBusErrors.ACCESS_DENIED, bus.denialText(m));
            case DUPLICATE_SERIAL -> error(from, m, DBusErrors.ACCESS_DENIED,
                    "Message has the same reply serial as a currently-outstanding existing method call");
            // dbus-daemon's text, missing space included (bus/dispatch.c).
            case FDS_NOT_SUPPORTED -> error(from, m, DBusErrors.NOT_SUPPORTED, DBusErrors.FDS_NOT_SUPPORTED_TEXT);
            case UNSEALED_MEMFD -> error(from, m, DBusErrors.UNSEALED_PAYLOAD, "The recipient " + dest
                    + " accepts memfds only with F_SEAL_WRITE, F_SEAL_SHRINK and F_SEAL_GROW set");
            case TOO_MANY_ACTIVATIONS -> error(from, m, DBusErrors.LIMITS_EXCEEDED,
                    Driver.tooManyActivations(dest, bus.limits().maxPendingServiceStarts));
            // A custom endpoint answers as xdg-dbus-proxy does: the error name is also the text,
            // so a hidden name and a missing one look the same (docs/endpoint-semantics.md).
            case ENDPOINT_ACCESS_DENIED -> error(from, m, DBusErrors.ACCESS_DENIED, DBusErrors.ACCESS_DENIED);
            case ENDPOINT_SERVICE_UNKNOWN -> error(from, m, DBusErrors.SERVICE_UNKNOWN, DBusErrors.SERVICE_UNKNOWN);
            case ENDPOINT_NAME_HAS_NO_OWNER -> error(from, m, DBusErrors.NAME_HAS_NO_OWNER, DBusErrors.NAME_HAS_NO_OWNER);
            default -> { }
        }
    }

    /** The AccessDenied for a driver call other than Hello before Hello (the connection stays). */
    public void notRegistered(Connection from, long serial) {
        emitter.error(from, serial, DBusErrors.ACCESS_DENIED, NOT_REGISTERED);
    }

    private void error(Connection from, Message m, String name, String text) {
        emitter.error(from, m.serial(), name, text);
    }
}
