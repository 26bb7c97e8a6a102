// Invariants: find() reads the header fields array only (never writes it) and allocates nothing
// on the path of the fields the bus writes (basic types, arrays); after a find() that returned
// true, start/next/prevEnd/end describe the one element with code 107, and strippedLength() is
// the array's length without it, with every other element at its old offset modulo 8.
package org.kdbusbridge.bridge.client.dbusjava;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.kdbusbridge.bridge.metadata.MessageMetadata;
import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.ProtocolException;

/**
 * Finds AttachMetadata's header field (code 107) in a message's header fields array and takes
 * it out, so a client that keeps header fields in a table of the specification's codes only
 * (dbus-java) can read the rest. Offsets are into the array's content, which starts 8-aligned
 * in the message (offset 16), so alignment modulo 8 is the message's.
 */
final class FieldStrip {
    /** The element's first byte (its code), 8-aligned. */
    int start;
    /** The byte after the element's value. */
    int end;
    /** The next element's start, or the array's length when the element is the last. */
    int next;
    /** The byte after the previous element's value, 0 when the element is the first. */
    int prevEnd;
    private int length;

    /**
     * Walks the {@code a(yv)} array content {@code f[0, length)}; true if it holds field 107
     * (the first one: the bus writes one, after dropping any a client sent).
     *
     * @throws ProtocolException if an element does not fit the array or its signature is bad
     */
    boolean find(byte[] f, int length, boolean big) throws ProtocolException {
        this.length = length;
        int p = 0;
        int lastEnd = 0;
        while (p < length) {
            if (p + 3 > length) {
                throw new ProtocolException("header field cut at offset " + p);
            }
            int code = f[p] & 0xff;
            int sigLen = f[p + 1] & 0xff;
            int sigStart = p + 2;
            int sigEnd = sigStart + sigLen;
            if (sigLen == 0 || sigEnd >= length || f[sigEnd] != 0) {
                throw new ProtocolException("bad variant signature in header field " + code);
            }
            int e = skipValue(f, sigEnd + 1, length, big, f, sigStart, sigEnd);
            if (code == MessageMetadata.FIELD_CODE) {
                start = p;
                end = e;
                prevEnd = lastEnd;
                next = Math.min(align8(e), length);
                return true;
            }
            lastEnd = e;
            p = align8(e);
        }
        return false;
    }

    /**
     * The header as dbus-java's {@code MessageFactory.createMessage} takes it, from the array
     * content {@code f[0, length)}, without field 107 if {@link #find} found it: the array
     * length, 4 bytes of padding, the array at 8 (its message offset 16 minus 8, so alignment is
     * kept), zeros up to a multiple of 8.
     */
    byte[] dbusJavaHeader(byte[] f, int length, boolean big, boolean found) {
        int n = found ? strippedLength() : length;
        byte[] header = new byte[8 + align8(n)];
        putInt(header, 0, n, big);
        if (found) {
            copyStripped(f, header, 8);
        } else {
            System.arraycopy(f, 0, header, 8, n);
        }
        return header;
    }

    /** The array's length without the found element. */
    int strippedLength() {
        // A last element leaves the array ending where the one before it ended (no padding).
        return next >= length ? prevEnd : length - (next - start);
    }

    /**
     * Copies the array without the found element into {@code out} at {@code at}; the elements
     * after it move by a multiple of 8, so their alignment stays right.
     */
    void copyStripped(byte[] f, byte[] out, int at) {
        if (next >= length) {
            System.arraycopy(f, 0, out, at, prevEnd);
        } else {
            System.arraycopy(f, 0, out, at, start);
            System.arraycopy(f, next, out, at + start, length - next);
        }
    }

    /**
     * The found element alone as a message MessageMetadata.parse reads: a 16-byte fixed header
     * (byte order, a fields length) and the element at offset 16, so its alignment is kept.
     */
    byte[] elementAsMessage(byte[] f, boolean big) {
        int n = end - start;
        byte[] m = new byte[16 + n];
        m[0] = big ? (byte) 'B' : (byte) 'l';
        m[3] = 1;
        putInt(m, 12, n, big);
        System.arraycopy(f, start, m, 16, n);
        return m;
    }

