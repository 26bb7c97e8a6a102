// Invariants under test (issue 18, custom endpoints, the bridge side): AddEndpoint by the bus owner
// binds a socket whose connections carry the endpoint's filter from before Hello; ListEndpoints
// shows it with its metadata and options; RemoveEndpoint and the creator's disconnect each unlink
// the socket and disconnect the endpoint's connections; bad options are InvalidArgs with the
// parser's text; a connection inside an endpoint cannot use Endpoints1. Waits have deadlines.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.bridge.transport.UnixListener;
import org.kdbusbridge.core.connection.Connection;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class EndpointListenersTest {
    private static final String IFACE = "org.kdbusbridge.Endpoints1";
    private static final String INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs";
    private static final String ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied";

    @TempDir
    Path dir;
    private BusServer server;
    private Path bus;
    private final List<AutoCloseable> open = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        bus = dir.resolve("bus");
        server = new BusServer(BusConfig.forAddress("unix:path=" + bus), TransportSettings.fromSystemProperties());
        server.start();
    }

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : open) {
            c.close();
        }
        server.stop();
    }

    private RawClient client(Path socket) throws Exception {
        RawClient c = RawClient.open(socket);
        open.add(c);
        return c;
    }

    private static long add(RawClient c, String where, List<String> options, Map<String, String> metadata)
            throws Exception {
        BodyWriter w = new BodyWriter();
        w.writeString(where);
        w.beginArray('s');
        for (String o : options) {
            w.writeString(o);
        }
        w.endArray();
        w.beginArray('{');
        for (Map.Entry<String, String> e : metadata.entrySet()) {
            w.beginDictEntry();
            w.writeString(e.getKey());
            w.writeVariant("s");
            w.writeString(e.getValue());
            w.endDictEntry();
        }
        w.endArray();
        return c.call(0, RawClient.BUS, RawClient.BUS_PATH, IFACE, "AddEndpoint", "sasa{sv}", w.toByteArray());
    }

    /** AddEndpoint that must succeed; returns (id, address). */
    private static String[] addOk(RawClient c, Path socket, List<String> options, Map<String, String> metadata)
            throws Exception {
        Msg r = c.expectReturn(add(c, socket.toString(), options, metadata));
        BodyReader b = r.body();
        return new String[] {b.readString(), b.readString()};
    }

    private static Msg endpointCall(RawClient c, String member, String sig, byte[] body) throws Exception {
        long s = c.call(0, RawClient.BUS, RawClient.BUS_PATH, IFACE, member, sig, body);
        Msg m = c.read();
        assertEquals(s, m.replySerial(), m.toString());
        return m;
    }

    private static List<Object> list(RawClient c) throws Exception {
        Msg m = endpointCall(c, "ListEndpoints", null, null);
        assertNull(m.errorName(), m.toString());
        assertEquals("a(ssssas)", m.signature());
        @SuppressWarnings("unchecked")
        List<Object> entries = (List<Object>) m.body().readValue();
        return entries;
    }

    private Connection core(String uniqueName) throws Exception {
        return OnLoop.get(server, () -> server.bus().resolve(uniqueName));
    }

    @Test
    void ownerAddsListsConnectsAndRemoves() throws Exception {
        RawClient owner = client(bus);
        Path socket = dir.resolve("app.sock");
        List<String> options = List.of("--filter", "--talk=org.freedesktop.portal.*", "--own=org.example.App");
        String[] added = addOk(owner, socket, options, Map.of("app-id", "org.example.App", "instance-id", "42"));
        assertEquals("e1", added[0]);
        assertTrue(added[1].matches("unix:path=" + java.util.regex.Pattern.quote(socket.toString()) + ",guid=[0-9a-f]{32}"),
                added[1]);
        String endpointGuid = added[1].substring(added[1].indexOf(",guid=") + 6);
        assertNotEquals(server.listenerGuids().get(0), endpointGuid, "an endpoint's server has its own guid");
        assertNotEquals(server.busId(), endpointGuid);
        assertTrue(Files.exists(socket), "socket file bound");

        RawClient inside = client(socket);
        assertEquals(endpointGuid, inside.serverGuid, "the SASL OK line names the endpoint's server");
        Connection c = core(inside.uniqueName);
        assertNotNull(c.endpoint(), "a connection through the endpoint carries its filter");
        assertEquals("e1", c.endpoint().filter().endpointId());
        assertEquals("org.example.App", c.endpoint().filter().appId());
        assertEquals("42", c.endpoint().filter().instanceId());
        assertTrue(c.endpoint().filter().filtering());
        assertNull(core(owner.uniqueName).endpoint(), "the bus's own socket has no endpoint");

        List<Object> entries = list(owner);
        assertEquals(1, entries.size());
        Object[] e = (Object[]) entries.get(0);
        assertEquals("e1", e[0]);
        assertEquals(added[1], e[1]);
        assertEquals("org.example.App", e[2]);
        assertEquals("42", e[3]);
        assertEquals(options, e[4]);

        Msg removed = endpointCall(owner, "RemoveEndpoint", "s", new BodyWriter().writeString("e1").toByteArray());
        assertNull(removed.errorName(), removed.toString());
        assertFalse(Files.exists(socket), "socket file unlinked by the time the reply is out");
        assertTrue(inside.awaitEof(RawClient.TIMEOUT_MS), "the endpoint's connection is disconnected");
        assertTrue(list(owner).isEmpty());
        Msg again = endpointCall(owner, "RemoveEndpoint", "s", new BodyWriter().writeString("e1").toByteArray());
        assertEquals(INVALID_ARGS, again.errorName(), again.toString());
    }

    @Test
    void getConnectionInstanceTellsWhichEndpointAPeerIsIn() throws Exception {
        RawClient owner = client(bus);
        Path socket = dir.resolve("app.sock");
        addOk(owner, socket, List.of("--filter"), Map.of("app-id", "org.example.App"));
        RawClient inside = client(socket);
        RawClient service = client(bus); // any uid may ask: not a privileged method
        Msg m = endpointCall(service, "GetConnectionInstance", "s",
                new BodyWriter().writeString(inside.uniqueName).toByteArray());
        assertNull(m.errorName(), m.toString());
        BodyReader b = m.body();
        assertEquals("e1", b.readString());
        assertEquals("org.example.App", b.readString());
        assertEquals("", b.readString());
        Msg outside = endpointCall(service, "GetConnectionInstance", "s",
                new BodyWriter().writeString(owner.uniqueName).toByteArray());
        assertEquals("org.freedesktop.DBus.Error.NotContainer", outside.errorName(), outside.toString());
        Msg nobody = endpointCall(service, "GetConnectionInstance", "s",
                new BodyWriter().writeString(":1.999").toByteArray());
        assertEquals("org.freedesktop.DBus.Error.NameHasNoOwner", nobody.errorName(), nobody.toString());
    }

    @Test
    void creatorDisconnectRemovesItsEndpointsOnly() throws Exception {
        RawClient creator = RawClient.open(bus);
        RawClient other = client(bus);
        Path mine = dir.resolve("mine.sock");
        Path theirs = dir.resolve("theirs.sock");
        addOk(creator, mine, List.of(), Map.of());
        String[] kept = addOk(other, theirs, List.of("--filter"), Map.of());
        RawClient inside = client(mine);
        RawClient insideKept = client(theirs);
        creator.close();
        assertTrue(inside.awaitEof(RawClient.TIMEOUT_MS), "the endpoint's connection goes with its creator");
        assertFalse(Files.exists(mine), "socket file unlinked");
        assertTrue(Files.exists(theirs), "another creator's endpoint stays");
        List<Object> entries = list(other);
        assertEquals(1, entries.size());
        assertEquals(kept[0], ((Object[]) entries.get(0))[0]);
        // GetId, not sync()'s Peer.Ping: a filtering endpoint refuses Peer calls to the bus, as the proxy does.
        assertNull(insideKept.expectReturn(insideKept.callDriver("GetId", "", new byte[0])).errorName(),
                "its connections stay too");
    }

    @Test
    void malformedOptionsAreInvalidArgsWithTheParsersText() throws Exception {
        RawClient owner = client(bus);
        Msg bad = owner.expectError(add(owner, dir.resolve("x.sock").toString(), List.of("--talk=org"), Map.of()),
                INVALID_ARGS);
        assertEquals("'org' is not a valid dbus name", bad.string0());
        Msg unknown = owner.expectError(add(owner, dir.resolve("x.sock").toString(), List.of("--fd=3"), Map.of()),
                INVALID_ARGS);
        assertEquals("Unknown argument --fd=3", unknown.string0());
        Msg tcp = owner.expectError(add(owner, "tcp:host=127.0.0.1,port=0", List.of(), Map.of()), INVALID_ARGS);
        assertNotNull(tcp.string0());
        Msg dirAddress = owner.expectError(add(owner, "unix:dir=" + dir, List.of(), Map.of()), INVALID_ARGS);
        assertTrue(dirAddress.string0().contains("unix:path= or unix:abstract="), dirAddress.string0());
        Msg relative = owner.expectError(add(owner, "x.sock", List.of(), Map.of()), INVALID_ARGS);
        assertTrue(relative.string0().contains("not absolute"), relative.string0());
        // The same rule for a relative unix:path=: it would be bound against the bus's working directory.
        Msg relativeAddress = owner.expectError(add(owner, "unix:path=x.sock", List.of(), Map.of()), INVALID_ARGS);
        assertEquals("Socket path 'x.sock' is not absolute", relativeAddress.string0());
        assertFalse(Files.exists(java.nio.file.Path.of("x.sock").toAbsolutePath()), "nothing bound in the cwd");
        Msg key = owner.expectError(add(owner, dir.resolve("x.sock").toString(), List.of(), Map.of("color", "red")),
                INVALID_ARGS);
        assertTrue(key.string0().contains("color"), key.string0());
        Msg busOwn = owner.expectError(add(owner, bus.toString(), List.of(), Map.of()), INVALID_ARGS);
        assertTrue(busOwn.string0().contains("in use by this bus"), busOwn.string0());
        // The same file by another spelling ("dir//bus", "dir/./bus") is refused too.
        String other = bus.getParent() + "//./" + bus.getFileName();
        Msg spelled = owner.expectError(add(owner, other, List.of(), Map.of()), INVALID_ARGS);
        assertTrue(spelled.string0().contains("in use by this bus"), spelled.string0());
        assertEquals(0, client(bus).sync(), "the bus's own socket still works");
        assertFalse(Files.exists(dir.resolve("x.sock")), "nothing bound");
        assertTrue(list(owner).isEmpty());
        // The refused attempts used no id: the first endpoint is still e1.
        assertEquals("e1", addOk(owner, dir.resolve("x.sock"), List.of(), Map.of())[0]);
        Msg twice = owner.expectError(add(owner, dir.resolve("x.sock").toString(), List.of(), Map.of()), INVALID_ARGS);
        assertTrue(twice.string0().contains("in use by this bus"), twice.string0());
    }

    @Test
    void aConnectionInsideAnEndpointCannotUseEndpoints1() throws Exception {
        RawClient owner = client(bus);
        Path socket = dir.resolve("open.sock");
        addOk(owner, socket, List.of(), Map.of()); // no --filter: the proxy would pass everything
        RawClient inside = client(socket);
        Msg m = inside.expectError(add(inside, dir.resolve("nested.sock").toString(), List.of(), Map.of()),
                ACCESS_DENIED);
        assertNotNull(m.string0());
        assertFalse(Files.exists(dir.resolve("nested.sock")));
        Msg l = endpointCall(inside, "ListEndpoints", null, null);
        assertEquals(ACCESS_DENIED, l.errorName(), l.toString());
    }

    @Test
    void stopUnlinksEndpointSockets() throws Exception {
        RawClient owner = client(bus);
        Path socket = dir.resolve("s.sock");
        addOk(owner, socket, List.of(), Map.of());
        server.stop();
        assertFalse(Files.exists(socket));
    }

    @Test
    void anEndpointsIncompleteConnectionsMakeRoomOnlyAmongThemselves() throws Exception {
        RawClient owner = client(bus);
        Path socket = dir.resolve("crowd.sock");
        addOk(owner, socket, List.of("--filter"), Map.of());
        OnLoop.get(server, () -> server.limits().maxIncompleteConnections = 2);
        RawClient host = RawClient.connect(bus);
        open.add(host);
        host.write(new byte[] {0}); // a host client still authenticating
        RawClient first = RawClient.connect(socket);
        open.add(first);
        first.write(new byte[] {0});
        OnLoop.await(server, "two incomplete connections", 10,
                () -> server.bus().connectionCount() - server.bus().completedConnectionCount() == 2);
        RawClient second = RawClient.connect(socket); // the limit is reached: who goes?
        open.add(second);
        second.write(new byte[] {0});
        assertTrue(first.awaitEof(RawClient.TIMEOUT_MS), "the endpoint's own oldest incomplete connection went");
        host.writeAscii("AUTH EXTERNAL " + RawClient.hexUid(RawClient.myUid()) + "\r\n");
        assertTrue(host.readLine().startsWith("OK "), "the host's client was not pushed out");
    }

    @Test
    void containers1IsNotOfferedWithoutKdbusContainers() throws Exception {
        RawClient c = client(bus);
        long s = c.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Containers1", "GetInstanceInfo",
                "o", new BodyWriter().writeObjectPath("/org/freedesktop/DBus/Containers1/c1").toByteArray());
        c.expectError(s, "org.freedesktop.DBus.Error.UnknownInterface");
        long g = c.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Properties", "Get", "ss",
                new BodyWriter().writeString("org.freedesktop.DBus").writeString("Interfaces").toByteArray());
        String interfaces = String.valueOf(c.expectReturn(g).body().readValue());
        assertFalse(interfaces.contains("Containers1"), interfaces);
        assertTrue(interfaces.contains("org.kdbusbridge.Endpoints1"), interfaces);
    }

    /** AddEndpoint(socket, [], {max-connections: <u n>}) that must succeed. */
    private static void addCapped(RawClient c, Path socket, long n) throws Exception {
        BodyWriter w = new BodyWriter().writeString(socket.toString());
        w.beginArray('s').endArray();
        w.beginArray('{').beginDictEntry().writeString("max-connections").writeVariant("u").writeUint32(n)
                .endDictEntry().endArray();
        Msg r = c.expectReturn(c.call(0, RawClient.BUS, RawClient.BUS_PATH, IFACE, "AddEndpoint", "sasa{sv}",
                w.toByteArray()));
        assertEquals("ss", r.signature());
    }

    @Test
    void anEndpointTakesItsOwnConnectionCapOrTheBussAndTheOneOverIsClosedAtAccept() throws Exception {
        RawClient owner = client(bus);
        Path capped = dir.resolve("capped.sock");
        addCapped(owner, capped, 2);
        client(capped); // authenticated and Hello'd
        RawClient second = RawClient.connect(capped); // counted from accept, before it authenticates
        open.add(second);
        second.write(new byte[] {0});
        OnLoop.await(server, "two connections through the endpoint", 10, () -> server.bus().connectionCount() == 3);
        RawClient third = RawClient.connect(capped);
        open.add(third);
        assertTrue(third.awaitEof(RawClient.TIMEOUT_MS), "max-connections=2: the third is closed on");
        second.close();
        OnLoop.await(server, "the second is gone", 10, () -> server.bus().connectionCount() == 2);
        client(capped); // room again
        // Without an option of its own: max_connections_per_endpoint (default 64), read at accept.
        assertEquals(64, OnLoop.get(server, () -> server.limits().maxConnectionsPerEndpoint));
        OnLoop.get(server, () -> server.limits().maxConnectionsPerEndpoint = 1);
        Path plain = dir.resolve("plain.sock");
        addOk(owner, plain, List.of(), Map.of());
        client(plain);
        RawClient over = RawClient.connect(plain);
        open.add(over);
        assertTrue(over.awaitEof(RawClient.TIMEOUT_MS), "max_connections_per_endpoint=1: the second is closed on");
        client(bus); // the bus's own socket is not affected
    }

    @Test
    void aConnectionHoldsAtMostMaxEndpointsPerConnection() throws Exception {
        assertEquals(16, OnLoop.get(server, () -> server.limits().maxEndpointsPerConnection));
        OnLoop.get(server, () -> server.limits().maxEndpointsPerConnection = 2);
        RawClient owner = client(bus);
        String[] first = addOk(owner, dir.resolve("a.sock"), List.of(), Map.of());
        addOk(owner, dir.resolve("b.sock"), List.of(), Map.of());
        long asked = add(owner, dir.resolve("c.sock").toString(), List.of(), Map.of());
        Msg refused = owner.read();
        assertEquals(asked, refused.replySerial(), refused.toString());
        assertEquals("org.freedesktop.DBus.Error.LimitsExceeded", refused.errorName(), refused.toString());
        assertTrue(refused.string0().startsWith("Connection \"" + owner.uniqueName + "\" (uid="), refused.string0());
        assertTrue(refused.string0().endsWith(") is not allowed to create more endpoints (max_endpoints_per_connection=2)"),
                refused.string0());
        assertFalse(Files.exists(dir.resolve("c.sock")), "nothing was bound");
        addOk(client(bus), dir.resolve("d.sock"), List.of(), Map.of()); // another connection has its own count
        assertNull(endpointCall(owner, "RemoveEndpoint", "s", new BodyWriter().writeString(first[0]).toByteArray())
                .errorName());
        addOk(owner, dir.resolve("c.sock"), List.of(), Map.of()); // a removed endpoint no longer counts
    }

    private static final String ADDRESS_IN_USE = "org.freedesktop.DBus.Error.AddressInUse";

    /** An abstract name no other test (or helper run) on the machine uses. */
    private static String abstractName(String what) {
        return "kbb-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime() + "-" + what;
    }

    /**
     * Whether nobody holds the abstract name: binding it ourselves works (and lets go at once).
     * Only EADDRINUSE means "held"; any other failure (EMFILE, say) is no answer and fails the
     * test instead of passing an assertFalse.
     */
    private static boolean abstractNameFree(String name) throws java.io.IOException {
        try (UnixListener l = UnixListener.bind(UnixAddress.abstractName(name, null))) {
            assertEquals(UnixAddress.Kind.ABSTRACT, l.boundAddress().kind());
            return true;
        } catch (UnixListener.AddressInUseException e) {
            return false;
        }
    }

    @Test
    void anAbstractEndpointIsBoundListedRefusedTwiceAndFreedByRemove() throws Exception {
        RawClient owner = client(bus);
        String name = abstractName("app");
        List<String> options = List.of("--filter", "--talk=org.example.Talk");
        Msg r = owner.expectReturn(add(owner, "unix:abstract=" + name, options, Map.of("app-id", "org.example.App")));
        BodyReader b = r.body();
        assertEquals("e1", b.readString());
        String address = b.readString();
        assertTrue(address.matches("unix:abstract=" + java.util.regex.Pattern.quote(name) + ",guid=[0-9a-f]{32}"), address);
        assertNotEquals("unix:abstract=" + name + ",guid=" + server.listenerGuids().get(0), address);
        assertFalse(abstractNameFree(name), "the bus holds the name");
        Object[] e = (Object[]) list(owner).get(0);
        assertEquals(address, e[1]);
        assertEquals(options, e[4]);

        // Ours already: InvalidArgs, as for a path of this bus; nothing bound, no id used.
        Msg twice = owner.expectError(add(owner, "unix:abstract=" + name, List.of(), Map.of()), INVALID_ARGS);
        assertEquals("Abstract socket name '" + name + "' is in use by this bus", twice.string0());
        // Held by someone else (here a listener of the test's own): bind's EADDRINUSE, libdbus's AddressInUse.
        String foreign = abstractName("foreign");
        try (UnixListener held = UnixListener.bind(UnixAddress.abstractName(foreign, null))) {
            Msg taken = owner.expectError(add(owner, "unix:abstract=" + foreign, List.of(), Map.of()), ADDRESS_IN_USE);
            assertTrue(taken.string0().endsWith("Address already in use"), taken.string0());
        }
        assertEquals(1, list(owner).size());

        Msg removed = endpointCall(owner, "RemoveEndpoint", "s", new BodyWriter().writeString("e1").toByteArray());
        assertNull(removed.errorName(), removed.toString());
        assertTrue(abstractNameFree(name), "the name is free by the time the reply is out");
        assertTrue(list(owner).isEmpty());
        // ... and the bus can bind it again, under a new id.
        Msg again = owner.expectReturn(add(owner, "unix:abstract=" + name, List.of(), Map.of()));
        assertEquals("e2", again.body().readString());
    }

    @Test
    void anAbstractNameOfTheBussOwnListenerIsRefusedAndACreatorsDisconnectFreesItsName() throws Exception {
        server.stop();
        String own = abstractName("bus");
        server = new BusServer(BusConfig.forAddress("unix:path=" + bus + ";unix:abstract=" + own),
                TransportSettings.fromSystemProperties());
        server.start();
        RawClient owner = client(bus);
        Msg busOwn = owner.expectError(add(owner, "unix:abstract=" + own, List.of(), Map.of()), INVALID_ARGS);
        assertEquals("Abstract socket name '" + own + "' is in use by this bus", busOwn.string0());

        RawClient creator = RawClient.open(bus);
        String name = abstractName("creator");
        creator.expectReturn(add(creator, "unix:abstract=" + name, List.of(), Map.of()));
        assertFalse(abstractNameFree(name));
        creator.close();
        OnLoop.await(server, "the creator's endpoint is gone", 10, () -> server.endpoints().isEmpty());
        assertTrue(abstractNameFree(name), "no file to unlink: closing the listener frees the name");
    }
}
