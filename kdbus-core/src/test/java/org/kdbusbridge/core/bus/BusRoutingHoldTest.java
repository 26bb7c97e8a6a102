package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures.RecordingSink;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;

/**
 * A receiver that lets a message go inside its own offer (the capture sink copies and pops at
 * once) must not free a direct payload that receivers offered later still need: the routing
 * step holds the message itself (issue 13, item 10: large messages lost with --kdbus-capture).
 */
class BusRoutingHoldTest {
    private Bus bus;
    private final List<byte[]> captured = new ArrayList<>();

    /** What CaptureSink does on the loop: a heap copy, then pop, inside onQueued. */
    private final ConnectionSink copyAndPop = c -> {
        Message m;
        while ((m = c.pool().peek()) != null) {
            SealedPayload copy = m.payload().heapCopy();
            byte[] b = new byte[copy.size()];
            copy.view().get(b);
            captured.add(b);
            c.pool().pop();
        }
    };

    @BeforeEach
    void setUp() {
        bus = new Bus(new BusLimits());
        bus.attachCapture(new Credentials(0, 0, 1), copyAndPop);
    }

    private Connection client() {
        Connection c = bus.connect(new Credentials(1000, 1000, 4242), new RecordingSink());
        bus.hello(c);
        c.setAcceptsUnixFds(true);
        return c;
    }

    private static SealedPayload direct(int size) {
        ByteBuffer b = ByteBuffer.allocateDirect(size);
        for (int i = 0; i < size; i++) {
            b.put(i, (byte) i);
        }
        return new SealedPayload(b);
    }

    private static Message call(String dest, SealedPayload p, FdSet fds) {
        return new Message(Message.METHOD_CALL, Message.FLAG_NO_REPLY_EXPECTED, 7, Message.NO_REPLY_SERIAL, dest,
                "/p", "a.b", "Call", null, p, null, fds);
    }

    private static Message signal(SealedPayload p) {
        return new Message(Message.SIGNAL, Message.FLAG_NO_REPLY_EXPECTED, 8, Message.NO_REPLY_SERIAL, null,
                "/p", "a.b", "Tick", null, p, null);
    }

    private static void assertReadable(SealedPayload p, int size) {
        assertFalse(p.isFreed(), "a receiver still holds it");
        ByteBuffer v = p.view();
        assertEquals(size, v.remaining());
        assertEquals((byte) (size - 1), v.get(size - 1));
    }

    @Test
    void aUnicastAndItsEavesdroppersKeepTheDirectPayloadTheCaptureLetGo() throws Exception {
        Connection from = client();
        Connection to = client();
        Connection eaves1 = client();
        Connection eaves2 = client();
        bus.matches().add(eaves1, MatchRule.parse("eavesdrop='true'"));
        bus.matches().add(eaves2, MatchRule.parse("eavesdrop='true'"));
        int[] closed = {0};
        FdSet fds = new FdSet(new int[] {100, 101}, fd -> closed[0]++);
        SealedPayload p = direct(1 << 20);
        Message m = call(to.uniqueName(), p, fds);

        assertEquals(Delivery.OK, bus.send(from, m));
        fds.release(); // the transport's reference, as ClientSession drops it after send

        assertEquals(1, captured.size(), "the capture got its copy");
        assertEquals(1 << 20, captured.get(0).length);
        assertEquals((byte) 0xff, captured.get(0)[(1 << 20) - 1]);
        for (Connection c : List.of(to, eaves1, eaves2)) {
            assertReadable(p, 1 << 20);
            assertSame(m, c.pool().peek());
            assertEquals(0, closed[0], "fds stay open until the last receiver wrote them");
            c.pool().pop();
        }
        assertTrue(p.isFreed(), "freed once the last receiver let go");
        assertEquals(2, closed[0], "every fd closed once");
        assertEquals(0, from.incomingBytes(), "the sender's incoming charge came back");
        assertEquals(0, from.incomingFds());
    }

    @Test
    void aBroadcastReachesEveryMatchingReceiver() throws Exception {
        Connection from = client();
        List<Connection> receivers = List.of(client(), client(), client());
        for (Connection c : receivers) {
            bus.matches().add(c, MatchRule.parse("member='Tick'"));
        }
        SealedPayload p = direct(65536);
        assertEquals(Delivery.OK, bus.send(from, signal(p)));
        assertEquals(1, captured.size());
        for (Connection c : receivers) {
            assertReadable(p, 65536);
            c.pool().pop();
        }
        assertTrue(p.isFreed());
    }

    @Test
    void aMessageNobodyTookIsFreedWhenRoutingEnds() {
        Connection from = client();
        SealedPayload p = direct(65536);
        assertEquals(Delivery.SERVICE_UNKNOWN, bus.send(from, call("org.example.Nobody", p, null)));
        assertEquals(1, captured.size(), "monitors see undeliverable messages too");
        assertTrue(p.isFreed(), "no queue holds it: its memory goes back now");
        assertEquals(0, from.incomingBytes());
    }

    @Test
    void busMessagesAreHeldWhileRoutedToo() {
        Connection to = client();
        SealedPayload p = direct(65536);
        Message m = new Message(Message.SIGNAL, Message.FLAG_NO_REPLY_EXPECTED, 9, Message.NO_REPLY_SERIAL,
                to.uniqueName(), "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameAcquired", null, p, null);
        bus.emitTo(to, m);
        assertEquals(1, captured.size());
        assertReadable(p, 65536);
        to.pool().pop();
        assertTrue(p.isFreed());
    }
}
