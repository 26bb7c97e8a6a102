package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.MessageFacts;
import org.kdbusbridge.core.message.SealedPayload;

/**
 * The sender side (MetadataStamp: send-time creds or the marked connect-time fallback, the
 * /proc cache and its refresh on a pid change) and the receiver side (MetadataRenderer: which
 * keys, for client and bus messages, heap and direct payloads) without a bus server.
 */
class MetadataStampTest {
    private static final LibC C = LibC.INSTANCE;
    private SocketConnection reader;
    private SocketConnection writer;

    private void pair() {
        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        assertEquals(0, C.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC, 0,
                LibC.Native.address(sv)));
        reader = new SocketConnection(sv.getInt(0), null);
        writer = new SocketConnection(sv.getInt(4), null);
    }

    @AfterEach
    void close() {
        if (reader != null) {
            reader.close();
            writer.close();
        }
    }

    private void roundTrip() throws Exception {
        ByteBuffer b = ByteBuffer.allocateDirect(1);
        b.put((byte) 'x').flip();
        assertEquals(1, writer.write(b));
        ByteBuffer in = ByteBuffer.allocateDirect(16);
        assertEquals(1, reader.readWithFds(in, fd -> C.close(fd)));
    }

    private static final long ME = ProcessHandle.current().pid();

    @Test
    void sendTimeCredsWhenPassedElseTheMarkedConnectTimeOnes() throws Exception {
        pair();
        Connection conn = new Connection(1, new Credentials(4321, 4322, 1), x -> { }, null);
        MetadataStamp stamp = new MetadataStamp(reader, conn);
        roundTrip(); // SO_PASSCRED off: the kernel gave none
        MessageFacts off = stamp.stamp(MessageFacts.CREDS);
        assertEquals(1, off.pid());
        assertEquals(4321, off.uid());
        assertEquals(4322, off.gid());
        assertFalse(off.credsAtSendTime(), "connect-time ids stand in, marked");
        assertTrue(reader.passCredentials(true));
        roundTrip();
        MessageFacts on = stamp.stamp(MessageFacts.CREDS);
        assertEquals(ME, on.pid());
        assertEquals(C.getuid(), on.uid());
        assertTrue(on.credsAtSendTime());
        assertNull(on.process(), "no /proc item wanted: nothing read");
    }

    @Test
    void procFactsAreCachedPerPidAndRefreshedWhenItChanges() throws Exception {
        pair();
        Connection conn = new Connection(1, new Credentials(0, 0, 1), x -> { }, null); // connect-time: pid 1
        MetadataStamp stamp = new MetadataStamp(reader, conn);
        int items = MessageFacts.COMM | MessageFacts.CMDLINE;
        roundTrip(); // no SO_PASSCRED: the connect-time pid 1
        SenderProcess init = (SenderProcess) stamp.stamp(items).process();
        assertEquals(1, init.pid());
        assertSame(init, stamp.stamp(items).process(), "same pid: the cached facts");
        assertTrue(reader.passCredentials(true));
        roundTrip(); // now the send-time pid: this JVM
        SenderProcess me = (SenderProcess) stamp.stamp(items).process();
        assertNotSame(init, me, "the pid changed: read again");
        assertEquals(ME, me.pid());
        assertArrayEquals(Files.readAllBytes(Path.of("/proc/self/cmdline")), me.cmdline());
        assertEquals(Files.readString(Path.of("/proc/self/comm")).trim(), new String(me.comm()));
        assertNull(me.exe(), "not asked for");
        SenderProcess more = (SenderProcess) stamp.stamp(items | MessageFacts.EXE).process();
        assertNotSame(me, more, "a further item: read again");
        assertNotNull(more.exe());
        assertEquals(items | MessageFacts.EXE, more.items());
    }

    @Test
    void rendererPutsOnlyTheAskedItemsOnClientAndBusMessages() throws Exception {
        Bus bus = new Bus(new BusLimits());
        Connection sender = bus.connect(new Credentials(1000, 1000, 42), x -> { });
        bus.hello(sender);
        while (sender.pool().pop() != null) {
            // NameAcquired
        }
        byte[] bytes = MessageBuilder.signal(5, "/a", "org.example.I", "S", null, sender.uniqueName(), "s",
                new org.kdbusbridge.bridge.protocol.BodyWriter().writeString("hi").toByteArray());
        Message m = new Message(Message.SIGNAL, 0, 5, Message.NO_REPLY_SERIAL, null, "/a", "org.example.I", "S", null,
                new SealedPayload(bytes), null);
        MessageFacts f = new MessageFacts();
        f.setCreds(42, 1000, 1001, true);
        m.setFacts(f);
        m.admit(sender, 77);
        MetadataRenderer r = new MetadataRenderer();
        byte[] out = r.render(m, MessageFacts.SEQ | MessageFacts.CREDS | MessageFacts.NAMES);
        MessageHeader h = new MessageHeader();
        h.wrap(ByteBuffer.wrap(out), 0, out.length);
        h.validateBody();
        Map<String, Object> d = MetadataFields.find(out);
        assertEquals(Map.of("seq", 77L, "pid", 42L, "uid", 1000L, "gid", 1001L, "creds-at-send", true), d,
                "names were asked for but not recorded at admission: left out");
        assertEquals("S", h.member());

        // A direct (large-message) payload renders the same way.
        ByteBuffer direct = ByteBuffer.allocateDirect(bytes.length).put(bytes).flip();
        Message dm = new Message(Message.SIGNAL, 0, 5, Message.NO_REPLY_SERIAL, null, "/a", "org.example.I", "S", null,
                new SealedPayload(direct), null);
        dm.admit(sender, 78);
        assertEquals(Map.of("seq", 78L), MetadataFields.find(r.render(dm, MessageFacts.SEQ | MessageFacts.CREDS)),
                "no facts object: only seq");

        // A bus message (no sender): seq and timestamp only, whatever was asked.
        Message busMsg = new Message(Message.SIGNAL, 0, 6, Message.NO_REPLY_SERIAL, null, "/org/freedesktop/DBus",
                "org.freedesktop.DBus", "NameOwnerChanged", null, new SealedPayload(
                MessageBuilder.signal(6, "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged", null,
                        "org.freedesktop.DBus", null, null)), null);
        MessageFacts bf = new MessageFacts();
        bf.setTimestamp(10, 20);
        busMsg.setFacts(bf);
        busMsg.admit(null, 79);
        Map<String, Object> bd = MetadataFields.find(r.render(busMsg, -1 & ((1 << MessageFacts.ITEMS) - 1)));
        assertEquals(List.of("seq", "timestamp"), List.copyOf(bd.keySet()));
    }
}
