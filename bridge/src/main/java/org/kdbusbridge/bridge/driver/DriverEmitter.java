package org.kdbusbridge.bridge.driver;

import java.util.List;

import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.Delivery;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.ArgSource;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;
import org.kdbusbridge.core.name.NameChange;

/**
 * Encodes the driver's replies, errors and signals and hands them to the core.
 *
 * Invariants: every driver message carries sender org.freedesktop.DBus, NO_REPLY_EXPECTED,
 * the recipient as DESTINATION when it is unicast, and a serial from one driver counter that
 * never yields 0. Name changes are emitted in dbus-daemon's order: NameLost, NameOwnerChanged,
 * NameAcquired.
 */
public final class DriverEmitter {
    public static final String PATH = "/org/freedesktop/DBus";
    public static final String IFACE = "org.freedesktop.DBus";
    private static final int NO_REPLY = Message.FLAG_NO_REPLY_EXPECTED;

    private final Bus bus;
    private final LargeReplies large;
    private long serial;

    /**
     * Where a large reply is encoded off the heap: replies of at least {@code minSize} bytes
     * go into a direct buffer from {@code take}, given back to {@code recycler} when the last
     * queue lets the message go.
     */
    public record LargeReplies(int minSize, java.util.function.IntFunction<java.nio.ByteBuffer> take,
                               java.util.function.Consumer<java.nio.ByteBuffer> recycler) {}

    public DriverEmitter(Bus bus) {
        this(bus, null);
    }

    /** {@code large} null: every reply is a heap array. */
    public DriverEmitter(Bus bus, LargeReplies large) {
        this.bus = bus;
        this.large = large;
    }

    private long nextSerial() {
        serial = (serial + 1) & 0xFFFFFFFFL;
        if (serial == 0) {
            serial = 1;
        }
        return serial;
    }

    public void reply(Connection to, long replySerial, String signature, byte[] body) {
        long s = nextSerial();
        String dest = to.uniqueName();
        byte[] bytes = MessageBuilder.encode(Message.METHOD_RETURN, NO_REPLY, s, null, null, null, null,
                replySerial & 0xFFFFFFFFL, dest, Bus.DRIVER_NAME, signature, body);
        bus.emitTo(to, new Message(Message.METHOD_RETURN, NO_REPLY, s, replySerial, dest, null, null, null, null,
                new SealedPayload(bytes), ArgSource.NONE));
    }

    /** A reply whose body is written straight into the message (sized first: one array). */
    public void reply(Connection to, long replySerial, String signature, MessageBuilder.Body body) {
        long s = nextSerial();
        String dest = to.uniqueName();
        byte[] bytes = MessageBuilder.encode(Message.METHOD_RETURN, NO_REPLY, s, null, null, null, null,
                replySerial & 0xFFFFFFFFL, dest, Bus.DRIVER_NAME, signature, body, 0);
        bus.emitTo(to, new Message(Message.METHOD_RETURN, NO_REPLY, s, replySerial, dest, null, null, null, null,
                new SealedPayload(bytes), ArgSource.NONE));
    }

    /**
     * A reply carrying unix fds: {@code fds} (the caller's reference) goes with it through the
     * normal path (the receiver's pool takes its own reference, the socket passes the fds) and is
     * released here, so the bus's copies close once written, or at once if the reply is dropped.
     */
    public void replyWithFds(Connection to, long replySerial, String signature, byte[] body, FdSet fds) {
        try {
            long s = nextSerial();
            String dest = to.uniqueName();
            byte[] bytes = MessageBuilder.encode(Message.METHOD_RETURN, NO_REPLY, s, null, null, null, null,
                    replySerial & 0xFFFFFFFFL, dest, Bus.DRIVER_NAME, signature, body, fds.count());
            bus.emitTo(to, new Message(Message.METHOD_RETURN, NO_REPLY, s, replySerial, dest, null, null, null, null,
                    new SealedPayload(bytes), ArgSource.NONE, fds));
        } finally {
            fds.release();
        }
    }

