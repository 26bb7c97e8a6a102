package org.kdbusbridge.bridge.client.dbusjava;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.freedesktop.dbus.messages.DBusSignal;
import org.freedesktop.dbus.messages.Message;
import org.freedesktop.dbus.messages.MessageFactory;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.metadata.MessageMetadata;
import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.MetadataField;
import org.kdbusbridge.bridge.protocol.WireFormat;

/**
 * The header rewrite of the dbus-java metadata reader: field 107 (the project's own encoder,
 * MetadataField, in both forms) put before, between and after a message's other fields, in
 * both byte orders, comes out byte for byte as the message without it, and keeps the field's
 * values; dbus-java parses the result.
 */
class FieldStripTest {

    /** Base messages without field 107: the project's encoder (little-endian) and dbus-java's (big-endian). */
    static List<byte[]> baseMessages() throws Exception {
        List<byte[]> out = new ArrayList<>();
        byte[] body = new byte[] {5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o', 0};
        out.add(MessageBuilder.encode(WireFormat.METHOD_CALL, 0, 77, "/org/example/Obj", "org.example.Iface", "Echo",
                null, MessageBuilder.NO_REPLY_SERIAL, "org.example.Service", ":1.42", "s", body));
        // A member of each length 1..8 moves the end of the last field through every alignment.
        for (String member : List.of("M", "Me", "Mem", "Memb", "Membe", "Member", "Member7", "Member78")) {
            out.add(MessageBuilder.encode(WireFormat.SIGNAL, 0, 3, "/a", "org.example.I", member, null,
                    MessageBuilder.NO_REPLY_SERIAL, null, ":1.7", null, (byte[]) null));
        }
        out.add(MessageBuilder.encode(WireFormat.METHOD_RETURN, 0, 9, null, null, null, null, 77, ":1.9", ":1.42",
                "s", body));
        for (String member : List.of("Tick", "Tock5")) {
            DBusSignal be = new MessageFactory((byte) 'B').createSignal(":1.5", "/org/example/Obj", "org.example.Iface",
                    member, "su", "payload", 42);
            out.add(wire(be));
        }
        return out;
    }

    static byte[] wire(Message m) throws Exception {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        for (byte[] part : m.getWireData()) {
            if (part != null) {
                o.write(part);
            }
        }
        return o.toByteArray();
    }

    static ByteOrder orderOf(byte[] m) {
        return m[0] == 'B' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
    }

    static int fieldsLength(byte[] m) {
        return ByteBuffer.wrap(m).order(orderOf(m)).getInt(12);
    }

    static int bodyOffset(byte[] m) {
        return FieldStrip.align8(16 + fieldsLength(m));
    }

    /** The header fields of {@code m}, each element's bytes from its code to the end of its value. */
    static List<byte[]> elements(byte[] m) throws Exception {
        List<byte[]> out = new ArrayList<>();
        int end = 16 + fieldsLength(m);
        int p = 16;
        while (p < end) {
            BodyReader r = new BodyReader(ByteBuffer.wrap(m), p, end - p, orderOf(m), "yv");
            r.readByte();
            r.skip();
            out.add(Arrays.copyOfRange(m, p, r.position()));
            p = FieldStrip.align8(r.position());
        }
        return out;
    }

    /** {@code m} with its fields replaced by {@code fields} (each 8-aligned), body kept. */
    static byte[] withFields(byte[] m, List<byte[]> fields) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.write(m, 0, 16);
        for (byte[] f : fields) {
            while (o.size() % 8 != 0) {
                o.write(0);
            }
            o.write(f, 0, f.length);
        }
        int len = o.size() - 16;
        while (o.size() % 8 != 0) {
            o.write(0);
        }
        int bo = bodyOffset(m);
        o.write(m, bo, m.length - bo);
        byte[] out = o.toByteArray();
        ByteBuffer.wrap(out).order(orderOf(m)).putInt(12, len);
        return out;
    }

