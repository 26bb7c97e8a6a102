// Invariants: only a connection built inside connect() reads the field (a thread-local scope,
// so other connections of the process, built before, after or by other threads, keep dbus-java's
// own reader); a message's metadata is found by the identity of its SENDER string, which
// dbus-java decodes afresh for every message and shares, by reference, with the typed signal it
// makes from it and with the DBusCallInfo of the call it serves; if that ever stops being unique
// (one string for two live messages) lookups answer empty rather than another message's facts.
package org.kdbusbridge.bridge.client.dbusjava;

import java.util.List;
import java.util.Optional;

import org.freedesktop.dbus.DBusCallInfo;
import org.freedesktop.dbus.annotations.DBusInterfaceName;
import org.freedesktop.dbus.connections.AbstractConnection;
import org.freedesktop.dbus.connections.impl.DBusConnection;
import org.freedesktop.dbus.connections.impl.DBusConnectionBuilder;
import org.freedesktop.dbus.exceptions.DBusException;
import org.freedesktop.dbus.interfaces.DBusInterface;
import org.freedesktop.dbus.messages.Message;
import org.kdbusbridge.bridge.metadata.MessageMetadata;

/**
 * AttachMetadata for dbus-java (docs/extensions.md, "dbus-java"): dbus-java 5.2 keeps header
 * fields in a table of the specification's ten codes and fails on field 107, so a dbus-java
 * connection can opt in only through this helper, which reads the connection's frames itself
 * (MetadataSocketProvider, MetadataMessageReader) and keeps the field beside each message.
 *
 * <pre>
 * DBusConnection c = DbusJavaMetadata.connect(DBusConnectionBuilder.forAddress(address).withShared(false));
 * DbusJavaMetadata.attach(c, List.of("creds", "names", "seq"));
 * // in a signal handler:   DbusJavaMetadata.of(signal)
 * // in an exported method: DbusJavaMetadata.ofCurrentCall()
 * </pre>
 *
 * Only dbus-java transports without fd passing (dbus-java-transport-native-unixsocket) can be
 * read so; {@link #connect} refuses a connection it could not take over.
 */
public final class DbusJavaMetadata {
    private DbusJavaMetadata() { }

    /** The bus's vendor interface, for {@link #attach} and for callers of its other methods. */
    @DBusInterfaceName("org.kdbusbridge.Extensions1")
    public interface Extensions1 extends DBusInterface {
        void AttachMetadata(List<String> items);

        List<String> GetAttachedMetadata();
    }

    /** Non-null while this thread builds a connection through {@link #connect}. */
    private static final ThreadLocal<boolean[]> BUILDING = new ThreadLocal<>();
    private static final WeakIdentityMap<Object, Attached> ATTACHED = new WeakIdentityMap<>();

    /**
     * Builds {@code builder}'s connection with the metadata reader. Its messages are read by
     * this helper (field 107 kept aside) whether or not it opts in; call {@link #attach} next.
     * The connection is always a private one ({@code withShared(false)} is set on the builder):
     * a shared one might be an older connection without the reader, or be handed to code that
     * does not expect AttachMetadata.
     *
     * @throws IllegalStateException if dbus-java did not use the reader (the connection
     *         negotiated unix fd passing, or another socket provider took it): the connection is
     *         closed, since AttachMetadata would stop it from reading
     */
    public static DBusConnection connect(DBusConnectionBuilder builder) throws DBusException {
        boolean[] installed = new boolean[1];
        DBusConnection c;
        BUILDING.set(installed);
        try {
            c = builder.withShared(false).build();
        } finally {
            BUILDING.remove();
        }
        if (!installed[0]) {
            try {
                c.close();
            } catch (java.io.IOException e) {
                // closing a connection we refuse to hand out
            }
            throw new IllegalStateException("dbus-java did not take the metadata reader for this connection "
                    + "(a transport with unix fd passing, such as junixsocket, or another ISocketProvider first): "
                    + "it cannot receive AttachMetadata's field");
        }
        return c;
    }

    /** {@code org.kdbusbridge.Extensions1.AttachMetadata(items)} on a connection from {@link #connect}. */
    public static void attach(DBusConnection connection, List<String> items) throws DBusException {
        connection.getRemoteObject("org.freedesktop.DBus", "/org/freedesktop/DBus", Extensions1.class)
                .AttachMetadata(items);
    }

    /**
     * The metadata the bus attached to {@code message}: a message dbus-java received on a
     * connection from {@link #connect}, or the typed signal it made from one; empty without
     * the field (not opted in, or another connection's message).
     */
    public static Optional<MessageMetadata> of(Message message) {
        Object key = message.getSource() != null ? message.getSource() : message;
        return lookup(key);
    }

    /** The metadata of the method call {@code info} describes (see {@link #ofCurrentCall}). */
    public static Optional<MessageMetadata> of(DBusCallInfo info) {
        return info == null || info.getSource() == null ? Optional.empty() : lookup(info.getSource());
    }

    /**
     * In an exported method, the metadata of the call it is serving (dbus-java's
     * {@code AbstractConnection.getCallInfo()} on the handler thread); empty elsewhere.
     */
    public static Optional<MessageMetadata> ofCurrentCall() {
        return of(AbstractConnection.getCallInfo());
    }

    private static Optional<MessageMetadata> lookup(Object key) {
        Attached a = ATTACHED.get(key);
        return a == null ? Optional.empty() : a.metadata();
    }

    static boolean wantedByThisThread() {
        return BUILDING.get() != null;
    }

    static void markInstalled() {
        boolean[] b = BUILDING.get();
        if (b != null) {
            b[0] = true;
        }
    }

    static void register(Message m, Attached a) {
        ATTACHED.put(m.getSource() != null ? m.getSource() : m, a);
    }

    /** For tests: how many messages' metadata is held (the unreachable ones swept first). */
    static int held() {
        return ATTACHED.size();
    }

    /** One message's field, parsed on first use (most receivers read few of them). */
    static final class Attached {
        private final byte[] field;
        private volatile Optional<MessageMetadata> parsed;

        Attached(byte[] fieldAsMessage) {
            this.field = fieldAsMessage;
        }

        Optional<MessageMetadata> metadata() {
            Optional<MessageMetadata> p = parsed;
            if (p == null) {
                p = MessageMetadata.parse(field);
                parsed = p;
            }
            return p;
        }
    }
}
