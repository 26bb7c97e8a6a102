// Invariants under test (issue 18, the Containers1 draft on a real bus): AddServer makes a socket
// in the container directory whose connections are instances of it; GetConnectionInstance,
// GetInstanceInfo and GetConnectionCredentials (org.freedesktop.DBus.Containers1.Instance) name
// the instance; StopListening unlinks the socket and keeps the connections; StopInstance closes
// them, and InstanceRemoved goes out once the last one is gone; the creator's disconnect only
// stops listening; a lifetime fd's hang-up removes the endpoint, and it outlives its creator.
// Every wait has a deadline.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
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
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.core.connection.Connection;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ContainersServerTest {
    private static final String IFACE = "org.freedesktop.DBus.Containers1";
    private static final String NOT_CONTAINER = "org.freedesktop.DBus.Error.NotContainer";
    private static final String ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied";
    private static final String INSTANCE_KEY = "org.freedesktop.DBus.Containers1.Instance";
    private static final String REMOVED_RULE = "type='signal',sender='org.freedesktop.DBus',interface='" + IFACE
            + "',member='InstanceRemoved'";

    @TempDir
    Path dir;
    private Path containers;
    private BusServer server;
    private Path bus;
    private final List<AutoCloseable> open = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        bus = dir.resolve("bus");
        containers = Files.createDirectory(dir.resolve("containers"));
        server = new BusServer(BusConfig.forAddress("unix:path=" + bus), TransportSettings.fromSystemProperties());
        server.setContainerSocketDir(containers);
        server.setContainers(true); // --kdbus-containers
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

    /** The body of AddServer(type, name, metadata, named arguments), with {@code named} given as raw entries. */
    private static byte[] addServerBody(String type, String name, Map<String, String> metadata,
            java.util.function.Consumer<BodyWriter> named) {
        BodyWriter w = new BodyWriter();
        w.writeString(type);
        w.writeString(name);
        w.beginArray('{');
        for (Map.Entry<String, String> e : metadata.entrySet()) {
            w.beginDictEntry().writeString(e.getKey()).writeVariant("s").writeString(e.getValue()).endDictEntry();
        }
        w.beginDictEntry().writeString("n").writeVariant("i").writeInt32(7).endDictEntry();
        w.endArray();
        w.beginArray('{');
        named.accept(w);
        w.endArray();
        return w.toByteArray();
    }

    /** AddServer that must succeed: (instance path, socket path, address). */
    private static String[] addServer(RawClient c, java.util.function.Consumer<BodyWriter> named) throws Exception {
        long s = c.call(0, RawClient.BUS, RawClient.BUS_PATH, IFACE, "AddServer", "ssa{sv}a{sv}",
                addServerBody("org.example.Sandbox", "org.example.App", Map.of("k", "v"), named));
        Msg r = c.expectReturn(s);
        assertEquals("oays", r.signature());
        BodyReader b = r.body();
        String path = b.readObjectPath();
        byte[] socket = b.readByteArray();
        assertEquals(0, socket[socket.length - 1], "socket_path ends in a NUL");
        return new String[] {path, new String(socket, 0, socket.length - 1, StandardCharsets.UTF_8), b.readString()};
    }

    private static Msg call(RawClient c, String member, String sig, byte[] body) throws Exception {
        long s = c.call(0, RawClient.BUS, RawClient.BUS_PATH, IFACE, member, sig, body);
        Msg m = c.read();
        assertEquals(s, m.replySerial(), m.toString());
        return m;
    }

    private static byte[] path(String p) {
        return new BodyWriter().writeObjectPath(p).toByteArray();
    }

    private static byte[] string(String s) {
        return new BodyWriter().writeString(s).toByteArray();
    }

    private static Map<?, ?> credentials(RawClient asker, String name) throws Exception {
        Msg m = asker.expectReturn(asker.callDriver("GetConnectionCredentials", name));
        return (Map<?, ?>) m.body().readValue();
    }

    /** Reads until InstanceRemoved(path) arrives (skipping anything else), or fails at the deadline. */
    private static void awaitRemoved(RawClient watcher, String path) throws Exception {
        while (true) {
            Msg m = watcher.read();
            if (m.isSignal("InstanceRemoved")) {
                assertEquals(IFACE, m.iface());
                assertEquals(RawClient.BUS_PATH, m.path());
                assertEquals("o", m.signature());
                assertEquals(path, m.body().readObjectPath());
                return;
            }
        }
    }

    private Connection core(String uniqueName) throws Exception {
        return OnLoop.get(server, () -> server.bus().resolve(uniqueName));
    }

    @Test
    void addServerConnectQueryStopListeningThenStopInstance() throws Exception {
        RawClient owner = client(bus);
        RawClient watcher = client(bus);
        watcher.addMatch(REMOVED_RULE);
        String[] added = addServer(owner, w -> { });
        String instance = added[0];
        assertEquals("/org/freedesktop/DBus/Containers1/c1", instance);
        Path socket = Path.of(added[1]);
        assertEquals(containers, socket.getParent(), "the bus picks a path in its container directory");
        assertTrue(socket.getFileName().toString().startsWith("dbus-"), added[1]);
        assertTrue(Files.exists(socket));
        assertTrue(added[2].matches("unix:path=" + java.util.regex.Pattern.quote(socket.toString()) + ",guid=[0-9a-f]{32}"),
                added[2]);
        String serverGuid = added[2].substring(added[2].indexOf(",guid=") + 6);
        // Its own guid, as each of dbus-daemon's container servers has one.
        assertNotEquals(server.listenerGuids().get(0), serverGuid, added[2]);
        assertNotEquals(server.busId(), serverGuid, added[2]);

        RawClient inside = client(socket);
        assertEquals(serverGuid, inside.serverGuid, "the SASL OK line names the instance's server");
        assertFalse(core(inside.uniqueName).endpoint().filter().filtering(), "no ProxyOptions: no filter");
        RawClient service = client(bus);

        Msg got = call(service, "GetConnectionInstance", "s", string(inside.uniqueName));
        assertNull(got.errorName(), got.toString());
        assertEquals("oa{sv}ssa{sv}", got.signature());
        BodyReader b = got.body();
        assertEquals(instance, b.readObjectPath());
        Map<String, Object> creds = b.readDictStringVariant();
        assertEquals(RawClient.myUid(), creds.get("UnixUserID"), "the creator's credentials: " + creds);
        assertEquals(ProcessHandle.current().pid(), creds.get("ProcessID"));
        assertFalse(creds.containsKey(INSTANCE_KEY), "the creator is not contained");
        assertEquals("org.example.Sandbox", b.readString());
        assertEquals("org.example.App", b.readString());
        assertEquals(Map.of("k", "v", "n", 7), b.readDictStringVariant());

        Msg info = call(service, "GetInstanceInfo", "o", path(instance));
        assertNull(info.errorName(), info.toString());
        assertEquals("a{sv}ssa{sv}", info.signature());
        BodyReader ib = info.body();
        assertEquals(creds, ib.readDictStringVariant());
        assertEquals("org.example.Sandbox", ib.readString());
        assertEquals("org.example.App", ib.readString());
        assertEquals(Map.of("k", "v", "n", 7), ib.readDictStringVariant());

        // How a service outside tells which sandbox its caller is in.
        Map<?, ?> insideCreds = credentials(service, inside.uniqueName);
        assertEquals(instance, insideCreds.get(INSTANCE_KEY), insideCreds.toString());
        assertEquals(RawClient.myUid(), insideCreds.get("UnixUserID"));
        assertFalse(credentials(service, owner.uniqueName).containsKey(INSTANCE_KEY), "nothing new for a normal peer");
        assertFalse(credentials(service, RawClient.BUS).containsKey(INSTANCE_KEY));

        Msg stopped = call(owner, "StopListening", "o", path(instance));
        assertNull(stopped.errorName(), stopped.toString());
        assertFalse(Files.exists(socket), "the socket is unlinked by the time of the reply");
        assertNull(inside.expectReturn(inside.callDriver("GetId", "", new byte[0])).errorName(),
                "an existing connection stays");
        Msg again = call(owner, "StopListening", "o", path(instance));
        assertNull(again.errorName(), "a second StopListening while connections remain succeeds: " + again);
        assertNull(call(service, "GetInstanceInfo", "o", path(instance)).errorName(), "the instance still exists");

        Msg stop = call(owner, "StopInstance", "o", path(instance));
        assertNull(stop.errorName(), stop.toString());
        assertTrue(inside.awaitEof(RawClient.TIMEOUT_MS), "StopInstance disconnects the instance's connections");
        awaitRemoved(watcher, instance);
        assertEquals(NOT_CONTAINER, call(service, "GetInstanceInfo", "o", path(instance)).errorName());
        assertEquals(NOT_CONTAINER, call(owner, "StopInstance", "o", path(instance)).errorName(),
                "a second StopInstance fails");
        assertEquals(NOT_CONTAINER, call(owner, "StopListening", "o", path(instance)).errorName());
    }

    @Test
    void peersOutsideAreNotContainersAndUnknownPathsAreNotInstances() throws Exception {
        RawClient owner = client(bus);
        Msg outside = call(owner, "GetConnectionInstance", "s", string(owner.uniqueName));
        assertEquals(NOT_CONTAINER, outside.errorName(), outside.toString());
        assertEquals("Connection '" + owner.uniqueName + "' is not in a container", outside.string0());
        Msg self = call(owner, "GetConnectionInstance", "s", string(RawClient.BUS));
        assertEquals(NOT_CONTAINER, self.errorName());
        assertEquals("The message bus is not in a container", self.string0());
        assertEquals("org.freedesktop.DBus.Error.NameHasNoOwner",
                call(owner, "GetConnectionInstance", "s", string(":1.999")).errorName());
        String bogus = "/org/freedesktop/DBus/Containers1/c99";
        for (String member : List.of("GetInstanceInfo", "StopListening", "StopInstance")) {
            Msg m = call(owner, member, "o", path(bogus));
            assertEquals(NOT_CONTAINER, m.errorName(), member + ": " + m);
            assertEquals("There is no container with path '" + bogus + "'", m.string0());
        }
        assertEquals(NOT_CONTAINER, call(owner, "GetInstanceInfo", "o", path("/")).errorName());
    }

    @Test
    void aConnectionInsideMayNotMakeOrStopContainers() throws Exception {
        RawClient owner = client(bus);
        String[] added = addServer(owner, w -> { });
        RawClient inside = client(Path.of(added[1]));
        long s = inside.call(0, RawClient.BUS, RawClient.BUS_PATH, IFACE, "AddServer", "ssa{sv}a{sv}",
                addServerBody("org.example.Sandbox", "", Map.of(), w -> { }));
        Msg refused = inside.expectError(s, ACCESS_DENIED);
        assertEquals("rejected attempt to call AddServer by connection " + inside.uniqueName + " in container",
                refused.string0());
        assertEquals(ACCESS_DENIED, call(inside, "StopInstance", "o", path(added[0])).errorName());
        assertEquals(ACCESS_DENIED, call(inside, "StopListening", "o", path(added[0])).errorName());
        // The queries are anyone's: a sandbox may ask which instance it is in.
        Msg mine = call(inside, "GetConnectionInstance", "s", string(inside.uniqueName));
        assertNull(mine.errorName(), mine.toString());
        assertEquals(added[0], mine.body().readObjectPath());
        assertTrue(Files.exists(Path.of(added[1])), "nothing was stopped");
    }

    @Test
    void proxyOptionsGiveTheEndpointAFilterAndSocketPathPicksThePlace() throws Exception {
        RawClient owner = client(bus);
        Path chosen = dir.resolve("app.sock");
        String[] added = addServer(owner, w -> {
            w.beginDictEntry().writeString("org.kdbusbridge.ProxyOptions").writeVariant("as").beginArray('s')
                    .writeString("--filter").writeString("--talk=org.example.Service").endArray().endDictEntry();
            w.beginDictEntry().writeString("org.kdbusbridge.SocketPath").writeVariant("s").writeString(chosen.toString())
                    .endDictEntry();
        });
        assertEquals(chosen.toString(), added[1]);
        RawClient inside = client(chosen);
        Connection c = core(inside.uniqueName);
        assertTrue(c.endpoint().filter().filtering());
        assertEquals("org.example.App", c.endpoint().filter().appId(), "the container name is the endpoint's app id");
        // A filtering endpoint refuses Containers1 from inside in the core (docs/endpoint-semantics.md).
        assertEquals(ACCESS_DENIED, call(inside, "StopInstance", "o", path(added[0])).errorName());
        long s = owner.call(0, RawClient.BUS, RawClient.BUS_PATH, IFACE, "AddServer", "ssa{sv}a{sv}",
                addServerBody("org.example.Sandbox", "", Map.of(), w -> w.beginDictEntry().writeString("Bogus")
                        .writeVariant("s").writeString("x").endDictEntry()));
        Msg bad = owner.expectError(s, "org.freedesktop.DBus.Error.InvalidArgs");
        assertEquals("Named parameter Bogus is not understood", bad.string0());
    }

    @Test
    void creatorDisconnectOnlyStopsListening() throws Exception {
        RawClient creator = RawClient.open(bus);
        RawClient watcher = client(bus);
        watcher.addMatch(REMOVED_RULE);
        String[] added = addServer(creator, w -> { });
        Path socket = Path.of(added[1]);
        RawClient inside = RawClient.open(socket);
        creator.close();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RawClient.TIMEOUT_MS);
        while (Files.exists(socket) && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertFalse(Files.exists(socket), "the creator's disconnect stops the listener");
        assertNull(inside.expectReturn(inside.callDriver("GetId", "", new byte[0])).errorName(),
                "the instance's connection stays");
        Msg info = call(watcher, "GetInstanceInfo", "o", path(added[0]));
        assertNull(info.errorName(), "the instance lives while it has connections: " + info);
        inside.close();
        awaitRemoved(watcher, added[0]);
    }

    @Test
    void endpointsOfEndpoints1AreInstancesToo() throws Exception {
        RawClient owner = client(bus);
        Path socket = dir.resolve("e.sock");
        BodyWriter w = new BodyWriter().writeString(socket.toString());
        w.beginArray('s').writeString("--filter").endArray();
        w.beginArray('{').beginDictEntry().writeString("app-id").writeVariant("s").writeString("org.example.E")
                .endDictEntry().endArray();
        owner.expectReturn(owner.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.kdbusbridge.Endpoints1",
                "AddEndpoint", "sasa{sv}", w.toByteArray()));
        RawClient inside = client(socket);
        RawClient service = client(bus);
        service.addMatch(REMOVED_RULE);
        assertEquals("/org/freedesktop/DBus/Containers1/e1", credentials(service, inside.uniqueName).get(INSTANCE_KEY));
        Msg got = call(service, "GetConnectionInstance", "s", string(inside.uniqueName));
        BodyReader b = got.body();
        assertEquals("/org/freedesktop/DBus/Containers1/e1", b.readObjectPath());
        assertEquals(RawClient.myUid(), b.readDictStringVariant().get("UnixUserID"));
        assertEquals("org.kdbusbridge.Endpoints1", b.readString());
        assertEquals("org.example.E", b.readString());
        assertEquals(Map.of("app-id", "org.example.E"), b.readDictStringVariant());
        owner.expectReturn(owner.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.kdbusbridge.Endpoints1",
                "RemoveEndpoint", "s", string("e1")));
        assertTrue(inside.awaitEof(RawClient.TIMEOUT_MS));
        awaitRemoved(service, "/org/freedesktop/DBus/Containers1/e1");
    }

    @Test
    void lifetimeFdHangUpRemovesTheEndpointWhichOutlivesItsCreator() throws Exception {
        RawClient watcher = client(bus);
        watcher.addMatch(REMOVED_RULE);
        int[] pair = socketPair();
        String instance;
        Path socket;
        try (FdClient creator = new FdClient(bus)) {
            watcher.addMatch("type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='"
                    + creator.uniqueName + "'");
            byte[] body = addServerBody("org.example.Sandbox", "org.example.App", Map.of(), w -> w.beginDictEntry()
                    .writeString("org.kdbusbridge.LifetimeFd").writeVariant("h").writeUnixFd(0).endDictEntry());
            long serial = ++creator.serial;
            creator.writeAll(FdClient.frame(serial, 0, RawClient.BUS_PATH, IFACE, "AddServer", RawClient.BUS,
                    "ssa{sv}a{sv}", body, 1), new int[] {pair[1]});
            MessageHeader h = creator.next();
            assertEquals(WireFormat.METHOD_RETURN, h.type(), "AddServer with a lifetime fd: " + h.errorName());
            BodyReader b = BodyReader.of(h);
            instance = b.readObjectPath();
            byte[] s = b.readByteArray();
            socket = Path.of(new String(s, 0, s.length - 1, StandardCharsets.UTF_8));
        }
        LibC.INSTANCE.close(pair[1]); // the bus holds its own dup now
        // The creator's NameOwnerChanged: the bus has handled its disconnect.
        while (true) {
            Msg m = watcher.read();
            if (m.isSignal("NameOwnerChanged")) {
                BodyReader b = m.body();
                b.readString();
                b.readString();
                if (b.readString().isEmpty()) {
                    break;
                }
            }
        }
        assertTrue(Files.exists(socket), "with a lifetime fd the endpoint outlives its creator's connection");
        RawClient inside = client(socket);
        LibC.INSTANCE.close(pair[0]); // hang-up on the bus's end
        assertTrue(inside.awaitEof(RawClient.TIMEOUT_MS), "the hang-up removes the endpoint with its connections");
        assertFalse(Files.exists(socket));
        awaitRemoved(watcher, instance);
    }

    /**
     * What a process running as {@code uid} (through setpriv) gets back after connecting to
     * {@code socket} and sending AUTH EXTERNAL: the bus's first answer, or "" on EOF.
     */
    private static String authAs(long uid, Path socket) throws Exception {
        String script = "import socket,sys\n"
                + "s=socket.socket(socket.AF_UNIX)\n"
                + "s.settimeout(10)\n"
                + "s.connect(sys.argv[1])\n"
                + "try:\n"
                + "  s.sendall(b'\\0AUTH EXTERNAL '+str(" + uid + ").encode().hex().encode()+b'\\r\\n')\n"
                + "  d=s.recv(100)\n"
                + "except (ConnectionResetError, BrokenPipeError):\n  d=b''\n" // closed on before or after our write
                + "sys.stdout.write(d.decode('ascii','replace').strip())\n";
        Process p = new ProcessBuilder("setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups",
                "/usr/bin/python3", "-c", script, socket.toString()).redirectErrorStream(true).start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the client process ends");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    @Test
    void onlyTheCreatorsUidMayConnect() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(RawClient.myUid() == 0, "needs root to run a client as another uid");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/setpriv"))
                && Files.isExecutable(Path.of("/usr/bin/python3")), "needs setpriv and python3");
        // A directory every uid can reach, so that only the bus's check stands in the way.
        Path open = Files.createTempDirectory(Path.of("/tmp"), "containers-");
        try {
            Files.setPosixFilePermissions(open, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
            RawClient owner = client(bus);
            Path socket = open.resolve("app.sock");
            String[] added = addServer(owner, w -> w.beginDictEntry().writeString("org.kdbusbridge.SocketPath")
                    .writeVariant("s").writeString(socket.toString()).endDictEntry());
            assertTrue(authAs(0, socket).startsWith("OK "), "the creator's uid gets in");
            assertEquals("", authAs(65534, socket), "another uid is closed on at accept");
            assertNull(call(owner, "StopInstance", "o", path(added[0])).errorName());
        } finally {
            Files.deleteIfExists(open.resolve("app.sock"));
            Files.deleteIfExists(open);
        }
    }

    /** A socketpair(AF_UNIX, SOCK_STREAM): the two fds. */
    private static int[] socketPair() {
        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        assertEquals(0, LibC.INSTANCE.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0,
                LibC.Native.address(sv)));
        return new int[] {sv.getInt(0), sv.getInt(4)};
    }

    @Test
    void supportedArgumentsAndInterfaces() throws Exception {
        RawClient c = client(bus);
        BodyWriter w = new BodyWriter().writeString(IFACE).writeString("SupportedArguments");
        Msg m = c.expectReturn(c.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Properties", "Get",
                "ss", w.toByteArray()));
        assertEquals(List.of("org.kdbusbridge.ProxyOptions", "org.kdbusbridge.LifetimeFd", "org.kdbusbridge.SocketPath"),
                m.body().readValue());
        BodyWriter i = new BodyWriter().writeString("org.freedesktop.DBus").writeString("Interfaces");
        Msg ifaces = c.expectReturn(c.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Properties",
                "Get", "ss", i.toByteArray()));
        assertTrue(((List<?>) ifaces.body().readValue()).contains(IFACE));
        String xml = c.expectReturn(c.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Introspectable",
                "Introspect", null, null)).string0();
        assertTrue(xml.contains("<interface name=\"" + IFACE + "\">"), xml);
        assertTrue(xml.contains("<signal name=\"InstanceRemoved\">"), xml);
    }

    @Test
    void anInstanceTakesAtMostEightConnectionsAsDbusDaemonsDefault() throws Exception {
        RawClient owner = client(bus);
        Path socket = Path.of(addServer(owner, w -> { })[1]);
        for (int i = 0; i < 8; i++) {
            client(socket); // connected, authenticated and Hello'd
        }
        RawClient ninth = RawClient.connect(socket);
        assertTrue(ninth.awaitEof(RawClient.TIMEOUT_MS), "max_connections_per_container=8: the ninth is closed on");
        ninth.close();
    }

    @Test
    void metadataIsBoundedByMaxContainerMetadataBytes() throws Exception {
        RawClient owner = client(bus);
        Msg big = call(owner, "AddServer", "ssa{sv}a{sv}",
                addServerBody("org.example.Sandbox", "org.example.App", Map.of("k", "v".repeat(5000)), w -> { }));
        assertEquals("org.freedesktop.DBus.Error.LimitsExceeded", big.errorName(), big.toString());
        assertTrue(big.string0().contains("(max_container_metadata_bytes=4096)"), big.string0());
        Msg fits = call(owner, "AddServer", "ssa{sv}a{sv}",
                addServerBody("org.example.Sandbox", "org.example.App", Map.of("k", "v".repeat(3000)), w -> { }));
        assertNull(fits.errorName(), fits.toString());
    }

    /** A second bus, with --kdbus-containers, from a busconfig file with {@code limits} in it. */
    private BusServer fromConfig(Path socket, String limits) throws Exception {
        Path conf = dir.resolve("limited.conf");
        Files.writeString(conf, "<busconfig><type>session</type><listen>unix:path=" + socket + "</listen>"
                + "<auth>EXTERNAL</auth><policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
                + "<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy>" + limits + "</busconfig>");
        BusServer s = new BusServer(org.kdbusbridge.bridge.config.BusConfigParser.parse(conf),
                TransportSettings.fromSystemProperties());
        s.setContainerSocketDir(containers);
        s.setContainers(true);
        s.start();
        return s;
    }

    /** Asks {@code s}'s host, on its loop, for an AddServer-style endpoint {@code id} for {@code uid}; the refusal or null. */
    private static org.kdbusbridge.core.endpoint.EndpointCaps.Refusal addFor(BusServer s, String id, Connection creator,
            long uid) throws Exception {
        return OnLoop.get(s, () -> {
            try {
                s.addEndpoint(new org.kdbusbridge.bridge.driver.EndpointRequest(null,
                        org.kdbusbridge.bridge.endpoint.ProxyRuleParser.parseOptions(id, List.of()), List.of(), creator,
                        uid, true, -1));
                return null;
            } catch (org.kdbusbridge.bridge.driver.EndpointRequest.LimitExceeded e) {
                return e.refusal();
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
    }

    @Test
    void theContainersLimitsOfTheBusConfigApply() throws Exception {
        Path limitedBus = dir.resolve("limited");
        BusServer limited = fromConfig(limitedBus, "<limit name=\"max_containers\">3</limit>"
                + "<limit name=\"max_containers_per_user\">1</limit>"
                + "<limit name=\"max_container_metadata_bytes\">200</limit>"
                + "<limit name=\"max_connections_per_container\">2</limit>");
        try {
            RawClient owner = client(limitedBus);
            // max_container_metadata_bytes=200
            Msg big = call(owner, "AddServer", "ssa{sv}a{sv}",
                    addServerBody("org.example.Sandbox", "org.example.App", Map.of("k", "v".repeat(300)), w -> { }));
            assertEquals("org.freedesktop.DBus.Error.LimitsExceeded", big.errorName(), big.toString());
            assertTrue(big.string0().startsWith("Connection \"" + owner.uniqueName + "\" ("), big.string0());
            assertTrue(big.string0().endsWith("bytes of container metadata (max_container_metadata_bytes=200)"),
                    big.string0());
            // max_connections_per_container=2: the third is closed on at accept
            String[] first = addServer(owner, w -> { });
            client(Path.of(first[1]));
            client(Path.of(first[1]));
            RawClient third = RawClient.connect(Path.of(first[1]));
            open.add(third);
            assertTrue(third.awaitEof(RawClient.TIMEOUT_MS), "max_connections_per_container=2: the third is closed on");
            // max_containers_per_user=1, for a uid that is neither the bus owner's nor root (as AddServer asks the host)
            Connection creator = OnLoop.get(limited, () -> limited.bus().resolve(owner.uniqueName));
            assertNull(addFor(limited, "u1", creator, 4242));
            var perUser = addFor(limited, "u2", creator, 4242);
            assertEquals("max_containers_per_user", perUser.limitName());
            assertTrue(perUser.message().endsWith("is not allowed to create more container servers for uid 4242 "
                    + "(max_containers_per_user=1)"), perUser.message());
            // The bus owner's uid (root here) is not held to max_containers_per_user=1: a second is fine,
            // and c1, u1 and c2 fill max_containers=3, which Endpoints1 is held to as well.
            addServer(owner, x -> { });
            BodyWriter w = new BodyWriter().writeString(dir.resolve("e.sock").toString());
            w.beginArray('s').endArray().beginArray('{').endArray();
            long asked = owner.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.kdbusbridge.Endpoints1", "AddEndpoint",
                    "sasa{sv}", w.toByteArray());
            Msg over = owner.read();
            assertEquals(asked, over.replySerial(), over.toString());
            assertEquals("org.freedesktop.DBus.Error.LimitsExceeded", over.errorName(), over.toString());
            assertTrue(over.string0().endsWith("is not allowed to create more endpoints (max_containers=3)"),
                    over.string0());
            assertFalse(Files.exists(dir.resolve("e.sock")), "nothing was bound");
            Msg more = call(owner, "AddServer", "ssa{sv}a{sv}",
                    addServerBody("org.example.Sandbox", "org.example.App", Map.of(), x -> { }));
            assertEquals("org.freedesktop.DBus.Error.LimitsExceeded", more.errorName(), more.toString());
            assertTrue(more.string0().endsWith("is not allowed to create more container servers (max_containers=3)"),
                    more.string0());
        } finally {
            limited.stop();
        }
    }

    /** An a{sv} entry of every basic type but h, a nested variant, a struct, a dict and arrays. */
    private static void everyType(BodyWriter w) {
        w.beginDictEntry().writeString("y").writeVariant("y").writeByte(0xfe).endDictEntry();
        w.beginDictEntry().writeString("b").writeVariant("b").writeBoolean(true).endDictEntry();
        w.beginDictEntry().writeString("n").writeVariant("n").writeInt16(-2).endDictEntry();
        w.beginDictEntry().writeString("q").writeVariant("q").writeUint16(65535).endDictEntry();
        w.beginDictEntry().writeString("i").writeVariant("i").writeInt32(-3).endDictEntry();
        w.beginDictEntry().writeString("u").writeVariant("u").writeUint32(4_000_000_000L).endDictEntry();
        w.beginDictEntry().writeString("x").writeVariant("x").writeInt64(-5).endDictEntry();
        w.beginDictEntry().writeString("t").writeVariant("t").writeUint64(-1L).endDictEntry();
        w.beginDictEntry().writeString("d").writeVariant("d").writeDouble(1.5).endDictEntry();
        w.beginDictEntry().writeString("s").writeVariant("s").writeString("text").endDictEntry();
        w.beginDictEntry().writeString("o").writeVariant("o").writeObjectPath("/org/example/P").endDictEntry();
        w.beginDictEntry().writeString("g").writeVariant("g").writeSignature("a{sv}").endDictEntry();
        w.beginDictEntry().writeString("vv").writeVariant("v").writeVariant("q").writeUint16(9).endDictEntry();
        w.beginDictEntry().writeString("aq").writeVariant("aq").beginArray('q').writeUint16(1).writeUint16(2)
                .endArray().endDictEntry();
        w.beginDictEntry().writeString("st").writeVariant("(yt)").beginStruct().writeByte(1).writeUint64(2).endStruct()
                .endDictEntry();
    }

    /** gdbus call on the bus's Containers1 interface; its output. */
    private String gdbus(String method, String arg) throws Exception {
        Process p = new ProcessBuilder("gdbus", "call", "--address", "unix:path=" + bus, "--dest", RawClient.BUS,
                "--object-path", RawClient.BUS_PATH, "--method", IFACE + "." + method, arg)
                .redirectErrorStream(true).start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "gdbus ends");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    @Test
    void metadataComesBackToGdbusWithEveryTypeAsGiven() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/gdbus")), "needs gdbus");
        RawClient owner = client(bus);
        BodyWriter w = new BodyWriter().writeString("org.example.Sandbox").writeString("org.example.App");
        w.beginArray('{');
        everyType(w);
        w.endArray();
        w.beginArray('{').endArray();
        Msg r = owner.expectReturn(owner.call(0, RawClient.BUS, RawClient.BUS_PATH, IFACE, "AddServer", "ssa{sv}a{sv}",
                w.toByteArray()));
        BodyReader b = r.body();
        String path = b.readObjectPath();
        byte[] socket = b.readByteArray();
        RawClient inside = client(Path.of(new String(socket, 0, socket.length - 1, StandardCharsets.UTF_8)));
        String expected = "{'y': <byte 0xfe>, 'b': <true>, 'n': <int16 -2>, 'q': <uint16 65535>, 'i': <-3>, "
                + "'u': <uint32 4000000000>, 'x': <int64 -5>, 't': <uint64 18446744073709551615>, 'd': <1.5>, "
                + "'s': <'text'>, 'o': <objectpath '/org/example/P'>, 'g': <signature 'a{sv}'>, 'vv': <<uint16 9>>, "
                + "'aq': <[uint16 1, 2]>, 'st': <(byte 0x01, uint64 2)>})";
        String info = gdbus("GetInstanceInfo", path);
        assertTrue(info.contains("'org.example.Sandbox', 'org.example.App', " + expected), info);
        String instance = gdbus("GetConnectionInstance", inside.uniqueName);
        assertTrue(instance.startsWith("(objectpath '" + path + "', "), instance);
        assertTrue(instance.contains("'org.example.Sandbox', 'org.example.App', " + expected), instance);
    }
}
