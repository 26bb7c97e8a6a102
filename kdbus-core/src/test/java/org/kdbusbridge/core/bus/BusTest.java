package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.Fixtures.call;
import static org.kdbusbridge.core.Fixtures.drain;
import static org.kdbusbridge.core.Fixtures.reply;
import static org.kdbusbridge.core.Fixtures.signal;
import static org.kdbusbridge.core.Fixtures.signalTo;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.Fixtures.RecordingSink;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameChange;
import org.kdbusbridge.core.name.NameRegistry;

class BusTest {
    private BusLimits limits;
    private Bus bus;
    private final List<RecordingSink> sinks = new ArrayList<>();

    @BeforeEach
    void setUp() {
        limits = new BusLimits();
        bus = new Bus(limits);
    }

    private Connection client() {
        RecordingSink sink = new RecordingSink();
        sinks.add(sink);
        Connection c = bus.connect(new Credentials(1000, 1000, 100 + sinks.size()), sink);
        bus.hello(c);
        return c;
    }

    private void rule(Connection c, String text) throws Exception {
        bus.matches().add(c, MatchRule.parse(text));
    }

    private void own(Connection c, String name, int flags) {
        bus.names().request(c, name, flags, new ArrayList<>());
    }

    private static String dest(Connection c) {
        return c.uniqueName();
    }

    // ---------------------------------------------------------------- hello / connections

    @Test
    void helloAssignsSequentialUniqueNamesNeverReused() {
        Connection a = bus.connect(Credentials.UNKNOWN, new RecordingSink());
        assertNull(a.uniqueName());
        assertFalse(a.isActive());
        NameChange na = bus.hello(a).arrival();
        assertEquals(new NameChange(":1.0", null, a), na);
        assertEquals(":1.0", a.uniqueName());
        assertTrue(a.isActive());
        Connection b = client();
        Connection c = client();
        assertEquals(":1.1", b.uniqueName());
        assertEquals(":1.2", c.uniqueName());
        assertSame(b, bus.resolve(":1.1"));

        bus.disconnect(b);
        assertNull(bus.resolve(":1.1"));
        Connection d = client();
        assertEquals(":1.3", d.uniqueName(), "the name of a departed connection is not reused");
        assertEquals(3, bus.connectionCount());
        assertEquals(3, bus.activeConnections().size());
        assertFalse(bus.activeConnections().contains(b));
        assertTrue(a.id() < b.id() && b.id() < c.id() && c.id() < d.id(), "ids increase");
    }

    @Test
    void connectionCountIncludesNotYetHelloedAndDropsOnceOnDisconnect() {
        Connection pending = bus.connect(Credentials.UNKNOWN, new RecordingSink());
        assertEquals(1, bus.connectionCount());
        assertEquals(0, bus.activeConnections().size());
        Disconnect d = bus.disconnect(pending);
        assertEquals(List.of(), d.nameChanges(), "no unique name to lose");
        assertEquals(0, bus.connectionCount());
        bus.disconnect(pending);
        assertEquals(0, bus.connectionCount(), "disconnecting twice counts once");
    }

    @Test
    void resolveHandlesUniqueWellKnownAndUnknownNames() {
        Connection a = client();
        own(a, "org.example.A", 0);
        assertSame(a, bus.resolve(":1.0"));
        assertSame(a, bus.resolve("org.example.A"));
        assertNull(bus.resolve("org.example.B"));
        assertNull(bus.resolve(":1.99"));
        assertNull(bus.resolve(""));
    }

    // ---------------------------------------------------------------- unicast

    @Test
    void unicastGoesToTheDestinationPoolOnly() throws Exception {
        Connection a = client();
        Connection b = client();
        Connection c = client();
        Message m = call(dest(b), 1);
        assertEquals(Delivery.OK, bus.send(a, m));
        assertSame(a, m.sender());
        assertTrue(m.seq() > 0);
        assertEquals(List.of(m), drain(b));
        assertEquals(List.of(b), sinks.get(1).queued);
        assertTrue(a.pool().isEmpty());
        assertTrue(c.pool().isEmpty());
        assertTrue(sinks.get(0).queued.isEmpty() && sinks.get(2).queued.isEmpty());
    }