    public void replyString(Connection to, long replySerial, String value) {
        long s = nextSerial();
        String dest = to.uniqueName();
        byte[] bytes = MessageBuilder.encodeString(Message.METHOD_RETURN, NO_REPLY, s, null, null, null, null,
                replySerial & 0xFFFFFFFFL, dest, Bus.DRIVER_NAME, value);
        bus.emitTo(to, new Message(Message.METHOD_RETURN, NO_REPLY, s, replySerial, dest, null, null, null, null,
                new SealedPayload(bytes), ArgSource.NONE));
    }

    public void replyUint32(Connection to, long replySerial, long value) {
        reply(to, replySerial, "u", new Uint32((int) value));
    }

    public void replyBoolean(Connection to, long replySerial, boolean value) {
        reply(to, replySerial, "b", new Uint32(value ? 1 : 0));
    }

    /**
     * ListNames, ListActivatableNames, ListQueuedOwners: sized first, then one array, or one
     * pooled direct buffer when it is large (100k names: 2.4 MB the heap never sees).
     */
    public void replyStrings(Connection to, long replySerial, List<String> values) {
        MessageBuilder.StringArray body = new MessageBuilder.StringArray(values);
        long s = nextSerial();
        String dest = to.uniqueName();
        java.nio.ByteBuffer direct = large == null ? null : MessageBuilder.encodeDirect(Message.METHOD_RETURN,
                NO_REPLY, s, null, null, null, null, replySerial & 0xFFFFFFFFL, dest, Bus.DRIVER_NAME, "as", body,
                large.minSize(), large.take());
        SealedPayload payload = direct != null ? new SealedPayload(direct, large.recycler())
                : new SealedPayload(MessageBuilder.encode(Message.METHOD_RETURN, NO_REPLY, s, null, null, null, null,
                        replySerial & 0xFFFFFFFFL, dest, Bus.DRIVER_NAME, "as", body, 0));
        bus.emitTo(to, new Message(Message.METHOD_RETURN, NO_REPLY, s, replySerial, dest, null, null, null, null,
                payload, ArgSource.NONE));
    }

    /** A 'u' or 'b' body. */
    private record Uint32(int value) implements MessageBuilder.Body {
        @Override
        public void writeTo(BodyWriter w) {
            w.writeUint32(value);
        }
    }

    public void replyEmpty(Connection to, long replySerial) {
        reply(to, replySerial, null, (byte[]) null);
    }

    /** The error answer to a driver call. */
    void error(DriverCall call, String errorName, String text) {
        error(call.caller(), call.serial(), errorName, text);
    }

    public void error(Connection to, long replySerial, String errorName, String text) {
        long s = nextSerial();
        // dbus-daemon addresses errors to a connection without Hello (refused or not yet
        // registered) to the placeholder sender it stamped on that connection's message.
        String dest = to.uniqueName() != null ? to.uniqueName() : Bus.NOT_ACTIVE_YET;
        byte[] bytes = MessageBuilder.encodeString(Message.ERROR, NO_REPLY, s, null, null, null, errorName,
                replySerial & 0xFFFFFFFFL, dest, Bus.DRIVER_NAME, text);
        bus.emitTo(to, new Message(Message.ERROR, NO_REPLY, s, replySerial, dest, null, null, null, errorName,
                new SealedPayload(bytes), ArgSource.NONE));
    }

    /**
     * The answer to a call without destination (Peer.Ping, Peer.GetMachineId, UnknownMethod):
     * as the libdbus connection layer under dbus-daemon sends it, with neither SENDER nor
     * DESTINATION, and NO_REPLY_EXPECTED. {@code errorName} null: a method return.
     */
    public void unaddressedAnswer(Connection to, long replySerial, String errorName, String signature, byte[] body) {
        long s = nextSerial();
        int type = errorName == null ? Message.METHOD_RETURN : Message.ERROR;
        byte[] bytes = MessageBuilder.encode(type, NO_REPLY, s, null, null, null, errorName,
                replySerial & 0xFFFFFFFFL, null, null, signature, body);
        bus.answerUnaddressed(to, new Message(type, NO_REPLY, s, replySerial, null, null, null, null, errorName,
                new SealedPayload(bytes), ArgSource.NONE));
    }

