package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.MessageFacts;
import org.kdbusbridge.core.message.SealedPayload;

/** The core side of AttachMetadata: the set, the bus-wide demand, what admission records. */
class AttachMetadataCoreTest {
    private final Bus bus = new Bus(new BusLimits());

    private Connection client(long pid) {
        Connection c = bus.connect(new Credentials(1000, 1000, pid), x -> { });
        bus.hello(c);
        while (c.pool().pop() != null) {
            // NameAcquired
        }
        return c;
    }

    private Message signal(Connection from) {
        Message m = new Message(Message.SIGNAL, 0, 1, Message.NO_REPLY_SERIAL, null, "/a", "org.example.I", "S", null,
                new SealedPayload(new byte[16]), null);
        assertEquals(Delivery.OK, bus.send(from, m));
        return m;
    }

    @Test
    void changeRecordsBeforeAfterAndTheBusWideDemand() {
        Connection a = client(1);
        Connection b = client(2);
        AttachChange first = bus.attachMetadata(a, MessageFacts.SEQ | MessageFacts.NAMES);
        assertEquals(new AttachChange(0, MessageFacts.SEQ | MessageFacts.NAMES, MessageFacts.SEQ | MessageFacts.NAMES), first);
        AttachChange second = bus.attachMetadata(b, MessageFacts.CREDS);
        assertEquals(MessageFacts.SEQ | MessageFacts.NAMES | MessageFacts.CREDS, second.busWide());
        AttachChange replaced = bus.attachMetadata(a, MessageFacts.CREDS);
        assertEquals(MessageFacts.SEQ | MessageFacts.NAMES, replaced.before());
        assertEquals(MessageFacts.CREDS, replaced.busWide());
        assertEquals(2, bus.metadataWanting(MessageFacts.CREDS));
        bus.disconnectKeepingQueue(a);
        assertEquals(1, bus.metadataWanting(MessageFacts.CREDS));
        bus.disconnect(a); // the second half of a BYEBYE: nothing counted twice
        assertEquals(1, bus.metadataWanting(MessageFacts.CREDS));
        bus.disconnect(b);
        assertEquals(0, bus.metadataWanted());
    }

    @Test
    void aFormWithoutItemsIsNoSetForMonitorsAndClientsAlike() {
        // A monitor that asks for pidfd in the text form: pidfd is stripped, and with it the form.
        Connection mon = client(1);
        bus.becomeMonitor(mon);
        bus.startMonitoring(mon, java.util.List.of());
        assertEquals(new AttachChange(0, 0, 0), bus.attachMetadata(mon, MessageFacts.PIDFD | MessageFacts.FORMAT_TEXT));
        assertEquals(0, mon.attachedMetadata());
        bus.attachMetadata(mon, MessageFacts.PIDFD | MessageFacts.SEQ | MessageFacts.FORMAT_TEXT);
        assertEquals(MessageFacts.SEQ | MessageFacts.FORMAT_TEXT, mon.attachedMetadata(), "an item left keeps its form");
        // A client that asked for pidfd,format=text and then becomes a monitor loses both.
        Connection later = client(2);
        bus.attachMetadata(later, MessageFacts.PIDFD | MessageFacts.FORMAT_TEXT);
        assertEquals(MessageFacts.PIDFD | MessageFacts.FORMAT_TEXT, later.attachedMetadata());
        bus.becomeMonitor(later);
        bus.startMonitoring(later, java.util.List.of());
        assertEquals(0, later.attachedMetadata());
        // And a bare form from anyone is no set.
        Connection plain = client(3);
        bus.attachMetadata(plain, MessageFacts.FORMAT_TEXT);
        assertEquals(0, plain.attachedMetadata());
        assertEquals(MessageFacts.SEQ, bus.metadataWanted());
    }

    @Test
    void namesAreThePrimaryOwnershipsAtAdmissionQueuedOnesNot() throws Exception {
        Connection owner = client(1);
        Connection queued = client(2);
        Connection receiver = client(3);
        bus.requestName(owner, "org.example.Owned", 0);
        bus.requestName(owner, "org.example.Second", 0);
        bus.requestName(queued, "org.example.Owned", 0); // queued behind owner
        bus.addMatch(receiver, MatchRule.parse("type='signal'"));
        assertNull(signal(owner).facts(), "nobody asked: no facts");
        bus.attachMetadata(receiver, MessageFacts.NAMES | MessageFacts.TIMESTAMP);
        long before = System.nanoTime();
        Message fromOwner = signal(owner);
        Message fromQueued = signal(queued);
        MessageFacts f = fromOwner.facts();
        assertNotNull(f);
        assertArrayEquals(new String[] {"org.example.Owned", "org.example.Second"}, f.names());
        assertArrayEquals(new String[0], fromQueued.facts().names(), "in the queue is not owning");
        assertTrue(f.monotonicNs() >= before && f.monotonicNs() <= fromQueued.facts().monotonicNs());
        assertTrue(Math.abs(f.realtimeNs() / 1_000_000 - System.currentTimeMillis()) < 60_000, "realtime ns");
        assertTrue(fromQueued.seq() > fromOwner.seq());
        // The names are a snapshot: a later change does not touch the admitted message.
        bus.releaseName(owner, "org.example.Second");
        assertArrayEquals(new String[] {"org.example.Owned"}, signal(owner).facts().names());
        assertArrayEquals(new String[] {"org.example.Owned", "org.example.Second"}, f.names());
    }