    @Test
    void unicastToWellKnownNameReachesThePrimaryOwner() {
        Connection a = client();
        Connection b = client();
        Connection c = client();
        own(b, "org.example.S", 0);
        own(c, "org.example.S", 0); // queued
        Message m = call("org.example.S", 1);
        assertEquals(Delivery.OK, bus.send(a, m));
        assertEquals(List.of(m), drain(b));
        assertTrue(c.pool().isEmpty());
    }

    @Test
    void unicastSignalReachesItsDestinationWithoutAnyRule() {
        Connection a = client();
        Connection b = client();
        assertEquals(0, bus.matches().size());
        Message m = signalTo(dest(b), "Ping");
        assertEquals(Delivery.OK, bus.send(a, m));
        assertEquals(List.of(m), drain(b));
    }

    @Test
    void unownedDestinationIsServiceUnknownOrNameHasNoOwner() throws Exception {
        Connection a = client();
        Connection eve = client();
        rule(eve, "eavesdrop='true'");
        assertEquals(Delivery.SERVICE_UNKNOWN, bus.send(a, call("org.example.Nobody", 1)));
        assertEquals(Delivery.NAME_HAS_NO_OWNER,
                bus.send(a, call("org.example.Nobody", 2, Message.FLAG_NO_AUTO_START, 8)));
        assertEquals(Delivery.SERVICE_UNKNOWN, bus.send(a, call(":1.77", 3)));
        assertEquals(Delivery.NAME_HAS_NO_OWNER, bus.send(a, call(":1.77", 4, Message.FLAG_NO_AUTO_START, 8)));
        assertEquals(0, a.pendingOutgoingReplies(), "no reply slot for an undeliverable call");
        assertTrue(eve.pool().isEmpty(), "nothing was delivered, so nothing to eavesdrop");
        assertTrue(a.pool().isEmpty());
    }

    // ---------------------------------------------------------------- broadcast

    @Test
    void broadcastReachesOnlyMatchingRules() throws Exception {
        Connection a = client();
        Connection yes = client();
        Connection no = client();
        Connection none = client();
        rule(yes, "type='signal',member='Changed'");
        rule(no, "type='signal',member='Other'");
        Message m = signal("Changed");
        assertEquals(Delivery.OK, bus.send(a, m));
        assertEquals(List.of(m), drain(yes));
        assertTrue(no.pool().isEmpty());
        assertTrue(none.pool().isEmpty());
        assertTrue(a.pool().isEmpty(), "the sender has no rule");
    }

    @Test
    void broadcastWithNoRulesAtAllGoesNowhereButIsOk() {
        Connection a = client();
        Connection b = client();
        assertEquals(Delivery.OK, bus.send(a, signal("Changed")));
        assertTrue(a.pool().isEmpty() && b.pool().isEmpty());
    }

    @Test
    void senderReceivesItsOwnBroadcastWhenItsRuleMatches() throws Exception {
        Connection a = client();
        rule(a, "member='Changed'");
        Message m = signal("Changed");
        bus.send(a, m);
        assertEquals(List.of(m), drain(a));
        bus.send(a, signal("Other"));
        assertTrue(a.pool().isEmpty());
    }

    @Test
    void severalMatchingRulesOfOneConnectionDeliverOnce() throws Exception {
        Connection a = client();
        Connection b = client();
        rule(b, "");
        rule(b, "type='signal'");
        rule(b, "member='Changed'");
        rule(b, "interface='org.example.Iface',member='Changed'");
        rule(b, "member='Changed'"); // a duplicate
        Message m = signal("Changed");
        bus.send(a, m);
        assertEquals(List.of(m), drain(b));
        assertEquals(1, sinks.get(1).queued.size());
    }

