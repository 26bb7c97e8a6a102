package org.kdbusbridge.bridge.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.transport.JniLibC;
import org.kdbusbridge.bridge.transport.LibC;

/** A hosted bus's stderr queue on a real pipe (a FIFO) that is read only when the test says so. */
class LogQueueTest {
    private static final int O_RDONLY = 0;
    private static final int O_RDWR = 2;
    private static final int O_CLOEXEC = 02000000;

    /** poll(2) is a JNI native (jnr-ffi has none here), and open0 below is too. */
    @BeforeAll
    static void jni() {
        assumeTrue(LibC.Native.binding().equals("jni"), "needs libkdbus-bridge-native.so");
    }

    /** Write and read ends of a new FIFO; the read end is non-blocking. */
    private static int[] fifo(Path dir) throws Exception {
        Path f = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", f.toString()).start().waitFor());
        int r = JniLibC.open0(JniLibC.cString(f.toString()), O_RDONLY | LibC.O_NONBLOCK | O_CLOEXEC);
        int w = JniLibC.open0(JniLibC.cString(f.toString()), O_RDWR | O_CLOEXEC);
        assertTrue(r >= 0 && w >= 0, "fifo " + r + " " + w);
        return new int[] {w, r};
    }

    /** Fills the FIFO's pipe with "fill" lines through a non-blocking writer of its own: nobody reads it yet. */
    private static void fill(Path dir) {
        int w = JniLibC.open0(JniLibC.cString(dir.resolve("fifo").toString()), 1 | LibC.O_NONBLOCK | O_CLOEXEC);
        assertTrue(w >= 0);
        ByteBuffer b = ByteBuffer.allocateDirect(5);
        b.put("fill\n".getBytes(StandardCharsets.US_ASCII));
        while (LibC.INSTANCE.write(w, LibC.Native.address(b), 5) == 5) {
            // until EAGAIN: the pipe is full
        }
        LibC.INSTANCE.close(w);
    }

    private static void write(LogQueue q, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        q.write(b, 0, b.length);
    }

    /** Reads what is there now from a non-blocking fd; null at EOF (no writer left). */
    private static String readAvailable(int fd) {
        ByteBuffer buf = ByteBuffer.allocateDirect(65536);
        StringBuilder out = new StringBuilder();
        while (true) {
            long n = LibC.INSTANCE.read(fd, LibC.Native.address(buf), buf.capacity());
            if (n > 0) {
                byte[] b = new byte[(int) n];
                buf.get(0, b);
                out.append(new String(b, StandardCharsets.UTF_8));
            } else if (n == 0) {
                return out.length() == 0 ? null : out.toString();
            } else {
                return out.toString(); // EAGAIN: nothing more now
            }
        }
    }

    private static boolean waitFor(BooleanSupplier c, long millis) {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            LockSupport.parkNanos(1_000_000); // polling a condition with a deadline
        }
        return true;
    }

    @Test
    void aFullPipeCostsTheWriterNothingAndTheDropsAreCountedInOneLine(@TempDir Path dir) throws Exception {
        int[] p = fifo(dir);
        fill(dir);
        LogQueue q = new LogQueue(p[0], 16 * 1024);
        int total = 20_000; // the pipe is full already: the queue takes 16 KiB of these, the rest go
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            for (int i = 0; i < total; i++) {
                write(q, "line " + i + "\n");
            }
        }, "a write blocked on the full pipe");
        // Read until every line is accounted for: whole lines in order, and where some are
        // missing, one line (once the queue had emptied) saying how many were dropped.
        StringBuilder got = new StringBuilder();
        long[] next = {0};
        int[] notices = {0};
        assertTrue(waitFor(() -> {
            String s = readAvailable(p[1]);
            got.append(s == null ? "" : s);
            int nl;
            while ((nl = got.indexOf("\n")) >= 0) {
                String line = got.substring(0, nl);
                got.delete(0, nl + 1);
                if (line.equals("fill")) {
                    continue;
                }
                java.util.regex.Matcher m = java.util.regex.Pattern.compile(
                        "kdbus-bridge: (\\d+) log lines? of this bus dropped: its stderr was not read").matcher(line);
                if (m.matches()) {
                    next[0] += Long.parseLong(m.group(1));
                    notices[0]++;
                } else {
                    assertEquals("line " + next[0], line);
                    next[0]++;
                }
            }
            return next[0] == total;
        }, 20_000), "accounted for " + next[0] + " of " + total);
        assertTrue(notices[0] > 0);
        // it writes again, then the end: late writes go nowhere and the pipe sees EOF (our fd was the last writer)
        write(q, "after\n");
        StringBuilder after = new StringBuilder();
        assertTrue(waitFor(() -> {
            String s = readAvailable(p[1]);
            after.append(s == null ? "" : s);
            return after.toString().equals("after\n");
        }, 20_000), after.toString());
        q.close();
        assertTrue(waitFor(q::descriptorClosed, 20_000));
        write(q, "late\n");
        assertEquals(null, readAvailable(p[1]));
        LibC.INSTANCE.close(p[1]);
    }

    @Test
    void aBusThatNeverLoggedStartsNoThreadAndItsFdClosesAtOnce(@TempDir Path dir) throws Exception {
        int[] p = fifo(dir);
        LogQueue q = new LogQueue(p[0], 16 * 1024);
        q.close();
        assertTrue(q.descriptorClosed());
        q.close(); // once only
        assertEquals(null, readAvailable(p[1]));
        LibC.INSTANCE.close(p[1]);
    }

    /** Nobody ever reads: the end still closes the descriptor, after the drain time, never later. */
    @Test
    void theEndClosesTheFdEvenWhileThePipeStaysFull(@TempDir Path dir) throws Exception {
        int[] p = fifo(dir);
        fill(dir);
        LogQueue q = new LogQueue(p[0], 16 * 1024);
        for (int i = 0; i < 20_000; i++) {
            write(q, "line " + i + "\n");
        }
        assertTrue(q.queuedBytes() > 0 && q.droppedLines() > 0);
        long start = System.nanoTime();
        q.close();
        assertTrue(waitFor(q::descriptorClosed, LogQueue.DRAIN_MILLIS + 10_000));
        assertTrue((System.nanoTime() - start) / 1_000_000 >= LogQueue.DRAIN_MILLIS - 100,
                "closed before its queued lines had their time");
        LibC.INSTANCE.close(p[1]);
    }
}
