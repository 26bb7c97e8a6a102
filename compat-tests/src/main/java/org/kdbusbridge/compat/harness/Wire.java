package org.kdbusbridge.compat.harness;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Minimal D-Bus marshalling (written for these tests): little-endian writer, and a reader for both
 * endiannesses. Values: y Byte, b Boolean, n/q Short/Integer, i Integer, u/h Long (decoded), x/t Long,
 * d Double, s/o/g String, arrays List, dicts Map, structs List, variants {@link Variant}.
 */
public final class Wire {
    private Wire() {}

    /** A variant value with its signature. */
    public record Variant(String signature, Object value) {}

    /** Returns the index just after the single complete type starting at {@code i}. */
    public static int typeEnd(String sig, int i) {
        char c = sig.charAt(i);
        switch (c) {
            case 'a':
                return typeEnd(sig, i + 1);
            case '(':
            case '{': {
                char close = c == '(' ? ')' : '}';
                int j = i + 1;
                while (sig.charAt(j) != close) {
                    j = typeEnd(sig, j);
                }
                return j + 1;
            }
            default:
                return i + 1;
        }
    }

    /** Splits a signature into its complete types. */
    public static List<String> splitTypes(String sig) {
        List<String> out = new ArrayList<>();
        int i = 0;
        while (i < sig.length()) {
            int e = typeEnd(sig, i);
            out.add(sig.substring(i, e));
            i = e;
        }
        return out;
    }

    static int alignment(char c) {
        switch (c) {
            case 'y': case 'g': case 'v':
                return 1;
            case 'n': case 'q':
                return 2;
            case 'b': case 'i': case 'u': case 'h': case 's': case 'o': case 'a':
                return 4;
            case 'x': case 't': case 'd': case '(': case '{':
                return 8;
            default:
                throw new IllegalArgumentException("bad type code " + c);
        }
    }

    /** Growable little-endian buffer; offsets (for alignment) are relative to its start. */
    public static final class Writer {
        private byte[] buf = new byte[256];
        private int pos;

        public int position() {
            return pos;
        }

        private void ensure(int n) {
            if (pos + n > buf.length) {
                buf = Arrays.copyOf(buf, Math.max(buf.length * 2, pos + n));
            }
        }

        public Writer align(int a) {
            while (pos % a != 0) {
                putByte(0);
            }
            return this;
        }

        public Writer putByte(int b) {
            ensure(1);
            buf[pos++] = (byte) b;
            return this;
        }

        public Writer putBytes(byte[] b) {
            ensure(b.length);
            System.arraycopy(b, 0, buf, pos, b.length);
            pos += b.length;
            return this;
        }

        public Writer putU16(int v) {
            align(2);
            putByte(v);
            putByte(v >>> 8);
            return this;
        }

        public Writer putU32(long v) {
            align(4);
            for (int k = 0; k < 4; k++) {
                putByte((int) (v >>> (8 * k)));
            }
            return this;
        }

        public Writer putU64(long v) {
            align(8);
            for (int k = 0; k < 8; k++) {
                putByte((int) (v >>> (8 * k)));
            }
            return this;
        }

        /** Overwrites a 32-bit value at an absolute offset. */
        public void setU32(int at, long v) {
            for (int k = 0; k < 4; k++) {
                buf[at + k] = (byte) (v >>> (8 * k));
            }
        }

        public Writer putString(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            putU32(b.length);
            putBytes(b);
            putByte(0);
            return this;
        }

        public Writer putSignature(String s) {
            byte[] b = s.getBytes(StandardCharsets.US_ASCII);
            putByte(b.length);
            putBytes(b);
            putByte(0);
            return this;
        }

        /** Writes all values according to {@code sig} (one value per complete type). */
        public Writer putAll(String sig, Object... values) {
            List<String> types = splitTypes(sig);
            if (types.size() != values.length) {
                throw new IllegalArgumentException("signature " + sig + " needs " + types.size() + " values, got " + values.length);
            }
            for (int k = 0; k < values.length; k++) {
                put(types.get(k), values[k]);
            }
            return this;
        }

        /** Writes one value of the single complete type {@code t}. */
        @SuppressWarnings("unchecked")
        public Writer put(String t, Object v) {
            char c = t.charAt(0);
            switch (c) {
                case 'y' -> putByte(((Number) v).intValue());
                case 'b' -> putU32(((Boolean) v) ? 1 : 0);
                case 'n', 'q' -> putU16(((Number) v).intValue());
                case 'i', 'u', 'h' -> putU32(((Number) v).longValue());
                case 'x', 't' -> putU64(((Number) v).longValue());
                case 'd' -> putU64(Double.doubleToRawLongBits(((Number) v).doubleValue()));
                case 's', 'o' -> putString((String) v);
                case 'g' -> putSignature((String) v);
                case 'v' -> {
                    Variant var = (Variant) v;
                    putSignature(var.signature());
                    put(var.signature(), var.value());
                }
                case '(' -> {
                    align(8);
                    List<String> inner = splitTypes(t.substring(1, t.length() - 1));
                    List<Object> vals = v instanceof Object[] arr ? Arrays.asList(arr) : (List<Object>) v;
                    for (int k = 0; k < inner.size(); k++) {
                        put(inner.get(k), vals.get(k));
                    }
                }
                case 'a' -> {
                    String elem = t.substring(1);
                    putU32(0);
                    int lenAt = pos - 4;
                    align(alignment(elem.charAt(0)));
                    int start = pos;
                    if (elem.charAt(0) == '{') {
                        List<String> kv = splitTypes(elem.substring(1, elem.length() - 1));
                        for (Map.Entry<Object, Object> e : ((Map<Object, Object>) v).entrySet()) {
                            align(8);
                            put(kv.get(0), e.getKey());
                            put(kv.get(1), e.getValue());
                        }
                    } else {
                        for (Object o : (List<Object>) v) {
                            put(elem, o);
                        }
                    }
                    setU32(lenAt, pos - start);
                }
                default -> throw new IllegalArgumentException("cannot write type " + t);
            }
            return this;
        }

