package org.kdbusbridge.bridge.metadata;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.MetadataField;
import org.kdbusbridge.bridge.protocol.WireFormat;

/** The client helper reads back every item our own encoder writes, in both byte orders. */
class MessageMetadataTest {

    private static ByteOrder order(String o) {
        return o.equals("LE") ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN;
    }

    /** Every item the bus can attach, as MetadataRenderer would encode them. */
    private static MetadataField.Encoder everything(ByteOrder bo) {
        return new MetadataField.Encoder().begin(bo)
                .putUint32("pid", 4242).putUint32("uid", 1000).putUint32("gid", 100).putBoolean("creds-at-send", true)
                .putUint32s("groups", new long[] {4, 24, 0xFFFF_FFFEL})
                .putText("comm", "python3".getBytes(StandardCharsets.UTF_8))
                .putText("exe", new byte[] {'/', 'x', (byte) 0xff}) // not UTF-8: goes as ay
                .putBytes("cmdline", "python3\0-c\0pass\0".getBytes(StandardCharsets.UTF_8))
                .putText("cgroup", "/user.slice/a.scope".getBytes(StandardCharsets.UTF_8))
                .putBytes("seclabel", "unconfined\0".getBytes(StandardCharsets.UTF_8))
                .putStrings("names", new String[] {"org.example.A", "org.example.B"})
                .putUint64("seq", 0x1_0000_0002L)
                .putPair("timestamp", 123_456_789L, 1_700_000_000_000_000_000L)
                .end();
    }

    @ParameterizedTest
    @ValueSource(strings = {"LE", "BE"})
    void readsEveryItemTheEncoderWrites(String o) throws Exception {
        ByteOrder bo = order(o);
        byte[] msg = MetadataField.splice(ByteBuffer.wrap(Signals.tick(bo, "Member7")), everything(bo));
        new MessageHeader().wrap(ByteBuffer.wrap(msg), 0, msg.length); // a valid message

        MessageMetadata m = MessageMetadata.parse(msg).orElseThrow();
        assertEquals(Set.of("pid", "uid", "gid", "creds-at-send", "groups", "comm", "exe", "cmdline", "cgroup",
                "seclabel", "names", "seq", "timestamp"), m.keys());
        assertEquals(4242, m.pid().getAsLong());
        assertEquals(1000, m.uid().getAsLong());
        assertEquals(100, m.gid().getAsLong());
        assertEquals(Optional.of(true), m.credsAtSend());
        assertArrayEquals(new long[] {4, 24, 0xFFFF_FFFEL}, m.groups().orElseThrow());
        assertEquals("python3", m.comm().orElseThrow());
        assertArrayEquals(new byte[] {'/', 'x', (byte) 0xff}, m.textBytes("exe").orElseThrow(), "ay kept exactly");
        assertEquals("/x\uFFFD", m.exe().orElseThrow(), "ay decoded with replacement");
        assertEquals(List.of("python3", "-c", "pass"), m.cmdlineArgs().orElseThrow());
        assertArrayEquals("python3\0-c\0pass\0".getBytes(StandardCharsets.UTF_8), m.cmdline().orElseThrow());
        assertEquals("/user.slice/a.scope", m.cgroup().orElseThrow());
        assertArrayEquals("unconfined\0".getBytes(StandardCharsets.UTF_8), m.seclabel().orElseThrow());
        assertEquals(List.of("org.example.A", "org.example.B"), m.names().orElseThrow());
        assertEquals(0x1_0000_0002L, m.seq().getAsLong());
        assertEquals(new MessageMetadata.Timestamp(123_456_789L, 1_700_000_000_000_000_000L), m.timestamp().orElseThrow());

        // The same through a ByteBuffer whose position is not 0, and the buffer is left alone.
        byte[] padded = new byte[msg.length + 24];
        System.arraycopy(msg, 0, padded, 8, msg.length);
        ByteBuffer b = ByteBuffer.wrap(padded, 8, msg.length);
        assertEquals(m.keys(), MessageMetadata.parse(b).orElseThrow().keys());
        assertEquals(8, b.position());
        assertEquals(0x1_0000_0002L, MessageMetadata.parse(b).orElseThrow().seq().getAsLong());
    }

