package org.kdbusbridge.compat.harness;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * Reads lines of a stream on a daemon thread and lets callers wait, with a deadline,
 * for a line matching a condition. No polling and no sleeps: waiters block on a monitor.
 */
public final class LineReader implements AutoCloseable {
    private final InputStream in;
    private final List<String> lines = new ArrayList<>();
    private boolean eof;
    private int cursor;

    public LineReader(InputStream in, String threadName) {
        this.in = in;
        Thread t = new Thread(this::pump, "lines-" + threadName);
        t.setDaemon(true);
        t.start();
    }

    private void pump() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String l;
            while ((l = r.readLine()) != null) {
                synchronized (this) {
                    lines.add(l);
                    notifyAll();
                }
            }
        } catch (IOException ignored) {
            // stream closed
        } finally {
            synchronized (this) {
                eof = true;
                notifyAll();
            }
        }
    }

    /**
     * Waits for the next line (after the previous match) that satisfies {@code p}.
     * Returns it, or null on EOF or at the deadline.
     */
    public synchronized String awaitLine(Predicate<String> p, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            while (cursor < lines.size()) {
                String l = lines.get(cursor++);
                if (p.test(l)) {
                    return l;
                }
            }
            if (eof) {
                return null;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return null;
            }
            try {
                wait(Math.max(1, left / 1_000_000), 0);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
    }

    /** Waits until the stream ended; returns false at the deadline. */
    public synchronized boolean awaitEof(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!eof) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            try {
                wait(Math.max(1, left / 1_000_000), 0);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }

    /** All lines read so far. */
    public synchronized List<String> all() {
        return new ArrayList<>(lines);
    }

    public synchronized String text() {
        return String.join("\n", lines);
    }

    @Override
    public void close() {
        try {
            in.close();
        } catch (IOException ignored) {
            // ignore
        }
    }
}