    /**
     * The error dbus-daemon shows monitors (only) when it refuses a delivery nobody is told of:
     * from org.freedesktop.DBus, in reply to {@code refused}, addressed to its sender (the bus
     * itself for a bus message).
     */
    public void refusalForMonitors(Message refused, Connection addressed, String errorName, String text) {
        long s = nextSerial();
        String dest = refused.sender() == null ? Bus.DRIVER_NAME : refused.sender().uniqueName();
        byte[] bytes = MessageBuilder.encodeString(Message.ERROR, NO_REPLY, s, null, null, null, errorName,
                refused.serial() & 0xFFFFFFFFL, dest, Bus.DRIVER_NAME, text);
        bus.captureOnly(new Message(Message.ERROR, NO_REPLY, s, refused.serial(), dest, null, null, null, errorName,
                new SealedPayload(bytes), ArgSource.NONE), addressed);
    }

    /** A signal to one connection (NameAcquired, NameLost). */
    public void unicastSignal(Connection to, String member, String arg) {
        long s = nextSerial();
        String dest = to.uniqueName();
        byte[] bytes = MessageBuilder.encodeString(Message.SIGNAL, NO_REPLY, s, PATH, IFACE, member, null,
                MessageBuilder.NO_REPLY_SERIAL, dest, Bus.DRIVER_NAME, arg);
        bus.emitTo(to, new Message(Message.SIGNAL, NO_REPLY, s, Message.NO_REPLY_SERIAL, dest, PATH, IFACE,
                member, null, new SealedPayload(bytes), new StringArgs(arg)));
    }

    /**
     * A signal from the bus at /org/freedesktop/DBus on {@code iface} with any body, to one
     * connection (our extensions' MessagesDropped): pushed past the pool's budget, as every bus
     * unicast, so it is never dropped itself.
     */
    public void unicastSignal(Connection to, String iface, String member, String signature, byte[] body) {
        long s = nextSerial();
        String dest = to.uniqueName();
        byte[] bytes = MessageBuilder.encode(Message.SIGNAL, NO_REPLY, s, PATH, iface, member, null,
                MessageBuilder.NO_REPLY_SERIAL, dest, Bus.DRIVER_NAME, signature, body);
        bus.emitTo(to, new Message(Message.SIGNAL, NO_REPLY, s, Message.NO_REPLY_SERIAL, dest, PATH, iface,
                member, null, new SealedPayload(bytes), ArgSource.NONE));
    }

    /**
     * A signal from the bus at /org/freedesktop/DBus with one string, to a well-known name that
     * may have no owner yet: it then waits
     * on the name's activator (Bus.emitToName), as systemd's ActivationRequest does in
     * dbus-daemon while systemd has not joined the bus.
     */
    public Delivery directedSignalToName(String destination, String iface, String member, String arg) {
        long s = nextSerial();
        byte[] bytes = MessageBuilder.encodeString(Message.SIGNAL, NO_REPLY, s, PATH, iface, member, null,
                MessageBuilder.NO_REPLY_SERIAL, destination, Bus.DRIVER_NAME, arg);
        return bus.emitToName(new Message(Message.SIGNAL, NO_REPLY, s, Message.NO_REPLY_SERIAL, destination, PATH,
                iface, member, null, new SealedPayload(bytes), new StringArgs(arg)));
    }

    /**
     * A method call from the bus with one 'as' argument and NO_REPLY_EXPECTED (systemd's
     * Manager.SetEnvironment). {@code to} non-null: to that connection, addressed by its unique
     * name (dbus-daemon's bus_transaction_send_from_driver); null: to {@code name}, waiting on
     * its activator while it has no owner.
     */
    public Delivery callFromBus(Connection to, String name, String path, String iface, String member,
                                List<String> strings) {
        long s = nextSerial();
        String dest = to != null ? to.uniqueName() : name;
        byte[] bytes = MessageBuilder.encode(Message.METHOD_CALL, NO_REPLY, s, path, iface, member, null,
                MessageBuilder.NO_REPLY_SERIAL, dest, Bus.DRIVER_NAME, "as", new MessageBuilder.StringArray(strings), 0);
        Message m = new Message(Message.METHOD_CALL, NO_REPLY, s, Message.NO_REPLY_SERIAL, dest, path, iface,
                member, null, new SealedPayload(bytes), ArgSource.NONE);
        if (to != null) {
            bus.emitTo(to, m);
            return Delivery.OK;
        }
        return bus.emitToName(m);
    }