    @ParameterizedTest
    @ValueSource(strings = {"LE", "BE"})
    void onlyTheItemsAskedForAreThere(String o) throws Exception {
        ByteOrder bo = order(o);
        byte[] msg = MetadataField.splice(ByteBuffer.wrap(Signals.tick(bo, "M")),
                new MetadataField.Encoder().begin(bo).putUint64("seq", 7).putPair("timestamp", 1, 2).end());
        MessageMetadata m = MessageMetadata.parse(msg).orElseThrow();
        assertEquals(Set.of("seq", "timestamp"), m.keys());
        assertEquals(7, m.seq().getAsLong());
        assertTrue(m.pid().isEmpty());
        assertTrue(m.credsAtSend().isEmpty());
        assertTrue(m.names().isEmpty());
        assertTrue(m.comm().isEmpty());
        assertTrue(m.groups().isEmpty());
        assertTrue(m.cmdlineArgs().isEmpty());
    }

    @ParameterizedTest
    @ValueSource(strings = {"LE", "BE"})
    void absentFieldIsEmpty(String o) throws Exception {
        ByteOrder bo = order(o);
        assertEquals(Optional.empty(), MessageMetadata.parse(Signals.tick(bo, "Mem")));
        byte[] empty = MetadataField.splice(ByteBuffer.wrap(Signals.tick(bo, "Mem")),
                new MetadataField.Encoder().begin(bo).end());
        assertEquals(Set.of(), MessageMetadata.parse(empty).orElseThrow().keys(), "present but empty");
    }

    @Test
    void anotherUnknownFieldIsSkipped() throws Exception {
        ByteOrder bo = ByteOrder.LITTLE_ENDIAN;
        byte[] msg = Signals.tick(bo, "M", Signals.unknownField(bo, 200));
        assertEquals(Optional.empty(), MessageMetadata.parse(msg));
        byte[] with = MetadataField.splice(ByteBuffer.wrap(msg), new MetadataField.Encoder().begin(bo).putUint64("seq", 9).end());
        assertEquals(9, MessageMetadata.parse(with).orElseThrow().seq().getAsLong());
    }

    @Test
    void malformedHeadersAreRefused() throws Exception {
        byte[] msg = Signals.tick(ByteOrder.LITTLE_ENDIAN, "M");
        assertThrows(IllegalArgumentException.class, () -> MessageMetadata.parse(new byte[8]));
        byte[] bad = msg.clone();
        bad[0] = 'x';
        assertThrows(IllegalArgumentException.class, () -> MessageMetadata.parse(bad));
        byte[] cut = java.util.Arrays.copyOf(msg, 24); // the fields array passes the end
        assertThrows(IllegalArgumentException.class, () -> MessageMetadata.parse(cut));
        byte[] wrongType = Signals.tick(ByteOrder.LITTLE_ENDIAN, "M", Signals.field(ByteOrder.LITTLE_ENDIAN, 107, "u", 5));
        assertThrows(IllegalArgumentException.class, () -> MessageMetadata.parse(wrongType));
        byte[] otherArray = Signals.tick(ByteOrder.BIG_ENDIAN, "M", Signals.field(ByteOrder.BIG_ENDIAN, 107, "as", 0));
        assertThrows(IllegalArgumentException.class, () -> MessageMetadata.parse(otherArray), "an empty as is no a{sv}");
    }

    @ParameterizedTest
    @ValueSource(strings = {"LE", "BE"})
    void busMessageExposesIt(String o) throws Exception {
        ByteOrder bo = order(o);
        byte[] msg = MetadataField.splice(ByteBuffer.wrap(Signals.tick(bo, "M")), everything(bo));
        BusMessage m = BusMessage.decode(msg);
        assertEquals("M", m.member());
        assertEquals(List.of("org.example.A", "org.example.B"), m.metadata().orElseThrow().names().orElseThrow());
        assertFalse(BusMessage.decode(Signals.tick(bo, "M")).metadata().isPresent());
    }

    /** Hand-made signals in either byte order (MessageBuilder writes little-endian only). */
    static final class Signals {
        private Signals() { }

