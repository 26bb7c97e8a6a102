// Invariants: helpers for transport tests; waits are condition-based with deadlines, never sleeps.
package org.kdbusbridge.bridge.transport;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.concurrent.locks.LockSupport;

final class TestSupport {
    static final long TIMEOUT_MS = 20_000;

    private TestSupport() {
    }

    /** Runs c on the loop thread and returns its result (rethrowing its exception). */
    static <T> T onLoop(EventLoop loop, Callable<T> c) throws Exception {
        CompletableFuture<T> f = new CompletableFuture<>();
        loop.execute(() -> {
            try {
                f.complete(c.call());
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        try {
            return f.get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof Exception) {
                throw (Exception) e.getCause();
            }
            throw e;
        }
    }

    static void onLoopRun(EventLoop loop, ThrowingRunnable r) throws Exception {
        onLoop(loop, () -> {
            r.run();
            return null;
        });
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    /** Polls cond (yielding the CPU briefly between checks) until true or the deadline passes. */
    static void waitUntil(String what, BooleanSupplier cond) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TIMEOUT_MS);
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                fail("timed out waiting for " + what);
            }
            LockSupport.parkNanos(1_000_000L);
        }
    }

    static byte patternByte(long i) {
        return (byte) (i * 31 + 7 + (i >>> 11));
    }
}