    @Test
    void nonEavesdroppingRulesDoNotSeeUnicastToOthers() throws Exception {
        Connection a = client();
        Connection b = client();
        Connection c = client();
        rule(c, "");
        rule(c, "type='signal'");
        rule(c, "destination=':1.1'");
        bus.send(a, signalTo(dest(b), "Changed"));
        bus.send(a, call(dest(b), 1));
        assertTrue(c.pool().isEmpty());
        assertEquals(2, drain(b).size());
    }

    @Test
    void eavesdroppingRulesSeeUnicastToOthers() throws Exception {
        Connection a = client();
        Connection b = client();
        Connection eve = client();
        Connection eveB = client();
        rule(eve, "eavesdrop='true'");
        rule(eveB, "destination='org.example.B',eavesdrop='true'");
        own(b, "org.example.B", 0);
        Message m = call(dest(b), 1);
        bus.send(a, m);
        assertEquals(List.of(m), drain(b));
        assertEquals(List.of(m), drain(eve));
        assertEquals(List.of(m), drain(eveB), "destination matches b by its well-known name");
        Message toA = signalTo(dest(a), "X");
        bus.send(b, toA);
        assertEquals(List.of(toA), drain(eve));
        assertTrue(eveB.pool().isEmpty());
    }

    @Test
    void addressedRecipientWithEavesdropRuleGetsItOnce() throws Exception {
        Connection a = client();
        Connection b = client();
        rule(b, "eavesdrop='true'");
        rule(b, "");
        Message m = signalTo(dest(b), "X");
        bus.send(a, m);
        assertEquals(List.of(m), drain(b));
    }

    @Test
    void busOriginatedSignalMatchesDriverSenderRule() throws Exception {
        Connection a = client();
        Connection b = client();
        rule(a, "sender='org.freedesktop.DBus',member='NameOwnerChanged'");
        rule(b, "sender=':1.0'");
        Message m = signal(Fixtures.PATH, "org.freedesktop.DBus", "NameOwnerChanged", null);
        bus.emitSignal(m);
        assertNull(m.sender());
        assertEquals(List.of(m), drain(a));
        assertTrue(b.pool().isEmpty());
    }

    // ---------------------------------------------------------------- limits

    @Test
    void fullRecipientRefusesUnicastAndCountsTheDrop() {
        limits.maxOutgoingBytes = 100;
        Connection a = client();
        Connection b = client();
        assertEquals(Delivery.OK, bus.send(a, call(dest(b), 1, Message.FLAG_NO_REPLY_EXPECTED, 500)),
                "an empty pool always accepts one message");
        assertEquals(Delivery.RECIPIENT_FULL, bus.send(a, call(dest(b), 2, 0, 1)));
        assertEquals(1, b.pool().dropped());
        assertEquals(1, b.pool().messages());
        assertEquals(0, a.pendingOutgoingReplies(), "a refused call opens no reply slot");
        assertEquals(0, b.pendingIncomingReplies());
        b.pool().pop();
        assertEquals(Delivery.OK, bus.send(a, call(dest(b), 3, 0, 60)));
        assertEquals(Delivery.OK, bus.send(a, call(dest(b), 4, 0, 40)));
        assertEquals(Delivery.RECIPIENT_FULL, bus.send(a, call(dest(b), 5, 0, 1)));
        assertEquals(2, b.pool().dropped());
        assertEquals(2, a.pendingOutgoingReplies());
    }

    @Test
    void messageCountLimitMakesRecipientFull() {
        limits.maxQueuedMessages = 2;
        Connection a = client();
        Connection b = client();
        assertEquals(Delivery.OK, bus.send(a, signalTo(dest(b), "X")));
        assertEquals(Delivery.OK, bus.send(a, signalTo(dest(b), "X")));
        assertEquals(Delivery.RECIPIENT_FULL, bus.send(a, signalTo(dest(b), "X")));
        assertEquals(2, b.pool().messages());
        assertEquals(1, b.pool().dropped());
    }