        /** A signal /a, org.example.I.member, body "s" "hi", sender :1.7, plus extra raw fields. */
        static byte[] tick(ByteOrder bo, String member, byte[]... extraFields) {
            Out f = new Out(bo);
            f.field(WireFormat.PATH, "o").str("/a");
            f.field(WireFormat.INTERFACE, "s").str("org.example.I");
            f.field(WireFormat.MEMBER, "s").str(member);
            f.field(WireFormat.SIGNATURE, "g").sig("s");
            f.field(WireFormat.SENDER, "s").str(":1.7");
            for (byte[] x : extraFields) {
                f.pad(8).raw(x);
            }
            byte[] fields = f.bytes(); // starts at message offset 16: 8-aligned, as f's index 0
            Out body = new Out(bo).str("hi");
            Out m = new Out(bo);
            m.raw(new byte[] {(byte) (bo == ByteOrder.LITTLE_ENDIAN ? 'l' : 'B'), WireFormat.SIGNAL, 0, 1});
            m.u32(body.bytes().length).u32(1).u32(fields.length).raw(fields).pad(8).raw(body.bytes());
            return m.bytes();
        }

        /** A (yv) header field of the given code holding a u. */
        static byte[] field(ByteOrder bo, int code, String sig, int value) {
            Out f = new Out(bo);
            f.field(code, sig).u32(value);
            return f.bytes();
        }

        /** A (yv) field holding an a{sv} with one entry ("x": s "y"), as a future extension might. */
        static byte[] unknownField(ByteOrder bo, int code) {
            Out f = new Out(bo);
            f.field(code, "a{sv}");
            f.pad(4);
            int slot = f.size();
            f.u32(0).pad(8);
            int start = f.size();
            f.str("x").sig("s").str("y");
            f.patch(slot, f.size() - start);
            return f.bytes();
        }

        /** Writes in one order; alignment relative to index 0. */
        static final class Out {
            private final ByteOrder bo;
            private final ByteArrayOutputStream a = new ByteArrayOutputStream();

            Out(ByteOrder bo) {
                this.bo = bo;
            }

            int size() {
                return a.size();
            }

            Out raw(byte[] b) {
                a.writeBytes(b);
                return this;
            }

            Out pad(int al) {
                while (a.size() % al != 0) {
                    a.write(0);
                }
                return this;
            }

            Out u32(long v) {
                pad(4);
                return raw(ByteBuffer.allocate(4).order(bo).putInt((int) v).array());
            }

            Out str(String s) {
                byte[] b = s.getBytes(StandardCharsets.UTF_8);
                u32(b.length).raw(b);
                a.write(0);
                return this;
            }

            Out sig(String s) {
                a.write(s.length());
                raw(s.getBytes(StandardCharsets.US_ASCII));
                a.write(0);
                return this;
            }

            Out field(int code, String sig) {
                pad(8);
                a.write(code);
                return sig(sig);
            }

            void patch(int at, int v) {
                byte[] b = a.toByteArray();
                ByteBuffer.wrap(b).order(bo).putInt(at, v);
                a.reset();
                a.writeBytes(b);
            }

            byte[] bytes() {
                return a.toByteArray();
            }
        }
    }

    @Test
    void theTextFormRefusesSignsInEscapesAndNumbers() {
        assertArrayEquals(new byte[] {'a', ' ', (byte) 0xff}, MessageMetadata.parseText("cmdline=a%20%FF")
                .cmdline().orElseThrow(), "two hex digits, upper-case");
        assertArrayEquals(new byte[] {(byte) 0xab}, MessageMetadata.parseText("cmdline=%ab").cmdline().orElseThrow(),
                "lower-case is taken too");
        assertEquals("a b", MessageMetadata.parseText("comm=a%20b").comm().orElseThrow());
        for (String bad : new String[] {"comm=%+F", "comm=%-1", "comm=%+0", "cmdline=%-F", "exe=x%G0", "comm=%F",
                "pid=+5", "pidfd=-1", "pidfd=+0", "seq=-0", "uid=", "groups=1,+2", "timestamp=1,-2"}) {
            assertThrows(IllegalArgumentException.class, () -> MessageMetadata.parseText(bad), bad);
        }
        assertEquals(5, MessageMetadata.parseText("pid=5 pidfd=0").pid().getAsLong());
    }
}