    @Test
    void senderItemsAloneMakeNoFactsInTheCore() {
        Connection sender = client(1);
        Connection receiver = client(2);
        bus.attachMetadata(receiver, MessageFacts.CREDS | MessageFacts.SEQ);
        // creds come from the transport (it sets the facts before send); seq is the message's own.
        assertNull(signal(sender).facts());
    }

    @Test
    void messagesOfOneSenderShareItsNamesUntilItsOwnershipChanges() throws Exception {
        Connection owner = client(1);
        Connection other = client(2);
        Connection receiver = client(3);
        bus.requestName(owner, "org.example.A", org.kdbusbridge.core.name.NameRegistry.FLAG_ALLOW_REPLACEMENT);
        bus.addMatch(receiver, MatchRule.parse("type='signal'"));
        bus.attachMetadata(receiver, MessageFacts.NAMES);
        String[] first = signal(owner).facts().names();
        assertSame(first, signal(owner).facts().names(), "one array for both: nothing allocated per message");
        bus.requestName(owner, "org.example.B", 0);
        String[] second = signal(owner).facts().names();
        assertNotSame(first, second, "a new primary name: a new array");
        assertArrayEquals(new String[] {"org.example.A", "org.example.B"}, second);
        assertArrayEquals(new String[] {"org.example.A"}, first, "the old one is never changed");
        // Losing a name without an add or remove of its own: replaced as primary, still queued.
        bus.requestName(other, "org.example.A", org.kdbusbridge.core.name.NameRegistry.FLAG_REPLACE_EXISTING);
        assertArrayEquals(new String[] {"org.example.B"}, signal(owner).facts().names());
        assertArrayEquals(new String[] {"org.example.A"}, signal(other).facts().names(), "the new owner's too");
        bus.releaseName(other, "org.example.A"); // owner, queued second, becomes primary again
        assertArrayEquals(new String[] {"org.example.A", "org.example.B"}, signal(owner).facts().names());
        assertArrayEquals(new String[0], signal(other).facts().names());
    }

    @Test
    void aSenderWithManyNamesGetsACappedListMarkedTruncated() throws Exception {
        Connection owner = client(1);
        Connection receiver = client(2);
        bus.addMatch(receiver, MatchRule.parse("type='signal'"));
        bus.attachMetadata(receiver, MessageFacts.NAMES);
        for (int i = 0; i < Router.NAMES_CAP; i++) {
            bus.requestName(owner, "org.example.N" + i, 0);
        }
        MessageFacts exact = signal(owner).facts();
        assertEquals(Router.NAMES_CAP, exact.names().length);
        assertFalse(exact.namesTruncated(), "exactly the cap: all listed");
        for (int i = Router.NAMES_CAP; i < 300; i++) {
            bus.requestName(owner, "org.example.N" + i, 0);
        }
        MessageFacts capped = signal(owner).facts();
        assertEquals(Router.NAMES_CAP, capped.names().length);
        assertTrue(capped.namesTruncated());
        assertEquals("org.example.N0", capped.names()[0], "the first ones in acquisition order");
        assertEquals("org.example.N" + (Router.NAMES_CAP - 1), capped.names()[Router.NAMES_CAP - 1]);
    }

    @Test
    void aClosedConnectionChangesNothingAndCountOfNoItemIsZero() {
        Connection a = client(1);
        bus.attachMetadata(a, MessageFacts.SEQ);
        bus.disconnect(a);
        AttachChange late = bus.attachMetadata(a, MessageFacts.CREDS | MessageFacts.SEQ, true);
        assertEquals(new AttachChange(0, 0, 0), late, "no change for a connection that left");
        assertEquals(0, bus.metadataWanted(), "nothing counted for it");
        assertNull(a.drops(), "nor does it watch drops");
        assertEquals(0, bus.metadataWanting(0));
        assertEquals(0, bus.metadataWanting(1 << 20));
    }
}
