package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.driver.DBusErrors;
import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.server.RawClient.Msg;

@Timeout(60)
class BusServerTest {
    private static final String FAILED = "org.freedesktop.DBus.Error.Failed";
    private static final String ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied";
    private static final String NO_REPLY = "org.freedesktop.DBus.Error.NoReply";
    private static final String SERVICE_UNKNOWN = "org.freedesktop.DBus.Error.ServiceUnknown";
    private static final String NAME_HAS_NO_OWNER = "org.freedesktop.DBus.Error.NameHasNoOwner";
    private static final String NOC_RULE = "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'";

    @TempDir
    Path dir;

    private BusServer server;
    private Path socket;
    private final List<RawClient> clients = new ArrayList<>();

    private void start() throws Exception {
        start(BusConfig.forAddress("unix:path=" + dir.resolve("bus")));
    }

    private void start(BusConfig config) throws Exception {
        socket = dir.resolve("bus");
        server = new BusServer(config);
        String address = server.start();
        assertTrue(address.startsWith("unix:path=" + socket), address);
        assertTrue(address.contains("guid=" + server.listenerGuids().get(0)), address);
        assertNotEquals(server.busId(), server.listenerGuids().get(0), "GetId's bus id is not the address's guid");
        assertTrue(Files.exists(socket));
    }

    @AfterEach
    void stop() throws Exception {
        for (RawClient c : clients) {
            c.close();
        }
        if (server != null) {
            server.stop();
        }
    }

    private RawClient connect() throws Exception {
        RawClient c = RawClient.connect(socket);
        clients.add(c);
        return c;
    }

    private RawClient open() throws Exception {
        RawClient c = connect();
        c.authenticate();
        c.hello();
        return c;
    }

    private static byte[] str(String s) {
        return new BodyWriter().writeString(s).toByteArray();
    }

    private static byte[] su(String s, long u) {
        return new BodyWriter().writeString(s).writeUint32(u).toByteArray();
    }

    private static List<String> strings(Msg m) throws Exception {
        BodyReader r = m.body();
        List<String> out = new ArrayList<>();
        while (r.hasNext()) {
            out.add(r.readString());
        }
        return out;
    }

    private static void assertNoc(Msg m, String name, String oldOwner, String newOwner) throws Exception {
        assertTrue(m.isSignal("NameOwnerChanged"), m.toString());
        assertEquals(RawClient.BUS, m.sender());
        assertEquals(List.of(name, oldOwner, newOwner), strings(m));
    }

    // --- authentication and Hello ---------------------------------------------------------

    @Test
    void helloReplyComesFirstWithDestinationThenNameAcquired() throws Exception {
        start();
        RawClient c = connect();
        c.authenticate();
        long s = c.callDriver("Hello", null, null);
        Msg reply = c.read();
        assertEquals(WireFormat.METHOD_RETURN, reply.type());
        assertEquals(s, reply.replySerial());
        assertEquals(RawClient.BUS, reply.sender());
        assertEquals("s", reply.signature());
        String name = reply.string0();
        assertTrue(name.matches(":1\\.\\d+"), name);
        assertEquals(name, reply.destination());
        assertNotEquals(0, reply.flags() & WireFormat.NO_REPLY_EXPECTED, "driver messages expect no reply");

        Msg acquired = c.read();
        assertTrue(acquired.isSignal("NameAcquired"), acquired.toString());
        assertEquals(name, acquired.destination());
        assertEquals(RawClient.BUS, acquired.sender());
        assertEquals(RawClient.BUS_PATH, acquired.path());
        assertEquals(RawClient.BUS, acquired.iface());
        assertEquals(name, acquired.string0());
        assertNotEquals(reply.serial(), acquired.serial());
    }

    @Test
    void uniqueNamesAreDistinct() throws Exception {
        start();
        RawClient a = open();
        RawClient b = open();
        assertNotEquals(a.uniqueName, b.uniqueName);
    }

