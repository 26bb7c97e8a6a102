package org.kdbusbridge.bridge.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.function.Consumer;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.Message;

/** The driver against a core Bus and a host, without sockets: dispatch, table checks, texts. */
class DriverDispatchTest {
    private static final long BUS_UID = 1000;

    private final Bus bus = new Bus(new BusLimits());
    private final Driver driver = new Driver(bus, "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210",
            new Driver.Host() {
                @Override public String reloadConfig() { return null; }
                @Override public long busUid() { return BUS_UID; }
                @Override public long busPid() { return 1; }
                @Override public void closeWhenFlushed(Connection c) { }
            });
    private long serial;

    private Connection client(long uid) throws ProtocolException {
        Connection c = bus.connect(new Credentials(uid, uid, 4242), x -> { });
        call(c, DriverTables.PATH, DriverTables.IFACE, "Hello", null, w -> { });
        Reply hello = next(c);
        assertNull(hello.errorName(), hello.text);
        assertEquals(c.uniqueName(), hello.text);
        drain(c); // NameAcquired
        return c;
    }

    /** One decoded message from the caller's pool. */
    private record Reply(int type, String errorName, String signature, String text, List<String> strings, long uint) { }

    private void call(Connection c, String path, String iface, String member, String sig, Consumer<BodyWriter> args)
            throws ProtocolException {
        BodyWriter w = new BodyWriter();
        args.accept(w);
        byte[] body = w.toByteArray();
        long s = ++serial;
        byte[] bytes = MessageBuilder.encode(Message.METHOD_CALL, 0, s, path, iface, member, null,
                MessageBuilder.NO_REPLY_SERIAL, Bus.DRIVER_NAME, c.uniqueName(), sig, body);
        MessageHeader h = new MessageHeader();
        h.wrap(ByteBuffer.wrap(bytes), 0, bytes.length);
        driver.handle(new DriverCall(c, Message.METHOD_CALL, 0, s, path, iface, member, h.signature(), BodyReader.of(h)));
    }

    private static Reply next(Connection c) throws ProtocolException {
        Message m = c.pool().pop();
        assertNotNull(m, "nothing queued for " + c.uniqueName());
        ByteBuffer view = m.payload().view();
        MessageHeader h = new MessageHeader();
        h.wrap(view, view.position(), view.remaining());
        BodyReader r = BodyReader.of(h);
        String sig = h.signature() == null ? "" : h.signature();
        String text = null;
        List<String> strings = null;
        long uint = -1;
        if (sig.startsWith("s")) {
            text = r.readString();
        } else if (sig.equals("as")) {
            strings = r.readStringArray();
        } else if (sig.equals("u")) {
            uint = r.readUint32();
        } else if (sig.equals("b")) {
            uint = r.readBoolean() ? 1 : 0;
        }
        return new Reply(h.type(), h.errorName(), sig, text, strings, uint);
    }

    private static void drain(Connection c) {
        while (c.pool().pop() != null) {
            // discard
        }
    }

    /** Calls a method of org.freedesktop.DBus and returns its answer, skipping signals queued first. */
    private Reply ask(Connection c, String member, String sig, Consumer<BodyWriter> args) throws ProtocolException {
        call(c, DriverTables.PATH, DriverTables.IFACE, member, sig, args);
        Reply r = next(c);
        while (r.type() == Message.SIGNAL) {
            r = next(c);
        }
        return r;
    }

    @Test
    void everyRowHasAHandlerAndIsIntrospected() {
        String xml = DriverTables.introspect(DriverTables.PATH);
        int rows = 0;
        for (DriverTables.Iface ih : DriverTables.INTERFACES) {
            assertTrue(xml.contains("<interface name=\"" + ih.name() + "\">"), ih.name());
            for (DriverTables.Method m : ih.methods()) {
                assertNotNull(m.handler(), m.name());
                assertTrue(xml.contains("<method name=\"" + m.name() + "\">"), m.name());
                rows++;
            }
        }
        assertEquals(xml.split("<method name=").length - 1, rows, "introspection lists exactly the table's rows");
        String elsewhere = DriverTables.introspect("/");
        assertTrue(!elsewhere.contains("BecomeMonitor") && elsewhere.contains("\"Hello\""),
                "non-canonical paths list only the any-path interfaces");
    }

    @Test
    void unknownMethodInterfaceAndWrongArgs() throws ProtocolException {
        Connection c = client(BUS_UID);
        Reply r = ask(c, "NoSuchMethod", null, w -> { });
        assertEquals(DBusErrors.UNKNOWN_METHOD, r.errorName());
        assertEquals("org.freedesktop.DBus does not understand message NoSuchMethod", r.text);

        call(c, DriverTables.PATH, "org.example.Nope", "Ping", null, w -> { });
        r = next(c);
        assertEquals(DBusErrors.UNKNOWN_INTERFACE, r.errorName());

        r = ask(c, "GetNameOwner", "u", w -> w.writeUint32(7));
        assertEquals(DBusErrors.INVALID_ARGS, r.errorName());
        assertEquals("Call to GetNameOwner has wrong args (u, expected s)\n", r.text);
    }

    @Test
    void canonicalOnlyMethodsRefuseOtherPaths() throws ProtocolException {
        Connection c = client(BUS_UID);
        call(c, "/", DriverTables.STATS, "GetStats", null, w -> { });
        Reply r = next(c);
        assertEquals(DBusErrors.UNKNOWN_INTERFACE, r.errorName(), "the stats interface is not on '/'");

        call(c, "/", DriverTables.IFACE, "UpdateActivationEnvironment", "a{ss}", w -> w.beginArray('{').endArray());
        r = next(c);
        assertEquals(DBusErrors.ACCESS_DENIED, r.errorName());
        assertEquals("Method 'UpdateActivationEnvironment' is only available at the canonical object path '"
                + DriverTables.PATH + "'", r.text);

        call(c, "/", null, "Ping", null, w -> { });
        r = next(c);
        assertEquals(Message.METHOD_RETURN, r.type(), "Peer.Ping answers on any path");
    }

