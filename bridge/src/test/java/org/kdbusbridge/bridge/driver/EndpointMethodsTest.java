package org.kdbusbridge.bridge.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

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
import org.kdbusbridge.core.endpoint.EndpointFilter;
import org.kdbusbridge.core.message.Message;

/**
 * Endpoints1 against a core Bus and a recording host, without sockets: who may call it (bus
 * owner's uid and root, as BecomeMonitor), what reaches the host, and its error texts.
 */
class EndpointMethodsTest {
    private static final long BUS_UID = 1000;

    private final Bus bus = new Bus(new BusLimits());
    private final List<EndpointFilter> added = new ArrayList<>();
    private final List<EndpointRequest> requests = new ArrayList<>();
    /** Non-null: the host refuses every endpoint over this cap. */
    private org.kdbusbridge.core.endpoint.EndpointCaps.Refusal refuseWith;
    private final Driver driver = new Driver(bus, "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210",
            new Driver.Host() {
                @Override public String reloadConfig() { return null; }
                @Override public long busUid() { return BUS_UID; }
                @Override public long busPid() { return 1; }
                @Override public void closeWhenFlushed(Connection c) { }
                @Override public EndpointRequest.Bound addEndpoint(EndpointRequest r) {
                    if (refuseWith != null) {
                        throw new EndpointRequest.LimitExceeded(refuseWith);
                    }
                    added.add(r.filter());
                    requests.add(r);
                    return new EndpointRequest.Bound("unix:path=" + r.where(), r.where());
                }
            });
    private long serial;

    private Connection client(long uid) throws ProtocolException {
        Connection c = bus.connect(new Credentials(uid, uid, 4242), x -> { });
        send(c, "org.freedesktop.DBus", "Hello", null, new BodyWriter());
        while (c.pool().pop() != null) {
            // Hello's reply and NameAcquired
        }
        return c;
    }

    private void send(Connection c, String iface, String member, String sig, BodyWriter w) throws ProtocolException {
        byte[] body = w.toByteArray();
        long s = ++serial;
        byte[] bytes = MessageBuilder.encode(Message.METHOD_CALL, 0, s, DriverTables.PATH, iface, member, null,
                MessageBuilder.NO_REPLY_SERIAL, Bus.DRIVER_NAME, c.uniqueName(), sig, body);
        MessageHeader h = new MessageHeader();
        h.wrap(ByteBuffer.wrap(bytes), 0, bytes.length);
        driver.handle(new DriverCall(c, Message.METHOD_CALL, 0, s, DriverTables.PATH, iface, member, h.signature(),
                BodyReader.of(h)));
    }

    /** AddEndpoint(where, options, {app-id}) from {@code c}; returns {error name or null, first string}. */
    private String[] addEndpoint(Connection c, List<String> options) throws ProtocolException {
        return addEndpoint(c, options, w -> { });
    }

    /** As above with more metadata entries after the app id. */
    private String[] addEndpoint(Connection c, List<String> options, java.util.function.Consumer<BodyWriter> more)
            throws ProtocolException {
        BodyWriter w = new BodyWriter();
        w.writeString("/tmp/app.sock");
        w.beginArray('s');
        for (String o : options) {
            w.writeString(o);
        }
        w.endArray();
        w.beginArray('{');
        w.beginDictEntry();
        w.writeString("app-id");
        w.writeVariant("s");
        w.writeString("org.example.App");
        w.endDictEntry();
        more.accept(w);
        w.endArray();
        send(c, EndpointMethods.IFACE, "AddEndpoint", "sasa{sv}", w);
        Message m = c.pool().pop();
        assertNotNull(m);
        ByteBuffer view = m.payload().view();
        MessageHeader h = new MessageHeader();
        h.wrap(view, view.position(), view.remaining());
        return new String[] {h.errorName(), BodyReader.of(h).readString()};
    }