    @Test
    void broadcastSkipsAFullReceiverAndCountsTheDrop() throws Exception {
        limits.maxQueuedMessages = 1;
        Connection a = client();
        Connection full = client();
        Connection ok = client();
        rule(full, "member='Changed'");
        rule(ok, "member='Changed'");
        bus.send(a, signalTo(dest(full), "Filler"));
        Message m = signal("Changed");
        assertEquals(Delivery.OK, bus.send(a, m), "a broadcast never fails");
        assertEquals(List.of(m), drain(ok));
        assertEquals(1, full.pool().messages());
        assertEquals(1, full.pool().dropped());
        assertEquals("Filler", full.pool().peek().member());
    }

    @Test
    void tooManyPendingReplies() {
        limits.maxRepliesPerConnection = 2;
        Connection a = client();
        Connection b = client();
        assertEquals(Delivery.OK, bus.send(a, call(dest(b), 1)));
        assertEquals(Delivery.OK, bus.send(a, call(dest(b), 2)));
        assertEquals(2, a.pendingOutgoingReplies());
        Message third = call(dest(b), 3);
        assertEquals(Delivery.TOO_MANY_REPLIES, bus.send(a, third));
        assertEquals(2, drain(b).size(), "the refused call was not delivered");
        assertEquals(2, b.pendingIncomingReplies());
        assertEquals(Delivery.OK, bus.send(a, call(dest(b), 4, Message.FLAG_NO_REPLY_EXPECTED, 8)),
                "calls expecting no reply are not limited");
        assertEquals(Delivery.OK, bus.send(a, signalTo(dest(b), "S")));
        assertEquals(Delivery.OK, bus.send(b, reply(dest(a), 1)));
        assertEquals(1, a.pendingOutgoingReplies());
        assertEquals(Delivery.OK, bus.send(a, call(dest(b), 5)));
        // the limit is per caller
        Connection c = client();
        assertEquals(Delivery.OK, bus.send(c, call(dest(b), 1)));
    }

    // ---------------------------------------------------------------- reply slots

    @Test
    void callOpensASlotAndTheReplyConsumesIt() {
        Connection a = client();
        Connection b = client();
        bus.send(a, call(dest(b), 7));
        assertEquals(1, a.pendingOutgoingReplies());
        assertEquals(1, b.pendingIncomingReplies());
        Message r = reply(dest(a), 7);
        assertEquals(Delivery.OK, bus.send(b, r));
        assertEquals(List.of(r), drain(a));
        assertEquals(0, a.pendingOutgoingReplies());
        assertEquals(0, b.pendingIncomingReplies());

        // an unexpected second reply is still forwarded (compat), without touching the counts
        Message again = reply(dest(a), 7);
        assertEquals(Delivery.OK, bus.send(b, again));
        assertEquals(List.of(again), drain(a));
        assertEquals(0, a.pendingOutgoingReplies());
    }

    @Test
    void errorReplyAlsoConsumesTheSlot() {
        Connection a = client();
        Connection b = client();
        bus.send(a, call(dest(b), 7));
        assertEquals(Delivery.OK, bus.send(b, Fixtures.error(dest(a), 7)));
        assertEquals(0, a.pendingOutgoingReplies());
        assertEquals(0, b.pendingIncomingReplies());
    }

    @Test
    void onlyTheCalleeCanConsumeTheSlot() {
        Connection a = client();
        Connection b = client();
        Connection c = client();
        bus.send(a, call(dest(b), 7));
        bus.send(c, reply(dest(a), 7)); // c was not called
        assertEquals(1, a.pendingOutgoingReplies());
        assertEquals(1, b.pendingIncomingReplies());
        bus.send(b, reply(dest(a), 8)); // wrong serial
        assertEquals(1, a.pendingOutgoingReplies());
        bus.send(b, reply(dest(a), 7));
        assertEquals(0, a.pendingOutgoingReplies());
    }