    @Test
    void privilegedRowsNeedTheBusOwnersUid() throws ProtocolException {
        Connection stranger = client(BUS_UID + 1);
        call(stranger, DriverTables.PATH, "org.freedesktop.DBus.Monitoring", "BecomeMonitor", "asu",
                w -> w.beginArray('s').endArray().writeUint32(0));
        Reply r = next(stranger);
        assertEquals(DBusErrors.ACCESS_DENIED, r.errorName());
        assertEquals("rejected attempt to call BecomeMonitor by connection " + stranger.uniqueName()
                + " with uid " + (BUS_UID + 1), r.text);
        assertTrue(!bus.isMonitor(stranger));

        r = ask(stranger, "UpdateActivationEnvironment", "a{ss}", w -> w.beginArray('{').endArray());
        assertEquals(DBusErrors.ACCESS_DENIED, r.errorName());
        assertEquals("rejected attempt to call UpdateActivationEnvironment by uid " + (BUS_UID + 1), r.text);
        assertTrue(driver.activationEnvironment().isEmpty());

        Connection owner = client(BUS_UID);
        r = ask(owner, "UpdateActivationEnvironment", "a{ss}", w -> w.beginArray('{')
                .beginDictEntry().writeString("A").writeString("1").endDictEntry().endArray());
        assertNull(r.errorName(), r.text);
        assertEquals("1", driver.activationEnvironment().get("A"));

        Connection root = client(0);
        call(root, DriverTables.PATH, "org.freedesktop.DBus.Monitoring", "BecomeMonitor", "asu",
                w -> w.beginArray('s').endArray().writeUint32(0));
        r = next(root);
        assertNull(r.errorName(), r.text);
        assertTrue(bus.isMonitor(root));
    }

    @Test
    void nameMethodsRenderTheCoresState() throws ProtocolException {
        Connection a = client(BUS_UID);
        Connection b = client(BUS_UID);
        Reply r = ask(a, "RequestName", "su", w -> w.writeString("org.example.Name").writeUint32(0));
        assertEquals(1, r.uint, "PRIMARY_OWNER");
        r = ask(b, "RequestName", "su", w -> w.writeString("org.example.Name").writeUint32(0));
        assertEquals(2, r.uint, "IN_QUEUE");
        drain(a);
        drain(b);

        r = ask(b, "GetNameOwner", "s", w -> w.writeString("org.example.Name"));
        assertEquals(a.uniqueName(), r.text);
        r = ask(b, "ListQueuedOwners", "s", w -> w.writeString("org.example.Name"));
        assertEquals(List.of(a.uniqueName(), b.uniqueName()), r.strings());
        r = ask(b, "NameHasOwner", "s", w -> w.writeString("org.example.Other"));
        assertEquals(0, r.uint);
        r = ask(b, "GetNameOwner", "s", w -> w.writeString("org.example.Other"));
        assertEquals(DBusErrors.NAME_HAS_NO_OWNER, r.errorName());
        assertEquals("Could not get owner of name 'org.example.Other': no such name", r.text);
        r = ask(b, "ListNames", "", w -> { });
        assertTrue(r.strings().containsAll(List.of(Bus.DRIVER_NAME, a.uniqueName(), b.uniqueName(), "org.example.Name")),
                r.strings().toString());

        r = ask(a, "ReleaseName", "s", w -> w.writeString("org.example.Name"));
        assertEquals(1, r.uint, "RELEASED");
        assertEquals(b, bus.resolve("org.example.Name"));
        r = ask(a, "GetConnectionUnixUser", "s", w -> w.writeString("org.example.Name"));
        assertEquals(BUS_UID, r.uint);
        r = ask(a, "GetConnectionUnixProcessID", "s", w -> w.writeString(Bus.DRIVER_NAME));
        assertEquals(1, r.uint, "the bus's own pid for org.freedesktop.DBus");
    }

    @Test
    void propertiesAndSmallMethods() throws ProtocolException {
        Connection c = client(BUS_UID);
        call(c, DriverTables.PATH, "org.freedesktop.DBus.Properties", "Set", "ssv",
                w -> w.writeString(DriverTables.IFACE).writeString("Features").writeVariant("s").writeString("x"));
        Reply r = next(c);
        assertEquals(DBusErrors.PROPERTY_READ_ONLY, r.errorName());
        assertEquals("Property 'org.freedesktop.DBus.Features' cannot be set", r.text);

        r = ask(c, "GetId", "", w -> { });
        assertEquals("0123456789abcdef0123456789abcdef", r.text);
        call(c, DriverTables.PATH, "org.freedesktop.DBus.Peer", "GetMachineId", "", w -> { });
        assertEquals("fedcba9876543210fedcba9876543210", next(c).text);
        call(c, "/org", "org.freedesktop.DBus.Introspectable", "Introspect", "", w -> { });
        assertTrue(next(c).text.contains("<node name=\"freedesktop/DBus\"/>"));
        r = ask(c, "AddMatch", "s", w -> w.writeString("type='signal',member='Foo'"));
        assertNull(r.errorName(), r.text);
        assertEquals(1, c.matchRuleCount());
        r = ask(c, "RemoveMatch", "s", w -> w.writeString("type='signal',member='Bar'"));
        assertEquals(DBusErrors.MATCH_RULE_NOT_FOUND, r.errorName());
    }
}
