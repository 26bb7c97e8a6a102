package org.kdbusbridge.compat.harness;

import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;
import java.util.function.IntConsumer;

/**
 * Floods one connection with method calls, {@code window} in flight: a writer thread sends,
 * the calling thread reads the replies (signals in between are skipped, nothing is logged, so
 * hundreds of thousands of replies cost no more than reading them). Sending stops at the first
 * error reply or at {@code max}; the outcome counts what was answered how. Needs a direct-mode
 * client ({@link RawClient#connectDirect}): a pumped one would log every reply.
 */
public final class Pipelined {
    private Pipelined() {}

    /**
     * @param sent          calls sent
     * @param ok            answered with a method return
     * @param errors        answered with an error
     * @param firstError    the first error's name, or null
     * @param firstErrorArg the first error's text, or null
     * @param disconnected  the bus closed the connection before every reply came
     * @param timedOut      the deadline passed first (the connection was closed here)
     */
    public record Outcome(int sent, int ok, int errors, String firstError, String firstErrorArg, boolean disconnected,
            boolean timedOut) {
        @Override
        public String toString() {
            return "sent=" + sent + " ok=" + ok + " errors=" + errors + (firstError == null ? "" : " first=" + firstError
                    + " '" + firstErrorArg + "'") + (disconnected ? " DISCONNECTED" : "") + (timedOut ? " TIMED OUT" : "");
        }
    }

    /**
     * Sends up to {@code max} calls made by {@code call(i)}; {@code progress} is called on this
     * thread with the number of replies read so far after every {@code progressEvery} replies.
     * The connection is closed if the deadline passes first.
     */
    public static Outcome calls(RawClient c, int max, int window, IntFunction<Message> call, int progressEvery,
            IntConsumer progress, Duration timeout) throws IOException, InterruptedException {
        Semaphore inFlight = new Semaphore(window);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger sent = new AtomicInteger();
        AtomicBoolean writerDone = new AtomicBoolean();
        AtomicBoolean timedOut = new AtomicBoolean();
        Object progressed = new Object(); // notified when the writer sent one more or finished
        long deadline = System.nanoTime() + timeout.toNanos();
        Thread writer = new Thread(() -> {
            try {
                for (int i = 0; i < max && !stop.get(); i++) {
                    while (!inFlight.tryAcquire(50, TimeUnit.MILLISECONDS)) {
                        if (stop.get() || System.nanoTime() > deadline) {
                            return;
                        }
                    }
                    if (stop.get()) {
                        return;
                    }
                    c.send(call.apply(i));
                    synchronized (progressed) {
                        sent.incrementAndGet();
                        progressed.notifyAll();
                    }
                }
            } catch (IOException | InterruptedException e) {
                stop.set(true);
            } finally {
                synchronized (progressed) {
                    writerDone.set(true);
                    progressed.notifyAll();
                }
            }
        }, "pipelined-writer");
        writer.setDaemon(true);
        writer.start();
        int ok = 0;
        int errors = 0;
        String firstError = null;
        String firstErrorArg = null;
        boolean disconnected = false;
        // The direct client blocks in read: at the deadline it is closed, which ends the read.
        Thread timer = new Thread(() -> {
            try {
                long left = deadline - System.nanoTime();
                if (left > 0) {
                    TimeUnit.NANOSECONDS.sleep(left); // a timeout, not a synchronisation
                }
                timedOut.set(true);
                c.close();
            } catch (InterruptedException ignored) {
                // finished in time
            }
        }, "pipelined-deadline");
        timer.setDaemon(true);
        timer.start();
        try {
            while (true) {
                int answered = ok + errors;
                // Every call sent is answered: wait for the writer to send another or finish
                // (reading now could block for good on a reply that will never be asked for).
                synchronized (progressed) {
                    while (!writerDone.get() && sent.get() <= answered) {
                        progressed.wait();
                    }
                }
                if (writerDone.get() && answered >= sent.get()) {
                    break;
                }
                Message m;
                try {
                    m = c.next();
                } catch (IOException e) {
                    m = null;
                }
                if (m == null) {
                    disconnected = !timedOut.get();
                    stop.set(true);
                    break;
                }
                if (m.type != Message.METHOD_RETURN && m.type != Message.ERROR) {
                    continue;
                }
                inFlight.release();
                if (m.type == Message.METHOD_RETURN) {
                    ok++;
                } else {
                    errors++;
                    if (firstError == null) {
                        firstError = m.errorName;
                        firstErrorArg = m.args().isEmpty() ? "" : String.valueOf(m.arg(0));
                        stop.set(true);
                    }
                }
                if (progress != null && (ok + errors) % progressEvery == 0) {
                    progress.accept(ok + errors);
                }
            }
        } finally {
            stop.set(true);
            timer.interrupt();
        }
        try {
            writer.join(TimeUnit.NANOSECONDS.toMillis(Math.max(1, deadline - System.nanoTime())) + 1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return new Outcome(sent.get(), ok, errors, firstError, firstErrorArg, disconnected, timedOut.get());
    }
}