    static int align8(int p) {
        return (p + 7) & ~7;
    }

    static int getInt(byte[] b, int p, boolean big) {
        return big
                ? (b[p] & 0xff) << 24 | (b[p + 1] & 0xff) << 16 | (b[p + 2] & 0xff) << 8 | (b[p + 3] & 0xff)
                : (b[p + 3] & 0xff) << 24 | (b[p + 2] & 0xff) << 16 | (b[p + 1] & 0xff) << 8 | (b[p] & 0xff);
    }

    static void putInt(byte[] b, int p, int v, boolean big) {
        for (int i = 0; i < 4; i++) {
            b[p + (big ? 3 - i : i)] = (byte) (v >>> (8 * i));
        }
    }

    /**
     * The byte after the value of the single complete type {@code sig[s, e)} at {@code p}: basic
     * types and arrays directly, anything else (a struct or a variant as a field's value, which
     * no field of the specification has) through the project's body reader.
     */
    private static int skipValue(byte[] f, int p, int limit, boolean big, byte[] sig, int s, int e)
            throws ProtocolException {
        char t = (char) sig[s];
        if (e - s == 1 || t == 'a') {
            int q;
            switch (t) {
                case 'y':
                    q = p + 1;
                    break;
                case 'n': case 'q':
                    q = align(p, 2) + 2;
                    break;
                case 'b': case 'i': case 'u': case 'h':
                    q = align(p, 4) + 4;
                    break;
                case 'x': case 't': case 'd':
                    q = align(p, 8) + 8;
                    break;
                case 's': case 'o': {
                    int at = align(p, 4);
                    check(at + 4, limit);
                    long n = getInt(f, at, big) & 0xffffffffL;
                    q = (int) Math.min((long) at + 4 + n + 1, (long) limit + 1);
                    break;
                }
                case 'g': {
                    check(p + 1, limit);
                    q = p + 1 + (f[p] & 0xff) + 1;
                    break;
                }
                case 'a': {
                    int at = align(p, 4);
                    check(at + 4, limit);
                    long n = getInt(f, at, big) & 0xffffffffL;
                    int first = align(at + 4, alignmentOf((char) sig[s + 1]));
                    q = (int) Math.min(first + n, (long) limit + 1);
                    break;
                }
                default:
                    return skipByReader(f, p, limit, big, sig, s, e);
            }
            check(q, limit);
            return q;
        }
        return skipByReader(f, p, limit, big, sig, s, e);
    }

    private static int skipByReader(byte[] f, int p, int limit, boolean big, byte[] sig, int s, int e)
            throws ProtocolException {
        // The reader aligns relative to its base: an 8-aligned base below p, then as many bytes
        // skipped as p lies past it, keeps the array's own alignment.
        String type = new String(sig, s, e - s, java.nio.charset.StandardCharsets.US_ASCII);
        int base = p & ~7;
        BodyReader at = new BodyReader(ByteBuffer.wrap(f, 0, limit), base, limit - base,
                big ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN, pad(p - base) + type);
        for (int i = 0; i < p - base; i++) {
            at.skip();
        }
        at.skip();
        return at.position();
    }

    private static String pad(int n) {
        return "y".repeat(n);
    }

    private static int alignmentOf(char c) {
        switch (c) {
            case 'y': case 'g': case 'v':
                return 1;
            case 'n': case 'q':
                return 2;
            case 'x': case 't': case 'd': case '(': case '{':
                return 8;
            default:
                return 4;
        }
    }

    private static int align(int p, int a) {
        return (p + a - 1) & -a;
    }

    private static void check(int q, int limit) throws ProtocolException {
        if (q > limit) {
            throw new ProtocolException("header field passes the fields array's end");
        }
    }
}
