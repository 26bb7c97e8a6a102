// Invariants: reads only inside [bodyOffset, bodyOffset+bodyLength) with absolute gets in the given
// byte order; alignment is relative to bodyOffset (bodies start 8-aligned in their message);
// the cursor advances one complete top-level type per read; any mismatch or overrun throws
// ProtocolException and leaves the reader unusable for further reads.
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Sequential decoder of a message body (driver method arguments, match-rule argN values). */
public final class BodyReader {
    private final ByteBuffer b;
    private final ByteOrder order;
    private final int base;
    private final int end;
    private final String sig;
    private int p;
    private int s;
    private int limit;
    /** Non-null if the signature given was malformed; every read then throws. */
    private final String sigError;

    public BodyReader(ByteBuffer buf, int bodyOffset, int bodyLength, ByteOrder order, String signature) {
        this(buf, bodyOffset, bodyLength, order, signature, false);
    }

    /** {@code signatureValid}: the signature was already validated (a wrapped header's SIGNATURE field). */
    private BodyReader(ByteBuffer buf, int bodyOffset, int bodyLength, ByteOrder order, String signature,
                       boolean signatureValid) {
        if (bodyOffset < 0 || bodyLength < 0 || bodyLength > buf.limit() - bodyOffset) {
            throw new IllegalArgumentException("body outside the buffer's limit");
        }
        this.b = buf;
        this.order = order;
        this.base = bodyOffset;
        this.end = bodyOffset + bodyLength;
        this.limit = end;
        this.p = bodyOffset;
        this.sig = signature == null ? "" : signature;
        String err = null;
        if (!signatureValid) {
            try {
                Signatures.validate(this.sig, false);
            } catch (ProtocolException e) {
                err = e.getMessage();
            }
        }
        this.sigError = err;
    }

    /** A reader over the body of a wrapped message (whose SIGNATURE field wrap() validated). */
    public static BodyReader of(MessageHeader h) {
        return new BodyReader(h.buffer(), h.bodyOffset(), (int) h.bodyLength(), h.byteOrder(), h.signature(),
                h.isValid());
    }

    /** The first argument if it is a string ('s'), else null; the reader's position does not move. */
    public String firstString() {
        if (sigError != null || sig.isEmpty() || sig.charAt(0) != 's') {
            return null;
        }
        int p0 = p;
        int s0 = s;
        int l0 = limit;
        try {
            p = base;
            s = 0;
            limit = end;
            return readString();
        } catch (ProtocolException e) {
            return null;
        } finally {
            p = p0;
            s = s0;
            limit = l0;
        }
    }

    public boolean hasNext() {
        return sigError == null && s < sig.length();
    }

    /** Signature of the next complete top-level type (e.g. "s", "a{sv}"), or null at the end. */
    public String nextTypeCode() {
        if (!hasNext()) return null;
        return sig.substring(s, Signatures.skipType(sig, s));
    }

    /** Current absolute position in the buffer (for tests/diagnostics). */
    public int position() {
        return p;
    }

    /** Skips one complete top-level value. */
    public void skip() throws ProtocolException {
        expectAny();
        s = decode(sig, s, null, 0);
    }

    private void expectAny() throws ProtocolException {
        if (sigError != null) throw new ProtocolException("invalid body signature: " + sigError);
        if (!hasNext()) throw new ProtocolException("no more arguments in body (signature '" + sig + "')");
    }

    private void expect(char c) throws ProtocolException {
        expectAny();
        if (sig.charAt(s) != c) {
            throw new ProtocolException("expected argument type '" + c + "' but signature has '" + nextTypeCode() + "'");
        }
    }

    public byte readByte() throws ProtocolException {
        expect('y');
        s++;
        return (byte) rawByte();
    }

    public boolean readBoolean() throws ProtocolException {
        expect('b');
        s++;
        return rawBoolean();
    }

    public short readInt16() throws ProtocolException {
        expect('n');
        s++;
        return rawShort();
    }

    public int readUint16() throws ProtocolException {
        expect('q');
        s++;
        return rawShort() & 0xffff;
    }

    public int readInt32() throws ProtocolException {
        expect('i');
        s++;
        return rawInt();
    }

    public long readUint32() throws ProtocolException {
        expect('u');
        s++;
        return rawInt() & 0xffffffffL;
    }

    public int readUnixFd() throws ProtocolException {
        expect('h');
        s++;
        return rawInt();
    }

    public long readInt64() throws ProtocolException {
        expect('x');
        s++;
        return rawLong();
    }

