package org.kdbusbridge.bridge.driver;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
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

/**
 * Containers1 against a core Bus and a recording host, without sockets: who may call what (any
 * uid may AddServer, only the instance's uid may stop it, SocketPath is the owner's and root's),
 * what reaches the host, the draft's error texts, and the metadata kept by GetInstanceInfo.
 */
class ContainersMethodsTest {
    private static final long BUS_UID = 1000;
    private static final long STRANGER = BUS_UID + 1;

    private final Bus bus = new Bus(new BusLimits());
    private final List<EndpointRequest> added = new ArrayList<>();
    private final Set<String> stopped = new HashSet<>();
    /** Non-null: the host refuses every endpoint over this cap. */
    private org.kdbusbridge.core.endpoint.EndpointCaps.Refusal refuseWith;
    private final Driver driver = new Driver(bus, "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210",
            new Driver.Host() {
                @Override public String reloadConfig() { return null; }
                @Override public long busUid() { return BUS_UID; }
                @Override public long busPid() { return 1; }
                @Override public void closeWhenFlushed(Connection c) { }
                @Override public boolean containers() { return true; }
                @Override public EndpointRequest.Bound addEndpoint(EndpointRequest r) {
                    if (refuseWith != null) {
                        throw new EndpointRequest.LimitExceeded(refuseWith);
                    }
                    added.add(r);
                    return new EndpointRequest.Bound("unix:path=/run/c" + added.size(), "/run/c" + added.size());
                }
                @Override public LiveEndpoint liveEndpoint(String id) {
                    for (EndpointRequest r : added) {
                        if (r.filter().endpointId().equals(id) && !stopped.contains(id)) {
                            return new LiveEndpoint(id, r.filter(), r.creator(), true);
                        }
                    }
                    return null;
                }
                @Override public boolean stopEndpoint(String id) {
                    return stopped.add(id);
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

    /** The next message queued for {@code c}, its header wrapped. */
    private static MessageHeader answer(Connection c) throws ProtocolException {
        Message m = c.pool().pop();
        assertNotNull(m, "an answer");
        ByteBuffer view = m.payload().view();
        MessageHeader h = new MessageHeader();
        h.wrap(view, view.position(), view.remaining());
        return h;
    }

    private MessageHeader addServer(Connection c, String type, Consumer<BodyWriter> metadata, Consumer<BodyWriter> named)
            throws ProtocolException {
        BodyWriter w = new BodyWriter().writeString(type).writeString("org.example.App");
        w.beginArray('{');
        metadata.accept(w);
        w.endArray();
        w.beginArray('{');
        named.accept(w);
        w.endArray();
        send(c, ContainersMethods.IFACE, "AddServer", "ssa{sv}a{sv}", w);
        return answer(c);
    }

    private static String error(MessageHeader h) throws ProtocolException {
        assertNotNull(h.errorName(), "an error");
        return h.errorName() + ": " + BodyReader.of(h).readString();
    }

    @Test
    void anyUidMayAddAServerThatOnlyItsUidMayConnectTo() throws ProtocolException {
        Connection stranger = client(STRANGER);
        MessageHeader h = addServer(stranger, "org.example.Sandbox", w -> { }, w -> { });
        assertNull(h.errorName());
        assertEquals("oays", h.signature());
        BodyReader b = BodyReader.of(h);
        assertEquals("/org/freedesktop/DBus/Containers1/c1", b.readObjectPath());
        assertArrayEquals("/run/c1\0".getBytes(java.nio.charset.StandardCharsets.US_ASCII), b.readByteArray());
        assertEquals("unix:path=/run/c1", b.readString());
        EndpointRequest r = added.get(0);
        assertNull(r.where(), "the bus picks the path");
        assertEquals(STRANGER, r.onlyUid());
        assertTrue(r.creatorStopsListening());
        assertEquals(-1, r.lifetimeFd());
        assertFalse(r.filter().filtering(), "no ProxyOptions: no filter");
        assertEquals("org.example.App", r.filter().appId());
        assertTrue(r.options().isEmpty());
    }

    @Test
    void refusalsHaveTheDraftsTexts() throws ProtocolException {
        Connection stranger = client(STRANGER);
        assertEquals(DBusErrors.INVALID_ARGS + ": The container type identifier must have the syntax of an interface name",
                error(addServer(stranger, "not-an-interface", w -> { }, w -> { })));
        assertEquals(DBusErrors.INVALID_ARGS + ": Named parameter Frobnicate is not understood",
                error(addServer(stranger, "org.example.Sandbox", w -> { }, w -> w.beginDictEntry()
                        .writeString("Frobnicate").writeVariant("b").writeBoolean(true).endDictEntry())));
        assertEquals(DBusErrors.ACCESS_DENIED + ": rejected attempt to use org.kdbusbridge.SocketPath by uid " + STRANGER,
                error(addServer(stranger, "org.example.Sandbox", w -> { }, w -> w.beginDictEntry()
                        .writeString(ContainersMethods.SOCKET_PATH).writeVariant("s").writeString("/tmp/x").endDictEntry())));
        assertEquals(DBusErrors.INVALID_ARGS + ": Named parameter org.kdbusbridge.LifetimeFd must be a unix fd passed with the call",
                error(addServer(stranger, "org.example.Sandbox", w -> { }, w -> w.beginDictEntry()
                        .writeString(ContainersMethods.LIFETIME_FD).writeVariant("h").writeUnixFd(0).endDictEntry())));
        assertEquals(DBusErrors.INVALID_ARGS + ": ':1.5' is not a valid dbus name",
                error(addServer(stranger, "org.example.Sandbox", w -> { }, w -> w.beginDictEntry()
                        .writeString(ContainersMethods.PROXY_OPTIONS).writeVariant("as").beginArray('s')
                        .writeString("--own=:1.5").endArray().endDictEntry())));
        assertTrue(added.isEmpty(), "nothing reached the host");
    }

    @Test
    void onlyTheInstancesUidMayStopIt() throws ProtocolException {
        Connection owner = client(BUS_UID);
        assertNull(addServer(owner, "org.example.Sandbox", w -> { }, w -> w.beginDictEntry()
                .writeString(ContainersMethods.SOCKET_PATH).writeVariant("s").writeString("/tmp/app").endDictEntry())
                .errorName());
        assertEquals("/tmp/app", added.get(0).where(), "the owner may pick the path");
        String path = "/org/freedesktop/DBus/Containers1/c1";
        for (Connection other : List.of(client(STRANGER), client(0))) {
            send(other, ContainersMethods.IFACE, "StopInstance", "o", new BodyWriter().writeObjectPath(path));
            assertEquals(DBusErrors.ACCESS_DENIED + ": User " + bus.resolve(other.uniqueName()).credentials().uid()
                    + " cannot stop a container server started by user " + BUS_UID, error(answer(other)));
        }
        assertTrue(stopped.isEmpty());
        send(owner, ContainersMethods.IFACE, "StopInstance", "o", new BodyWriter().writeObjectPath(path));
        assertNull(answer(owner).errorName());
        assertEquals(Set.of("c1"), stopped);
        send(owner, ContainersMethods.IFACE, "StopInstance", "o", new BodyWriter().writeObjectPath(path));
        assertEquals("org.freedesktop.DBus.Error.NotContainer: There is no container with path '" + path + "'",
                error(answer(owner)));
    }

    /** One entry of every basic type but h, plus a nested variant, a struct, a dict and arrays. */
    static void everyType(BodyWriter w) {
        w.beginDictEntry().writeString("y").writeVariant("y").writeByte(0xfe).endDictEntry();
        w.beginDictEntry().writeString("b").writeVariant("b").writeBoolean(true).endDictEntry();
        w.beginDictEntry().writeString("n").writeVariant("n").writeInt16(-2).endDictEntry();
        w.beginDictEntry().writeString("q").writeVariant("q").writeUint16(65535).endDictEntry();
        w.beginDictEntry().writeString("i").writeVariant("i").writeInt32(-3).endDictEntry();
        w.beginDictEntry().writeString("u").writeVariant("u").writeUint32(4_000_000_000L).endDictEntry();
        w.beginDictEntry().writeString("x").writeVariant("x").writeInt64(-5).endDictEntry();
        w.beginDictEntry().writeString("t").writeVariant("t").writeUint64(-1L).endDictEntry();
        w.beginDictEntry().writeString("d").writeVariant("d").writeDouble(1.5).endDictEntry();
        w.beginDictEntry().writeString("s").writeVariant("s").writeString("text é").endDictEntry();
        w.beginDictEntry().writeString("o").writeVariant("o").writeObjectPath("/org/example/P").endDictEntry();
        w.beginDictEntry().writeString("g").writeVariant("g").writeSignature("a{sv}").endDictEntry();
        w.beginDictEntry().writeString("vv").writeVariant("v").writeVariant("q").writeUint16(9).endDictEntry();
        w.beginDictEntry().writeString("ay").writeVariant("ay").writeByteArray(new byte[] {1, 2}).endDictEntry();
        w.beginDictEntry().writeString("aq").writeVariant("aq").beginArray('q').writeUint16(1).writeUint16(2)
                .endArray().endDictEntry();
        w.beginDictEntry().writeString("st").writeVariant("(yt)").beginStruct().writeByte(1).writeUint64(2).endStruct()
                .endDictEntry();
        w.beginDictEntry().writeString("nested").writeVariant("a{sv}").beginArray('{').beginDictEntry()
                .writeString("k").writeVariant("o").writeObjectPath("/k").endDictEntry().endArray().endDictEntry();
    }

    /** The a{sv} of {@code entries} alone, marshalled from offset 0. */
    static byte[] dict(Consumer<BodyWriter> entries) {
        BodyWriter w = new BodyWriter();
        w.beginArray('{');
        entries.accept(w);
        w.endArray();
        return w.toByteArray();
    }

    @Test
    void metadataComesBackFromGetInstanceInfoWithEveryTypeAsGiven() throws ProtocolException {
        Connection owner = client(BUS_UID);
        // Misaligned on purpose: the type string's length moves the dict by 4 bytes in the call.
        assertNull(addServer(owner, "org.example.Sandbo", ContainersMethodsTest::everyType, w -> { }).errorName());
        assertTrue(added.get(0).metadataBytes() > 0, "the host is told what the instance keeps");
        send(owner, ContainersMethods.IFACE, "GetInstanceInfo", "o",
                new BodyWriter().writeObjectPath("/org/freedesktop/DBus/Containers1/c1"));
        MessageHeader h = answer(owner);
        assertNull(h.errorName());
        assertEquals("a{sv}ssa{sv}", h.signature());
        BodyReader b = BodyReader.of(h);
        Map<String, Object> creds = b.readDictStringVariant();
        assertEquals(BUS_UID, creds.get("UnixUserID"));
        assertEquals(4242L, creds.get("ProcessID"));
        assertEquals("org.example.Sandbo", b.readString());
        assertEquals("org.example.App", b.readString());
        BodyWriter back = new BodyWriter();
        b.copyValue(back, false); // types and values as they are on the wire
        assertArrayEquals(dict(ContainersMethodsTest::everyType), back.toByteArray());
        assertFalse(b.hasNext());
    }

    @Test
    void metadataFromABigEndianCallKeepsItsTypes() throws ProtocolException {
        // {"q": <uint16 0x0102>, "o": <objectpath "/a">} as a big-endian sender marshals it.
        byte[] be = {
            0, 0, 0, 0, 0, 0, 0, 0, // array length (set below), padding to 8
            0, 0, 0, 1, 'q', 0, 1, 'q', 0, 0, 1, 2, 0, 0, 0, 0, // "q" <q 0x0102>, padding to 8
            0, 0, 0, 1, 'o', 0, 1, 'o', 0, 0, 0, 0, 0, 0, 0, 2, '/', 'a', 0 // "o", padding to 4, <o "/a">
        };
        be[3] = (byte) (be.length - 8);
        BodyReader r = new BodyReader(ByteBuffer.wrap(be), 0, be.length, java.nio.ByteOrder.BIG_ENDIAN, "a{sv}");
        BodyWriter kept = new BodyWriter();
        r.copyValue(kept, false);
        assertArrayEquals(dict(w -> {
            w.beginDictEntry().writeString("q").writeVariant("q").writeUint16(0x0102).endDictEntry();
            w.beginDictEntry().writeString("o").writeVariant("o").writeObjectPath("/a").endDictEntry();
        }), kept.toByteArray());
    }

    @Test
    void aUnixFdInMetadataIsRefused() throws ProtocolException {
        Connection owner = client(BUS_UID);
        assertEquals(DBusErrors.INVALID_ARGS + ": Container metadata cannot hold a unix fd", error(addServer(owner,
                "org.example.Sandbox", w -> w.beginDictEntry().writeString("fd").writeVariant("h").writeUnixFd(0)
                        .endDictEntry(), w -> { })));
        assertTrue(added.isEmpty());
    }

    @Test
    void theHostsCapRefusalIsLimitsExceededWithItsText() throws ProtocolException {
        refuseWith = new org.kdbusbridge.core.endpoint.EndpointCaps.Refusal("max_containers", 3,
                "Connection \":1.1\" () is not allowed to create more container servers (max_containers=3)");
        Connection stranger = client(STRANGER);
        assertEquals(DBusErrors.LIMITS_EXCEEDED + ": " + refuseWith.message(),
                error(addServer(stranger, "org.example.Sandbox", w -> { }, w -> { })));
        // The next id is not used up by a refusal.
        refuseWith = null;
        assertNull(addServer(stranger, "org.example.Sandbox", w -> { }, w -> { }).errorName());
        assertEquals("c1", added.get(added.size() - 1).filter().endpointId());
    }

    @Test
    void rowsAreOpenAtTheCanonicalPathAndTheInterfaceIsListed() {
        assertTrue(DriverTables.EXTRA_INTERFACES.contains(ContainersMethods.IFACE));
        for (DriverTables.Iface ih : DriverTables.INTERFACES) {
            if (ih.name().equals(ContainersMethods.IFACE)) {
                assertFalse(ih.anyPath());
                assertEquals(List.of("AddServer", "StopInstance", "StopListening", "GetConnectionInstance",
                        "GetInstanceInfo"), ih.methods().stream().map(DriverTables.Method::name).toList());
                ih.methods().forEach(m -> assertFalse(m.privileged() || m.anyPath(), m.name()));
                assertTrue(ih.properties().isEmpty(), "SupportedArguments is not introspected (DriverTables)");
                return;
            }
        }
        throw new AssertionError("no " + ContainersMethods.IFACE + " in the table");
    }
}
