// Invariants: little-endian; alignment is relative to index 0 of the output (which must land
// 8-aligned in the message, as bodies and whole messages do); container begin/end calls must
// nest correctly, checked at endArray/endStruct/endDictEntry/toByteArray.
package org.kdbusbridge.bridge.protocol;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** Growable encoder for bus-originated bodies (and headers) in little-endian D-Bus format. */
public final class BodyWriter {
    private byte[] a;
    private int pos;
    /**
     * Container stack: for arrays, the index of the length slot; for structs/dict entries, -1.
     * Allocated by the first container: most driver bodies are one string or number.
     */
    private int[] lenSlot = NO_INTS;
    private int[] start = NO_INTS;
    private char[] kind = NO_CHARS;
    private int depth;
    private static final int[] NO_INTS = new int[0];
    private static final char[] NO_CHARS = new char[0];

    public BodyWriter() {
        this(64);
    }

    public BodyWriter(int initialCapacity) {
        a = new byte[Math.max(16, initialCapacity)];
    }

    private void ensure(int n) {
        if (pos + n > a.length) a = Arrays.copyOf(a, Math.max(a.length * 2, pos + n));
    }

    /** Writes zero padding up to the given alignment (1, 2, 4 or 8). */
    public BodyWriter padTo(int alignment) {
        int np = WireFormat.align(pos, alignment);
        ensure(np - pos);
        while (pos < np) a[pos++] = 0; // may be re-used space after reset
        return this;
    }

    public BodyWriter writeRaw(byte[] bytes) {
        return writeRaw(bytes, 0, bytes.length);
    }

    public BodyWriter writeRaw(byte[] bytes, int off, int len) {
        ensure(len);
        System.arraycopy(bytes, off, a, pos, len);
        pos += len;
        return this;
    }

    public BodyWriter writeByte(int v) {
        ensure(1);
        a[pos++] = (byte) v;
        return this;
    }

    public BodyWriter writeBoolean(boolean v) {
        return writeUint32(v ? 1 : 0);
    }

    public BodyWriter writeInt16(int v) {
        padTo(2);
        ensure(2);
        a[pos++] = (byte) v;
        a[pos++] = (byte) (v >>> 8);
        return this;
    }

    public BodyWriter writeUint16(int v) {
        return writeInt16(v);
    }

    public BodyWriter writeInt32(int v) {
        padTo(4);
        ensure(4);
        putInt(pos, v);
        pos += 4;
        return this;
    }

    public BodyWriter writeUint32(int v) {
        return writeInt32(v);
    }

    /** Writes the low 32 bits of v (callers pass values in 0..2^32-1). */
    public BodyWriter writeUint32(long v) {
        return writeInt32((int) v);
    }

    /** Writes a UNIX_FD index ('h'). */
    public BodyWriter writeUnixFd(int index) {
        return writeInt32(index);
    }

    public BodyWriter writeInt64(long v) {
        padTo(8);
        ensure(8);
        for (int i = 0; i < 8; i++) a[pos++] = (byte) (v >>> (8 * i));
        return this;
    }

    public BodyWriter writeUint64(long v) {
        return writeInt64(v);
    }

    public BodyWriter writeDouble(double v) {
        return writeInt64(Double.doubleToRawLongBits(v));
    }

    public BodyWriter writeString(String s) {
        // ASCII (every name, path and most texts) is copied char by char: no byte[] per string.
        int n = s.length();
        padTo(4);
        ensure(4 + n + 1);
        int at = pos + 4;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c >= 0x80) {
                return writeStringUtf8(s);
            }
            a[at + i] = (byte) c;
        }
        putInt(pos, n);
        pos = at + n;
        a[pos++] = 0;
        return this;
    }

    private BodyWriter writeStringUtf8(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        writeInt32(b.length);
        ensure(b.length + 1);
        System.arraycopy(b, 0, a, pos, b.length);
        pos += b.length;
        a[pos++] = 0;
        return this;
    }

    public BodyWriter writeObjectPath(String s) {
        return writeString(s);
    }

    public BodyWriter writeSignature(String s) {
        int n = s.length();
        if (n > WireFormat.MAX_SIGNATURE_LENGTH) throw new IllegalArgumentException("signature too long");
        ensure(n + 2);
        a[pos++] = (byte) n;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            a[pos++] = c < 0x80 ? (byte) c : (byte) '?'; // as US_ASCII encoding did; the validator rejects it
        }
        a[pos++] = 0;
        return this;
    }

    /** Writes a variant's signature; the caller then writes exactly one value of that type. */
    public BodyWriter writeVariant(String signature) {
        return writeSignature(signature);
    }

    /** Writes an 'ay' array. */
    public BodyWriter writeByteArray(byte[] bytes) {
        beginArray('y');
        writeRaw(bytes);
        return endArray();
    }

    private void push(char k, int slot) {
        if (depth == kind.length) {
            int n = Math.max(8, depth * 2);
            kind = Arrays.copyOf(kind, n);
            lenSlot = Arrays.copyOf(lenSlot, n);
            start = Arrays.copyOf(start, n);
        }
        kind[depth] = k;
        lenSlot[depth] = slot;
        start[depth] = pos;
        depth++;
    }

    private void pop(char k) {
        if (depth == 0 || kind[depth - 1] != k) throw new IllegalStateException("unbalanced container end '" + k + "'");
        depth--;
    }

    /**
     * Begins an array whose element type starts with elementTypeCode. The padding to the element
     * alignment is written even for an empty array and is not counted in the length.
     */
    public BodyWriter beginArray(char elementTypeCode) {
        writeInt32(0);
        int slot = pos - 4;
        padTo(Signatures.alignmentOf(elementTypeCode));
        push('a', slot);
        return this;
    }

    public BodyWriter endArray() {
        pop('a');
        int len = pos - start[depth];
        if (len > WireFormat.MAX_ARRAY) throw new IllegalStateException("array longer than 2^26");
        putInt(lenSlot[depth], len);
        return this;
    }

    public BodyWriter beginStruct() {
        padTo(8);
        push('(', -1);
        return this;
    }

    public BodyWriter endStruct() {
        pop('(');
        return this;
    }

    public BodyWriter beginDictEntry() {
        padTo(8);
        push('{', -1);
        return this;
    }

    public BodyWriter endDictEntry() {
        pop('{');
        return this;
    }

    private void putInt(int at, int v) {
        a[at] = (byte) v;
        a[at + 1] = (byte) (v >>> 8);
        a[at + 2] = (byte) (v >>> 16);
        a[at + 3] = (byte) (v >>> 24);
    }

    public int size() {
        return pos;
    }

    /** Discards all content for reuse. */
    public void reset() {
        pos = 0;
        depth = 0;
    }

    public byte[] toByteArray() {
        if (depth != 0) throw new IllegalStateException(depth + " container(s) still open");
        return Arrays.copyOf(a, pos);
    }
}
