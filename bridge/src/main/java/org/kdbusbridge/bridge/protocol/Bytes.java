// Invariants: stateless; every read is an absolute get that leaves the buffer's position,
// limit and ByteOrder setting untouched; the byte order used is always the one passed in.
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Endian-explicit absolute reads and small text checks shared by the package. */
final class Bytes {
    private Bytes() {}

    static ByteOrder orderOf(byte endianByte) throws ProtocolException {
        if (endianByte == WireFormat.LITTLE_ENDIAN) return ByteOrder.LITTLE_ENDIAN;
        if (endianByte == WireFormat.BIG_ENDIAN) return ByteOrder.BIG_ENDIAN;
        throw new ProtocolException("invalid endianness byte 0x" + Integer.toHexString(endianByte & 0xff));
    }

    static short getShort(ByteBuffer b, int off, ByteOrder o) {
        short v = b.getShort(off);
        return b.order() == o ? v : Short.reverseBytes(v);
    }

    static int getInt(ByteBuffer b, int off, ByteOrder o) {
        int v = b.getInt(off);
        return b.order() == o ? v : Integer.reverseBytes(v);
    }

    static long getUint32(ByteBuffer b, int off, ByteOrder o) {
        return getInt(b, off, o) & 0xffffffffL;
    }

    static long getLong(ByteBuffer b, int off, ByteOrder o) {
        long v = b.getLong(off);
        return b.order() == o ? v : Long.reverseBytes(v);
    }

    static void putInt(byte[] a, int off, int v, ByteOrder o) {
        if (o == ByteOrder.LITTLE_ENDIAN) {
            a[off] = (byte) v; a[off + 1] = (byte) (v >>> 8); a[off + 2] = (byte) (v >>> 16); a[off + 3] = (byte) (v >>> 24);
        } else {
            a[off] = (byte) (v >>> 24); a[off + 1] = (byte) (v >>> 16); a[off + 2] = (byte) (v >>> 8); a[off + 3] = (byte) v;
        }
    }

    /** Decodes bytes already known to be valid UTF-8 (names are ASCII; body strings were validated). */
    static String string(ByteBuffer b, int off, int len) {
        if (b.hasArray()) { // decode in place: one copy (the String's), not two
            return new String(b.array(), b.arrayOffset() + off, len, java.nio.charset.StandardCharsets.UTF_8);
        }
        byte[] tmp = new byte[len];
        b.get(off, tmp, 0, len);
        return new String(tmp, java.nio.charset.StandardCharsets.UTF_8);
    }

    /** True if [off, off+len) is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF) without NUL. */
    static boolean isValidUtf8NoNul(ByteBuffer b, int off, int len) {
        int i = off, end = off + len;
        while (i < end) {
            int c = b.get(i) & 0xff;
            if (c < 0x80) {
                if (c == 0) return false;
                i++;
                continue;
            }
            int need, min, cp;
            if (c >= 0xc2 && c <= 0xdf) { need = 1; min = 0x80; cp = c & 0x1f; }
            else if (c >= 0xe0 && c <= 0xef) { need = 2; min = 0x800; cp = c & 0x0f; }
            else if (c >= 0xf0 && c <= 0xf4) { need = 3; min = 0x10000; cp = c & 0x07; }
            else return false;
            if (i + need >= end) return false; // truncated sequence
            for (int k = 1; k <= need; k++) {
                int cc = b.get(i + k) & 0xff;
                if ((cc & 0xc0) != 0x80) return false;
                cp = (cp << 6) | (cc & 0x3f);
            }
            if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
            i += need + 1;
        }
        return true;
    }

    /** True if the region equals the ASCII string s exactly (no allocation). */
    static boolean asciiEquals(ByteBuffer b, int off, int len, CharSequence s) {
        if (s.length() != len) return false;
        for (int i = 0; i < len; i++) {
            if ((b.get(off + i) & 0xff) != s.charAt(i)) return false;
        }
        return true;
    }
}
