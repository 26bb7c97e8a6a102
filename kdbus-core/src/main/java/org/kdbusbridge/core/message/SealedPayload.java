package org.kdbusbridge.core.message;

import java.nio.ByteBuffer;

/**
 * The immutable bytes of one admitted message (memfd-like: sealed at admission).
 *
 * Invariants: the backing storage (a heap array, or a direct buffer for large messages) is
 * never exposed writable and never written after construction (a deferred payload is encoded
 * once, before its first reader sees any of it), so one payload is shared by
 * every receiver of a broadcast without copying; views are read-only and independent (their
 * positions never affect each other or the payload). The core treats the bytes as opaque;
 * only the bridge knows they are a dbus1 frame. A direct payload's memory is given back by
 * {@link #free()} as soon as no queue holds its message any more (not when the GC gets round
 * to it), or to the pool it came from; every accessor refuses a freed payload, so nothing
 * can read released (or reused) memory.
 */
public final class SealedPayload {
    /** Heap storage (empty while deferred), or null when the payload lives in {@link #direct}. */
    private byte[] bytes;
    /** Direct (off-heap) storage, read-only, [0, length); or null. */
    private final ByteBuffer direct;
    /** The buffer as allocated (not a view), which {@link #free()} releases; or null. */
    private final ByteBuffer owned;
    /** Takes {@link #owned} back at {@link #free()} (a pool), or null to release it. */
    private final java.util.function.Consumer<ByteBuffer> recycler;
    private int length;
    private boolean freed;
    /** Encodes the bytes on first use, or null once they exist (see {@link #deferred}). */
    private java.util.function.Supplier<byte[]> encoder;

    /**
     * A heap payload whose bytes are encoded the first time anything reads it (its size
     * included): a bus signal that no rule matches and no monitor sees is never encoded.
     * Still immutable to every reader: they all see the one encoding.
     */
    public static SealedPayload deferred(java.util.function.Supplier<byte[]> encoder) {
        SealedPayload p = new SealedPayload(EMPTY, 0);
        p.encoder = encoder;
        return p;
    }

    private static final byte[] EMPTY = new byte[0];

    private void encode() {
        java.util.function.Supplier<byte[]> e = encoder;
        if (e != null) {
            encoder = null;
            byte[] b = e.get();
            bytes = b;
            length = b.length;
        }
    }

    /** Whether the bytes of a {@link #deferred} payload have not been needed yet. */
    public boolean isDeferred() {
        return encoder != null;
    }

    /** Takes ownership of {@code bytes}; the caller must not keep writing to it. */
    public SealedPayload(byte[] bytes) {
        this(bytes, bytes.length);
    }

    public SealedPayload(byte[] bytes, int length) {
        if (length < 0 || length > bytes.length) {
            throw new IllegalArgumentException("length " + length);
        }
        this.bytes = bytes;
        this.direct = null;
        this.owned = null;
        this.recycler = null;
        this.length = length;
    }

    /**
     * Takes ownership of the [position, limit) bytes of a DIRECT buffer; the caller must not
     * keep writing to it. Lets the outside write the payload to a socket straight from its
     * storage ({@link #view()} is then a direct buffer) instead of copying it per receiver.
     */
    public SealedPayload(ByteBuffer directBytes) {
        this(directBytes, null);
    }

    /**
     * As {@link #SealedPayload(ByteBuffer)}, but {@link #free()} hands the buffer to
     * {@code recycler} (a pool that reuses it for a later payload) instead of releasing it.
     */
    public SealedPayload(ByteBuffer directBytes, java.util.function.Consumer<ByteBuffer> recycler) {
        if (!directBytes.isDirect()) {
            throw new IllegalArgumentException("buffer must be direct");
        }
        this.bytes = null;
        this.direct = directBytes.slice().asReadOnlyBuffer();
        this.length = direct.remaining();
        this.owned = directBytes;
        this.recycler = recycler;
    }

    /**
     * Gives a direct payload's memory back now (heap payloads: nothing to do). Called when the
     * last queue let its message go; afterwards every accessor throws instead of reading freed
     * memory. The constructor's buffer must be the one that was allocated (not a slice).
     */
    public void free() {
        if (owned == null || freed) {
            return;
        }
        freed = true;
        if (recycler != null) {
            recycler.accept(owned);
        } else {
            DirectMemory.release(owned);
        }
    }

    public boolean isFreed() {
        return freed;
    }

    /** A heap copy, for a holder that outlives the queues (a writer thread). */
    public SealedPayload heapCopy() {
        encode();
        if (bytes != null) {
            return this;
        }
        byte[] copy = new byte[length];
        view().get(copy);
        return new SealedPayload(copy);
    }

    private void checkLive() {
        if (freed) {
            throw new IllegalStateException("payload used after its memory was freed");
        }
    }

    public int size() {
        encode();
        return length;
    }

    /** Whether the bytes live in a direct buffer, so {@link #view()} is direct (no copy needed for I/O). */
    public boolean isDirect() {
        return direct != null;
    }

    public byte byteAt(int index) {
        encode();
        if (index >= length) {
            throw new IndexOutOfBoundsException(index);
        }
        checkLive();
        return bytes != null ? bytes[index] : direct.get(index);
    }

    /** Copies up to dst.remaining() bytes starting at {@code from}; returns how many. */
    public int copyTo(int from, ByteBuffer dst) {
        encode();
        checkLive();
        int n = Math.min(length - from, dst.remaining());
        if (n > 0) {
            if (bytes != null) {
                dst.put(bytes, from, n);
            } else {
                int p = dst.position();
                dst.put(p, direct, from, n);
                dst.position(p + n);
            }
        }
        return n;
    }

    /** A read-only view, position 0, limit size(); cheap, no copy. Direct iff {@link #isDirect()}. */
    public ByteBuffer view() {
        encode();
        checkLive();
        if (direct != null) {
            return direct.duplicate();
        }
        return ByteBuffer.wrap(bytes, 0, length).slice().asReadOnlyBuffer();
    }
}