    /** Unsigned 64-bit value in a long's bits. */
    public long readUint64() throws ProtocolException {
        expect('t');
        s++;
        return rawLong();
    }

    public double readDouble() throws ProtocolException {
        expect('d');
        s++;
        return Double.longBitsToDouble(rawLong());
    }

    public String readString() throws ProtocolException {
        expect('s');
        s++;
        return rawString();
    }

    public String readObjectPath() throws ProtocolException {
        expect('o');
        s++;
        String v = rawString();
        if (!Names.isValidObjectPath(v)) throw new ProtocolException("invalid object path argument");
        return v;
    }

    public String readSignature() throws ProtocolException {
        expect('g');
        s++;
        return rawSignature();
    }

    /** Reads an 'as' (or 'ao') argument. */
    public List<String> readStringArray() throws ProtocolException {
        expect('a');
        if (s + 1 >= sig.length() || (sig.charAt(s + 1) != 's' && sig.charAt(s + 1) != 'o')) {
            throw new ProtocolException("expected 'as' but signature has '" + nextTypeCode() + "'");
        }
        s += 2;
        int arrEnd = arrayStart(4);
        List<String> out = new ArrayList<>();
        while (p < arrEnd) out.add(rawString());
        arrayEnd(arrEnd);
        return out;
    }

    /** Reads an 'ay' argument. */
    public byte[] readByteArray() throws ProtocolException {
        expect('a');
        if (s + 1 >= sig.length() || sig.charAt(s + 1) != 'y') throw new ProtocolException("expected 'ay' but signature has '" + nextTypeCode() + "'");
        s += 2;
        int arrEnd = arrayStart(1);
        byte[] out = new byte[arrEnd - p];
        b.get(p, out, 0, out.length);
        p = arrEnd;
        arrayEnd(arrEnd);
        return out;
    }

    /** Reads an 'a{sv}' argument; variant values are decoded as by {@link #readValue()}. */
    @SuppressWarnings("unchecked")
    public Map<String, Object> readDictStringVariant() throws ProtocolException {
        expect('a');
        if (!sig.startsWith("a{sv}", s)) throw new ProtocolException("expected 'a{sv}' but signature has '" + nextTypeCode() + "'");
        return (Map<String, Object>) readValue();
    }

    /**
     * Decodes the next complete value: y Byte, b Boolean, n Short, q Integer, i Integer, u Long,
     * x/t Long, d Double, h Integer, s/o/g String, ay byte[], a{..} LinkedHashMap, other arrays
     * List, struct Object[], variant its contained value.
     */
    public Object readValue() throws ProtocolException {
        expectAny();
        Object[] holder = new Object[1];
        s = decode(sig, s, holder, 0);
        return holder[0];
    }

    /** {@link #copyValue}'s refusal of a unix fd. */
    public static final String NO_FDS = "a unix fd cannot be kept";

    /**
     * Re-marshals the next complete value into {@code out} with its exact D-Bus types (a value the
     * bus keeps and gives back unchanged, as dbus-daemon keeps Containers1 metadata): q stays q,
     * o stays o, a nested variant keeps its signature; the byte order becomes {@code out}'s.
     * {@code allowFds} false: a unix fd ('h') anywhere in it is refused (it would name an fd of
     * this message only).
     */
    public void copyValue(BodyWriter out, boolean allowFds) throws ProtocolException {
        expectAny();
        s = copy(sig, s, out, allowFds, 0);
    }