    @Test
    void callByWellKnownNameIsAnsweredByTheOwner() {
        Connection a = client();
        Connection b = client();
        own(b, "org.example.S", 0);
        bus.send(a, call("org.example.S", 3));
        assertEquals(1, b.pendingIncomingReplies());
        bus.send(b, reply(dest(a), 3));
        assertEquals(0, a.pendingOutgoingReplies());
        assertEquals(0, b.pendingIncomingReplies());
    }

    @Test
    void secondOutstandingCallWithTheSameSerialIsRefused() {
        Connection a = client();
        Connection b = client();
        Connection c = client();
        assertEquals(Delivery.OK, bus.send(a, call(dest(b), 7)));
        assertEquals(Delivery.DUPLICATE_SERIAL, bus.send(a, call(dest(b), 7)));
        assertEquals(1, drain(b).size());
        assertEquals(1, a.pendingOutgoingReplies());
        assertEquals(Delivery.OK, bus.send(a, call(dest(c), 7)), "same serial to another callee is fine");
        assertEquals(Delivery.OK, bus.send(c, call(dest(b), 7)), "same serial from another caller is fine");
        bus.send(b, reply(dest(a), 7));
        assertEquals(Delivery.OK, bus.send(a, call(dest(b), 7)), "reusable once answered");
    }

    @Test
    void calleeDisconnectYieldsDeadRepliesInCallOrder() {
        Connection a = client();
        Connection b = client();
        Connection callee = client();
        bus.send(a, call(dest(callee), 5));
        bus.send(b, call(dest(callee), 3));
        bus.send(a, call(dest(callee), 9));
        bus.send(a, call(dest(callee), 10, Message.FLAG_NO_REPLY_EXPECTED, 8));
        bus.send(b, call(dest(callee), 4));
        bus.send(callee, reply(dest(b), 4)); // answered, so not dead
        assertEquals(2, a.pendingOutgoingReplies());
        assertEquals(1, b.pendingOutgoingReplies());

        Disconnect d = bus.disconnect(callee);
        assertEquals(List.of(new DeadReply(a, 5), new DeadReply(b, 3), new DeadReply(a, 9)), d.deadReplies());
        assertEquals(0, a.pendingOutgoingReplies());
        assertEquals(0, b.pendingOutgoingReplies());
        assertEquals(0, callee.pendingIncomingReplies());
    }

    @Test
    void callerDisconnectDropsItsSlotsOnTheCallees() {
        Connection a = client();
        Connection callee = client();
        Connection other = client();
        bus.send(a, call(dest(callee), 1));
        bus.send(a, call(dest(other), 2));
        bus.send(other, call(dest(callee), 3));
        assertEquals(2, callee.pendingIncomingReplies());

        bus.disconnect(a);
        assertEquals(1, callee.pendingIncomingReplies(), "only other's call is still owed");
        assertEquals(0, other.pendingIncomingReplies());
        assertEquals(0, a.pendingOutgoingReplies());
        assertEquals(Delivery.NAME_HAS_NO_OWNER,
                bus.send(callee, Fixtures.msg(Message.METHOD_RETURN, Message.FLAG_NO_AUTO_START, 50, 1, ":1.0",
                        null, null, null, null, 8, null)));
        assertEquals(List.of(new DeadReply(other, 3)), bus.disconnect(callee).deadReplies());
    }

    @Test
    void becomingAMonitorDropsReplySlotsLikeADisconnect() {
        Connection caller = client();
        Connection mon = client();
        Connection callee = client();
        bus.send(caller, call(dest(mon), 7)); // mon owes caller a reply
        bus.send(mon, call(dest(callee), 2)); // callee owes mon a reply
        Disconnect d = bus.becomeMonitor(mon);
        bus.startMonitoring(mon, List.of());
        assertEquals(List.of(new DeadReply(caller, 7)), d.deadReplies(), "the caller is told now, not at timeout");
        assertEquals(0, caller.pendingOutgoingReplies());
        assertEquals(0, callee.pendingIncomingReplies(), "a monitor's calls are forgotten");
        assertEquals(0, mon.pendingOutgoingReplies());
        assertTrue(bus.isMonitor(mon));
        assertNull(bus.resolve(dest(mon)), "a monitor has no name");
    }

