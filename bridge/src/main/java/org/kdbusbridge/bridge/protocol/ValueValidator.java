// Invariants: reusable, single-threaded; validates marshalled values against an already-validated
// signature held in the same buffer; never reads outside [.., limit); alignment is computed
// relative to `base` (the message start); allocates nothing.
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Validates marshalled D-Bus values (header field variants and message bodies). */
final class ValueValidator {
    private ByteBuffer b;
    private ByteOrder order;
    private int base;
    private int limit;
    /** Current data position (absolute). */
    int p;

    void reset(ByteBuffer b, ByteOrder order, int base, int pos, int limit) {
        this.b = b;
        this.order = order;
        this.base = base;
        this.p = pos;
        this.limit = limit;
    }

    void release() {
        b = null; // do not pin the connection's buffer
    }

    /** Validates all values for signature [sigOff, sigEnd), advancing p. */
    void validateSequence(int sigOff, int sigEnd, int totalDepth) throws ProtocolException {
        int s = sigOff;
        while (s < sigEnd) s = validateOne(s, totalDepth);
    }

    private void need(int n) throws ProtocolException {
        if (n < 0 || (long) p + n > limit) throw new ProtocolException("value truncated: needs " + n + " bytes at offset " + (p - base));
    }

    private void alignPad(int a) throws ProtocolException {
        int np = base + WireFormat.align(p - base, a);
        if (np > limit) throw new ProtocolException("value truncated in alignment padding");
        for (int i = p; i < np; i++) {
            if (b.get(i) != 0) throw new ProtocolException("non-zero alignment padding at offset " + (i - base));
        }
        p = np;
    }

    /** Validates one complete type at signature position s; returns the signature position after it. */
    int validateOne(int s, int total) throws ProtocolException {
        if (total > WireFormat.MAX_TOTAL_DEPTH) throw new ProtocolException("value nests containers deeper than 64");
        int c = b.get(s);
        switch (c) {
            case 'y':
                need(1);
                p++;
                return s + 1;
            case 'b': {
                alignPad(4);
                need(4);
                int v = Bytes.getInt(b, p, order);
                if (v != 0 && v != 1) throw new ProtocolException("boolean value " + (v & 0xffffffffL) + " is not 0 or 1");
                p += 4;
                return s + 1;
            }
            case 'n': case 'q':
                alignPad(2);
                need(2);
                p += 2;
                return s + 1;
            case 'i': case 'u':
            case 'h': // an index into the message's fds, not checked against UNIX_FDS: libdbus
                      // checks only alignment too, and leaves a bad index to the receiver
                alignPad(4);
                need(4);
                p += 4;
                return s + 1;
            case 'x': case 't': case 'd':
                alignPad(8);
                need(8);
                p += 8;
                return s + 1;
            case 's': case 'o': {
                alignPad(4);
                need(4);
                long len = Bytes.getUint32(b, p, order);
                if (len > limit - p) throw new ProtocolException("string length " + len + " exceeds remaining data");
                p += 4;
                need((int) len + 1);
                int so = p;
                if (b.get(so + (int) len) != 0) throw new ProtocolException("string not NUL-terminated");
                if (c == 's') {
                    if (!Bytes.isValidUtf8NoNul(b, so, (int) len)) throw new ProtocolException("string is not valid UTF-8 or has an embedded NUL");
                } else if (!Names.isValidObjectPath(b, so, (int) len)) {
                    throw new ProtocolException("invalid object path value");
                }
                p += (int) len + 1;
                return s + 1;
            }
            case 'g': {
                need(1);
                int len = b.get(p) & 0xff;
                need(len + 2);
                if (b.get(p + 1 + len) != 0) throw new ProtocolException("signature value not NUL-terminated");
                Signatures.validate(b, p + 1, len, false);
                p += len + 2;
                return s + 1;
            }
            case 'v': {
                need(1);
                int len = b.get(p) & 0xff;
                need(len + 2);
                int so = p + 1;
                if (b.get(so + len) != 0) throw new ProtocolException("variant signature not NUL-terminated");
                Signatures.validate(b, so, len, true);
                p += len + 2;
                validateOne(so, total + 1);
                return s + 1;
            }
            case 'a': {
                alignPad(4);
                need(4);
                long len = Bytes.getUint32(b, p, order);
                if (len > WireFormat.MAX_ARRAY) throw new ProtocolException("array length " + len + " exceeds 2^26");
                p += 4;
                int elem = s + 1;
                alignPad(Signatures.alignmentOf(b.get(elem)));
                need((int) len);
                int arrEnd = p + (int) len;
                int elemEnd = Signatures.skipType(b, elem);
                int fixed = fixedSize(b.get(elem));
                if (fixed > 0) {
                    // Arrays of fixed-size numbers have no invalid values: only the length must
                    // be a whole number of elements. (A 1 MiB `ay` is not walked byte by byte.)
                    if (len % fixed != 0) {
                        throw new ProtocolException("array length " + len + " is not a multiple of its element size " + fixed);
                    }
                    p = arrEnd;
                    return elemEnd;
                }
                int savedLimit = limit;
                limit = arrEnd; // elements may not run past the declared length
                while (p < arrEnd) validateOne(elem, total + 1);
                limit = savedLimit;
                if (p != arrEnd) throw new ProtocolException("array contents do not match its length");
                return elemEnd;
            }
            case '(': {
                alignPad(8);
                s++;
                while (b.get(s) != ')') s = validateOne(s, total + 1);
                return s + 1;
            }
            case '{': {
                alignPad(8);
                s = validateOne(s + 1, total + 1);
                s = validateOne(s, total + 1);
                return s + 1; // the '}' (signature already validated)
            }
            default:
                throw new ProtocolException("invalid type code in signature"); // unreachable for validated signatures
        }
    }

    /**
     * The size of a fixed-size type whose every bit pattern is valid, or 0. Booleans (0/1 only)
     * are left to the element-wise check; unix fd indices are any value (see 'h' above).
     */
    private static int fixedSize(byte type) {
        return switch (type) {
            case 'y' -> 1;
            case 'n', 'q' -> 2;
            case 'i', 'u', 'h' -> 4;
            case 'x', 't', 'd' -> 8;
            default -> 0;
        };
    }
}