    /** Field 107 for {@code order}, by the bus's encoder, alone as an element. */
    static byte[] metadataElement(byte[] base, boolean text) throws Exception {
        return metadataElement(base, text, 0x1_0000_0002L);
    }

    /** As {@link #metadataElement}, the dictionary form with {@code seq}. */
    static byte[] metadataElementWithSeq(byte[] base, long seq) throws Exception {
        return metadataElement(base, seq % 2 == 1, seq);
    }

    static byte[] metadataElement(byte[] base, boolean text, long seq) throws Exception {
        ByteOrder o = orderOf(base);
        MetadataField.Encoder e = new MetadataField.Encoder().begin(o, text, 0)
                .putUint32("pid", 4242).putUint32("uid", 1000).putUint32("gid", 1001).putBoolean("creds-at-send", true)
                .putStrings("names", new String[] {"org.example.A", "org.example.B"})
                .putUint64("seq", seq).putPair("timestamp", 5, 6)
                .putText("comm", "my prog".getBytes(StandardCharsets.UTF_8))
                .putBytes("cmdline", "a\0b\0".getBytes(StandardCharsets.UTF_8))
                .putUint32s("groups", new long[] {1, 2, 3}).end();
        byte[] spliced = MetadataField.splice(ByteBuffer.wrap(base), e);
        List<byte[]> all = elements(spliced);
        byte[] last = all.get(all.size() - 1);
        assertEquals(MessageMetadata.FIELD_CODE, last[0] & 0xff, "the splice appends the field");
        return last;
    }

    /** dbus-java's header layout of {@code m}: length, 4 zero bytes, the array, zeros to 8. */
    static byte[] dbusJavaHeader(byte[] m) {
        int len = fieldsLength(m);
        byte[] h = new byte[8 + FieldStrip.align8(len)];
        System.arraycopy(m, 12, h, 0, 4);
        System.arraycopy(m, 16, h, 8, len);
        return h;
    }

    @Test
    void field107AnywhereComesOutAsTheMessageWithoutIt() throws Exception {
        int checked = 0;
        for (byte[] base : baseMessages()) {
            boolean big = base[0] == 'B';
            List<byte[]> fields = elements(base);
            for (boolean text : new boolean[] {false, true}) {
                byte[] meta = metadataElement(base, text);
                for (int at = 0; at <= fields.size(); at++) {
                    List<byte[]> with = new ArrayList<>(fields);
                    with.add(at, meta);
                    byte[] in = withFields(base, with);
                    int len = fieldsLength(in);
                    byte[] content = Arrays.copyOfRange(in, 16, bodyOffset(in));
                    FieldStrip strip = new FieldStrip();
                    assertTrue(strip.find(content, len, big), "found at " + at);
                    byte[] header = strip.dbusJavaHeader(content, len, big, true);
                    assertArrayEquals(dbusJavaHeader(base), header,
                            "field at " + at + " of " + fields.size() + ", " + (big ? "BE" : "LE") + (text ? " text" : ""));

                    MessageMetadata md = MessageMetadata.parse(strip.elementAsMessage(content, big)).orElseThrow();
                    assertEquals(4242, md.pid().getAsLong());
                    assertEquals(1001, md.gid().getAsLong());
                    assertEquals(0x1_0000_0002L, md.seq().getAsLong());
                    assertEquals(List.of("org.example.A", "org.example.B"), md.names().orElseThrow());
                    assertEquals(new MessageMetadata.Timestamp(5, 6), md.timestamp().orElseThrow());
                    assertEquals("my prog", md.comm().orElseThrow());
                    assertArrayEquals(new long[] {1, 2, 3}, md.groups().orElseThrow());

                    // dbus-java reads the rewritten header as it reads the message without the field.
                    int bo = bodyOffset(base);
                    Message mine = MessageFactory.createMessage(base[1], Arrays.copyOf(base, 12), header,
                            Arrays.copyOfRange(base, bo, base.length), null);
                    Message plain = MessageFactory.createMessage(base[1], Arrays.copyOf(base, 12), dbusJavaHeader(base),
                            Arrays.copyOfRange(base, bo, base.length), null);
                    assertEquals(plain.getSource(), mine.getSource());
                    assertEquals(plain.getName(), mine.getName());
                    assertEquals(plain.getPath(), mine.getPath());
                    assertEquals(plain.getSig(), mine.getSig());
                    assertEquals(plain.getSerial(), mine.getSerial());
                    assertArrayEquals(plain.getParameters(), mine.getParameters());
                    checked++;
                }
            }
        }
        assertTrue(checked > 60, "checked " + checked);
    }

