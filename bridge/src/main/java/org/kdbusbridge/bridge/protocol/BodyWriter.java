// Invariants: little-endian; alignment is relative to index 0 of the output (which must land
// 8-aligned in the message, as bodies and whole messages do); container begin/end calls must
// nest correctly, checked at endArray/endStruct/endDictEntry/toByteArray. A counting writer
// advances exactly as a writing one would but stores nothing; a writer over a fixed array never
// grows it (overflowing it is a sizing bug and throws).
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
    /** Sizes only: no byte is stored (see {@link #counting()}). */
    private boolean counting;
    /** Writes into a caller's exact-size array (see {@link #over}); never reallocates. */
    private boolean fixed;
    private static final int[] NO_INTS = new int[0];
    private static final char[] NO_CHARS = new char[0];

    public BodyWriter() {
        this(64);
    }

    public BodyWriter(int initialCapacity) {
        a = new byte[Math.max(16, initialCapacity)];
    }

    private BodyWriter(byte[] a) {
        this.a = a;
    }

    /**
     * A writer that only measures: {@link #size()} after writing a body is its exact encoded
     * length, so the message holding it can be allocated once at its final size.
     */
    public static BodyWriter counting() {
        BodyWriter w = new BodyWriter(NO_BYTES);
        w.counting = true;
        return w;
    }

    /**
     * A writer that stores into {@code target} from {@code offset} on (alignment stays relative
     * to index 0 of {@code target}); writing past its end throws instead of growing it.
     */
    public static BodyWriter over(byte[] target, int offset) {
        BodyWriter w = new BodyWriter(target);
        w.fixed = true;
        w.pos = offset;
        return w;
    }

    /** Re-targets a fixed writer (see {@link #over}) without allocating a new one. */
    BodyWriter retarget(byte[] target, int offset) {
        if (!fixed) throw new IllegalStateException("not a fixed writer");
        a = target;
        pos = offset;
        depth = 0;
        return this;
    }

    private static final byte[] NO_BYTES = new byte[0];

    /** Room for n more bytes; false when counting (the caller then only advances pos). */
    private boolean ensure(int n) {
        if (counting) return false;
        if (pos + n > a.length) {
            if (fixed) throw new IllegalStateException("body larger than it was sized");
            a = Arrays.copyOf(a, Math.max(a.length * 2, pos + n));
        }
        return true;
    }

    /** Writes zero padding up to the given alignment (1, 2, 4 or 8). */
    public BodyWriter padTo(int alignment) {
        int np = WireFormat.align(pos, alignment);
        if (!ensure(np - pos)) {
            pos = np;
            return this;
        }
        while (pos < np) a[pos++] = 0; // may be re-used space after reset
        return this;
    }

    public BodyWriter writeRaw(byte[] bytes) {
        return writeRaw(bytes, 0, bytes.length);
    }

    public BodyWriter writeRaw(byte[] bytes, int off, int len) {
        if (!ensure(len)) {
            pos += len;
            return this;
        }
        System.arraycopy(bytes, off, a, pos, len);
        pos += len;
        return this;
    }

    public BodyWriter writeByte(int v) {
        if (ensure(1)) a[pos] = (byte) v;
        pos++;
        return this;
    }

    public BodyWriter writeBoolean(boolean v) {
        return writeUint32(v ? 1 : 0);
    }

    public BodyWriter writeInt16(int v) {
        padTo(2);
        if (ensure(2)) {
            a[pos] = (byte) v;
            a[pos + 1] = (byte) (v >>> 8);
        }
        pos += 2;
        return this;
    }

    public BodyWriter writeUint16(int v) {
        return writeInt16(v);
    }

    public BodyWriter writeInt32(int v) {
        padTo(4);
        if (ensure(4)) putInt(pos, v);
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
        if (ensure(8)) {
            for (int i = 0; i < 8; i++) a[pos + i] = (byte) (v >>> (8 * i));
        }
        pos += 8;
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
        if (fixed && pos + 4 + n + 1 > a.length) {
            return writeStringUtf8(s); // exact room may be less than n chars (a lone surrogate is 1 byte)
        }
        if (!ensure(4 + n + 1)) {
            for (int i = 0; i < n; i++) {
                if (s.charAt(i) >= 0x80) {
                    return writeStringUtf8(s);
                }
            }
            pos += 4 + n + 1;
            return this;
        }
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
        if (ensure(b.length + 1)) {
            System.arraycopy(b, 0, a, pos, b.length);
            a[pos + b.length] = 0;
        }
        pos += b.length + 1;
        return this;
    }

    public BodyWriter writeObjectPath(String s) {
        return writeString(s);
    }

    public BodyWriter writeSignature(String s) {
        int n = s.length();
        if (n > WireFormat.MAX_SIGNATURE_LENGTH) throw new IllegalArgumentException("signature too long");
        if (!ensure(n + 2)) {
            pos += n + 2;
            return this;
        }
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
        if (!counting) putInt(lenSlot[depth], len);
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
        checkClosed();
        if (counting) throw new IllegalStateException("a counting writer holds no bytes");
        return Arrays.copyOf(a, pos);
    }

    /** Throws unless every container was ended. */
    public void checkClosed() {
        if (depth != 0) throw new IllegalStateException(depth + " container(s) still open");
    }

    /** Copies the first {@link #size()} bytes written to {@code dst} at {@code off}. */
    void copyTo(byte[] dst, int off) {
        checkClosed();
        System.arraycopy(a, 0, dst, off, pos);
    }

    /** Copies the first {@link #size()} bytes written to {@code dst} at its position, advancing it. */
    void copyTo(java.nio.ByteBuffer dst) {
        checkClosed();
        dst.put(a, 0, pos);
    }

    /** Drops the reference to a fixed writer's target (a thread's scratch must not pin it). */
    void release() {
        a = NO_BYTES;
        pos = 0;
        depth = 0;
    }
}
