// Invariants under test, over real sockets: reply_timeout answers an unanswered call with
// dbus-daemon's NoReply and frees the slot; max_incoming_bytes stops reading a client while its
// own messages wait in the bus and resumes when they drain (the loop keeps serving others);
// max_pending_service_starts refuses activation with LimitsExceeded; max_names_per_connection
// and max_match_rules_per_connection give dbus-daemon's LimitsExceeded; Debug.Stats answers with
// dbus-daemon's keys and counts a broadcast a slow reader's full pool skipped.
// Blocking reads (bounded by RawClient's deadline and @Timeout) stand in for waits.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.server.RawClient.Msg;

@Timeout(60)
class BusLimitsServerTest {
    private static final String LIMITS_EXCEEDED = "org.freedesktop.DBus.Error.LimitsExceeded";
    private static final String STATS = "org.freedesktop.DBus.Debug.Stats";

    @TempDir
    Path dir;

    private BusServer server;
    private final List<RawClient> clients = new ArrayList<>();

    private BusConfig config() {
        return BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
    }

    private void start(BusConfig config) throws Exception {
        server = new BusServer(config);
        server.start();
    }

    /** An activatable name whose service exits at once without taking it (the start stays pending). */
    private void neverStartingService(BusConfig config, String name) throws Exception {
        Path services = dir.resolve("services");
        Files.createDirectories(services);
        Files.writeString(services.resolve(name + ".service"),
                "[D-BUS Service]\nName=" + name + "\nExec=/bin/true\n");
        if (!config.serviceDirs().contains(services.toString())) {
            config.serviceDirs().add(services.toString());
        }
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

    private RawClient open() throws Exception {
        RawClient c = RawClient.open(dir.resolve("bus"));
        clients.add(c);
        return c;
    }

    private static Map<String, Object> connectionStats(RawClient c, String name) throws Exception {
        long s = c.call(0, RawClient.BUS, RawClient.BUS_PATH, STATS, "GetConnectionStats", "s",
                new BodyWriter().writeString(name).toByteArray());
        return c.expectReturn(s).body().readDictStringVariant();
    }

    private static long u(Map<String, Object> stats, String key) {
        Object v = stats.get(key);
        assertTrue(v instanceof Number, key + " in " + stats);
        return ((Number) v).longValue();
    }

    @Test
    void replyTimeoutGivesNoReplyAndFreesTheSlot() throws Exception {
        BusConfig config = config();
        config.limits().replyTimeout = 200;
        config.limits().maxRepliesPerConnection = 1;
        start(config);
        RawClient a = open();
        RawClient b = open();
        long s1 = a.call(0, b.uniqueName, "/o", "com.example.I", "M", null, null);
        assertEquals(s1, b.read().serial());
        Msg err = a.expectError(s1, "org.freedesktop.DBus.Error.NoReply");
        assertEquals(RawClient.BUS, err.sender());
        assertEquals("Message did not receive a reply (timeout by message bus)", err.string0());
        long s2 = a.call(0, b.uniqueName, "/o", "com.example.I", "M", null, null);
        assertEquals(s2, b.read().serial(), "the timed-out slot no longer counts against max_replies_per_connection");
    }

    @Test
    void maxIncomingBytesStopsReadingTheSenderUntilItsMessagesDrain() throws Exception {
        BusConfig config = config();
        config.limits().maxIncomingBytes = 8 * 1024;
        neverStartingService(config, "org.example.Later");
        start(config);
        RawClient a = open();
        RawClient watcher = open();
        byte[] body = new BodyWriter().writeByteArray(new byte[6000]).toByteArray();
        int total = 20; // 120 kB: more than one 64 kB read plus the limit, less than the socket buffers
        long[] serials = new long[total];
        for (int i = 0; i < total; i++) {
            // Calls to a name whose service never takes it wait on its activator: still in the bus.
            serials[i] = a.call(WireFormat.NO_REPLY_EXPECTED, "org.example.Later", "/o", "com.example.I", "M", "ay", body);
        }
        long ping = a.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Peer", "Ping", null, null);
        Map<String, Object> stats = connectionStats(watcher, a.uniqueName);
        for (int i = 0; i < 1000 && u(stats, "IncomingBytes") < 8 * 1024; i++) {
            stats = connectionStats(watcher, a.uniqueName);
        }
        long queued = u(stats, "IncomingBytes");
        assertTrue(queued >= 8 * 1024, stats.toString());
        assertTrue(queued <= 8 * 1024 + 64 * 1024 + 6200, "reading stopped near the limit: " + queued);
        // The loop keeps serving others, and no more of a's input is read meanwhile.
        assertEquals(queued, u(connectionStats(watcher, a.uniqueName), "IncomingBytes"));
        assertTrue(u(stats, "PeakIncomingBytes") >= queued);

        // The owner arrives: the waiting calls move to it and, written out, leave the bus.
        RawClient owner = open();
        // NameAcquired, then the waiting calls, then the RequestName reply (dbus-daemon's order).
        owner.callDriver("RequestName", "su", new BodyWriter().writeString("org.example.Later").writeUint32(0).toByteArray());
        int got = 0;
        while (got < total) {
            Msg m = owner.read();
            if (m.type() == WireFormat.METHOD_CALL) {
                assertEquals(serials[got], m.serial(), "in order, none lost");
                assertEquals(a.uniqueName, m.sender());
                got++;
            }
        }
        a.expectReturn(ping);
        assertEquals(0, u(connectionStats(watcher, a.uniqueName), "IncomingBytes"));
    }

    @Test
    void maxPendingServiceStartsRefusesMoreActivations() throws Exception {
        BusConfig config = config();
        config.limits().maxPendingServiceStarts = 2;
        neverStartingService(config, "org.example.One");
        neverStartingService(config, "org.example.Two");
        start(config);
        RawClient a = open();
        a.call(0, "org.example.One", "/o", "com.example.I", "M", null, null);
        long start = a.callDriver("StartServiceByName", "su",
                new BodyWriter().writeString("org.example.Two").writeUint32(0).toByteArray());
        long third = a.call(0, "org.example.Two", "/o", "com.example.I", "M", null, null);
        Msg err = a.expectError(third, LIMITS_EXCEEDED);
        assertEquals("The maximum number of pending activations has been reached, activation of org.example.Two"
                + " failed (max_pending_service_starts=2)", err.string0());
        long fourth = a.callDriver("StartServiceByName", "su",
                new BodyWriter().writeString("org.example.One").writeUint32(0).toByteArray());
        a.expectError(fourth, LIMITS_EXCEEDED);
        assertTrue(start > 0);
    }

    @Test
    void maxNamesPerConnectionCountsTheUniqueName() throws Exception {
        BusConfig config = config();
        config.limits().maxNamesPerConnection = 3;
        start(config);
        RawClient a = open();
        for (String n : List.of("org.example.A", "org.example.B")) {
            long s = a.callDriver("RequestName", "su", new BodyWriter().writeString(n).writeUint32(0).toByteArray());
            assertTrue(a.read().isSignal("NameAcquired"));
            a.expectReturn(s);
        }
        long s = a.callDriver("RequestName", "su", new BodyWriter().writeString("org.example.C").writeUint32(0).toByteArray());
        Msg err = a.expectError(s, LIMITS_EXCEEDED);
        assertTrue(err.string0().contains("max_names_per_connection=3"), err.string0());
    }

    @Test
    void maxMatchRulesPerConnection() throws Exception {
        BusConfig config = config();
        config.limits().maxMatchRulesPerConnection = 2;
        start(config);
        RawClient a = open();
        a.addMatch("member='A'");
        a.addMatch("member='B'");
        Msg err = a.expectError(a.callDriver("AddMatch", "member='C'"), LIMITS_EXCEEDED);
        assertTrue(err.string0().contains("max_match_rules_per_connection=2"), err.string0());
    }

    @Test
    void statsCountTheBroadcastASlowReadersFullPoolSkipped() throws Exception {
        BusConfig config = config();
        config.limits().maxOutgoingBytes = 64 * 1024;
        start(config);
        RawClient a = open();
        RawClient slow = open();
        RawClient watcher = open();
        slow.addMatch("type='signal',interface='com.example.Big'");
        byte[] body = new BodyWriter().writeByteArray(new byte[512 * 1024]).toByteArray();
        // Past what slow's socket can hold: the bus asks for a bigger send buffer for large
        // messages, and the kernel doubles the request (at most 2 x TransportSettings.largeSendBuffer).
        int signals = 4 + 2 * server.transport().largeSendBuffer() / body.length;
        for (int i = 0; i < signals; i++) {
            a.signal(null, "/big", "com.example.Big", "Blob", "ay", body);
        }
        a.expectReturn(a.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Peer", "Ping", null, null));
        Map<String, Object> st = connectionStats(watcher, slow.uniqueName);
        assertTrue(u(st, "DroppedMessages") >= 1, st.toString());
        assertEquals(64 * 1024, u(st, "PoolBudgetBytes"));
        assertEquals(slow.uniqueName, st.get("UniqueName"));
        assertEquals(1, u(st, "MatchRules"));
        for (String k : List.of("Serial", "PeakMatchRules", "BusNames", "PeakBusNames", "IncomingMessages",
                "IncomingBytes", "IncomingFDs", "PeakIncomingBytes", "PeakIncomingFDs", "OutgoingMessages",
                "OutgoingBytes", "OutgoingFDs", "PeakOutgoingBytes", "PeakOutgoingFDs")) {
            assertTrue(st.containsKey(k), k + " missing from " + st);
        }
        assertFalse(slow.isEof(), "a slow reader is not disconnected");
    }
}
