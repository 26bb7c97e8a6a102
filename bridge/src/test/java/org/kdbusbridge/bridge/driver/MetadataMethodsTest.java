package org.kdbusbridge.bridge.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.List;

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
import org.kdbusbridge.core.message.MessageFacts;

/** AttachMetadata / GetAttachedMetadata against a core Bus, without sockets. */
class MetadataMethodsTest {
    private final Bus bus = new Bus(new BusLimits());
    private final Driver driver = new Driver(bus, "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210",
            new Driver.Host() {
                @Override public String reloadConfig() { return null; }
                @Override public long busUid() { return 0; }
                @Override public long busPid() { return 1; }
                @Override public void closeWhenFlushed(Connection c) { }
            });
    private long serial;

    private Connection client() throws ProtocolException {
        Connection c = bus.connect(new Credentials(1000, 1000, 4242), x -> { });
        call(c, DriverTables.IFACE, "Hello", null, null);
        while (c.pool().pop() != null) {
            // the reply and NameAcquired
        }
        return c;
    }

    private void call(Connection c, String iface, String member, String sig, byte[] body) throws ProtocolException {
        long s = ++serial;
        byte[] bytes = MessageBuilder.encode(Message.METHOD_CALL, 0, s, DriverTables.PATH, iface, member, null,
                MessageBuilder.NO_REPLY_SERIAL, Bus.DRIVER_NAME, c.uniqueName(), sig, body == null ? new byte[0] : body);
        MessageHeader h = new MessageHeader();
        h.wrap(ByteBuffer.wrap(bytes), 0, bytes.length);
        driver.handle(new DriverCall(c, Message.METHOD_CALL, 0, s, DriverTables.PATH, iface, member, h.signature(),
                BodyReader.of(h)));
    }

    /** Calls Extensions1.member and returns the answer's header (validated) and its reader. */
    private MessageHeader ext(Connection c, String member, String... items) throws ProtocolException {
        byte[] body = null;
        String sig = null;
        if (member.equals("AttachMetadata")) {
            BodyWriter w = new BodyWriter().beginArray('s');
            for (String s : items) {
                w.writeString(s);
            }
            body = w.endArray().toByteArray();
            sig = "as";
        }
        call(c, DriverTables.EXTENSIONS, member, sig, body);
        Message m = c.pool().pop();
        assertNotNull(m);
        ByteBuffer v = m.payload().view();
        MessageHeader h = new MessageHeader();
        h.wrap(v, 0, v.remaining());
        return h;
    }

    @Test
    void setReplacesClearsAndCountsPerItem() throws ProtocolException {
        Connection a = client();
        Connection b = client();
        assertEquals(0, bus.metadataWanted(), "nobody asked");
        assertNull(ext(a, "AttachMetadata", "seq", "creds").errorName());
        assertEquals(MessageFacts.SEQ | MessageFacts.CREDS, a.attachedMetadata());
        assertNull(ext(b, "AttachMetadata", "creds", "names").errorName());
        assertEquals(2, bus.metadataWanting(MessageFacts.CREDS));
        assertEquals(MessageFacts.SEQ | MessageFacts.CREDS | MessageFacts.NAMES, bus.metadataWanted());
        MessageHeader got = ext(a, "GetAttachedMetadata");
        assertEquals(List.of("creds", "seq"), BodyReader.of(got).readStringArray());
        assertNull(ext(a, "AttachMetadata", "timestamp").errorName()); // replaces, not adds
        assertEquals(MessageFacts.TIMESTAMP, a.attachedMetadata());
        assertEquals(1, bus.metadataWanting(MessageFacts.CREDS));
        assertEquals(0, bus.metadataWanting(MessageFacts.SEQ));
        assertNull(ext(a, "AttachMetadata").errorName()); // empty: clears
        assertEquals(0, a.attachedMetadata());
        bus.disconnect(b);
        bus.disconnect(b); // idempotent
        assertEquals(0, bus.metadataWanting(MessageFacts.CREDS));
        assertEquals(0, bus.metadataWanted(), "the last one left: admission adds nothing again");
    }