    @Test
    void captureSinkIsAnUncountedRulelessMonitor() {
        Connection a = client();
        int before = bus.connectionCount();
        RecordingSink sink = new RecordingSink();
        Connection cap = bus.attachCapture(new Credentials(0, 0, 1), sink);
        assertEquals(before, bus.connectionCount(), "not a client connection");
        assertTrue(bus.hasMonitors());
        bus.send(a, signal("S"));
        assertEquals(1, cap.pool().messages(), "offered every message without rules");
        bus.detachCapture(cap);
        assertFalse(bus.hasMonitors());
        assertTrue(cap.isClosed());
    }

    @Test
    void callToSelfIsTrackedAndDiesQuietly() {
        Connection a = client();
        assertEquals(Delivery.OK, bus.send(a, call(dest(a), 1)));
        assertEquals(1, a.pendingOutgoingReplies());
        assertEquals(1, a.pendingIncomingReplies());
        Disconnect d = bus.disconnect(a);
        assertEquals(List.of(), d.deadReplies(), "a closed caller is owed nothing");
        assertEquals(0, a.pendingOutgoingReplies());
    }

    // ---------------------------------------------------------------- sequencing

    @Test
    void sequenceNumbersStrictlyIncreaseAndEveryPoolIsInOrder() throws Exception {
        Connection a = client();
        Connection b = client();
        Connection c = client();
        rule(a, "");
        rule(b, "member='Tick'");
        rule(c, "eavesdrop='true'");
        long last = bus.lastSequence();
        List<Message> sent = new ArrayList<>();
        Connection[] from = {a, b, c};
        for (int i = 0; i < 30; i++) {
            Connection s = from[i % 3];
            Message m = switch (i % 4) {
                case 0 -> signal("Tick");
                case 1 -> signalTo(dest(from[(i + 1) % 3]), "Tock");
                case 2 -> call(dest(from[(i + 2) % 3]), i, Message.FLAG_NO_REPLY_EXPECTED, 4);
                default -> signal("Other");
            };
            assertEquals(Delivery.OK, bus.send(s, m));
            assertTrue(m.seq() > last);
            last = m.seq();
            sent.add(m);
            if (i == 15) {
                long s1 = bus.sequence();
                assertEquals(last + 1, s1);
                last = s1;
            }
        }
        assertEquals(last, bus.lastSequence());
        for (Connection conn : from) {
            List<Message> got = drain(conn);
            assertFalse(got.isEmpty());
            for (int i = 1; i < got.size(); i++) {
                assertTrue(got.get(i - 1).seq() < got.get(i).seq(), conn + " out of order");
            }
        }
    }

    // ---------------------------------------------------------------- disconnect

    @Test
    void disconnectReportsWellKnownNamesMostRecentFirstThenTheUniqueName() throws Exception {
        Connection a = client();
        Connection b = client();
        own(a, "org.example.First", 0);
        own(b, "org.example.Second", 0);
        own(a, "org.example.Second", 0); // a only queued
        own(a, "org.example.Third", 0);
        own(b, "org.example.Third", 0); // b waits for Third
        own(a, "org.example.Fourth", NameRegistry.FLAG_ALLOW_REPLACEMENT);
        rule(a, "member='NameOwnerChanged'");

        Disconnect d = bus.disconnect(a);
        assertEquals(List.of(
                new NameChange("org.example.Fourth", a, null),
                new NameChange("org.example.Third", a, b),
                new NameChange("org.example.First", a, null),
                new NameChange(":1.0", a, null)), d.nameChanges());
        assertSame(b, bus.resolve("org.example.Third"));
        assertEquals(List.of(b), bus.names().queue("org.example.Second"));
        assertEquals(0, bus.matches().size(), "its match rules are gone");
        assertEquals(0, a.matchRuleCount());
        assertTrue(a.ownedNames().isEmpty());
        assertTrue(a.isClosed());
    }

