// Invariants under test: the per-uid fair share of a receive pool (a flooding uid can't exclude
// other uids; the owner's own uid is held only to the total), dbus-daemon's incoming counter
// (a message counts once on its sender however many queues hold it, and is released when the
// last one lets it go, with one "drained" notice when the counter falls back under the limit),
// reply_timeout expiry on an injected clock, max_pending_service_starts, and the statistics
// peaks the Debug.Stats interface reports.
package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.Fixtures.call;
import static org.kdbusbridge.core.Fixtures.drain;
import static org.kdbusbridge.core.Fixtures.msg;
import static org.kdbusbridge.core.Fixtures.reply;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;

class BusLimitsTest {
    private BusLimits limits;
    private Bus bus;
    private long now;
    private final List<Connection> drained = new ArrayList<>();

    @BeforeEach
    void setUp() {
        limits = new BusLimits();
        bus = new Bus(limits);
        bus.setClock(() -> now);
    }

    private Connection client(long uid) {
        Connection c = bus.connect(new Credentials(uid, uid, 1), new ConnectionSink() {
            @Override
            public void onQueued(Connection connection) { }

            @Override
            public void onIncomingDrained(Connection connection) {
                drained.add(connection);
            }
        });
        bus.hello(c);
        return c;
    }

    private static Message sig(Connection to, int size) {
        return msg(Message.SIGNAL, Message.FLAG_NO_REPLY_EXPECTED, 1, Message.NO_REPLY_SERIAL,
                to == null ? null : to.uniqueName(), "/p", "org.example.I", "S", null, size, null);
    }

    // --- fair share -----------------------------------------------------------------------

    @Test
    void maxMessageUnixFdsNeverExceedsWhatOneSendmsgCarries() {
        BusLimits l = new BusLimits();
        assertTrue(l.set("max_message_unix_fds", 1_000_000L));
        assertEquals(BusLimits.MAX_MESSAGE_UNIX_FDS, l.maxMessageUnixFds);
        assertEquals(253, BusLimits.MAX_MESSAGE_UNIX_FDS);
        assertTrue(l.set("max_message_unix_fds", 252));
        assertEquals(252, l.maxMessageUnixFds);
        assertEquals(16, new BusLimits().maxMessageUnixFds, "dbus-daemon's default");
    }

    @Test
    void floodingUidCannotExcludeAnotherUidFromASlowReadersPool() {
        limits.maxOutgoingBytes = 10_000;
        Connection reader = client(1000);
        Connection flooder = client(2000);
        Connection other = client(3000);
        int accepted = 0;
        while (bus.send(flooder, sig(reader, 100)) == Delivery.OK) {
            accepted++;
        }
        // Alone among foreign uids, the flooder may hold at most half of what the pool has.
        assertTrue(accepted * 100 <= 5_000 + 100, "flooder got " + accepted * 100 + " bytes");
        assertTrue(accepted >= 40, "flooder got its share: " + accepted);
        assertEquals(1, reader.pool().dropped());
        // Another uid still gets in, repeatedly, while the flooder stays refused.
        for (int i = 0; i < 10; i++) {
            assertEquals(Delivery.OK, bus.send(other, sig(reader, 100)), "message " + i + " of the other uid");
        }
        assertEquals(Delivery.RECIPIENT_FULL, bus.send(flooder, sig(reader, 100)));
        assertEquals(1_000, reader.pool().bytesOf(3000));
        assertEquals(accepted * 100L, reader.pool().bytesOf(2000));
        // Writing out releases the charge to the sending uid.
        drain(reader);
        assertEquals(0, reader.pool().bytesOf(2000));
        assertEquals(0, reader.pool().chargedUsers());
        assertEquals(Delivery.OK, bus.send(flooder, sig(reader, 100)));
    }

