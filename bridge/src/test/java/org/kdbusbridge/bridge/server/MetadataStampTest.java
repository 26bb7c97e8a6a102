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
    void procFactsOnlyForSendTimeCredsAndCachedPerPid() throws Exception {
        pair();
        Connection conn = new Connection(1, new Credentials(0, 0, 1), x -> { }, null); // connect-time: pid 1
        MetadataStamp stamp = new MetadataStamp(reader, conn);
        int items = MessageFacts.COMM | MessageFacts.CMDLINE;
        roundTrip(); // no SO_PASSCRED: the connect-time pid 1
        MessageFacts connectTime = stamp.stamp(items);
        assertFalse(connectTime.credsAtSendTime());
        assertNull(connectTime.process(), "connect-time creds: no /proc facts of pid 1 (it need not be the writer)");
        assertEquals(0, stamp.procReads());
        assertTrue(reader.passCredentials(true));
        roundTrip(); // now the send-time pid: this JVM
        SenderProcess me = (SenderProcess) stamp.stamp(items).process();
        assertEquals(ME, me.pid());
        byte[] cmdline = Files.readAllBytes(Path.of("/proc/self/cmdline"));
        assertArrayEquals(java.util.Arrays.copyOf(cmdline, Math.min(cmdline.length, SenderProcess.CMDLINE_MAX)),
                me.cmdline());
        assertEquals(Files.readString(Path.of("/proc/self/comm")).trim(), new String(me.comm()));
        assertNull(me.exe(), "not asked for");
        assertSame(me, stamp.stamp(items).process(), "same pid: the cached facts");
        SenderProcess more = (SenderProcess) stamp.stamp(items | MessageFacts.EXE).process();
        assertNotSame(me, more, "a further item: read again");
        assertNotNull(more.exe());
        assertEquals(items | MessageFacts.EXE, more.items());
        assertEquals(2, stamp.procReads());
    }

    @Test
    void aFrameWrittenByTwoProcessesGetsTheMarkedConnectTimeCredsAndNoProcFacts() throws Exception {
        pair();
        Connection conn = new Connection(1, new Credentials(4321, 4322, 7), x -> { }, null);
        MetadataStamp stamp = new MetadataStamp(reader, conn);
        assertTrue(reader.passCredentials(true));
        roundTrip();
        MessageFacts mixed = stamp.stamp(MessageFacts.CREDS | MessageFacts.COMM, true);
        assertEquals(7, mixed.pid());
        assertFalse(mixed.credsAtSendTime());
        assertNull(mixed.process());
    }

    /**
     * The pidfd follows the /proc items' rule: only for send-time creds. With connect-time creds
     * (no SO_PASSCRED) or a frame two processes wrote, no pidfd, though the connection's own
     * pidfd is there; with send-time creds, the connection's own pidfd of that pid, dup'ed.
     */
    @Test
    void aPidfdOnlyForSendTimeCredsNeverForConnectTimeOrMixedOnes() throws Exception {
        pair();
        SenderPidfdsTest.FakeKernel k = new SenderPidfdsTest.FakeKernel();
        k.processes.put(ME, (long) C.getuid());
        k.connection = k.fdFor(ME);
        Connection conn = new Connection(1, new Credentials(C.getuid(), C.getuid(), ME), x -> { }, null);
        MetadataStamp stamp = new MetadataStamp(reader, conn, Path.of("/proc"), k);
        int items = MessageFacts.CREDS | MessageFacts.PIDFD;
        roundTrip(); // SO_PASSCRED off: connect-time creds (the same pid, even)
        MessageFacts connectTime = stamp.stamp(items, false);
        assertFalse(connectTime.credsAtSendTime());
        assertNull(connectTime.pidfd(), "connect-time creds: no pidfd");
        assertTrue(reader.passCredentials(true));
        roundTrip();
        MessageFacts mixed = stamp.stamp(items, true);
        assertFalse(mixed.credsAtSendTime());
        assertNull(mixed.pidfd(), "mixed creds: no pidfd");
        assertTrue(k.opens.isEmpty());
        assertEquals(1, k.fds.size(), "nothing dup'ed: only the socket's own");
        roundTrip();
        MessageFacts sendTime = stamp.stamp(items, false);
        assertTrue(sendTime.credsAtSendTime());
        assertNotNull(sendTime.pidfd(), "send-time creds: a pidfd");
        assertEquals(ME, k.pidOf(sendTime.pidfd().fd(0)));
        sendTime.dropHandles();
        stamp.close();
        assertEquals(1, k.fds.size(), "only the socket's own is left");
    }

    /** A fake /proc: {@code root/pid/{status,comm,cmdline,cgroup}} for a process of real uid {@code uid}. */
    private static void fakeProcess(Path root, long pid, long uid, String comm, byte[] cmdline) throws Exception {
        Path dir = Files.createDirectories(root.resolve(Long.toString(pid)));
        Files.writeString(dir.resolve("status"), "Name:\t" + comm + "\nUid:\t" + uid + "\t" + uid + "\t" + uid + "\t"
                + uid + "\nGid:\t5\t5\t5\t5\nGroups:\t5 6 \n");
        Files.writeString(dir.resolve("comm"), comm + "\n");
        Files.write(dir.resolve("cmdline"), cmdline);
        Files.writeString(dir.resolve("cgroup"), "0::/user.slice/x\n");
    }

    @Test
    void procFactsOfAnotherUidAreLeftOutAndCmdlineIsCapped(@org.junit.jupiter.api.io.TempDir Path root)
            throws Exception {
        byte[] longCmd = new byte[10_000];
        java.util.Arrays.fill(longCmd, (byte) 'a');
        fakeProcess(root, 100, 1000, "mine", longCmd);
        fakeProcess(root, 200, 2000, "theirs", "x\0".getBytes());
        int items = MessageFacts.GROUPS | MessageFacts.COMM | MessageFacts.CMDLINE | MessageFacts.CGROUP;
        SenderProcess mine = SenderProcess.read(root, 100, 1000, items, null);
        assertEquals("mine", new String(mine.comm()));
        assertArrayEquals(new long[] {5, 6}, mine.groups());
        assertEquals("/user.slice/x", new String(mine.cgroup()));
        assertEquals(SenderProcess.CMDLINE_MAX, mine.cmdline().length, "cmdline cut at 4 KiB");
        byte[] label = "label".getBytes();
        SenderProcess reused = SenderProcess.read(root, 200, 1000, items | MessageFacts.SECLABEL, label);
        assertNull(reused.comm(), "pid 200's real uid is 2000, the bytes came from uid 1000: not its facts");
        assertNull(reused.groups());
        assertNull(reused.cmdline());
        assertNull(reused.cgroup());
        assertArrayEquals(label, reused.seclabel(), "the connection's label is no /proc fact: kept");
        assertNull(SenderProcess.read(root, 300, 1000, items, null).comm(), "gone: nothing");
    }

    @Test
    void aParentAndItsChildWritingInTurnAreReadOnceEach(@org.junit.jupiter.api.io.TempDir Path root) throws Exception {
        for (int pid = 100; pid < 100 + MetadataStamp.CACHED + 1; pid++) {
            fakeProcess(root, pid, 1000, "p" + pid, new byte[0]);
        }
        MetadataStamp stamp = new MetadataStamp(null, new Connection(1, new Credentials(1000, 1000, 1), x -> { }, null),
                root);
        for (int i = 0; i < 10; i++) {
            assertEquals("p100", new String(stamp.process(100, 1000, MessageFacts.COMM).comm()));
            assertEquals("p101", new String(stamp.process(101, 1000, MessageFacts.COMM).comm()));
        }
        assertEquals(2, stamp.procReads(), "two pids alternating: /proc read once for each");
        for (int pid = 102; pid < 100 + MetadataStamp.CACHED; pid++) {
            stamp.process(pid, 1000, MessageFacts.COMM);
        }
        assertEquals(MetadataStamp.CACHED, stamp.procReads());
        stamp.process(100, 1000, MessageFacts.COMM); // still cached (most recent first: 101 is now the oldest)
        assertEquals(MetadataStamp.CACHED, stamp.procReads());
        stamp.process(100 + MetadataStamp.CACHED, 1000, MessageFacts.COMM); // a fifth: 101 goes
        assertEquals(MetadataStamp.CACHED + 1, stamp.procReads());
        stamp.process(100, 1000, MessageFacts.COMM);
        assertEquals(MetadataStamp.CACHED + 1, stamp.procReads(), "100 was used recently: kept");
        stamp.process(101, 1000, MessageFacts.COMM);
        assertEquals(MetadataStamp.CACHED + 2, stamp.procReads(), "101 was the least recent: read again");
        stamp.process(100, 2000, MessageFacts.COMM);
        assertEquals(MetadataStamp.CACHED + 3, stamp.procReads(), "same pid, another uid: another entry");
    }

    @Test
    void procItemsGoOnlyToRootOrTheSendersOwnUid() throws Exception {
        Bus bus = new Bus(new BusLimits());
        Connection sender = bus.connect(new Credentials(1000, 1000, 42), x -> { });
        bus.hello(sender);
        byte[] bytes = MessageBuilder.signal(5, "/a", "org.example.I", "S", null, sender.uniqueName(), null, null);
        Message m = new Message(Message.SIGNAL, 0, 5, Message.NO_REPLY_SERIAL, null, "/a", "org.example.I", "S", null,
                new SealedPayload(bytes), null);
        MessageFacts f = new MessageFacts();
        f.setCreds(42, 1000, 1000, true);
        f.setProcess(new SenderProcess(42, 1000, MessageFacts.COMM | MessageFacts.SECLABEL, null, "comm".getBytes(),
                null, null, null, "lbl".getBytes()));
        m.setFacts(f);
        m.admit(sender, 9);
        int items = MessageFacts.CREDS | MessageFacts.COMM | MessageFacts.SECLABEL;
        MetadataRenderer r = new MetadataRenderer();
        assertTrue(MetadataFields.find(r.render(m, items, 1000)).containsKey("comm"), "the sender's own uid");
        assertTrue(MetadataFields.find(r.render(m, items, 0)).containsKey("comm"), "root");
        Map<String, Object> other = MetadataFields.find(r.render(m, items, 1001));
        assertFalse(other.containsKey("comm"), "another uid could not read /proc/42 itself: " + other);
        assertTrue(other.containsKey("uid") && other.containsKey("seclabel"), "the rest stays: " + other);
        assertFalse(MetadataRenderer.mayReadProc(-1, 1000), "an unknown receiver uid sees none");
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