    /** A bus signal with no arguments (ActivatableServicesChanged). */
    public void signal(String member) {
        long s = nextSerial();
        byte[] bytes = MessageBuilder.encode(Message.SIGNAL, NO_REPLY, s, PATH, IFACE, member, null,
                MessageBuilder.NO_REPLY_SERIAL, null, Bus.DRIVER_NAME, null, (byte[]) null);
        bus.emitSignal(new Message(Message.SIGNAL, NO_REPLY, s, Message.NO_REPLY_SERIAL, null, PATH, IFACE,
                member, null, new SealedPayload(bytes), ArgSource.NONE));
    }

    /** A bus broadcast at /org/freedesktop/DBus on {@code iface} with one object path (Containers1.InstanceRemoved). */
    public void signalWithPath(String iface, String member, String objectPath) {
        long s = nextSerial();
        byte[] body = new BodyWriter().writeObjectPath(objectPath).toByteArray();
        byte[] bytes = MessageBuilder.encode(Message.SIGNAL, NO_REPLY, s, PATH, iface, member, null,
                MessageBuilder.NO_REPLY_SERIAL, null, Bus.DRIVER_NAME, "o", body);
        bus.emitSignal(new Message(Message.SIGNAL, NO_REPLY, s, Message.NO_REPLY_SERIAL, null, PATH, iface,
                member, null, new SealedPayload(bytes), new PathArg(objectPath)));
    }

    /** One object path argument, for arg0path= rules. */
    private record PathArg(String path) implements ArgSource {
        @Override
        public String arg(int index) {
            return index == 0 ? path : null;
        }

        @Override
        public boolean isObjectPath(int index) {
            return index == 0;
        }
    }

    public void nameOwnerChanged(String name, String oldOwner, String newOwner) {
        long s = nextSerial();
        // Encoded only if a rule or a monitor takes it: most connects and disconnects have no
        // NameOwnerChanged audience beyond a few watchers of well-known names.
        SealedPayload payload = SealedPayload.deferred(new NameOwnerChangedEncoder(s, name, oldOwner, newOwner));
        bus.emitSignal(new Message(Message.SIGNAL, NO_REPLY, s, Message.NO_REPLY_SERIAL, null, PATH, IFACE,
                "NameOwnerChanged", null, payload, new StringArgs(name, oldOwner, newOwner)));
    }

    /** Encodes a NameOwnerChanged when first needed (a class: C1 makes capturing lambdas slow). */
    private static final class NameOwnerChangedEncoder
            implements java.util.function.Supplier<byte[]>, MessageBuilder.Body {
        private final long serial;
        private final String name;
        private final String oldOwner;
        private final String newOwner;

        NameOwnerChangedEncoder(long serial, String name, String oldOwner, String newOwner) {
            this.serial = serial;
            this.name = name;
            this.oldOwner = oldOwner;
            this.newOwner = newOwner;
        }

        @Override
        public byte[] get() {
            return MessageBuilder.encode(Message.SIGNAL, NO_REPLY, serial, PATH, IFACE, "NameOwnerChanged", null,
                    MessageBuilder.NO_REPLY_SERIAL, null, Bus.DRIVER_NAME, "sss", this, 0);
        }

        @Override
        public void writeTo(BodyWriter w) {
            w.writeString(name);
            w.writeString(oldOwner);
            w.writeString(newOwner);
        }
    }

    /** Renders one transaction's name changes in dbus-daemon's order. */
    public void emit(List<NameChange> changes) {
        for (NameChange c : changes) {
            // A leaving connection gets no NameLost, but monitors see it, as with dbus-daemon.
            if (c.oldOwner() != null && (!c.oldOwner().isClosed() || bus.hasMonitors())) {
                unicastSignal(c.oldOwner(), "NameLost", c.name());
            }
            nameOwnerChanged(c.name(), c.oldOwnerName(), c.newOwnerName());
            if (c.newOwner() != null) {
                unicastSignal(c.newOwner(), "NameAcquired", c.name());
            }
        }
    }

    /** Arguments of a bus-built message, known without decoding. */
    private record StringArgs(String... values) implements ArgSource {
        @Override
        public String arg(int index) {
            return index < values.length ? values[index] : null;
        }

        @Override
        public boolean isObjectPath(int index) {
            return false;
        }
    }
}
