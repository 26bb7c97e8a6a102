package org.kdbusbridge.bridge.server;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.Iterator;

/**
 * Spare direct buffers: for messages larger than a session's own 64 KiB input buffer, and the
 * 64 KiB input/output buffers of closed sessions, reused by new ones.
 *
 * Invariants: loop thread only; keeps at most {@link #MAX_SPARES} buffers of at most
 * {@link #MAX_KEPT} bytes each, so idle memory stays bounded; a buffer is either lent to one
 * session or spare, never both. Reusing them spares a direct allocation (and the GC that frees
 * it) per large message.
 */
final class LargeBuffers {
    static final int MAX_SPARES = 4;
    static final int MAX_KEPT = 16 * 1024 * 1024;

    private final ArrayDeque<ByteBuffer> spares = new ArrayDeque<>();

    /** A cleared direct buffer of at least {@code capacity} bytes. */
    ByteBuffer take(int capacity) {
        for (Iterator<ByteBuffer> it = spares.iterator(); it.hasNext(); ) {
            ByteBuffer b = it.next();
            if (b.capacity() >= capacity) {
                it.remove();
                b.clear();
                return b;
            }
        }
        return ByteBuffer.allocateDirect(capacity);
    }

    /** Returns a buffer; kept if it is not too big and there is room, else left to the GC. */
    void give(ByteBuffer b) {
        if (b.capacity() > MAX_KEPT) {
            return;
        }
        if (spares.size() >= MAX_SPARES) {
            ByteBuffer smallest = spares.stream().min((x, y) -> Integer.compare(x.capacity(), y.capacity())).get();
            if (smallest.capacity() >= b.capacity()) {
                return;
            }
            spares.remove(smallest);
        }
        spares.add(b);
    }

    static final int MAX_SMALL_SPARES = 128;
    private final ArrayDeque<ByteBuffer> smallSpares = new ArrayDeque<>();

    /** A cleared session-sized buffer ({@code size} bytes), reused when one is spare. */
    ByteBuffer takeSmall(int size) {
        ByteBuffer b = smallSpares.pollLast();
        if (b == null || b.capacity() != size) {
            return ByteBuffer.allocateDirect(size);
        }
        b.clear();
        return b;
    }

    /** Returns a closed session's buffer; at most {@link #MAX_SMALL_SPARES} are kept. */
    void giveSmall(ByteBuffer b) {
        if (smallSpares.size() < MAX_SMALL_SPARES) {
            smallSpares.addLast(b);
        }
    }

    int spares() {
        return spares.size();
    }
}
