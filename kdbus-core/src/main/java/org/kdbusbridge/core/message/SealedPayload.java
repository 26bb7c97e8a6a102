package org.kdbusbridge.core.message;

import java.nio.ByteBuffer;

/**
 * The immutable bytes of one admitted message (memfd-like: sealed at admission).
 *
 * Invariants: the backing array is never exposed and never written after construction,
 * so one payload is shared by every receiver of a broadcast without copying. The core
 * treats the bytes as opaque; only the bridge knows they are a dbus1 frame.
 */
public final class SealedPayload {
    private final byte[] bytes;
    private final int length;

    /** Takes ownership of {@code bytes}; the caller must not keep writing to it. */
    public SealedPayload(byte[] bytes) {
        this(bytes, bytes.length);
    }

    public SealedPayload(byte[] bytes, int length) {
        if (length < 0 || length > bytes.length) {
            throw new IllegalArgumentException("length " + length);
        }
        this.bytes = bytes;
        this.length = length;
    }

    public int size() {
        return length;
    }

    public byte byteAt(int index) {
        if (index >= length) {
            throw new IndexOutOfBoundsException(index);
        }
        return bytes[index];
    }

    /** Copies up to dst.remaining() bytes starting at {@code from}; returns how many. */
    public int copyTo(int from, ByteBuffer dst) {
        int n = Math.min(length - from, dst.remaining());
        if (n > 0) {
            dst.put(bytes, from, n);
        }
        return n;
    }

    /** A read-only view; cheap, no copy. */
    public ByteBuffer view() {
        return ByteBuffer.wrap(bytes, 0, length).slice().asReadOnlyBuffer();
    }
}