    @Test
    void pipelinedAuthBeginAndHelloInOneWrite() throws Exception {
        start();
        RawClient c = connect();
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        all.write(0);
        all.write(("AUTH EXTERNAL " + RawClient.hexUid(RawClient.myUid()) + "\r\nBEGIN\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        long s = c.nextSerial();
        all.write(MessageBuilder.methodCall(s, 0, RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "Hello", null,
                null, null));
        c.write(all.toByteArray());
        String ok = c.readLine();
        assertTrue(ok.startsWith("OK "), ok);
        assertEquals("OK " + server.listenerGuids().get(0), ok);
        Msg reply = c.expectReturn(s);
        assertTrue(reply.string0().startsWith(":1."));
        assertTrue(c.read().isSignal("NameAcquired"));
    }

    @Test
    void secondHelloFails() throws Exception {
        start();
        RawClient c = open();
        long s = c.callDriver("Hello", null, null);
        c.expectError(s, FAILED);
        // Still connected and still the same name.
        long g = c.callDriver("GetNameOwner", c.uniqueName);
        assertEquals(c.uniqueName, c.expectReturn(g).string0());
    }

    @Test
    void driverCallBeforeHelloIsDeniedButConnectionStays() throws Exception {
        start();
        RawClient c = connect();
        c.authenticate();
        long s = c.callDriver("ListNames", null, null);
        Msg err = c.expectError(s, ACCESS_DENIED);
        assertEquals(RawClient.BUS, err.sender());
        String name = c.hello();
        assertTrue(name.startsWith(":1."), name);
    }

    @Test
    void callToAnotherDestinationBeforeHelloDisconnects() throws Exception {
        start();
        RawClient other = open();
        RawClient c = connect();
        c.authenticate();
        c.call(0, other.uniqueName, "/x", "com.example.I", "M", null, null);
        assertTrue(c.awaitEof(RawClient.TIMEOUT_MS), "bus must close a client that sends before Hello");
        assertEquals(0, other.sync(), "nothing may have been forwarded");
    }

    @Test
    void garbageFirstByteDisconnects() throws Exception {
        start();
        RawClient c = connect();
        c.writeAscii("AUTH EXTERNAL 30\r\n");
        assertTrue(c.awaitEof(RawClient.TIMEOUT_MS));
    }

    @Test
    void wrongUidIsRejected() throws Exception {
        start();
        RawClient c = connect();
        long wrong = RawClient.myUid() == 4242 ? 4243 : 4242;
        c.write(new byte[] {0});
        c.writeAscii("AUTH EXTERNAL " + RawClient.hexUid(wrong) + "\r\n");
        String line = c.readLine();
        assertTrue(line.startsWith("REJECTED"), line);
        assertTrue(line.contains("EXTERNAL"), line);
    }

    @Test
    void rightUidAfterRejectionStillWorks() throws Exception {
        start();
        RawClient c = connect();
        c.write(new byte[] {0});
        c.writeAscii("AUTH EXTERNAL " + RawClient.hexUid(RawClient.myUid() + 1) + "\r\n");
        assertTrue(c.readLine().startsWith("REJECTED"));
        c.writeAscii("AUTH EXTERNAL " + RawClient.hexUid(RawClient.myUid()) + "\r\n");
        assertEquals("OK " + server.listenerGuids().get(0), c.readLine());
        c.writeAscii("BEGIN\r\n");
        assertTrue(c.hello().startsWith(":1."));
    }

    @Test
    void systemdAddressWithoutPassedSocketsFailsAndLeavesNothingBound() throws Exception {
        Path other = dir.resolve("other");
        BusServer s = new BusServer(BusConfig.forAddress("unix:path=" + other + ";systemd:"));
        IOException e = assertThrows(IOException.class, s::start);
        assertTrue(e.getMessage().startsWith("No socket received"), e.getMessage());
        assertFalse(Files.exists(other), "listeners bound before the failure are closed");
    }

    @Test
    void authTimeoutDisconnectsSilentClient() throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().authTimeout = 300;
        start(config);
        RawClient c = connect();
        long t0 = System.nanoTime();
        assertTrue(c.awaitEof(RawClient.TIMEOUT_MS), "no disconnect after auth_timeout");
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 200, "disconnected too early: " + ms + " ms");
        // The bus is unaffected.
        assertTrue(open().uniqueName.startsWith(":1."));
    }