    @Test
    void broadcastFromAFloodingUidIsSkippedAndCountedButOtherUidsStillArrive() throws Exception {
        limits.maxOutgoingBytes = 10_000;
        Connection reader = client(1000);
        Connection flooder = client(2000);
        Connection other = client(3000);
        bus.matches().add(reader, MatchRule.parse("type='signal'"));
        for (int i = 0; i < 200; i++) {
            assertEquals(Delivery.OK, bus.send(flooder, sig(null, 100)), "a broadcast never fails");
        }
        long dropped = reader.pool().dropped();
        assertTrue(dropped >= 100, "dropped " + dropped);
        assertEquals(Delivery.OK, bus.send(other, sig(null, 100)));
        assertEquals(dropped, reader.pool().dropped(), "the other uid's broadcast was not dropped");
        List<Message> got = drain(reader);
        assertSame(other, got.get(got.size() - 1).sender());
    }

    @Test
    void theReadersOwnUidIsHeldOnlyToTheTotalBudget() {
        limits.maxOutgoingBytes = 1_000;
        Connection reader = client(1000);
        Connection same = client(1000);
        int accepted = 0;
        while (bus.send(same, sig(reader, 100)) == Delivery.OK) {
            accepted++;
        }
        assertEquals(10, accepted, "as dbus-daemon on a session bus: the whole budget");
        assertEquals(0, reader.pool().chargedUsers());
    }

    @Test
    void fdsAndMessageCountsAreSharedToo() {
        limits.maxQueuedMessages = 30;
        Connection reader = client(1000);
        Connection flooder = client(2000);
        Connection other = client(3000);
        int accepted = 0;
        while (bus.send(flooder, sig(reader, 1)) == Delivery.OK) {
            accepted++;
        }
        assertTrue(accepted <= 16, "flooder queued " + accepted + " of 30 messages");
        assertEquals(Delivery.OK, bus.send(other, sig(reader, 1)));
    }

    // --- max_incoming_bytes counter ---------------------------------------------------------

    @Test
    void incomingCounterCountsABroadcastOnceUntilTheLastReceiverWroteIt() throws Exception {
        Connection sender = client(1000);
        Connection r1 = client(1000);
        Connection r2 = client(1000);
        bus.matches().add(r1, MatchRule.parse("type='signal'"));
        bus.matches().add(r2, MatchRule.parse("type='signal'"));
        bus.send(sender, sig(null, 100));
        assertEquals(100, sender.incomingBytes(), "once, though two pools hold it");
        r1.pool().pop();
        assertEquals(100, sender.incomingBytes());
        r2.pool().pop();
        assertEquals(0, sender.incomingBytes());
        assertEquals(100, sender.peakIncomingBytes());
    }

    @Test
    void incomingLimitStopsAndDrainedNoticeResumes() {
        limits.maxIncomingBytes = 250;
        Connection sender = client(1000);
        Connection reader = client(1000);
        bus.send(sender, sig(reader, 100));
        bus.send(sender, sig(reader, 100));
        assertFalse(sender.isIncomingOverLimit());
        bus.send(sender, sig(reader, 100));
        assertTrue(sender.isIncomingOverLimit(), "300 >= 250: stop reading the sender");
        assertTrue(drained.isEmpty());
        reader.pool().pop();
        assertFalse(sender.isIncomingOverLimit());
        assertEquals(List.of(sender), drained, "one notice when it falls back under");
        reader.pool().pop();
        assertEquals(1, drained.size());
    }

    @Test
    void aReceiverLeavingReleasesTheSendersCharge() {
        Connection sender = client(1000);
        Connection reader = client(1000);
        bus.send(sender, sig(reader, 100));
        assertEquals(100, sender.incomingBytes());
        bus.disconnect(reader);
        assertEquals(0, sender.incomingBytes());
    }

    @Test
    void messagesWaitingOnAnActivatorCountAsIncoming() {
        bus.setActivatable(Set.of("org.example.Svc"));
        Connection sender = client(1000);
        assertEquals(Delivery.OK, bus.send(sender, call("org.example.Svc", 1, 0, 64)));
        assertEquals(64, sender.incomingBytes());
        Connection svc = client(1000);
        bus.names().request(svc, "org.example.Svc", 0, new ArrayList<>());
        bus.completeActivation("org.example.Svc");
        assertEquals(64, sender.incomingBytes(), "moved to the owner's pool, still alive");
        svc.pool().pop();
        assertEquals(0, sender.incomingBytes());
    }

