package org.kdbusbridge.bridge.server;

import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * Passes at most {@code perWindow} lines per window to a sink and counts the rest; the first
 * line let through after a suppression says how many were dropped. Policy denials go through
 * it, so a client hammering a denied method cannot flood the log.
 *
 * Invariants: loop thread only (no locking); allocation-free while suppressing; the clock is
 * monotonic nanoseconds and injectable for tests; a window starts with the first line after
 * the previous window ended.
 */
final class RateLimitedLog implements Consumer<String> {
    private final int perWindow;
    private final long windowNanos;
    private final LongSupplier clock;
    private final Consumer<String> sink;
    private long windowStart;
    private int inWindow;
    private long suppressed;
    private boolean started;

    RateLimitedLog(int perWindow, long windowNanos, LongSupplier clock, Consumer<String> sink) {
        if (perWindow < 1 || windowNanos <= 0) {
            throw new IllegalArgumentException("perWindow >= 1 and windowNanos > 0 required");
        }
        this.perWindow = perWindow;
        this.windowNanos = windowNanos;
        this.clock = clock;
        this.sink = sink;
    }

    @Override
    public void accept(String line) {
        long now = clock.getAsLong();
        if (!started || now - windowStart >= windowNanos) {
            started = true;
            windowStart = now;
            inWindow = 0;
        }
        if (inWindow >= perWindow) {
            suppressed++;
            return;
        }
        inWindow++;
        if (suppressed > 0) {
            sink.accept(line + " (" + suppressed + " similar messages suppressed before this one)");
            suppressed = 0;
        } else {
            sink.accept(line);
        }
    }

    /** Lines dropped since the last one that went through. */
    long suppressed() {
        return suppressed;
    }
}
