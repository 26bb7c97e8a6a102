// Invariants under test: with accountBusyTime() the loop's busy time counts a task's running
// time and not its waits in epoll_wait (a timer 200 ms out is waited for, not busy), busy never
// exceeds the run time and neither falls; without it both stay 0; asking after start() fails.
package org.kdbusbridge.bridge.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class EventLoopBusyTimeTest {

    /** {busy, run} read on the loop thread. */
    private static long[] times(EventLoop loop) throws Exception {
        CompletableFuture<long[]> f = new CompletableFuture<>();
        loop.execute(() -> f.complete(new long[] {loop.busyNanos(), loop.runNanos()}));
        return f.get(10, TimeUnit.SECONDS);
    }

    @Test
    void busyTimeCountsWorkNotWaits() throws Exception {
        EventLoop loop = new EventLoop("busy-test");
        loop.accountBusyTime();
        loop.start();
        try {
            long[] t0 = times(loop);
            // 100 ms of work on the loop thread...
            CompletableFuture<Void> worked = new CompletableFuture<>();
            loop.execute(() -> {
                long end = System.nanoTime() + 100_000_000L;
                while (System.nanoTime() < end) {
                    Thread.onSpinWait();
                }
                worked.complete(null);
            });
            worked.get(10, TimeUnit.SECONDS);
            // ...then 200 ms with nothing to do but wait for a timer.
            CompletableFuture<Void> fired = new CompletableFuture<>();
            loop.execute(() -> loop.schedule(200, () -> fired.complete(null)));
            fired.get(10, TimeUnit.SECONDS);
            long[] t1 = times(loop);
            long busy = t1[0] - t0[0];
            long run = t1[1] - t0[1];
            assertTrue(busy >= 100_000_000L, "busy " + busy);
            assertTrue(run >= 300_000_000L, "run " + run);
            assertTrue(run - busy >= 150_000_000L, "the timer wait counted as busy: busy " + busy + " of " + run);
            assertTrue(t1[0] <= t1[1] && t1[0] >= t0[0] && t1[1] >= t0[1]);
            assertThrows(IllegalStateException.class, loop::accountBusyTime);
        } finally {
            loop.shutdown();
            loop.awaitTermination(5000);
        }
    }

    @Test
    void offByDefault() throws Exception {
        EventLoop loop = new EventLoop("busy-off-test");
        loop.start();
        try {
            long[] t = times(loop);
            assertEquals(0, t[0]);
            assertEquals(0, t[1]);
        } finally {
            loop.shutdown();
            loop.awaitTermination(5000);
        }
    }
}
