package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.metadata.MessageMetadata;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.PeerCredentials;
import org.kdbusbridge.bridge.transport.TransportSettings;

/**
 * AttachMetadata's pidfd over real sockets in one JVM (the sender is this process): the opted-in
 * receiver gets a pidfd of the sender behind the message's own fds, the field names its index
 * and UNIX_FDS counts it (added when the message had none); a receiver that did not ask gets
 * the message's own fds only; once everybody is gone the bus holds no pidfd.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AttachPidfdTest {
    private static final String EXT = "org.kdbusbridge.Extensions1";
    private static final LibC LIBC = LibC.INSTANCE;

    @TempDir
    Path dir;
    private BusServer server;
    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        closeAll();
        if (server != null) {
            server.stop();
        }
    }

    private void closeAll() throws Exception {
        for (AutoCloseable c : open) {
            c.close();
        }
        open.clear();
    }

    private Path start() throws Exception {
        return start(BusConfig.forAddress("unix:path=" + dir.resolve("bus")));
    }

    private Path start(BusConfig config) throws Exception {
        server = new BusServer(config, TransportSettings.fromSystemProperties());
        server.start();
        return dir.resolve("bus");
    }

    private FdClient client(Path socket) throws Exception {
        FdClient c = new FdClient(socket);
        open.add(c);
        return c;
    }

    private static MessageHeader attach(FdClient c, String... items) throws Exception {
        BodyWriter w = new BodyWriter().beginArray('s');
        for (String s : items) {
            w.writeString(s);
        }
        long s = ++c.serial;
        c.writeAll(FdClient.frame(s, 0, RawClient.BUS_PATH, EXT, "AttachMetadata", RawClient.BUS, "as",
                w.endArray().toByteArray(), 0), null);
        MessageHeader h = c.next();
        assertEquals(s, h.replySerial());
        return h;
    }

    /**
     * The sender's socket reads with SO_PASSCRED from now on: the bus turns it on right before
     * the socket's next read, so what was already queued then (this Ping) has no send-time creds,
     * and a pidfd, as the /proc items, goes only with send-time creds (docs/extensions.md).
     */
    private static void passCreds(FdClient sender) throws Exception {
        sender.ping();
    }

    private static byte[] frameOf(MessageHeader h) {
        byte[] f = new byte[h.length()];
        h.buffer().get(h.offset(), f);
        return f;
    }

    /** Open fds of this process that are pidfds (the bus's and the test's: one JVM). */
    private static long pidfdsOpen() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().equals("anon_inode:[pidfd]");
                } catch (IOException e) {
                    return false; // closed meanwhile (the listing's own fd)
                }
            }).count();
        }
    }

    @Test
    void thePidfdRidesBehindTheMessagesOwnFdsForTheOptedInReceiverOnly() throws Exception {
        Path socket = start();
        long before = pidfdsOpen();
        FdClient reader = client(socket);
        FdClient plain = client(socket);
        FdClient sender = client(socket);
        assertEquals(WireFormat.METHOD_RETURN, attach(reader, "pidfd", "creds", "seq").type());
        passCreds(sender);
        long pid = ProcessHandle.current().pid();

        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        assertEquals(0, LIBC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, LibC.Native.address(sv)));
        int keep = sv.getInt(0);
        int passed = sv.getInt(4);
        try {
            sender.send(reader.uniqueName, "u", new BodyWriter().writeUint32(1).toByteArray(), null);
            sender.send(reader.uniqueName, "h", new BodyWriter().writeUnixFd(0).toByteArray(), new int[] {passed});
            sender.send(plain.uniqueName, "h", new BodyWriter().writeUnixFd(0).toByteArray(), new int[] {passed});
            sender.ping();

            // No fds of its own: a UNIX_FDS field is added for the pidfd, index 0.
            MessageHeader first = reader.next();
            assertEquals(1, first.unixFds(), "UNIX_FDS added");
            MessageMetadata m1 = MessageMetadata.parse(frameOf(first)).orElseThrow();
            assertEquals(0, m1.pidfd().getAsInt());
            assertEquals(pid, m1.pid().getAsLong());
            assertEquals(1, reader.fds.size(), "the pidfd arrived with it");
            assertEquals(pid, PeerCredentials.pidOfPidfd(reader.fds.get(0)), "a pidfd of the sender (this JVM)");

            // One fd of its own: it stays index 0 (the body's 'h' 0), the pidfd is index 1.
            MessageHeader second = reader.next();
            assertEquals(2, second.unixFds(), "UNIX_FDS counts the pidfd");
            assertEquals(1, MessageMetadata.parse(frameOf(second)).orElseThrow().pidfd().getAsInt());
            assertEquals(3, reader.fds.size());
            int own = reader.fds.get(1);
            assertEquals(pid, PeerCredentials.pidOfPidfd(reader.fds.get(2)));
            ByteBuffer ping = ByteBuffer.allocateDirect(1).put(0, (byte) 42);
            assertEquals(1, LIBC.write(own, LibC.Native.address(ping), 1), "the message's own fd works");
            ByteBuffer pong = ByteBuffer.allocateDirect(1);
            assertEquals(1, LIBC.read(keep, LibC.Native.address(pong), 1));
            assertEquals(42, pong.get(0), "and is the one sent, at index 0");

            MessageHeader toPlain = plain.next();
            assertEquals(1, toPlain.unixFds(), "a receiver that did not ask: the message as sent");
            assertEquals(1, plain.fds.size());
            assertNull(MetadataFields.find(frameOf(toPlain)));
        } finally {
            LIBC.close(keep);
            LIBC.close(passed);
        }
        closeAll();
        // The sender's cache and every message's hold go with them, in the loop step that closes
        // each session: once the bus has none left, it keeps no pidfd.
        OnLoop.await(server, "every client's disconnect handled", 20, () -> server.bus().connectionCount() == 0);
        assertEquals(before, pidfdsOpen(), "pidfds open before the clients came and after they left");
    }

    @Test
    void theTextFormCarriesThePidfdIndexToo() throws Exception {
        Path socket = start();
        FdClient reader = client(socket);
        FdClient sender = client(socket);
        MessageHeader ok = attach(reader, "format=text", "pidfd", "creds");
        assertEquals(WireFormat.METHOD_RETURN, ok.type());
        assertTrue(MessageMetadata.parse(frameOf(ok)).isPresent(), "the reply has the field (no pidfd: a bus message)");
        assertEquals(0, reader.fds.size(), "and no fd");
        passCreds(sender);
        sender.send(reader.uniqueName, "u", new BodyWriter().writeUint32(1).toByteArray(), null);
        sender.ping();
        MessageHeader got = reader.next();
        assertEquals(1, got.unixFds());
        MessageMetadata m = MessageMetadata.parse(frameOf(got)).orElseThrow();
        assertEquals(0, m.pidfd().getAsInt());
        assertEquals(ProcessHandle.current().pid(), m.pid().getAsLong());
        assertEquals(ProcessHandle.current().pid(), PeerCredentials.pidOfPidfd(reader.fds.get(0)));
    }
    /**
     * AttachMetadata with a sealed memfd payload (RequireSealedMemfds), dictionary form: the
     * receiver's copy has the field, its memfd is index 0, sealed and whole, the pidfd index 1.
     */
    @Test
    void aSealedMemfdPayloadKeepsItsIndexAndContentBesideTheFieldAndThePidfd() throws Exception {
        Path socket = start();
        FdClient reader = client(socket);
        FdClient sender = client(socket);
        long s = ++reader.serial;
        reader.writeAll(FdClient.frame(s, 0, RawClient.BUS_PATH, EXT, "RequireSealedMemfds", RawClient.BUS, null, null,
                0), null);
        assertEquals(WireFormat.METHOD_RETURN, reader.next().type());
        assertEquals(WireFormat.METHOD_RETURN, attach(reader, "seq", "creds", "pidfd").type());
        passCreds(sender);
        byte[] data = new byte[1 << 20];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 13 + 5);
        }
        int memfd = org.kdbusbridge.bridge.memfd.SealedMemfd.create("payload", data, true);
        try {
            sender.send(reader.uniqueName, "h", new BodyWriter().writeUnixFd(0).toByteArray(), new int[] {memfd});
        } finally {
            LIBC.close(memfd);
        }
        MessageHeader got = reader.next();
        assertEquals(2, got.unixFds());
        java.util.Map<String, Object> f = MetadataFields.find(frameOf(got));
        assertTrue(f != null && (Long) f.get("seq") > 0, "the field: " + f);
        assertEquals(1, f.get("pidfd"));
        assertEquals(2, reader.fds.size());
        int payload = reader.fds.get(0);
        assertTrue(org.kdbusbridge.bridge.memfd.SealedMemfd.isSealed(payload), "index 0 is the sealed memfd");
        java.nio.MappedByteBuffer map = org.kdbusbridge.bridge.memfd.SealedMemfd.mapReadOnly(payload);
        byte[] back = new byte[map.remaining()];
        map.get(back);
        assertTrue(java.util.Arrays.equals(data, back), "its content whole");
        assertEquals(ProcessHandle.current().pid(), PeerCredentials.pidOfPidfd(reader.fds.get(1)));
    }

    /**
     * max_message_unix_fds bounds the receiver's copy too: a message that already carries the
     * maximum goes without the pidfd (its other items still come); one below it gets the pidfd.
     */
    @Test
    void aMessageAtThePerMessageFdMaximumGoesWithoutThePidfd() throws Exception {
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().maxMessageUnixFds = 2;
        Path socket = start(config);
        FdClient reader = client(socket);
        FdClient sender = client(socket);
        assertEquals(WireFormat.METHOD_RETURN, attach(reader, "pidfd", "creds", "seq").type());
        passCreds(sender);
        long pid = ProcessHandle.current().pid();
        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        assertEquals(0, LIBC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, LibC.Native.address(sv)));
        int a = sv.getInt(0);
        int b = sv.getInt(4);
        try {
            sender.send(reader.uniqueName, "hh", new BodyWriter().writeUnixFd(0).writeUnixFd(1).toByteArray(),
                    new int[] {a, b});
            sender.send(reader.uniqueName, "h", new BodyWriter().writeUnixFd(0).toByteArray(), new int[] {a});
            sender.ping();

            MessageHeader atMax = reader.next();
            assertEquals(2, atMax.unixFds(), "at the maximum: UNIX_FDS as sent, no pidfd counted");
            MessageMetadata m1 = MessageMetadata.parse(frameOf(atMax)).orElseThrow();
            assertTrue(m1.pidfd().isEmpty(), "no pidfd entry");
            assertEquals(pid, m1.pid().getAsLong(), "the other items still arrive");
            assertTrue(m1.seq().isPresent());
            assertEquals(2, reader.fds.size(), "only the message's own fds");

            MessageHeader below = reader.next();
            assertEquals(2, below.unixFds(), "one below the maximum: its fd and the pidfd");
            assertEquals(1, MessageMetadata.parse(frameOf(below)).orElseThrow().pidfd().getAsInt());
            assertEquals(4, reader.fds.size());
            assertEquals(pid, PeerCredentials.pidOfPidfd(reader.fds.get(3)));
        } finally {
            LIBC.close(a);
            LIBC.close(b);
        }
    }

    private <T> T onLoop(java.util.concurrent.Callable<T> c) throws Exception {
        java.util.concurrent.CompletableFuture<T> f = new java.util.concurrent.CompletableFuture<>();
        server.loop().execute(() -> {
            try {
                f.complete(c.call());
            } catch (Exception e) {
                f.completeExceptionally(e);
            }
        });
        return f.get(20, TimeUnit.SECONDS);
    }

    private static void closeReceived(FdClient c) {
        for (int fd : c.fds) {
            LIBC.close(fd);
        }
        c.fds.clear();
    }

    /**
     * A sender's cached pidfd is a cache for those who want pidfd: once the last of them lets go
     * (a new set without it, or it disconnects), the bus closes every sender's cached pidfd,
     * even a sender that sends nothing more; the next one who asks gets a fresh one.
     */
    @Test
    void cachedPidfdsCloseWhenNobodyWantsPidfdAnyMore() throws Exception {
        Path socket = start();
        FdClient reader = client(socket);
        FdClient sender = client(socket);
        assertEquals(WireFormat.METHOD_RETURN, attach(reader, "pidfd").type());
        passCreds(sender);
        sender.send(reader.uniqueName, "u", new BodyWriter().writeUint32(1).toByteArray(), null);
        sender.ping();
        assertEquals(1, reader.next().unixFds());
        closeReceived(reader);
        long withCache = pidfdsOpen();
        assertEquals(1, (int) onLoop(server::openSenderPidfds), "the sender's cached pidfd");

        assertEquals(1, (int) onLoop(server::sessionsCachingPidfds), "only the sender is listed, not the reader");
        assertEquals(WireFormat.METHOD_RETURN, attach(reader, "creds").type()); // pidfd no longer wanted
        // Closed on the loop in the step that answered AttachMetadata, before the reply was queued.
        assertEquals(withCache - 1, pidfdsOpen(), "the bus closed the cached pidfd");
        assertEquals(0, (int) onLoop(server::openSenderPidfds), "closed with the demand");
        assertEquals(0, (int) onLoop(server::sessionsCachingPidfds), "the list is cleared with the caches");

        // Again, and this time the only receiver that wants pidfd leaves.
        FdClient second = client(socket);
        assertEquals(WireFormat.METHOD_RETURN, attach(second, "pidfd").type());
        sender.send(second.uniqueName, "u", new BodyWriter().writeUint32(2).toByteArray(), null);
        sender.ping();
        assertEquals(1, second.next().unixFds(), "a fresh pidfd for the new demand");
        closeReceived(second);
        assertEquals(1, (int) onLoop(server::openSenderPidfds));
        long again = pidfdsOpen();
        open.remove(second);
        second.close();
        OnLoop.await(server, "the sender's cached pidfd closed when the last receiver that wanted it left", 20,
                () -> server.openSenderPidfds() == 0);
        // The loop closed it in the step that saw the receiver leave, which the await read after.
        assertEquals(again - 1, pidfdsOpen(), "the bus closed the cached pidfd");
        assertEquals(0, (int) onLoop(server::sessionsCachingPidfds));
    }

    /**
     * The pidfd follows the /proc items' rule: a message whose creds are the connect-time ones
     * (here: queued before the bus turned SO_PASSCRED on for the sender's socket) has none, the
     * connection's own pidfd notwithstanding; the sender's next message, with send-time creds,
     * has one.
     */
    @Test
    void aMessageWithConnectTimeCredsHasNoPidfd() throws Exception {
        Path socket = start();
        FdClient reader = client(socket);
        FdClient sender = client(socket);
        assertEquals(WireFormat.METHOD_RETURN, attach(reader, "pidfd", "creds").type());
        // Queued before the bus's next read of the sender's socket: no send-time creds.
        sender.send(reader.uniqueName, "u", new BodyWriter().writeUint32(1).toByteArray(), null);
        sender.ping();
        MessageHeader early = reader.next();
        MessageMetadata m1 = MessageMetadata.parse(frameOf(early)).orElseThrow();
        assertEquals(false, m1.credsAtSend().orElseThrow(), "connect-time creds stood in");
        assertTrue(m1.pidfd().isEmpty(), "connect-time creds: no pidfd");
        assertEquals(0, early.unixFds());
        assertEquals(0, reader.fds.size());
        sender.send(reader.uniqueName, "u", new BodyWriter().writeUint32(2).toByteArray(), null);
        sender.ping();
        MessageHeader later = reader.next();
        MessageMetadata m2 = MessageMetadata.parse(frameOf(later)).orElseThrow();
        assertEquals(true, m2.credsAtSend().orElseThrow());
        assertEquals(0, m2.pidfd().getAsInt(), "send-time creds: the pidfd");
        assertEquals(ProcessHandle.current().pid(), PeerCredentials.pidOfPidfd(reader.fds.get(0)));
    }
}
