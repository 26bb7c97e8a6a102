// Test helper for the fuzzers: random well-formed D-Bus messages (random signatures and values,
// both byte orders, all four types) and structure-aware and byte-level mutations of them.
// Deterministic for a given java.util.Random.
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

final class FuzzMessages {
    private FuzzMessages() {}

    private static final String BASIC = "ybnqiuxtdhsog";
    private static final String[] STRINGS = {"", "a", "hello world", "grüße", "日本語", "\uD83D\uDE00", "a,b='c'",
            "org.example.Name", ":1.42", "/org/example"};
    private static final String[] PATHS = {"/", "/a", "/org/example/Obj", "/_/9/x_y"};
    private static final String[] IFACES = {"org.example.Iface", "a.b", "org.freedesktop.DBus", "x_1.y_2.z"};
    private static final String[] MEMBERS = {"Method", "Ping", "Hello", "A_1", "x"};
    private static final String[] BUS_NAMES = {"org.example.Service", ":1.7", "org.freedesktop.DBus", "a-b.c_d", ":x.y"};
    private static final String[] ERRORS = {"org.example.Error.Failed", "org.freedesktop.DBus.Error.Failed"};
    /** Values a length or count field likes to lie with. */
    static final long[] INTERESTING_U32 = {0, 1, 2, 3, 4, 7, 8, 15, 16, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000,
            0x3ffffff, 0x4000000, 0x4000001, 0x7ffffff, 0x8000000, 0x8000001, 0x7fffffff, 0x80000000L, 0xfffffff0L,
            0xfffffffeL, 0xffffffffL};
    private static final int[] INTERESTING_BYTES = {0, 1, 0x7f, 0x80, 0xff, 'l', 'B', '(', ')', '{', '}', 'a', 'v',
            's', 'o', 'g', 'h', '/', '.', ':', 0xc0, 0xed, 0xf4, 0xf5};

    /** A message in structured form, serialised by {@link #encode()}. */
    static final class Msg {
        ByteOrder order;
        int type;
        int flags;
        long serial;
        int version = 1;
        final List<Wire.F> fields = new ArrayList<>();
        byte[] body = new byte[0];

        byte[] encode() {
            byte[] m = Wire.msg(order, type, flags, serial, body, fields.toArray(new Wire.F[0]));
            m[3] = (byte) version;
            return m;
        }
    }

    static <T> T pick(Random r, T[] a) {
        return a[r.nextInt(a.length)];
    }

    /** One complete type, nesting at most {@code depth} containers. */
    static String randomType(Random r, int depth) {
        int k = depth <= 0 ? 0 : r.nextInt(10);
        switch (k) {
            case 6: return "a" + randomType(r, depth - 1);
            case 7: return "a{" + BASIC.charAt(r.nextInt(BASIC.length())) + randomType(r, depth - 1) + "}";
            case 8: {
                StringBuilder sb = new StringBuilder("(");
                int n = 1 + r.nextInt(3);
                for (int i = 0; i < n; i++) sb.append(randomType(r, depth - 1));
                return sb.append(')').toString();
            }
            case 9: return "v";
            default: return String.valueOf(BASIC.charAt(r.nextInt(BASIC.length())));
        }
    }

    static String randomSignature(Random r, int maxTypes, int depth) {
        StringBuilder sb = new StringBuilder();
        int n = r.nextInt(maxTypes + 1);
        for (int i = 0; i < n; i++) {
            String t = randomType(r, depth);
            if (sb.length() + t.length() > 255) break;
            sb.append(t);
        }
        return sb.toString();
    }

    /** Marshals a random value of the complete type at sig[i]; returns the index after it. */
    static int writeValue(Random r, Wire w, String sig, int i, int nfds, int variantDepth) {
        char c = sig.charAt(i);
        switch (c) {
            case 'y': w.y(r.nextInt(256)); return i + 1;
            case 'b': w.u32(r.nextInt(2)); return i + 1;
            case 'n': case 'q': w.u16(r.nextInt(65536)); return i + 1;
            case 'i': case 'u': w.u32(r.nextInt()); return i + 1;
            case 'h': w.u32(nfds == 0 ? 0 : r.nextInt(nfds)); return i + 1;
            case 'x': case 't': case 'd': w.u64(r.nextLong()); return i + 1;
            case 's': w.str(pick(r, STRINGS)); return i + 1;
            case 'o': w.str(pick(r, PATHS)); return i + 1;
            case 'g': w.sig(randomSignature(r, 3, 2)); return i + 1;
            case 'v': {
                String inner = randomType(r, variantDepth > 0 ? 2 : 0);
                if (nfds == 0) inner = inner.replace('h', 'u');
                w.sig(inner);
                writeValue(r, w, inner, 0, nfds, variantDepth - 1);
                return i + 1;
            }
            case 'a': {
                int elem = i + 1;
                int elemEnd = Signatures.skipType(sig, elem);
                int n = r.nextInt(4);
                w.array(Signatures.alignmentOf(sig.charAt(elem)), ww -> {
                    for (int k = 0; k < n; k++) writeValue(r, ww, sig, elem, nfds, variantDepth);
                });
                return elemEnd;
            }
            case '(': case '{': {
                w.pad(8);
                int j = i + 1;
                char close = c == '(' ? ')' : '}';
                while (sig.charAt(j) != close) j = writeValue(r, w, sig, j, nfds, variantDepth);
                return j + 1;
            }
            default:
                throw new IllegalArgumentException("bad signature " + sig + " at " + i);
        }
    }