    @Test
    void unknownItemsAreInvalidArgsPidfdWithoutFdsNotSupportedAndNeitherChangesAnything() throws ProtocolException {
        Connection a = client();
        assertNull(ext(a, "AttachMetadata", "seq").errorName());
        MessageHeader bad = ext(a, "AttachMetadata", "names", "drops", "bogus");
        assertEquals("org.freedesktop.DBus.Error.InvalidArgs", bad.errorName());
        String text = BodyReader.of(bad).readString();
        assertTrue(text.contains("'bogus'") && text.contains("timestamp") && text.contains("drops"), text);
        assertEquals(MessageFacts.SEQ, a.attachedMetadata(), "a refused call leaves the set alone");
        assertNull(a.drops(), "... and does not start watching drops either");
        MessageHeader pidfd = ext(a, "AttachMetadata", "pidfd", "creds");
        // As dbus-daemon answers a message with fds for a peer that cannot take them.
        assertEquals("org.freedesktop.DBus.Error.NotSupported", pidfd.errorName());
        assertTrue(BodyReader.of(pidfd).readString().contains("unix fd passing"));
        assertEquals(MessageFacts.SEQ, a.attachedMetadata(), "refused as a whole: creds not added either");
        a.setAcceptsUnixFds(true);
        assertNull(ext(a, "AttachMetadata", "pidfd", "seq").errorName(), "with fd passing pidfd is taken");
        assertEquals(MessageFacts.SEQ | MessageFacts.PIDFD, a.attachedMetadata());
        assertEquals(1, bus.metadataWanting(MessageFacts.PIDFD));
    }

    @Test
    void formatTextIsKeptBesideTheItemsListedBackAndNeverCounted() throws ProtocolException {
        Connection a = client();
        assertNull(ext(a, "AttachMetadata", "format=text", "seq", "creds").errorName());
        assertEquals(MessageFacts.SEQ | MessageFacts.CREDS | MessageFacts.FORMAT_TEXT, a.attachedMetadata());
        assertEquals(MessageFacts.SEQ | MessageFacts.CREDS, bus.metadataWanted(), "a form is not an item anybody wants");
        MessageHeader got = ext(a, "GetAttachedMetadata");
        assertEquals(List.of("creds", "seq", "format=text"), BodyReader.of(got).readStringArray());
        assertNull(ext(a, "AttachMetadata", "format=text", "seq", "format=dict").errorName());
        assertEquals(MessageFacts.SEQ, a.attachedMetadata(), "the last format given counts");
        assertNull(ext(a, "AttachMetadata", "format=text").errorName());
        assertEquals(0, a.attachedMetadata(), "a form without items is no set");
        assertEquals(MessageFacts.SEQ | MessageFacts.FORMAT_TEXT, MetadataMethods.monitorItems("format=text,seq"));
        assertThrows(IllegalArgumentException.class, () -> MetadataMethods.monitorItems("format=text"));
        assertThrows(IllegalArgumentException.class, () -> MetadataMethods.monitorItems("seq,pidfd"));
    }

    @Test
    void aHugeUnknownItemNameIsEchoedOnlyInPart() throws ProtocolException {
        Connection a = client();
        String huge = "x".repeat(100_000);
        MessageHeader bad = ext(a, "AttachMetadata", huge);
        assertEquals("org.freedesktop.DBus.Error.InvalidArgs", bad.errorName());
        String text = BodyReader.of(bad).readString();
        assertTrue(text.contains("'" + "x".repeat(MetadataMethods.SHOWN_NAME_MAX) + "...'"), text);
        assertTrue(text.length() < 400, "the text stays short: " + text.length() + " chars");
    }

    @Test
    void theDropsItemWatchesDropsAndIsListedBack() throws ProtocolException {
        Connection a = client();
        assertNull(ext(a, "AttachMetadata", "seq", "drops").errorName());
        assertNotNull(a.drops(), "drops: MessagesDropped notices, as WatchDrops(true)");
        assertEquals(MessageFacts.SEQ, a.attachedMetadata(), "drops is no header item");
        assertEquals(List.of("seq", "drops"), BodyReader.of(ext(a, "GetAttachedMetadata")).readStringArray());
        assertNull(ext(a, "AttachMetadata", "seq").errorName());
        assertNull(a.drops(), "a set without it stops the notices");
    }

    @Test
    void admissionStampsNamesAndTimeOnlyWhileWanted() throws ProtocolException {
        Connection sender = client();
        Connection receiver = client();
        bus.requestName(sender, "org.example.Named", 0);
        Message before = signal(sender);
        assertNull(before.facts(), "nobody asked: no facts object at all");
        assertNull(ext(receiver, "AttachMetadata", "names", "timestamp").errorName());
        Message after = signal(sender);
        assertNotNull(after.facts());
        assertEquals(List.of("org.example.Named"), List.of(after.facts().names()));
        assertTrue(after.facts().monotonicNs() > 0 && after.facts().realtimeNs() > 0);
        bus.disconnect(receiver);
        assertNull(signal(sender).facts(), "the last receiver that wanted them left");
    }

    private Message signal(Connection from) {
        byte[] bytes = MessageBuilder.signal(++serial, "/a", "org.example.I", "S", null, from.uniqueName(), null, null);
        Message m = new Message(Message.SIGNAL, 0, serial, Message.NO_REPLY_SERIAL, null, "/a", "org.example.I", "S",
                null, new org.kdbusbridge.core.message.SealedPayload(bytes), null);
        bus.send(from, m);
        return m;
    }
}