    @Test
    void authenticatedClientIsNotTimedOut() throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().authTimeout = 300;
        start(config);
        RawClient c = open();
        // Well past the auth timeout, as measured by a second connection timing out.
        RawClient idle = connect();
        assertTrue(idle.awaitEof(RawClient.TIMEOUT_MS));
        assertEquals(0, c.sync());
        assertFalse(c.isEof());
    }

    // --- names ----------------------------------------------------------------------------

    @Test
    void requestNameReplacementTransactionOrder() throws Exception {
        start();
        RawClient a = open();
        RawClient b = open();
        long ra = a.callDriver("RequestName", "su", su("com.example.X", 1)); // ALLOW_REPLACEMENT
        Msg acqA = a.read();
        assertTrue(acqA.isSignal("NameAcquired"), acqA.toString());
        assertEquals("com.example.X", acqA.string0());
        assertEquals(1, a.expectReturn(ra).body().readUint32()); // PRIMARY_OWNER

        RawClient w = open();
        w.addMatch(NOC_RULE);

        long rb = b.callDriver("RequestName", "su", su("com.example.X", 2)); // REPLACE_EXISTING
        Msg acqB = b.read();
        assertTrue(acqB.isSignal("NameAcquired"), "B must get NameAcquired before its reply, got " + acqB);
        assertEquals("com.example.X", acqB.string0());
        assertEquals(b.uniqueName, acqB.destination());
        assertEquals(1, b.expectReturn(rb).body().readUint32());

        Msg lost = a.read();
        assertTrue(lost.isSignal("NameLost"), lost.toString());
        assertEquals("com.example.X", lost.string0());
        assertEquals(a.uniqueName, lost.destination());

        assertNoc(w.read(), "com.example.X", a.uniqueName, b.uniqueName);

        long q = w.callDriver("ListQueuedOwners", "com.example.X");
        assertEquals(List.of(b.uniqueName, a.uniqueName), w.expectReturn(q).body().readStringArray());
        long o = w.callDriver("GetNameOwner", "com.example.X");
        assertEquals(b.uniqueName, w.expectReturn(o).string0());
    }

    @Test
    void requestNameOrderAcrossClientsIsNameLostThenNocThenNameAcquired() throws Exception {
        // One client that sees everything: it owns the name, watches NOC, then is replaced.
        start();
        RawClient a = open();
        long ra = a.callDriver("RequestName", "su", su("com.example.Y", 1));
        a.read(); // NameAcquired
        a.expectReturn(ra);
        a.addMatch(NOC_RULE);
        a.addMatch("type='signal',sender='org.freedesktop.DBus',member='NameAcquired'");
        RawClient b = open();
        assertNoc(a.read(), b.uniqueName, "", b.uniqueName);
        // B's NameAcquired signals are unicast to B: A's rule (no eavesdrop) must not see them.
        long rb = b.callDriver("RequestName", "su", su("com.example.Y", 2));
        b.read();
        b.expectReturn(rb);
        Msg first = a.read();
        assertTrue(first.isSignal("NameLost"), first.toString());
        assertNoc(a.read(), "com.example.Y", a.uniqueName, b.uniqueName);
        assertEquals(0, a.sync(), "NameAcquired for B must not reach A without eavesdropping");
    }

    @Test
    void disconnectOfOwnerEmitsWellKnownNameThenUniqueName() throws Exception {
        start();
        RawClient x = open();
        long r = x.callDriver("RequestName", "su", su("com.example.Gone", 0));
        x.read();
        assertEquals(1, x.expectReturn(r).body().readUint32());
        RawClient w = open();
        w.addMatch(NOC_RULE);
        String xName = x.uniqueName;
        x.close();
        assertNoc(w.read(), "com.example.Gone", xName, "");
        assertNoc(w.read(), xName, xName, "");
        long h = w.callDriver("NameHasOwner", "com.example.Gone");
        assertFalse(w.expectReturn(h).body().readBoolean());
    }

    // --- routing --------------------------------------------------------------------------

    @Test
    void methodCallIsForwardedWithSenderAndReplyRoutedBack() throws Exception {
        start();
        RawClient a = open();
        RawClient b = open();
        long s = a.call(0, b.uniqueName, "/obj", "com.example.I", "Do", "s", str("hi"));
        Msg call = b.read();
        assertEquals(WireFormat.METHOD_CALL, call.type());
        assertEquals(a.uniqueName, call.sender());
        assertEquals(s, call.serial());
        assertEquals("hi", call.string0());
        b.write(MessageBuilder.methodReturn(b.nextSerial(), s, a.uniqueName, null, "s", str("ho")));
        Msg ret = a.expectReturn(s);
        assertEquals(b.uniqueName, ret.sender());
        assertEquals("ho", ret.string0());
    }

    @Test
    void recipientDisconnectingWithoutReplyGivesNoReply() throws Exception {
        start();
        RawClient a = open();
        RawClient b = open();
        long s = a.call(0, b.uniqueName, "/obj", "com.example.I", "Do", null, null);
        Msg call = b.read();
        assertEquals(s, call.serial());
        b.close();
        Msg err = a.expectError(s, NO_REPLY);
        assertEquals(RawClient.BUS, err.sender());
        assertEquals(a.uniqueName, err.destination());
    }

    @Test
    void callToMissingNameIsServiceUnknownOrNameHasNoOwnerWithNoAutoStart() throws Exception {
        start();
        RawClient a = open();
        long s1 = a.call(0, "com.example.Missing", "/", "com.example.I", "M", null, null);
        a.expectError(s1, SERVICE_UNKNOWN);
        long s2 = a.call(WireFormat.NO_AUTO_START, "com.example.Missing", "/", "com.example.I", "M", null, null);
        a.expectError(s2, NAME_HAS_NO_OWNER);
    }

    @Test
    void unicastSignalReachesDestinationWithoutMatchRule() throws Exception {
        start();
        RawClient a = open();
        RawClient b = open();
        RawClient bystander = open();
        bystander.addMatch("type='signal',interface='com.example.Other'");
        long s = a.signal(b.uniqueName, "/p", "com.example.Sig", "Direct", "s", str("to-b"));
        Msg m = b.read();
        assertTrue(m.isSignal("Direct"), m.toString());
        assertEquals(s, m.serial());
        assertEquals(a.uniqueName, m.sender());
        assertEquals(b.uniqueName, m.destination());
        assertEquals("to-b", m.string0());
        a.sync(); // a's signal has been routed
        assertEquals(0, bystander.sync());
    }

    @Test
    void broadcastSignalReachesOnlyMatchingConnections() throws Exception {
        start();
        RawClient a = open();
        RawClient b = open();
        RawClient d = open();
        b.addMatch("type='signal',interface='com.example.Sig',member='Hey'");
        d.addMatch("type='signal',interface='com.example.Sig',member='Other'");
        long s = a.signal(null, "/p", "com.example.Sig", "Hey", "s", str("all"));
        Msg m = b.read();
        assertTrue(m.isSignal("Hey"), m.toString());
        assertEquals(s, m.serial());
        assertEquals(a.uniqueName, m.sender());
        assertEquals(null, m.destination());
        assertEquals("all", m.string0());
        assertEquals(0, a.sync(), "the sender has no rule and must not get its own signal");
        assertEquals(0, d.sync(), "a non-matching rule must not receive the signal");
        assertEquals(0, b.sync(), "exactly one copy");
    }

    @Test
    void badHeaderDisconnectsOnlyThatClient() throws Exception {
        start();
        RawClient good = open();
        RawClient bad = open();
        bad.write(MessageBuilder.methodCall(0, 0, RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "ListNames",
                null, null, null)); // serial 0 is invalid
        assertTrue(bad.awaitEof(RawClient.TIMEOUT_MS));
        long s = good.callDriver("ListNames", null, null);
        List<String> names = good.expectReturn(s).body().readStringArray();
        assertTrue(names.contains(good.uniqueName), names.toString());
        assertFalse(names.contains(bad.uniqueName), names.toString());
    }

    @Test
    void frameClaimingBodyOverProtocolCapDisconnects() throws Exception {
        start();
        RawClient c = open();
        ByteBuffer h = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        h.put((byte) 'l').put((byte) 1).put((byte) 0).put((byte) 1);
        h.putInt(WireFormat.MAX_MESSAGE_SIZE + 1); // body length
        h.putInt(7); // serial
        h.putInt(0); // header fields length
        c.write(h.array());
        assertTrue(c.awaitEof(RawClient.TIMEOUT_MS));
        assertTrue(open().uniqueName.startsWith(":1."));
    }

    @Test
    void frameOverConfiguredMaxMessageSizeDisconnects() throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().maxMessageSize = 1024 * 1024;
        start(config);
        RawClient c = open();
        ByteBuffer h = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        h.put((byte) 'l').put((byte) 4).put((byte) 0).put((byte) 1);
        h.putInt(2 * 1024 * 1024);
        h.putInt(7);
        h.putInt(0);
        c.write(h.array());
        assertTrue(c.awaitEof(RawClient.TIMEOUT_MS));
    }

    @Test
    void bigSignalReachesMatchingReaderDespiteStalledReader() throws Exception {
        start();
        RawClient a = open();
        RawClient b = open();
        RawClient c = open();
        String rule = "type='signal',interface='com.example.Big'";
        b.addMatch(rule);
        c.addMatch(rule); // c never reads again
        byte[] payload = new byte[4 * 1024 * 1024];
        for (int i = 0; i < payload.length; i++) {
            payload[i] = (byte) (i * 31 + (i >>> 13));
        }
        byte[] body = new BodyWriter(payload.length + 8).writeByteArray(payload).toByteArray();
        int rounds = 3; // 12 MiB: far more than c's socket buffers hold
        long[] serials = new long[rounds];
        for (int i = 0; i < rounds; i++) {
            serials[i] = a.signal(null, "/big", "com.example.Big", "Blob", "ay", body);
        }
        for (int i = 0; i < rounds; i++) {
            Msg m = b.read();
            assertTrue(m.isSignal("Blob"), m.toString());
            assertEquals(serials[i], m.serial());
            assertEquals(a.uniqueName, m.sender());
            assertArrayEquals(payload, m.body().readByteArray(), "payload " + i + " corrupted");
        }
        assertEquals(0, b.sync());
        assertEquals(0, a.sync());
        assertFalse(c.isEof());
    }

    // --- more name semantics --------------------------------------------------------------

    @Test
    void releaseNameWithQueuePromotesNextOwnerInOrder() throws Exception {
        start();
        RawClient a = open();
        RawClient b = open();
        long ra = a.callDriver("RequestName", "su", su("com.example.Q", 0));
        a.read();
        assertEquals(1, a.expectReturn(ra).body().readUint32());
        long rb = b.callDriver("RequestName", "su", su("com.example.Q", 0));
        assertEquals(2, b.expectReturn(rb).body().readUint32()); // IN_QUEUE
        RawClient w = open();
        w.addMatch(NOC_RULE);

        long rel = a.callDriver("ReleaseName", "com.example.Q");
        Msg lost = a.read();
        assertTrue(lost.isSignal("NameLost"), lost.toString());
        assertEquals(1, a.expectReturn(rel).body().readUint32()); // RELEASED
        Msg acq = b.read();
        assertTrue(acq.isSignal("NameAcquired"), acq.toString());
        assertEquals("com.example.Q", acq.string0());
        assertNoc(w.read(), "com.example.Q", a.uniqueName, b.uniqueName);
    }

    @Test
    void disconnectOfPrimaryOwnerPromotesQueuedOwner() throws Exception {
        start();
        RawClient a = open();
        RawClient b = open();
        long ra = a.callDriver("RequestName", "su", su("com.example.P", 0));
        a.read();
        a.expectReturn(ra);
        long rb = b.callDriver("RequestName", "su", su("com.example.P", 0));
        assertEquals(2, b.expectReturn(rb).body().readUint32());
        RawClient w = open();
        w.addMatch(NOC_RULE);
        String aName = a.uniqueName;
        a.close();
        Msg acq = b.read();
        assertTrue(acq.isSignal("NameAcquired"), acq.toString());
        assertEquals("com.example.P", acq.string0());
        assertNoc(w.read(), "com.example.P", aName, b.uniqueName);
        assertNoc(w.read(), aName, aName, "");
    }

    // --- limits ---------------------------------------------------------------------------

    @Test
    void maxCompletedConnectionsRefusesHelloAndCountsBack() throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().maxCompletedConnections = 1;
        start(config);
        RawClient first = open();
        RawClient second = connect();
        second.authenticate(); // as dbus-daemon: SASL completes, the limit is Hello's
        Msg refused = second.expectError(second.callDriver("Hello", null, null), DBusErrors.LIMITS_EXCEEDED);
        assertEquals("The maximum number of active connections has been reached", refused.string0());
        assertFalse(second.isEof(), "the socket stays open");
        first.close();
        // The slot is free again once the bus has seen first's close (asynchronously): the
        // same connection may retry Hello; poll with a deadline.
        long deadline = System.nanoTime() + RawClient.TIMEOUT_MS * 1_000_000L;
        while (true) {
            long s = second.callDriver("Hello", null, null);
            Msg m = second.read();
            assertEquals(s, m.replySerial(), m.toString());
            if (m.type() == WireFormat.METHOD_RETURN) {
                break;
            }
            assertEquals(DBusErrors.LIMITS_EXCEEDED, m.errorName(), m.toString());
            assertTrue(System.nanoTime() < deadline, "connection slot never became free");
        }
    }

    @Test
    void maxIncompleteConnectionsDropsTheOldestIncompleteClient() throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().maxIncompleteConnections = 1;
        start(config);
        RawClient stalled = connect();
        stalled.write(new byte[] {0}); // takes the one incomplete slot and never authenticates
        RawClient next = connect();
        // As dbus-daemon: the newcomer gets in, the oldest incomplete connection makes room.
        assertTrue(stalled.awaitEof(RawClient.TIMEOUT_MS));
        next.write(new byte[] {0});
        next.writeAscii("AUTH EXTERNAL " + RawClient.hexUid(RawClient.myUid()) + "\r\n");
        assertTrue(next.readLine().startsWith("OK "));
        next.writeAscii("BEGIN\r\n");
        next.hello();
        assertTrue(open().uniqueName.startsWith(":1."));
    }

    @Test
    void maxRepliesPerConnectionLimitsPendingCalls() throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().maxRepliesPerConnection = 2;
        start(config);
        RawClient a = open();
        RawClient b = open();
        long s1 = a.call(0, b.uniqueName, "/o", "com.example.I", "M", null, null);
        long s2 = a.call(0, b.uniqueName, "/o", "com.example.I", "M", null, null);
        long s3 = a.call(0, b.uniqueName, "/o", "com.example.I", "M", null, null);
        a.expectError(s3, "org.freedesktop.DBus.Error.LimitsExceeded");
        assertEquals(s1, b.read().serial());
        assertEquals(s2, b.read().serial());
        b.write(MessageBuilder.methodReturn(b.nextSerial(), s1, a.uniqueName, null, null, null));
        a.expectReturn(s1);
        long s4 = a.call(0, b.uniqueName, "/o", "com.example.I", "M", null, null);
        assertEquals(s4, b.read().serial(), "a reply frees a slot");
        // NO_REPLY_EXPECTED calls don't take a slot.
        long s5 = a.call(WireFormat.NO_REPLY_EXPECTED, b.uniqueName, "/o", "com.example.I", "M", null, null);
        assertEquals(s5, b.read().serial());
    }

    @Test
    void callToRecipientWithFullQueueIsLimitsExceeded() throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().maxOutgoingBytes = 64 * 1024;
        start(config);
        RawClient a = open();
        RawClient b = open(); // never reads from here on
        byte[] body = new BodyWriter().writeByteArray(new byte[256 * 1024]).toByteArray();
        // b's socket buffers absorb some; the pool then takes one message over budget and refuses.
        String got = null;
        for (int i = 0; i < 200 && got == null; i++) {
            long s = a.call(WireFormat.NO_REPLY_EXPECTED, b.uniqueName, "/o", "com.example.I", "M", "ay", body);
            long p = a.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Peer", "Ping", null, null);
            Msg m = a.read();
            if (m.type() == WireFormat.ERROR) {
                assertEquals(s, m.replySerial());
                got = m.errorName();
                a.expectReturn(p);
            } else {
                assertEquals(p, m.replySerial(), m.toString());
            }
        }
        assertEquals("org.freedesktop.DBus.Error.LimitsExceeded", got);
        assertFalse(b.isEof());
    }

    // --- lifecycle ------------------------------------------------------------------------

    @Test
    void stopRemovesSocketFileAndRefusesNewClients() throws Exception {
        start();
        open();
        server.stop();
        assertFalse(Files.exists(socket), "socket file must be removed on stop");
        assertThrows(java.io.IOException.class, () -> RawClient.connect(socket).close());
    }

    @Test
    void stopClosesClientsAndRemovesSocketFile() throws Exception {
        start();
        RawClient c = open();
        RawClient unauth = connect();
        server.stop();
        assertFalse(Files.exists(socket), "socket file must be removed on stop");
        assertTrue(c.awaitEof(RawClient.TIMEOUT_MS), "an authenticated client must see EOF after stop()");
        assertTrue(unauth.awaitEof(RawClient.TIMEOUT_MS), "an unauthenticated client must see EOF after stop()");
    }

    @Test
    void maxConnectionsPerUserRefusesExtraConnection() throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().maxConnectionsPerUser = 2;
        start(config);
        open();
        open();
        RawClient third = connect();
        third.authenticate();
        Msg refused = third.expectError(third.callDriver("Hello", null, null), DBusErrors.LIMITS_EXCEEDED);
        assertEquals("The maximum number of active connections for UID " + RawClient.myUid() + " has been reached",
                refused.string0());
        assertFalse(third.isEof(), "the socket stays open");
    }

    @Test
    void aConnectionRefusedAtHelloIsClosedAtAuthTimeout() throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().maxCompletedConnections = 1;
        config.limits().authTimeout = 300;
        start(config);
        RawClient first = open();
        RawClient refused = connect();
        long t0 = System.nanoTime();
        refused.authenticate();
        refused.expectError(refused.callDriver("Hello", null, null), DBusErrors.LIMITS_EXCEEDED);
        assertTrue(refused.awaitEof(RawClient.TIMEOUT_MS), "auth_timeout bounds the whole incomplete phase");
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 200, "disconnected too early: " + ms + " ms");
        assertEquals(0, first.sync());
    }

    @Test
    void signalToDriverBeforeHelloDoesNotBreakRegistration() throws Exception {
        start();
        RawClient c = connect();
        c.authenticate();
        c.signal(RawClient.BUS, "/x", "com.example.I", "S", null, null);
        // dbus-daemon ignores non-method-calls to the driver; either way Hello must still work.
        long s = c.callDriver("Hello", null, null);
        Msg m = c.read();
        if (m.type() == WireFormat.ERROR) {
            m = c.read();
        }
        assertEquals(s, m.replySerial(), m.toString());
    }

    @Test
    void helloWithoutInterfaceRegisters() throws Exception {
        start();
        RawClient c = connect();
        c.authenticate();
        long s = c.call(0, RawClient.BUS, RawClient.BUS_PATH, null, "Hello", null, null);
        Msg reply = c.read();
        assertEquals(WireFormat.METHOD_RETURN, reply.type(), reply.toString());
        assertEquals(s, reply.replySerial());
        assertTrue(reply.string0().startsWith(":1."));
    }
}