    static byte[] randomBody(Random r, ByteOrder o, String sig, int nfds) {
        return Wire.body(o, w -> {
            int i = 0;
            while (i < sig.length()) i = writeValue(r, w, sig, i, nfds, 2);
        });
    }

    /** A random message that MessageHeader.wrap + validateBody accept. */
    static Msg randomValid(Random r) {
        Msg m = new Msg();
        m.order = r.nextBoolean() ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN;
        m.type = 1 + r.nextInt(4);
        m.flags = r.nextInt(8);
        m.serial = 1 + (r.nextInt(Integer.MAX_VALUE));
        List<Wire.F> f = m.fields;
        switch (m.type) {
            case WireFormat.METHOD_CALL -> {
                f.add(Wire.path(pick(r, PATHS)));
                if (r.nextBoolean()) f.add(Wire.s(WireFormat.INTERFACE, pick(r, IFACES)));
                f.add(Wire.s(WireFormat.MEMBER, pick(r, MEMBERS)));
            }
            case WireFormat.SIGNAL -> {
                f.add(Wire.path(pick(r, PATHS)));
                f.add(Wire.s(WireFormat.INTERFACE, pick(r, IFACES)));
                f.add(Wire.s(WireFormat.MEMBER, pick(r, MEMBERS)));
            }
            case WireFormat.ERROR -> {
                f.add(Wire.s(WireFormat.ERROR_NAME, pick(r, ERRORS)));
                f.add(Wire.u(WireFormat.REPLY_SERIAL, 1 + r.nextInt(1000)));
            }
            default -> f.add(Wire.u(WireFormat.REPLY_SERIAL, 1 + r.nextInt(1000)));
        }
        if (r.nextInt(3) > 0) f.add(Wire.s(WireFormat.DESTINATION, pick(r, BUS_NAMES)));
        if (r.nextInt(4) == 0) f.add(Wire.s(WireFormat.SENDER, pick(r, BUS_NAMES)));
        int nfds = r.nextInt(6) == 0 ? 1 + r.nextInt(3) : 0;
        if (nfds > 0) f.add(Wire.u(WireFormat.UNIX_FDS, nfds));
        if (r.nextInt(5) == 0) f.add(unknownField(r));
        String sig = randomSignature(r, 4, 3);
        if (nfds == 0) sig = sig.replace('h', 'u'); // 'h' needs UNIX_FDS > its index
        if (!sig.isEmpty()) {
            f.add(Wire.g(sig));
            m.body = randomBody(r, m.order, sig, nfds);
        }
        Collections.shuffle(f, r);
        return m;
    }

    static Wire.F unknownField(Random r) {
        int code = 10 + r.nextInt(246);
        String t = randomType(r, 2);
        long seed = r.nextLong();
        return new Wire.F(code, t, w -> writeValue(new Random(seed), w, t, 0, 0, 1));
    }

    // ---- structure-aware mutations ----