    @Test
    void anotherUidIsRefusedAsForBecomeMonitor() throws ProtocolException {
        Connection stranger = client(BUS_UID + 1);
        String[] r = addEndpoint(stranger, List.of("--filter"));
        assertEquals(DBusErrors.ACCESS_DENIED, r[0]);
        assertEquals("rejected attempt to call AddEndpoint by uid " + (BUS_UID + 1), r[1]);
        assertTrue(added.isEmpty(), "nothing reached the host");
    }

    @Test
    void ownerAndRootReachTheHostWithTheParsedFilter() throws ProtocolException {
        String[] r = addEndpoint(client(BUS_UID), List.of("--filter", "--talk=org.freedesktop.Notifications"));
        assertNull(r[0], r[1]);
        assertEquals("e1", r[1]);
        String[] root = addEndpoint(client(0), List.of());
        assertNull(root[0], root[1]);
        assertEquals("e2", root[1]);
        assertEquals(2, added.size());
        EndpointFilter f = added.get(0);
        assertEquals("e1", f.endpointId());
        assertEquals("org.example.App", f.appId());
        assertNull(f.instanceId());
        assertTrue(f.filtering());
        assertEquals(1, f.nameRules().size());
    }

    @Test
    void maxConnectionsMetadataIsTheEndpointsOwnCap() throws ProtocolException {
        Connection owner = client(BUS_UID);
        assertNull(addEndpoint(owner, List.of())[0]);
        assertEquals(-1, requests.get(0).maxConnections(), "none given: the bus's max_connections_per_endpoint");
        assertTrue(requests.get(0).metadataBytes() > 0, "the metadata the endpoint keeps is measured");
        assertNull(addEndpoint(owner, List.of(), w -> w.beginDictEntry().writeString("max-connections")
                .writeVariant("u").writeUint32(3).endDictEntry())[0]);
        assertEquals(3, requests.get(1).maxConnections());
        String[] zero = addEndpoint(owner, List.of(), w -> w.beginDictEntry().writeString("max-connections")
                .writeVariant("u").writeUint32(0).endDictEntry());
        assertEquals(DBusErrors.INVALID_ARGS, zero[0]);
        assertEquals("Metadata 'max-connections' must be a uint32 of at least 1", zero[1]);
        String[] signed = addEndpoint(owner, List.of(), w -> w.beginDictEntry().writeString("max-connections")
                .writeVariant("i").writeInt32(3).endDictEntry());
        assertEquals(DBusErrors.INVALID_ARGS, signed[0]);
        assertEquals(2, requests.size());
    }

    @Test
    void theHostsCapRefusalIsLimitsExceeded() throws ProtocolException {
        refuseWith = new org.kdbusbridge.core.endpoint.EndpointCaps.Refusal("max_endpoints_per_connection", 16,
                "Connection \":1.1\" () is not allowed to create more endpoints (max_endpoints_per_connection=16)");
        String[] r = addEndpoint(client(BUS_UID), List.of());
        assertEquals(DBusErrors.LIMITS_EXCEEDED, r[0]);
        assertEquals(refuseWith.message(), r[1]);
    }

    @Test
    void refusedOptionsAreInvalidArgs() throws ProtocolException {
        String[] r = addEndpoint(client(BUS_UID), List.of("--own=:1.5"));
        assertEquals(DBusErrors.INVALID_ARGS, r[0]);
        assertEquals("':1.5' is not a valid dbus name", r[1]);
        assertTrue(added.isEmpty());
    }

    @Test
    void interfaceIsListedAndItsControlMethodsArePrivileged() {
        assertTrue(DriverTables.EXTRA_INTERFACES.contains(EndpointMethods.IFACE));
        for (DriverTables.Iface ih : DriverTables.INTERFACES) {
            if (ih.name().equals(EndpointMethods.IFACE)) {
                assertEquals(4, ih.methods().size());
                // the control methods are the owner's; asking which endpoint a peer is in is anyone's
                ih.methods().forEach(m -> assertEquals(!m.name().equals("GetConnectionInstance"), m.privileged(), m.name()));
                return;
            }
        }
        throw new AssertionError("no " + EndpointMethods.IFACE + " in the table");
    }
}
