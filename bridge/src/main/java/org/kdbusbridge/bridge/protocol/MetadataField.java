// Invariants: the field is one header-field struct (y code, v a{sv}) in the message's own byte
// order; its bytes are laid out as if they start 8-aligned in the message (every header field
// struct does), so alignment is relative to the encoder's index 0. splice() keeps the fixed
// header (but the fields length), every existing field byte-for-byte and the body unchanged,
// appends the field after the last one, and pads the body to 8 again.
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Our vendor header field (AttachMetadata, docs/extensions.md): code {@link #CODE}, value
 * {@code a{sv}}. {@link Encoder} builds the field; {@link #splice} adds it to one message.
 * Clients that do not know the code skip it, as the specification requires of unknown fields.
 */
public final class MetadataField {
    private MetadataField() { }

    /**
     * The header field code: 'k'. The specification uses 1..9 (a containers proposal 10); below
     * 128 so a client keeping codes in a signed byte sees a positive number.
     */
    public static final int CODE = 107;

    /**
     * The signature of the field's text form: one string of {@code KEY=VALUE} entries separated
     * by single spaces, all printable ASCII (docs/extensions.md): what sd-bus's skipper for
     * unknown fields can step over, unlike a dictionary.
     */
    public static final String TEXT_SIGNATURE = "s";

    private static final char[] HEX = "0123456789ABCDEF".toCharArray();

    /** The message's length with the field added; null if it would pass the 128 MiB maximum. */
    private static final long MAX_MESSAGE = 1L << 27;

    /**
     * The whole message in {@code msg} (position 0, limit = its length, a valid frame) with the
     * encoder's field appended to its header fields; null if the result would be too large.
     */
    public static byte[] splice(ByteBuffer msg, Encoder field) {
        return splice(msg, field, -1, 0);
    }

    /**
     * As {@link #splice(ByteBuffer, Encoder)}; with {@code unixFdsAt} (the offset of the
     * message's UNIX_FDS value, or -1) the copy's UNIX_FDS says {@code unixFds} instead (a pidfd
     * added behind the message's own fds; without a UNIX_FDS field the encoder adds one).
     */
    public static byte[] splice(ByteBuffer msg, Encoder field, int unixFdsAt, long unixFds) {
        ByteOrder order = msg.get(0) == WireFormat.BIG_ENDIAN ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        int fieldsLen = Bytes.getInt(msg, 12, order);
        long bodyLen = Bytes.getUint32(msg, 4, order);
        int fieldsEnd = WireFormat.FIXED_HEADER_SIZE + fieldsLen;
        int oldBody = WireFormat.align(fieldsEnd, 8);
        int fieldStart = oldBody; // structs in the array start 8-aligned
        int newFieldsEnd = fieldStart + field.size();
        int newBody = WireFormat.align(newFieldsEnd, 8);
        long total = newBody + bodyLen;
        if (!fits(newFieldsEnd - WireFormat.FIXED_HEADER_SIZE, total) || field.order != order) {
            return null;
        }
        byte[] out = new byte[(int) total]; // zeroed: every padding byte is already 0
        msg.get(0, out, 0, fieldsEnd);
        System.arraycopy(field.a, 0, out, fieldStart, field.size());
        msg.get(oldBody, out, newBody, (int) bodyLen);
        Bytes.putInt(out, 12, newFieldsEnd - WireFormat.FIXED_HEADER_SIZE, order);
        if (unixFdsAt >= 0) {
            Bytes.putInt(out, unixFdsAt, (int) unixFds, order); // before the spliced part: same offset
        }
        return out;
    }

    /** The header-field array's maximum length: the specification's 64 MiB array cap. */
    private static final long MAX_ARRAY = 1L << 26;

    /**
     * Whether a message whose header-field array becomes {@code fieldsLen} bytes and whose whole
     * length becomes {@code total} is still valid: the array under the 64 MiB array cap, the
     * message within the 128 MiB maximum (else it is sent without the field).
     */
    static boolean fits(long fieldsLen, long total) {
        return fieldsLen <= MAX_ARRAY && total <= MAX_MESSAGE;
    }

    /** The byte order of the message in {@code msg}. */
    public static ByteOrder orderOf(ByteBuffer msg) {
        return msg.get(0) == WireFormat.BIG_ENDIAN ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
    }

    /**
     * Builds the field: {@link #begin}, one {@code put} per dictionary entry, {@link #end}.
     * Reusable (one per renderer); single-threaded.
     */
    public static final class Encoder {
        private byte[] a = new byte[256];
        private int pos;
        private ByteOrder order = ByteOrder.LITTLE_ENDIAN;
        private int lenSlot;
        private int firstEntry;
        /** The text form ({@link #TEXT_SIGNATURE}): entries gather in {@code t}, written by end(). */
        private boolean text;
        private byte[] t = new byte[128];
        private int tlen;

        /** Starts a field in {@code byteOrder}: code, signature "a{sv}", the array's length slot. */
        public Encoder begin(ByteOrder byteOrder) {
            return begin(byteOrder, false, -1);
        }

        /**
         * Starts a field in {@code byteOrder}, as {@code a{sv}} or ({@code asText}) as one string
         * (docs/extensions.md, "The text form"); {@code addUnixFds} >= 0: a UNIX_FDS field with
         * that value goes first (the message had none and now carries a pidfd).
         */
        public Encoder begin(ByteOrder byteOrder, boolean asText, long addUnixFds) {
            order = byteOrder;
            pos = 0; // every byte up to pos is written again, padding included (the array is reused)
            text = asText;
            tlen = 0;
            if (addUnixFds >= 0) {
                a[pos++] = (byte) WireFormat.UNIX_FDS;
                signature("u");
                u32((int) addUnixFds); // 8 bytes: our field starts 8-aligned after it
            }
            a[pos++] = (byte) CODE;
            if (asText) {
                signature(TEXT_SIGNATURE);
                return this;
            }
            signature("a{sv}");
            pad(4);
            lenSlot = pos;
            ensure(4);
            pos += 4; // the length, written by end()
            pad(8); // dict entries are 8-aligned; the array length does not count this padding
            firstEntry = pos;
            return this;
        }

        /** Closes the array (writes its length), or writes the gathered text. */
        public Encoder end() {
            if (text) {
                pad(4);
                u32(tlen);
                put(t, 0, tlen);
                ensure(1);
                a[pos++] = 0;
                return this;
            }
            Bytes.putInt(a, lenSlot, pos - firstEntry, order);
            return this;
        }

        /** An {@code h} entry: an index into the message's unix fds. */
        public Encoder putFd(String key, int index) {
            if (text) {
                textKey(key);
                textNumber(index);
                return this;
            }
            entry(key, "h");
            u32(index);
            return this;
        }

        public int size() {
            return pos;
        }

        /** The field's bytes (a copy), for tests. */
        public byte[] toByteArray() {
            return Arrays.copyOf(a, pos);
        }

        public Encoder putUint32(String key, long v) {
            if (text) {
                textKey(key);
                textNumber(v & 0xffffffffL);
                return this;
            }
            entry(key, "u");
            u32((int) v);
            return this;
        }

        public Encoder putUint64(String key, long v) {
            if (text) {
                textKey(key);
                textAscii(Long.toUnsignedString(v));
                return this;
            }
            entry(key, "t");
            u64(v);
            return this;
        }

        public Encoder putBoolean(String key, boolean v) {
            if (text) {
                textKey(key);
                textAscii(v ? "true" : "false");
                return this;
            }
            entry(key, "b");
            u32(v ? 1 : 0);
            return this;
        }

        /** A (tt) struct. */
        public Encoder putPair(String key, long first, long second) {
            if (text) {
                textKey(key);
                textAscii(Long.toUnsignedString(first));
                textByte(',');
                textAscii(Long.toUnsignedString(second));
                return this;
            }
            entry(key, "(tt)");
            pad(8);
            u64(first);
            u64(second);
            return this;
        }

        /** A string; bytes that are not valid UTF-8 (or hold a NUL) go as {@code ay} instead. */
        public Encoder putText(String key, byte[] utf8) {
            if (text) {
                textKey(key);
                textEscaped(utf8);
                return this;
            }
            if (!validUtf8NoNul(utf8)) {
                return putBytes(key, utf8);
            }
            entry(key, "s");
            string(utf8);
            return this;
        }

        public Encoder putBytes(String key, byte[] v) {
            if (text) {
                textKey(key);
                textEscaped(v);
                return this;
            }
            entry(key, "ay");
            pad(4);
            u32(v.length);
            put(v, 0, v.length);
            return this;
        }

        public Encoder putStrings(String key, String[] v) {
            if (text) {
                textKey(key);
                for (int i = 0; i < v.length; i++) {
                    if (i > 0) {
                        textByte(',');
                    }
                    textEscaped(v[i].getBytes(StandardCharsets.UTF_8));
                }
                return this;
            }
            entry(key, "as");
            pad(4);
            int slot = pos;
            ensure(4);
            pos += 4; // the length, written below
            int start = pos;
            for (String s : v) {
                string(s.getBytes(StandardCharsets.UTF_8));
            }
            Bytes.putInt(a, slot, pos - start, order);
            return this;
        }

        public Encoder putUint32s(String key, long[] v) {
            if (text) {
                textKey(key);
                for (int i = 0; i < v.length; i++) {
                    if (i > 0) {
                        textByte(',');
                    }
                    textNumber(v[i] & 0xffffffffL);
                }
                return this;
            }
            entry(key, "au");
            pad(4);
            u32(4 * v.length);
            for (long x : v) {
                u32((int) x);
            }
            return this;
        }

        /** The text form: a space before every entry but the first, then KEY=. */
        private void textKey(String key) {
            if (tlen > 0) {
                textByte(' ');
            }
            textAscii(key);
            textByte('=');
        }

        private void textAscii(String s) {
            for (int i = 0; i < s.length(); i++) {
                textByte(s.charAt(i));
            }
        }

        private void textNumber(long v) {
            textAscii(Long.toString(v));
        }

        /**
         * Bytes 0x21 to 0x7E (printable ASCII without the space) as is, except {@code %}, {@code ,}
         * and {@code =}; those three and every other byte (space, controls, DEL, non-ASCII) as %XX
         * (upper-case hex).
         */
        private void textEscaped(byte[] b) {
            for (byte x : b) {
                int c = x & 0xff;
                if (c > 0x20 && c < 0x7f && c != '%' && c != ',' && c != '=') {
                    textByte(c);
                } else {
                    textByte('%');
                    textByte(HEX[c >>> 4]);
                    textByte(HEX[c & 15]);
                }
            }
        }

        private void textByte(int c) {
            if (tlen == t.length) {
                t = Arrays.copyOf(t, t.length * 2);
            }
            t[tlen++] = (byte) c;
        }

        /** A dict entry's key (ASCII, written without a byte[] per key) and the value's signature. */
        private void entry(String key, String sig) {
            pad(8);
            u32(key.length());
            ensure(key.length() + 1);
            for (int i = 0; i < key.length(); i++) {
                a[pos++] = (byte) key.charAt(i);
            }
            a[pos++] = 0;
            signature(sig);
        }

        private void signature(String sig) {
            ensure(sig.length() + 2);
            a[pos++] = (byte) sig.length();
            for (int i = 0; i < sig.length(); i++) {
                a[pos++] = (byte) sig.charAt(i);
            }
            a[pos++] = 0;
        }

        private void string(byte[] b) {
            pad(4);
            u32(b.length);
            put(b, 0, b.length);
            ensure(1);
            a[pos++] = 0;
        }

        private void u32(int v) {
            pad(4);
            ensure(4);
            Bytes.putInt(a, pos, v, order);
            pos += 4;
        }

        private void u64(long v) {
            pad(8);
            ensure(8);
            if (order == ByteOrder.LITTLE_ENDIAN) {
                Bytes.putInt(a, pos, (int) v, order);
                Bytes.putInt(a, pos + 4, (int) (v >>> 32), order);
            } else {
                Bytes.putInt(a, pos, (int) (v >>> 32), order);
                Bytes.putInt(a, pos + 4, (int) v, order);
            }
            pos += 8;
        }

        private void put(byte[] b, int off, int len) {
            ensure(len);
            System.arraycopy(b, off, a, pos, len);
            pos += len;
        }

        private void pad(int alignment) {
            int p = WireFormat.align(pos, alignment);
            ensure(p - pos);
            while (pos < p) {
                a[pos++] = 0;
            }
        }

        private void ensure(int n) {
            if (pos + n > a.length) {
                a = Arrays.copyOf(a, Math.max(a.length * 2, pos + n));
            }
        }

        private static boolean validUtf8NoNul(byte[] b) {
            return Bytes.isValidUtf8NoNul(ByteBuffer.wrap(b), 0, b.length);
        }
    }
}