    /** As decode, writing each value to {@code w} with its own type; returns the signature index after it. */
    private int copy(String sg, int i, BodyWriter w, boolean allowFds, int depth) throws ProtocolException {
        if (depth > WireFormat.MAX_TOTAL_DEPTH) throw new ProtocolException("value nests too deeply");
        char c = sg.charAt(i);
        switch (c) {
            case 'y': w.writeByte(rawByte()); break;
            case 'b': w.writeBoolean(rawBoolean()); break;
            case 'n': w.writeInt16(rawShort()); break;
            case 'q': w.writeUint16(rawShort() & 0xffff); break;
            case 'i': w.writeInt32(rawInt()); break;
            case 'h':
                if (!allowFds) throw new ProtocolException(NO_FDS);
                w.writeUnixFd(rawInt());
                break;
            case 'u': w.writeUint32(rawInt() & 0xffffffffL); break;
            case 'x': w.writeInt64(rawLong()); break;
            case 't': w.writeUint64(rawLong()); break;
            case 'd': w.writeInt64(rawLong()); break; // the bits as they came (NaN payloads too)
            case 's': w.writeString(rawString()); break;
            case 'o': w.writeObjectPath(rawString()); break;
            case 'g': w.writeSignature(rawSignature()); break;
            case 'v': {
                String inner = rawSignature();
                Signatures.validate(inner, true);
                w.writeVariant(inner);
                copy(inner, 0, w, allowFds, depth + 1);
                break;
            }
            case 'a': {
                int elem = i + 1;
                int elemEnd = Signatures.skipType(sg, elem);
                int arrEnd = arrayStart(Signatures.alignmentOf(sg.charAt(elem)));
                int saved = limit;
                limit = arrEnd;
                w.beginArray(sg.charAt(elem));
                while (p < arrEnd) copy(sg, elem, w, allowFds, depth + 1);
                w.endArray();
                limit = saved;
                arrayEnd(arrEnd);
                return elemEnd;
            }
            case '(': case '{': {
                align(8);
                char close = c == '(' ? ')' : '}';
                if (c == '(') w.beginStruct(); else w.beginDictEntry();
                int j = i + 1;
                while (sg.charAt(j) != close) {
                    j = copy(sg, j, w, allowFds, depth + 1);
                }
                if (c == '(') w.endStruct(); else w.endDictEntry();
                return j + 1;
            }
            default:
                throw new ProtocolException("invalid type code '" + c + "'");
        }
        return i + 1;
    }

    // ---- raw primitives ----

    private void align(int a) throws ProtocolException {
        int np = base + WireFormat.align(p - base, a);
        if (np > limit) throw new ProtocolException("body truncated");
        p = np;
    }

    private void need(long n) throws ProtocolException {
        if (n < 0 || p + n > limit) throw new ProtocolException("body truncated");
    }

    private int rawByte() throws ProtocolException {
        need(1);
        return b.get(p++) & 0xff;
    }

    private boolean rawBoolean() throws ProtocolException {
        int v = rawInt();
        if (v != 0 && v != 1) throw new ProtocolException("invalid boolean " + v);
        return v == 1;
    }

    private short rawShort() throws ProtocolException {
        align(2);
        need(2);
        short v = Bytes.getShort(b, p, order);
        p += 2;
        return v;
    }

    private int rawInt() throws ProtocolException {
        align(4);
        need(4);
        int v = Bytes.getInt(b, p, order);
        p += 4;
        return v;
    }

    private long rawLong() throws ProtocolException {
        align(8);
        need(8);
        long v = Bytes.getLong(b, p, order);
        p += 8;
        return v;
    }

    private String rawString() throws ProtocolException {
        long len = rawInt() & 0xffffffffL;
        need(len + 1);
        int l = (int) len;
        if (b.get(p + l) != 0) throw new ProtocolException("string not NUL-terminated");
        if (!Bytes.isValidUtf8NoNul(b, p, l)) throw new ProtocolException("string is not valid UTF-8");
        String v = Bytes.string(b, p, l);
        p += l + 1;
        return v;
    }

    private void skipString() throws ProtocolException {
        long len = rawInt() & 0xffffffffL;
        need(len + 1);
        p += (int) len + 1;
    }

    private String rawSignature() throws ProtocolException {
        int len = rawByte();
        need(len + 1);
        if (b.get(p + len) != 0) throw new ProtocolException("signature not NUL-terminated");
        Signatures.validate(b, p, len, false);
        String v = Bytes.string(b, p, len);
        p += len + 1;
        return v;
    }

    /** Reads an array length and element padding; returns the absolute end of the array data. */
    private int arrayStart(int elementAlignment) throws ProtocolException {
        long len = rawInt() & 0xffffffffL;
        if (len > WireFormat.MAX_ARRAY) throw new ProtocolException("array too long");
        align(elementAlignment);
        need(len);
        return p + (int) len;
    }

    private void arrayEnd(int arrEnd) throws ProtocolException {
        if (p != arrEnd) throw new ProtocolException("array contents do not match its length");
    }