    static void mutateStructure(Random r, Msg m) {
        List<Wire.F> f = m.fields;
        switch (r.nextInt(11)) {
            case 0 -> Collections.shuffle(f, r); // field reorder (legal: any order)
            case 1 -> { if (!f.isEmpty()) f.add(r.nextInt(f.size() + 1), f.get(r.nextInt(f.size()))); } // duplicate
            case 2 -> { if (!f.isEmpty()) f.remove(r.nextInt(f.size())); } // drop (maybe a required one)
            case 3 -> { // signature swap: the body stays, the SIGNATURE field changes
                f.removeIf(x -> x.code() == WireFormat.SIGNATURE);
                String s = r.nextInt(4) == 0 ? mutateSignature(r, randomSignature(r, 4, 3)) : randomSignature(r, 4, 3);
                if (!s.isEmpty() || r.nextBoolean()) f.add(rawSig(s));
            }
            case 4 -> { // a known field with the wrong variant type
                int code = 1 + r.nextInt(9);
                String t = randomType(r, 1);
                long seed = r.nextLong();
                f.add(new Wire.F(code, t, w -> writeValue(new Random(seed), w, t, 0, 1, 0)));
            }
            case 5 -> f.add(unknownField(r));
            case 6 -> m.type = r.nextInt(6);
            case 7 -> m.flags = r.nextInt(256);
            case 8 -> { // a name field with hostile bytes (invalid UTF-8, NUL, overlong, 256 bytes)
                int code = new int[] {WireFormat.PATH, WireFormat.INTERFACE, WireFormat.MEMBER, WireFormat.ERROR_NAME,
                        WireFormat.DESTINATION, WireFormat.SENDER}[r.nextInt(6)];
                byte[] v = hostileName(r);
                f.removeIf(x -> x.code() == code);
                f.add(new Wire.F(code, code == WireFormat.PATH ? "o" : "s", w -> w.strBytes(v)));
            }
            case 9 -> { // UNIX_FDS that disagrees with the body's 'h' values
                f.removeIf(x -> x.code() == WireFormat.UNIX_FDS);
                f.add(Wire.u(WireFormat.UNIX_FDS, INTERESTING_U32[r.nextInt(INTERESTING_U32.length)]));
            }
            default -> m.version = r.nextInt(4) == 0 ? r.nextInt(256) : 1;
        }
    }

    /** A SIGNATURE field written verbatim, even if the signature is invalid. */
    static Wire.F rawSig(String s) {
        return new Wire.F(WireFormat.SIGNATURE, "g", w -> {
            byte[] b = s.getBytes(StandardCharsets.ISO_8859_1);
            w.y(b.length & 0xff);
            w.raw(b);
            w.y(0);
        });
    }

    static String mutateSignature(Random r, String s) {
        StringBuilder sb = new StringBuilder(s);
        int n = 1 + r.nextInt(3);
        String codes = "ybnqiuxtdhsogav(){}z\u00ff";
        for (int k = 0; k < n; k++) {
            int op = r.nextInt(3);
            if (op == 0 || sb.length() == 0) sb.insert(sb.length() == 0 ? 0 : r.nextInt(sb.length() + 1), codes.charAt(r.nextInt(codes.length())));
            else if (op == 1) sb.deleteCharAt(r.nextInt(sb.length()));
            else sb.setCharAt(r.nextInt(sb.length()), codes.charAt(r.nextInt(codes.length())));
        }
        if (r.nextInt(8) == 0) { // deep nesting
            int d = 30 + r.nextInt(40);
            String inner = r.nextBoolean() ? "a".repeat(d) + "y" : "(".repeat(d) + "y" + ")".repeat(d);
            return inner.length() > 255 ? inner.substring(0, 255) : inner;
        }
        return sb.length() > 300 ? sb.substring(0, 300) : sb.toString();
    }

    static byte[] hostileName(Random r) {
        byte[][] choices = {
                {(byte) 0xc0, (byte) 0x80}, {(byte) 0xed, (byte) 0xa0, (byte) 0x80}, {'a', 0, 'b'}, {'a', '.', (byte) 0xff},
                "org.example..x".getBytes(StandardCharsets.US_ASCII), "1abc.def".getBytes(StandardCharsets.US_ASCII),
                "a".repeat(256).getBytes(StandardCharsets.US_ASCII), ("a." + "b".repeat(253)).getBytes(StandardCharsets.US_ASCII),
                "/org/freedesktop/DBus/Local".getBytes(StandardCharsets.US_ASCII), "org.freedesktop.DBus.Local".getBytes(StandardCharsets.US_ASCII),
                "grüße.x".getBytes(StandardCharsets.UTF_8), new byte[0], ":".getBytes(StandardCharsets.US_ASCII),
                "/a/".getBytes(StandardCharsets.US_ASCII), "//".getBytes(StandardCharsets.US_ASCII)};
        return choices[r.nextInt(choices.length)];
    }

    // ---- byte-level mutations ----

