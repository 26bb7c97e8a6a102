// Invariants: the fd numbers are opaque to the core (never read, dup'ed or interpreted); the
// array is never exposed, so the set is immutable; the closer runs exactly once, when the
// reference count drops from 1 to 0, and closes every fd once; references are taken and
// dropped on the bus thread only (no atomics); after the close any retain() fails loudly.
package org.kdbusbridge.core.message;

import java.util.function.IntConsumer;

/**
 * The unix fds that came with one message, shared by every receiver of it.
 *
 * The creator holds the first reference. Each receive pool that accepts the message takes one
 * more and drops it once the transport has written the message out (or the pool is cleared).
 * So the bus's copies close right after the last receiver has sent them on, or at once if
 * nobody took the message (refused, undeliverable, denied).
 */
public final class FdSet {
    private final int[] fds;
    private final IntConsumer closer;
    private int refs = 1;
    private boolean unsealedMemfd;

    /** Takes ownership of {@code fds} (not copied) with one reference held by the caller. */
    public FdSet(int[] fds, IntConsumer closer) {
        if (fds.length == 0) {
            throw new IllegalArgumentException("an FdSet holds at least one fd");
        }
        this.fds = fds;
        this.closer = closer;
    }

    /**
     * Set by the transport that received the fds: one of them is a memfd without the
     * F_SEAL_WRITE, F_SEAL_SHRINK and F_SEAL_GROW seals (the core never looks at fds itself).
     */
    public void markUnsealedMemfd() {
        unsealedMemfd = true;
    }

    /** True if some fd is a memfd a receiver could not safely map (see {@link #markUnsealedMemfd}). */
    public boolean hasUnsealedMemfd() {
        return unsealedMemfd;
    }

    public int count() {
        return fds.length;
    }

    /** The fd at {@code index}, for the transport that writes it out. */
    public int fd(int index) {
        return fds[index];
    }

    /** Takes one more reference; returns this. */
    public FdSet retain() {
        if (refs <= 0) {
            throw new IllegalStateException("FdSet already closed");
        }
        refs++;
        return this;
    }

    /** Drops one reference; the last one closes every fd. */
    public void release() {
        if (refs <= 0) {
            throw new IllegalStateException("FdSet released more often than retained");
        }
        if (--refs == 0) {
            for (int fd : fds) {
                closer.accept(fd);
            }
        }
    }

    public boolean isClosed() {
        return refs == 0;
    }

    /** References still held (tests and statistics). */
    public int references() {
        return refs;
    }
}