        public byte[] toByteArray() {
            return Arrays.copyOf(buf, pos);
        }
    }

    /** Reader over a buffer; alignment offsets are relative to {@code base}. */
    public static final class Reader {
        private final ByteBuffer bb;
        private final int base;

        public Reader(byte[] data, int offset, int length, boolean littleEndian) {
            this.bb = ByteBuffer.wrap(data, offset, length).order(littleEndian ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN);
            this.base = offset;
        }

        public int position() {
            return bb.position() - base;
        }

        public void align(int a) {
            int rel = position();
            int pad = (a - rel % a) % a;
            bb.position(bb.position() + pad);
        }

        public boolean hasRemaining() {
            return bb.hasRemaining();
        }

        public int u8() {
            return bb.get() & 0xff;
        }

        public long u32() {
            align(4);
            return bb.getInt() & 0xffffffffL;
        }

        public String string() {
            int len = (int) u32();
            byte[] b = new byte[len];
            bb.get(b);
            bb.get(); // NUL
            return new String(b, StandardCharsets.UTF_8);
        }

        public String signature() {
            int len = u8();
            byte[] b = new byte[len];
            bb.get(b);
            bb.get();
            return new String(b, StandardCharsets.US_ASCII);
        }

        public List<Object> readAll(String sig) {
            List<Object> out = new ArrayList<>();
            for (String t : splitTypes(sig)) {
                out.add(read(t));
            }
            return out;
        }

        public Object read(String t) {
            char c = t.charAt(0);
            switch (c) {
                case 'y':
                    return (byte) u8();
                case 'b':
                    return u32() != 0;
                case 'n':
                    align(2);
                    return bb.getShort();
                case 'q':
                    align(2);
                    return bb.getShort() & 0xffff;
                case 'i':
                    align(4);
                    return bb.getInt();
                case 'u':
                case 'h':
                    return u32();
                case 'x':
                case 't':
                    align(8);
                    return bb.getLong();
                case 'd':
                    align(8);
                    return bb.getDouble();
                case 's':
                case 'o':
                    return string();
                case 'g':
                    return signature();
                case 'v': {
                    String s = signature();
                    return new Variant(s, read(s));
                }
                case '(': {
                    align(8);
                    List<Object> fields = new ArrayList<>();
                    for (String ft : splitTypes(t.substring(1, t.length() - 1))) {
                        fields.add(read(ft));
                    }
                    return fields;
                }
                case 'a': {
                    long len = u32();
                    String elem = t.substring(1);
                    align(alignment(elem.charAt(0)));
                    int end = bb.position() + (int) len;
                    if (elem.charAt(0) == '{') {
                        List<String> kv = splitTypes(elem.substring(1, elem.length() - 1));
                        Map<Object, Object> m = new LinkedHashMap<>();
                        while (bb.position() < end) {
                            align(8);
                            Object k = read(kv.get(0));
                            m.put(k, read(kv.get(1)));
                        }
                        return m;
                    }
                    List<Object> items = new ArrayList<>();
                    while (bb.position() < end) {
                        items.add(read(elem));
                    }
                    return items;
                }
                default:
                    throw new IllegalArgumentException("cannot read type " + t);
            }
        }
    }

    /** Renders a decoded value compactly for transcripts. */
    public static String format(Object v) {
        if (v instanceof String s) {
            return '"' + s + '"';
        }
        if (v instanceof Variant var) {
            return "<" + var.signature() + ":" + format(var.value()) + ">";
        }
        if (v instanceof Map<?, ?> m) {
            StringBuilder sb = new StringBuilder("{");
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!first) {
                    sb.append(", ");
                }
                first = false;
                sb.append(format(e.getKey())).append(": ").append(format(e.getValue()));
            }
            return sb.append('}').toString();
        }
        if (v instanceof List<?> l) {
            StringBuilder sb = new StringBuilder("[");
            for (int k = 0; k < l.size(); k++) {
                if (k > 0) {
                    sb.append(", ");
                }
                sb.append(format(l.get(k)));
            }
            return sb.append(']').toString();
        }
        return String.valueOf(v);
    }
}
