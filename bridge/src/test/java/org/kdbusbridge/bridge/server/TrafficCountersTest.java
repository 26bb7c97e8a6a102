// Invariants under test (issue 20): the core's cumulative counters agree exactly with the traffic
// clients sent and received: messages by type, and bytes (in: each frame as the client wrote
// it, before the SENDER field the bus adds; out: as written to the receiver); refusals count by kind on the
// sender; a departed connection's counts stay in the bus totals; disconnects count by reason;
// the metrics socket serves the same numbers. State is read on the loop thread; waits are
// conditions with deadlines.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.server.RawClient.Msg;
import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.core.bus.DisconnectReason;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionCounters;
import org.kdbusbridge.core.message.Message;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TrafficCountersTest {
    private static final String IFACE = "org.example.Counted";
    private static final int CALLS = 10;
    private static final int SIGNALS = 7;

    @TempDir
    Path dir;

    private BusServer server;
    private final List<RawClient> clients = new ArrayList<>();

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

    private Connection conn(String unique) throws Exception {
        return OnLoop.get(server, () -> server.bus().resolve(unique));
    }

    /** A copy of the counters, taken on the loop thread. */
    private ConnectionCounters snapshot(String unique) throws Exception {
        return OnLoop.get(server, () -> {
            ConnectionCounters copy = new ConnectionCounters();
            copy.add(server.bus().resolve(unique).counters());
            return copy;
        });
    }

    private void start() throws Exception {
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")));
        server.setMetrics(UnixAddress.path(dir.resolve("metrics").toString(), null), 100);
        server.start();
    }

    @Test
    void countsMatchTheTrafficExactly() throws Exception {
        start();
        RawClient a = open();
        RawClient b = open();
        b.addMatch("type='signal',interface='" + IFACE + "'");
        ConnectionCounters a0 = snapshot(a.uniqueName);
        ConnectionCounters b0 = snapshot(b.uniqueName);

        long callBytesReceived = 0;
        long returnBytesReceived = 0;
        long signalBytesReceived = 0;
        long callBytesSent = 0;
        long returnBytesSent = 0;
        long signalBytesSent = 0;
        byte[] body = new BodyWriter().writeString("payload").toByteArray();
        for (int i = 0; i < CALLS; i++) {
            byte[] call = MessageBuilder.methodCall(a.nextSerial(), 0, b.uniqueName, "/o", IFACE, "Do", null, "s", body);
            callBytesSent += call.length;
            a.write(call);
            Msg got = b.read();
            assertEquals(Message.METHOD_CALL, got.type(), got.toString());
            callBytesReceived += got.frame().length;
            byte[] ret = MessageBuilder.methodReturn(b.nextSerial(), got.serial(), a.uniqueName, null, "s", body);
            returnBytesSent += ret.length;
            b.write(ret);
            Msg r = a.read();
            assertEquals(Message.METHOD_RETURN, r.type(), r.toString());
            returnBytesReceived += r.frame().length;
        }
        for (int i = 0; i < SIGNALS; i++) {
            byte[] sig = MessageBuilder.signal(a.nextSerial(), "/o", IFACE, "Changed", null, null, "s", body);
            signalBytesSent += sig.length;
            a.write(sig);
        }
        for (int i = 0; i < SIGNALS; i++) {
            Msg s = b.read();
            assertTrue(s.isSignal("Changed"), s.toString());
            signalBytesReceived += s.frame().length;
        }
        // One refused unicast: to a name nobody owns (ServiceUnknown, counted as "other").
        long refusedSerial = a.call(Message.FLAG_NO_AUTO_START, "org.example.Nobody", "/o", IFACE, "Do", null, null);
        a.expectError(refusedSerial, "org.freedesktop.DBus.Error.NameHasNoOwner");

        ConnectionCounters a1 = snapshot(a.uniqueName);
        ConnectionCounters b1 = snapshot(b.uniqueName);
        assertEquals(CALLS + 1, a1.messagesIn(Message.METHOD_CALL) - a0.messagesIn(Message.METHOD_CALL));
        assertEquals(SIGNALS, a1.messagesIn(Message.SIGNAL) - a0.messagesIn(Message.SIGNAL));
        assertEquals(0, a1.messagesIn(Message.METHOD_RETURN) - a0.messagesIn(Message.METHOD_RETURN));
        assertEquals(CALLS, a1.messagesOut(Message.METHOD_RETURN) - a0.messagesOut(Message.METHOD_RETURN));
        assertEquals(1, a1.messagesOut(Message.ERROR) - a0.messagesOut(Message.ERROR));
        assertEquals(CALLS, b1.messagesIn(Message.METHOD_RETURN) - b0.messagesIn(Message.METHOD_RETURN));
        assertEquals(CALLS, b1.messagesOut(Message.METHOD_CALL) - b0.messagesOut(Message.METHOD_CALL));
        assertEquals(SIGNALS, b1.messagesOut(Message.SIGNAL) - b0.messagesOut(Message.SIGNAL));
        assertEquals(1, a1.refusedOtherCount() - a0.refusedOtherCount());
        assertEquals(0, a1.refusedLimitsCount() + a1.refusedAccessCount());
        // Bytes: what the receivers got, exactly (out), and what the senders wrote, exactly (in:
        // the frame as read, before the SENDER field the bus splices in).
        assertEquals(callBytesReceived, b1.bytesOut(Message.METHOD_CALL) - b0.bytesOut(Message.METHOD_CALL));
        assertEquals(returnBytesReceived, a1.bytesOut(Message.METHOD_RETURN) - a0.bytesOut(Message.METHOD_RETURN));
        assertEquals(signalBytesReceived, b1.bytesOut(Message.SIGNAL) - b0.bytesOut(Message.SIGNAL));
        long callIn = a1.bytesIn(Message.METHOD_CALL) - a0.bytesIn(Message.METHOD_CALL);
        assertTrue(callIn > callBytesSent, callIn + " <= " + callBytesSent); // + the refused call's frame
        assertEquals(returnBytesSent, b1.bytesIn(Message.METHOD_RETURN) - b0.bytesIn(Message.METHOD_RETURN));
        assertEquals(signalBytesSent, a1.bytesIn(Message.SIGNAL) - a0.bytesIn(Message.SIGNAL));
        assertTrue(returnBytesReceived > returnBytesSent && signalBytesReceived > signalBytesSent); // SENDER added

        // The metrics socket serves the same numbers.
        String dump = readDump(dir.resolve("metrics"));
        assertTrue(dump.endsWith("# EOF\n"), dump);
        String labelA = "unique_name=\"" + a.uniqueName + "\"";
        assertTrue(dump.contains("kdbus_connection_messages_in_total{" + labelA + ",names=\"\",uid=\"" + RawClient.myUid()
                + "\",comm=\""), dump);
        assertEquals(a1.messagesIn(Message.SIGNAL), sample(dump, "kdbus_connection_messages_in_total{" + labelA,
                "type=\"signal\""));
    }

    @Test
    void departedCountsStayInTheBusTotalsAndDisconnectsCountByReason() throws Exception {
        start();
        RawClient a = open();
        long before = OnLoop.get(server, () -> server.bus().counters().disconnects(DisconnectReason.HANG_UP));
        ConnectionCounters a1 = snapshot(a.uniqueName);
        a.close();
        clients.remove(a);
        OnLoop.await(server, "a's hang-up counted", 10,
                () -> server.bus().counters().disconnects(DisconnectReason.HANG_UP) == before + 1);
        long departedCalls = OnLoop.get(server, () -> server.bus().counters().departed().messagesIn(Message.METHOD_CALL));
        assertTrue(departedCalls >= a1.messagesIn(Message.METHOD_CALL), departedCalls + " < " + a1.messagesIn(1));

        // A protocol violation: a frame with an invalid type-0 header after authentication.
        RawClient bad = open();
        long violations = OnLoop.get(server, () -> server.bus().counters().disconnects(DisconnectReason.PROTOCOL_VIOLATION));
        byte[] junk = new byte[16];
        junk[0] = 'l';
        junk[3] = 1;
        bad.write(junk);
        assertTrue(bad.awaitEof(10_000));
        OnLoop.await(server, "the violation counted", 10,
                () -> server.bus().counters().disconnects(DisconnectReason.PROTOCOL_VIOLATION) == violations + 1);

        // Rejected SASL: more failed AUTHs than the bus allows; its REJECTED goes out, then the
        // close, counted as auth (the close site says so, not a text).
        long auth = OnLoop.get(server, () -> server.bus().counters().disconnects(DisconnectReason.AUTH));
        long hangUps = OnLoop.get(server, () -> server.bus().counters().disconnects(DisconnectReason.HANG_UP));
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(dir.resolve("bus")));
             InputStream in = Channels.newInputStream(ch)) {
            StringBuilder auths = new StringBuilder("\0");
            for (int i = 0; i <= org.kdbusbridge.bridge.protocol.SaslServer.MAX_FAILURES; i++) {
                auths.append("AUTH BOGUS\r\n");
            }
            ch.write(java.nio.ByteBuffer.wrap(auths.toString().getBytes(StandardCharsets.US_ASCII)));
            String answer = new String(in.readAllBytes(), StandardCharsets.US_ASCII); // to the bus's close
            assertTrue(answer.startsWith("REJECTED"), answer);
        }
        OnLoop.await(server, "the rejection counted as auth", 10,
                () -> server.bus().counters().disconnects(DisconnectReason.AUTH) == auth + 1);
        assertEquals(hangUps, OnLoop.get(server, () -> server.bus().counters().disconnects(DisconnectReason.HANG_UP)));
    }

    static String readDump(Path socket) throws Exception {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket));
             InputStream in = Channels.newInputStream(ch)) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            return out.toString(StandardCharsets.UTF_8);
        }
    }

    /** The value of the first sample whose line starts with {@code prefix} and contains {@code part}. */
    static long sample(String dump, String prefix, String part) {
        for (String line : dump.split("\n")) {
            if (line.startsWith(prefix) && line.contains(part)) {
                return Long.parseLong(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        throw new AssertionError("no sample " + prefix + " " + part + " in\n" + dump);
    }
}
