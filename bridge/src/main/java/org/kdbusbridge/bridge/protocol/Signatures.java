// Invariants: stateless; a signature accepted here contains only complete types built from the
// wire type codes, is at most 255 bytes, nests at most 32 arrays and 32 structs/dict entries,
// has no empty structs, and dict entries appear only as array elements with a basic key.
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** D-Bus type-signature validation and walking. */
public final class Signatures {
    private Signatures() {}

    /** True for the basic (non-container) type codes, which may be dict keys. */
    public static boolean isBasic(int c) {
        switch (c) {
            case 'y': case 'b': case 'n': case 'q': case 'i': case 'u': case 'x': case 't':
            case 'd': case 'h': case 's': case 'o': case 'g':
                return true;
            default:
                return false;
        }
    }

    /** Alignment of a value whose type starts with code c. */
    public static int alignmentOf(int c) {
        switch (c) {
            case 'y': case 'g': case 'v': return 1;
            case 'n': case 'q': return 2;
            case 'x': case 't': case 'd': case '(': case '{': return 8;
            default: return 4; // b i u h s o a
        }
    }

    /**
     * Validates the signature bytes [off, off+len). If single, it must be exactly one complete
     * type (variant signatures); otherwise zero or more complete types (body signatures).
     */
    public static void validate(ByteBuffer b, int off, int len, boolean single) throws ProtocolException {
        if (len > WireFormat.MAX_SIGNATURE_LENGTH) throw new ProtocolException("signature longer than 255");
        int end = off + len;
        if (single && len == 0) throw new ProtocolException("variant signature is empty");
        int i = off;
        int count = 0;
        while (i < end) {
            i = parseType(b, i, end, 0, 0);
            count++;
        }
        if (single && count != 1) throw new ProtocolException("variant signature is not a single complete type");
    }

    public static void validate(String sig, boolean single) throws ProtocolException {
        ByteBuffer b = ascii(sig);
        validate(b, 0, b.capacity(), single);
    }

    public static boolean isValid(String sig, boolean single) {
        try {
            validate(sig, single);
            return true;
        } catch (ProtocolException e) {
            return false;
        }
    }

    private static ByteBuffer ascii(String s) throws ProtocolException {
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) > 0x7e) throw new ProtocolException("signature has a non-ASCII character");
        }
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.US_ASCII));
    }

    private static int parseType(ByteBuffer b, int i, int end, int arrays, int structs) throws ProtocolException {
        if (i >= end) throw new ProtocolException("signature ends inside a container");
        int c = b.get(i) & 0xff;
        if (isBasic(c) || c == 'v') return i + 1;
        switch (c) {
            case 'a': {
                if (arrays + 1 > WireFormat.MAX_ARRAY_DEPTH) throw new ProtocolException("signature nests arrays deeper than 32");
                i++;
                if (i < end && b.get(i) == '{') {
                    if (structs + 1 > WireFormat.MAX_STRUCT_DEPTH) throw new ProtocolException("signature nests structs deeper than 32");
                    i++;
                    if (i >= end || !isBasic(b.get(i) & 0xff)) throw new ProtocolException("dict entry key is not a basic type");
                    i++;
                    i = parseType(b, i, end, arrays + 1, structs + 1);
                    if (i >= end || b.get(i) != '}') throw new ProtocolException("dict entry must have exactly two types");
                    return i + 1;
                }
                return parseType(b, i, end, arrays + 1, structs);
            }
            case '(': {
                if (structs + 1 > WireFormat.MAX_STRUCT_DEPTH) throw new ProtocolException("signature nests structs deeper than 32");
                i++;
                if (i < end && b.get(i) == ')') throw new ProtocolException("empty struct in signature");
                while (i < end && b.get(i) != ')') i = parseType(b, i, end, arrays, structs + 1);
                if (i >= end) throw new ProtocolException("unterminated struct in signature");
                return i + 1;
            }
            case '{':
                throw new ProtocolException("dict entry outside an array in signature");
            case ')': case '}':
                throw new ProtocolException("unbalanced '" + (char) c + "' in signature");
            default:
                throw new ProtocolException("invalid type code 0x" + Integer.toHexString(c) + " in signature");
        }
    }

    /** End (exclusive) of the complete type starting at i in an already-validated signature. */
    static int skipType(ByteBuffer b, int i) {
        int depth = 0;
        int c;
        do {
            c = b.get(i++);
            if (c == '(' || c == '{') depth++;
            else if (c == ')' || c == '}') depth--;
        } while (depth > 0 || c == 'a'); // 'a' is a prefix: continue to its element type
        return i;
    }

    /** End (exclusive) of the complete type starting at i in an already-validated signature. */
    static int skipType(CharSequence s, int i) {
        int depth = 0;
        char c;
        do {
            c = s.charAt(i++);
            if (c == '(' || c == '{') depth++;
            else if (c == ')' || c == '}') depth--;
        } while (depth > 0 || c == 'a');
        return i;
    }
}