    static byte[] mutateBytes(Random r, byte[] in) {
        byte[] b = in;
        ByteOrder o = b.length > 0 && b[0] == 'B' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        switch (r.nextInt(10)) {
            case 0 -> { // bit flips
                b = b.clone();
                int n = 1 + r.nextInt(4);
                for (int k = 0; k < n && b.length > 0; k++) b[r.nextInt(b.length)] ^= (byte) (1 << r.nextInt(8));
            }
            case 1 -> { // interesting byte
                b = b.clone();
                if (b.length > 0) b[r.nextInt(b.length)] = (byte) INTERESTING_BYTES[r.nextInt(INTERESTING_BYTES.length)];
            }
            case 2 -> { // a lying u32 anywhere 4-aligned (array/string lengths, fields length, ...)
                b = b.clone();
                if (b.length >= 4) putU32(b, (r.nextInt(b.length / 4)) * 4, INTERESTING_U32[r.nextInt(INTERESTING_U32.length)], o);
            }
            case 3 -> { // body length lie (framing says more or less than there is)
                b = b.clone();
                if (b.length >= 16) {
                    long bl = u32(b, 4, o);
                    long v = switch (r.nextInt(4)) {
                        case 0 -> bl + 1 + r.nextInt(16);
                        case 1 -> Math.max(0, bl - 1 - r.nextInt(16));
                        case 2 -> 0;
                        default -> INTERESTING_U32[r.nextInt(INTERESTING_U32.length)];
                    };
                    putU32(b, 4, v, o);
                }
            }
            case 4 -> { // header fields length lie
                b = b.clone();
                if (b.length >= 16) {
                    long fl = u32(b, 12, o);
                    putU32(b, 12, r.nextBoolean() ? fl + r.nextInt(17) - 8 : INTERESTING_U32[r.nextInt(INTERESTING_U32.length)], o);
                }
            }
            case 5 -> b = Arrays.copyOf(b, r.nextInt(b.length + 1)); // truncation
            case 6 -> b = truncateBodyConsistently(r, b, o); // truncation with the lengths fixed up
            case 7 -> { // insert random bytes
                int at = r.nextInt(b.length + 1);
                int n = 1 + r.nextInt(9);
                byte[] nb = new byte[b.length + n];
                System.arraycopy(b, 0, nb, 0, at);
                for (int k = 0; k < n; k++) nb[at + k] = (byte) r.nextInt(256);
                System.arraycopy(b, at, nb, at + n, b.length - at);
                b = fixBodyLength(nb, o);
            }
            case 8 -> { // delete a range
                if (b.length > 16) {
                    int at = 16 + r.nextInt(b.length - 16);
                    int n = 1 + r.nextInt(Math.min(16, b.length - at));
                    byte[] nb = new byte[b.length - n];
                    System.arraycopy(b, 0, nb, 0, at);
                    System.arraycopy(b, at + n, nb, at, b.length - at - n);
                    b = r.nextBoolean() ? fixBodyLength(nb, o) : nb;
                }
            }
            default -> { // endianness flag swap (the whole message is read the other way)
                b = b.clone();
                if (b.length > 0) b[0] = b[0] == 'l' ? (byte) 'B' : (byte) 'l';
            }
        }
        return b;
    }

    private static byte[] truncateBodyConsistently(Random r, byte[] b, ByteOrder o) {
        if (b.length < 16) return b;
        long fl = u32(b, 12, o);
        long bodyOff = 16 + ((fl + 7) & ~7L);
        if (bodyOff >= b.length) return b;
        int cut = (int) bodyOff + r.nextInt((int) (b.length - bodyOff));
        byte[] nb = Arrays.copyOf(b, cut);
        putU32(nb, 4, cut - bodyOff, o);
        return nb;
    }

    /** Sets the body length so the frame length equals the data length, when that is possible. */
    static byte[] fixBodyLength(byte[] b, ByteOrder o) {
        if (b.length < 16) return b;
        long fl = u32(b, 12, o);
        long bodyOff = 16 + ((fl + 7) & ~7L);
        if (bodyOff <= b.length) putU32(b, 4, b.length - bodyOff, o);
        return b;
    }

    static long u32(byte[] b, int off, ByteOrder o) {
        return ByteBuffer.wrap(b, off, 4).order(o).getInt() & 0xffffffffL;
    }

    static void putU32(byte[] b, int off, long v, ByteOrder o) {
        ByteBuffer.wrap(b, off, 4).order(o).putInt((int) v);
    }

    /** One fuzz input: a random valid message with 0..3 structural and 0..3 byte mutations. */
    static byte[] next(Random r) {
        Msg m = randomValid(r);
        int structural = r.nextInt(4) == 0 ? 0 : r.nextInt(3);
        for (int k = 0; k < structural; k++) mutateStructure(r, m);
        byte[] b = m.encode();
        int bytes = r.nextInt(3);
        for (int k = 0; k < bytes; k++) b = mutateBytes(r, b);
        return b;
    }
}
