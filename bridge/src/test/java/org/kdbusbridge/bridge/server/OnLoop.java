package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * Test helper: reads a bus's state on its loop thread (the only thread that may), and waits for
 * a condition read there, with a deadline (no sleep-based synchronisation).
 */
final class OnLoop {
    private OnLoop() {
    }

    /** {@code q} evaluated on {@code server}'s loop thread. */
    static <T> T get(BusServer server, Supplier<T> q) throws Exception {
        CompletableFuture<T> f = new CompletableFuture<>();
        server.loop().execute(() -> {
            try {
                f.complete(q.get());
            } catch (RuntimeException | Error e) {
                f.completeExceptionally(e);
            }
        });
        return f.get(10, TimeUnit.SECONDS);
    }

    /** Waits until {@code condition}, read on the loop thread, holds; fails after {@code seconds}. */
    static void await(BusServer server, String what, long seconds, BooleanSupplier condition) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!get(server, condition::getAsBoolean)) {
            if (System.nanoTime() > deadline) {
                fail("not within " + seconds + " s: " + what);
            }
            Thread.onSpinWait();
        }
    }
}