    @Test
    void aMessageWithoutTheFieldIsUnchanged() throws Exception {
        for (byte[] base : baseMessages()) {
            byte[] content = Arrays.copyOfRange(base, 16, bodyOffset(base));
            FieldStrip strip = new FieldStrip();
            assertFalse(strip.find(content, fieldsLength(base), base[0] == 'B'));
            assertArrayEquals(dbusJavaHeader(base), strip.dbusJavaHeader(content, fieldsLength(base), base[0] == 'B', false));
        }
    }

    /**
     * A field whose value is a struct or a variant (no field of the specification is; the bus
     * drops unknown fields, so only in theory) is stepped over by the body reader, at every
     * alignment of its value, and field 107 after it is still found and taken out whole.
     */
    @Test
    void aStructOrVariantFieldBeforeItIsSteppedOver() throws Exception {
        for (byte[] base : baseMessages()) {
            boolean big = base[0] == 'B';
            ByteOrder o = orderOf(base);
            for (String sig : List.of("(su)", "v", "(yt)")) {
                ByteBuffer b = ByteBuffer.allocate(64).order(o);
                b.put((byte) 200).put((byte) sig.length()).put(sig.getBytes(StandardCharsets.US_ASCII)).put((byte) 0);
                switch (sig) {
                    case "(su)":
                        b.position(8); // struct: 8-aligned
                        b.putInt(2).put("ab".getBytes(StandardCharsets.US_ASCII)).put((byte) 0);
                        b.position((b.position() + 3) & ~3);
                        b.putInt(7);
                        break;
                    case "v":
                        b.put((byte) 1).put((byte) 'u').put((byte) 0);
                        b.position((b.position() + 3) & ~3);
                        b.putInt(9);
                        break;
                    default:
                        b.position(8);
                        b.put((byte) 1);
                        b.position(16);
                        b.putLong(11);
                }
                byte[] odd = Arrays.copyOf(b.array(), b.position());
                List<byte[]> fields = new ArrayList<>(elements(base));
                fields.add(odd);
                byte[] meta = metadataElement(base, false);
                List<byte[]> with = new ArrayList<>(fields);
                with.add(meta);
                byte[] in = withFields(base, with);
                byte[] expectedWithoutMeta = withFields(base, fields);
                byte[] content = Arrays.copyOfRange(in, 16, bodyOffset(in));
                FieldStrip strip = new FieldStrip();
                assertTrue(strip.find(content, fieldsLength(in), big), sig);
                assertArrayEquals(dbusJavaHeader(expectedWithoutMeta),
                        strip.dbusJavaHeader(content, fieldsLength(in), big, true), sig);
                assertEquals(meta.length, strip.end - strip.start, sig);
            }
        }
    }

    @Test
    void aFieldPastTheArrayIsRefused() throws Exception {
        byte[] base = baseMessages().get(0);
        byte[] content = Arrays.copyOfRange(base, 16, bodyOffset(base));
        // Cut the array inside its last field (the signature's string).
        int cut = fieldsLength(base) - 3;
        org.junit.jupiter.api.Assertions.assertThrows(org.kdbusbridge.bridge.protocol.ProtocolException.class,
                () -> new FieldStrip().find(content, cut, false));
    }
}
