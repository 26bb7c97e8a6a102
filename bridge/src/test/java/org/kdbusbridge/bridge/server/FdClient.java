package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import jnr.unixsocket.UnixSocketAddress;
import jnr.unixsocket.UnixSocketChannel;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageFraming;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.PeerCredentials;
import org.kdbusbridge.bridge.transport.SocketConnection;

/** Test client over a raw unix socket that negotiates fd passing: sends frames with fds, reads headers (SlowReaderThrottleTest, ZeroCopyDeliveryTest, ScratchMetadataTest). */
final class FdClient implements AutoCloseable {
    /** The interface of {@link #send}'s calls. */
    static final String IFACE = "com.example.Throttle";

    final UnixSocketChannel ch;
    final SocketConnection c;
    final ByteArrayOutputStream pending = new ByteArrayOutputStream();
    final List<Integer> fds = new ArrayList<>();
    final ByteBuffer in = ByteBuffer.allocateDirect(256 * 1024);
    boolean saslDone;
    long serial;
    String uniqueName;

    FdClient(Path socket) throws Exception {
        ch = UnixSocketChannel.open(new UnixSocketAddress(socket.toFile()));
        c = new SocketConnection(ch.getFD(), new PeerCredentials(0, 0, 0));
        writeAll(("\0AUTH EXTERNAL " + RawClient.hexUid(RawClient.myUid()) + "\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n")
                .getBytes(StandardCharsets.US_ASCII), null);
        writeAll(frame(++serial, 0, RawClient.BUS_PATH, RawClient.BUS, "Hello", RawClient.BUS, null, null, 0), null);
        MessageHeader reply = next();
        assertEquals(WireFormat.METHOD_RETURN, reply.type());
        ByteBuffer b = reply.buffer().order(ByteOrder.LITTLE_ENDIAN);
        byte[] s = new byte[b.getInt(reply.bodyOffset())];
        b.get(reply.bodyOffset() + 4, s);
        uniqueName = new String(s, StandardCharsets.UTF_8);
        assertEquals("NameAcquired", next().member());
    }

    /** A NO_REPLY_EXPECTED call "M" to {@code dest}; the fds (if any) ride on its first byte. */
    void send(String dest, String sig, byte[] body, int[] passFds) throws Exception {
        writeAll(frame(++serial, WireFormat.NO_REPLY_EXPECTED, "/t", IFACE, "M", dest, sig, body,
                passFds == null ? 0 : passFds.length), passFds);
    }

    /** Peer.Ping to the bus and its reply: everything sent before it was handled. */
    void ping() throws Exception {
        long s = ++serial;
        writeAll(frame(s, 0, RawClient.BUS_PATH, "org.freedesktop.DBus.Peer", "Ping", RawClient.BUS, null, null, 0),
                null);
        MessageHeader h = next();
        assertEquals(WireFormat.METHOD_RETURN, h.type(), "the Ping's answer: " + h.errorName() + " (a receiver gone?)");
        assertEquals(s, h.replySerial());
    }

    void writeAll(byte[] bytes, int[] passFds) throws Exception {
        ByteBuffer d = ByteBuffer.allocateDirect(bytes.length);
        d.put(bytes).flip();
        if (passFds != null) {
            assertTrue(c.writeWithFds(d, passFds, passFds.length) > 0);
        }
        while (d.hasRemaining()) {
            c.write(d);
        }
    }

    /** The next complete message (blocking), its frame in a heap buffer of its own. */
    MessageHeader next() throws Exception {
        while (true) {
            byte[] have = pending.toByteArray();
            int start = 0;
            if (!saslDone) {
                String s = new String(have, StandardCharsets.ISO_8859_1);
                int agree = s.indexOf("AGREE_UNIX_FD\r\n");
                if (agree >= 0) {
                    saslDone = true;
                    start = agree + "AGREE_UNIX_FD\r\n".length();
                }
            }
            if (saslDone) {
                ByteBuffer b = ByteBuffer.wrap(have, start, have.length - start).slice();
                long len = MessageFraming.frameLength(b, 0, b.remaining());
                if (len >= 0 && b.remaining() >= len) {
                    byte[] frame = Arrays.copyOfRange(have, start, start + (int) len);
                    pending.reset();
                    pending.write(have, start + (int) len, have.length - start - (int) len);
                    MessageHeader h = new MessageHeader();
                    h.wrap(ByteBuffer.wrap(frame), 0, frame.length);
                    h.validateBody();
                    return h;
                }
                if (start > 0) {
                    pending.reset();
                    pending.write(have, start, have.length - start);
                }
            }
            in.clear();
            int n = c.readWithFds(in, fds::add);
            assertTrue(n > 0, "EOF from the bus");
            in.flip();
            byte[] got = new byte[n];
            in.get(got);
            pending.write(got);
        }
    }

    @Override
    public void close() throws Exception {
        for (int fd : fds) {
            LibC.INSTANCE.close(fd);
        }
        ch.close(); // closes the fd SocketConnection wraps
    }

    /** A little-endian method call with an optional UNIX_FDS field (MessageBuilder has none). */
    static byte[] frame(long serial, int flags, String path, String iface, String member, String destination,
                                String signature, byte[] body, int unixFds) {
        if (body == null) {
            body = new byte[0];
        }
        BodyWriter w = new BodyWriter(128 + body.length);
        w.writeByte(WireFormat.LITTLE_ENDIAN).writeByte(WireFormat.METHOD_CALL).writeByte(flags)
                .writeByte(WireFormat.PROTOCOL_VERSION);
        w.writeUint32(body.length).writeUint32(serial);
        w.beginArray('(');
        w.beginStruct().writeByte(WireFormat.PATH).writeVariant("o").writeObjectPath(path).endStruct();
        w.beginStruct().writeByte(WireFormat.INTERFACE).writeVariant("s").writeString(iface).endStruct();
        w.beginStruct().writeByte(WireFormat.MEMBER).writeVariant("s").writeString(member).endStruct();
        w.beginStruct().writeByte(WireFormat.DESTINATION).writeVariant("s").writeString(destination).endStruct();
        if (signature != null) {
            w.beginStruct().writeByte(WireFormat.SIGNATURE).writeVariant("g").writeSignature(signature).endStruct();
        }
        if (unixFds > 0) {
            w.beginStruct().writeByte(WireFormat.UNIX_FDS).writeVariant("u").writeUint32(unixFds).endStruct();
        }
        w.endArray();
        w.padTo(8);
        w.writeRaw(body);
        return w.toByteArray();
    }
}