    // --- reply_timeout ------------------------------------------------------------------------

    @Test
    void unansweredCallExpiresAfterReplyTimeoutAndFreesTheSlot() {
        limits.replyTimeout = 1_000;
        limits.maxRepliesPerConnection = 1;
        Connection caller = client(1000);
        Connection callee = client(1000);
        now = 5_000;
        assertEquals(Delivery.OK, bus.send(caller, call(callee.uniqueName(), 7)));
        assertEquals(6_000, bus.nextReplyDeadline());
        now = 5_999;
        assertTrue(bus.expireReplies().isEmpty());
        now = 6_000;
        List<DeadReply> dead = bus.expireReplies();
        assertEquals(List.of(new DeadReply(caller, 7)), dead);
        assertEquals(0, caller.pendingOutgoingReplies(), "the slot is freed");
        assertEquals(0, callee.pendingIncomingReplies());
        assertEquals(-1, bus.nextReplyDeadline());
        assertEquals(Delivery.OK, bus.send(caller, call(callee.uniqueName(), 8)), "room for a new call");
    }

    @Test
    void answeredCallDoesNotExpire() {
        limits.replyTimeout = 1_000;
        Connection caller = client(1000);
        Connection callee = client(1000);
        bus.send(caller, call(callee.uniqueName(), 7));
        bus.send(callee, reply(caller.uniqueName(), 7));
        now = 10_000;
        assertTrue(bus.expireReplies().isEmpty());
        assertEquals(-1, bus.nextReplyDeadline());
    }

    @Test
    void noDeadlinesWithoutReplyTimeout() {
        Connection caller = client(1000);
        Connection callee = client(1000);
        bus.send(caller, call(callee.uniqueName(), 7));
        assertEquals(-1, bus.nextReplyDeadline());
    }

    // --- max_pending_service_starts -----------------------------------------------------------

    @Test
    void pendingActivationEntriesAreLimited() {
        limits.maxPendingServiceStarts = 2;
        bus.setActivatable(Set.of("org.example.A", "org.example.B"));
        Connection c = client(1000);
        assertEquals(Delivery.OK, bus.send(c, call("org.example.A", 1)));
        assertEquals(Delivery.OK, bus.send(c, call("org.example.B", 2)));
        assertEquals(Delivery.TOO_MANY_ACTIVATIONS, bus.send(c, call("org.example.A", 3)));
        assertEquals(2, c.pendingOutgoingReplies(), "the refused call holds no reply slot");
        assertEquals(2, bus.failActivation("org.example.A").size() + bus.failActivation("org.example.B").size());
        assertEquals(0, bus.pendingActivationEntries());
        assertEquals(Delivery.OK, bus.send(c, call("org.example.A", 4)));
    }

    // --- statistics ---------------------------------------------------------------------------

    @Test
    void busNameAndMatchRulePeaks() throws Exception {
        Connection a = client(1000);
        Connection b = client(1000);
        assertEquals(2, bus.busNameCount());
        bus.names().request(a, "org.example.X", 0, new ArrayList<>());
        bus.names().request(b, "org.example.X", 0, new ArrayList<>()); // queued: counts too
        assertEquals(4, bus.busNameCount());
        assertEquals(2, a.peakBusNames());
        bus.names().release(b, "org.example.X", new ArrayList<>());
        assertEquals(3, bus.busNameCount());
        assertEquals(4, bus.peakBusNames());
        assertEquals(2, bus.peakBusNamesPerConnection());
        bus.matches().add(a, MatchRule.parse("member='A'"));
        bus.matches().add(a, MatchRule.parse("member='B'"));
        bus.matches().remove(a, MatchRule.parse("member='B'"));
        assertEquals(1, a.matchRuleCount());
        assertEquals(2, a.peakMatchRules());
        assertEquals(2, bus.matches().peakSize());
        assertEquals(2, bus.matches().peakPerConnection());
    }
}