    @Test
    void secondDisconnectIsANoOp() {
        Connection a = client();
        own(a, "org.example.A", 0);
        assertEquals(2, bus.disconnect(a).nameChanges().size());
        Disconnect again = bus.disconnect(a);
        assertEquals(List.of(), again.nameChanges());
        assertEquals(List.of(), again.deadReplies());
    }

    @Test
    void closedConnectionReceivesNothing() throws Exception {
        Connection a = client();
        Connection b = client();
        rule(b, "");
        bus.send(a, signalTo(dest(b), "Pending"));
        assertEquals(1, b.pool().messages());
        int notified = sinks.get(1).queued.size();

        bus.disconnect(b);
        assertTrue(b.pool().isEmpty(), "undelivered messages are dropped");
        assertEquals(Delivery.SERVICE_UNKNOWN, bus.send(a, signalTo(":1.1", "Late")));
        bus.send(a, signal("Broadcast"));
        bus.emitSignal(signal(Fixtures.PATH, "org.freedesktop.DBus", "NameOwnerChanged", null));
        bus.emitTo(b, signalTo(":1.1", "NameLost"));
        assertTrue(b.pool().isEmpty());
        assertEquals(notified, sinks.get(1).queued.size());
    }

    // ---------------------------------------------------------------- bus-originated unicast

    @Test
    void emitToIgnoresTheBudgetAndIsNotEavesdropped() throws Exception {
        limits.maxQueuedMessages = 1;
        Connection a = client();
        Connection eve = client();
        rule(eve, "eavesdrop='true'");
        rule(eve, "");
        bus.send(eve, signalTo(dest(a), "Filler"));
        drain(eve);
        Message acquired = Fixtures.msg(Message.SIGNAL, Message.FLAG_NO_REPLY_EXPECTED, 1, -1, dest(a),
                "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameAcquired", null, 32, null);
        bus.emitTo(a, acquired);
        assertNull(acquired.sender());
        assertEquals(2, a.pool().messages(), "pushed although the pool was full");
        assertEquals(0, a.pool().dropped());
        assertSame(acquired, drain(a).get(1));
        // dbus-daemon sends the driver's unicasts to the recipient only
        // (bus_transaction_send_from_driver -> bus_transaction_send): no match rule sees them.
        assertTrue(eve.pool().isEmpty());
    }

    @Test
    void aDeferredBusSignalIsEncodedOnlyWhenARuleTakesIt() throws Exception {
        Connection watcher = client();
        rule(watcher, "type='signal',member='Other'");
        int[] encodings = {0};
        java.util.function.Supplier<byte[]> enc = () -> {
            encodings[0]++;
            return new byte[] {'l', 4, 1, 1};
        };
        org.kdbusbridge.core.message.SealedPayload unseen = org.kdbusbridge.core.message.SealedPayload.deferred(enc);
        bus.emitSignal(new Message(Message.SIGNAL, 0, 1, Message.NO_REPLY_SERIAL, null, "/p", "a.b", "C", null,
                unseen, org.kdbusbridge.core.message.ArgSource.NONE));
        assertTrue(unseen.isDeferred(), "no rule matched: never encoded");
        assertEquals(0, encodings[0]);
        org.kdbusbridge.core.message.SealedPayload seen = org.kdbusbridge.core.message.SealedPayload.deferred(enc);
        Message m = new Message(Message.SIGNAL, 0, 2, Message.NO_REPLY_SERIAL, null, "/p", "a.b", "Other", null,
                seen, org.kdbusbridge.core.message.ArgSource.NONE);
        bus.emitSignal(m);
        assertEquals(1, encodings[0], "encoded once for its one receiver");
        assertSame(m, watcher.pool().pop());
        assertEquals(4, m.size());
    }
}