    /**
     * Decodes (out != null) or skips (out == null) one complete value of type sg[i..];
     * returns the signature index after the type.
     */
    private int decode(String sg, int i, Object[] out, int depth) throws ProtocolException {
        if (depth > WireFormat.MAX_TOTAL_DEPTH) throw new ProtocolException("value nests too deeply");
        char c = sg.charAt(i);
        Object v;
        switch (c) {
            case 'y': v = (byte) rawByte(); break;
            case 'b': v = rawBoolean(); break;
            case 'n': v = rawShort(); break;
            case 'q': v = rawShort() & 0xffff; break;
            case 'i': case 'h': v = rawInt(); break;
            case 'u': v = rawInt() & 0xffffffffL; break;
            case 'x': case 't': v = rawLong(); break;
            case 'd': v = Double.longBitsToDouble(rawLong()); break;
            case 's': case 'o':
                if (out == null) { skipString(); v = null; } else v = rawString();
                break;
            case 'g': v = rawSignature(); break;
            case 'v': {
                String inner = rawSignature();
                Signatures.validate(inner, true);
                Object[] h = out == null ? null : new Object[1];
                decode(inner, 0, h, depth + 1);
                v = h == null ? null : h[0];
                break;
            }
            case 'a': {
                int elem = i + 1;
                int elemEnd = Signatures.skipType(sg, elem);
                char ec = sg.charAt(elem);
                int arrEnd = arrayStart(Signatures.alignmentOf(ec));
                int saved = limit;
                limit = arrEnd;
                if (out == null) {
                    while (p < arrEnd) decode(sg, elem, null, depth + 1);
                    v = null;
                } else if (ec == 'y') {
                    byte[] bytes = new byte[arrEnd - p];
                    b.get(p, bytes, 0, bytes.length);
                    p = arrEnd;
                    v = bytes;
                } else if (ec == '{') {
                    Map<Object, Object> m = new LinkedHashMap<>();
                    Object[] h = new Object[1];
                    while (p < arrEnd) {
                        align(8);
                        int k = decode(sg, elem + 1, h, depth + 2);
                        Object key = h[0];
                        decode(sg, k, h, depth + 2);
                        m.put(key, h[0]);
                    }
                    v = m;
                } else {
                    List<Object> l = new ArrayList<>();
                    Object[] h = new Object[1];
                    while (p < arrEnd) {
                        decode(sg, elem, h, depth + 1);
                        l.add(h[0]);
                    }
                    v = l;
                }
                limit = saved;
                arrayEnd(arrEnd);
                if (out != null) out[0] = v;
                return elemEnd;
            }
            case '(': case '{': {
                align(8);
                char close = c == '(' ? ')' : '}';
                List<Object> fields = out == null ? null : new ArrayList<>();
                Object[] h = out == null ? null : new Object[1];
                int j = i + 1;
                while (sg.charAt(j) != close) {
                    j = decode(sg, j, h, depth + 1);
                    if (fields != null) fields.add(h[0]);
                }
                if (out != null) out[0] = fields.toArray();
                return j + 1;
            }
            default:
                throw new ProtocolException("invalid type code '" + c + "'");
        }
        if (out != null) out[0] = v;
        return i + 1;
    }

    /**
     * For top-level arguments i < max (max ≤ 64): out[i] = the value if the argument is a string
     * ('s') or object path ('o', then isPath[i] = true), else null. Stops once no string-like
     * argument can follow.
     */
    public static void readMatchArgs(ByteBuffer buf, int bodyOffset, int bodyLength, ByteOrder order, String signature,
                                     String[] out, boolean[] isPath, int max) throws ProtocolException {
        if (max > 64) throw new IllegalArgumentException("max must be <= 64");
        for (int i = 0; i < max; i++) {
            out[i] = null;
            isPath[i] = false;
        }
        if (signature == null || signature.isEmpty()) return;
        BodyReader r = new BodyReader(buf, bodyOffset, bodyLength, order, signature);
        for (int i = 0; i < max && r.hasNext(); i++) {
            if (!r.stringLikeRemains()) return;
            char c = signature.charAt(r.s);
            if (c == 's') {
                out[i] = r.readString();
            } else if (c == 'o') {
                out[i] = r.readObjectPath();
                isPath[i] = true;
            } else {
                r.skip();
            }
        }
    }

    /** Convenience over a wrapped message. */
    public static void readMatchArgs(MessageHeader h, String[] out, boolean[] isPath, int max) throws ProtocolException {
        readMatchArgs(h.buffer(), h.bodyOffset(), (int) h.bodyLength(), h.byteOrder(), h.signature(), out, isPath, max);
    }

    private boolean stringLikeRemains() {
        // A top-level 's'/'o' must appear literally in the remaining signature.
        for (int i = s; i < sig.length(); i++) {
            char c = sig.charAt(i);
            if (c == 's' || c == 'o') return true;
        }
        return false;
    }
}
