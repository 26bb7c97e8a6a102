// Invariants: every test starts its own loop and shuts it down; waits use latches/deadlines.
package org.kdbusbridge.bridge.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.bridge.transport.TestSupport.TIMEOUT_MS;
import static org.kdbusbridge.bridge.transport.TestSupport.onLoop;
import static org.kdbusbridge.bridge.transport.TestSupport.onLoopRun;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class EventLoopTest {

    private static final LibC LIBC = LibC.INSTANCE;
    private EventLoop loop;

    @BeforeEach
    void setUp() {
        loop = new EventLoop("test-loop");
        loop.start();
    }

    @AfterEach
    void tearDown() throws InterruptedException {
        loop.shutdown();
        assertTrue(loop.awaitTermination(TIMEOUT_MS));
    }

    @Test
    void epollLayoutMatchesPlatform() {
        String arch = System.getProperty("os.arch");
        if (arch.equals("amd64") || arch.equals("x86_64")) {
            assertEquals(12, LibC.Native.EPOLL_EVENT_SIZE);
            assertEquals(4, LibC.Native.EPOLL_DATA_OFFSET);
        } else if (arch.equals("aarch64")) {
            assertEquals(16, LibC.Native.EPOLL_EVENT_SIZE);
            assertEquals(8, LibC.Native.EPOLL_DATA_OFFSET);
        }
        assertTrue(LibC.Native.strerror(LibC.EPIPE).contains("EPIPE"));
    }

    @Test
    void executeFromOtherThreadRunsOnLoopThread() throws Exception {
        assertFalse(loop.inLoop());
        AtomicReference<String> threadName = new AtomicReference<>();
        AtomicReference<Boolean> inLoop = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(1);
        Thread other = new Thread(() -> loop.execute(() -> {
            threadName.set(Thread.currentThread().getName());
            inLoop.set(loop.inLoop());
            done.countDown();
        }));
        other.start();
        other.join(TIMEOUT_MS);
        assertTrue(done.await(TIMEOUT_MS, TimeUnit.MILLISECONDS));
        assertEquals("test-loop", threadName.get());
        assertTrue(inLoop.get());
    }

    @Test
    void manyTasksFromManyThreadsAllRunInSubmissionOrderPerThread() throws Exception {
        int threads = 4;
        int perThread = 5000;
        List<List<Integer>> seen = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            seen.add(new ArrayList<>()); // only touched on the loop thread
        }
        CountDownLatch done = new CountDownLatch(threads * perThread);
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int id = t;
            Thread th = new Thread(() -> {
                for (int i = 0; i < perThread; i++) {
                    int v = i;
                    loop.execute(() -> {
                        seen.get(id).add(v);
                        done.countDown();
                    });
                }
            });
            ts.add(th);
            th.start();
        }
        assertTrue(done.await(TIMEOUT_MS, TimeUnit.MILLISECONDS));
        onLoopRun(loop, () -> {
            for (List<Integer> l : seen) {
                assertEquals(perThread, l.size());
                for (int i = 0; i < perThread; i++) {
                    assertEquals(i, l.get(i));
                }
            }
        });
    }

    @Test
    void timersFireInDeadlineOrderAndCancelWorks() throws Exception {
        List<Integer> order = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch done = new CountDownLatch(1);
        AtomicReference<EventLoop.Timer> cancelled = new AtomicReference<>();
        long[] scheduledAt = new long[1];
        long[] firedAt = new long[1];
        loop.execute(() -> {
            scheduledAt[0] = System.nanoTime();
            loop.schedule(30, () -> order.add(30));
            loop.schedule(10, () -> {
                firedAt[0] = System.nanoTime();
                order.add(10);
            });
            loop.schedule(20, () -> order.add(20));
            EventLoop.Timer c = loop.schedule(15, () -> order.add(15));
            loop.schedule(0, () -> order.add(0));
            loop.schedule(20, () -> order.add(21)); // same deadline-ish, scheduled later
            assertTrue(c.cancel());
            assertFalse(c.cancel());
            cancelled.set(c);
            loop.schedule(40, () -> {
                order.add(40);
                done.countDown();
            });
        });
        assertTrue(done.await(TIMEOUT_MS, TimeUnit.MILLISECONDS));
        assertEquals(List.of(0, 10, 20, 21, 30, 40), order);
        assertTrue(cancelled.get().isCancelled());
        assertFalse(cancelled.get().hasFired());
        assertTrue(firedAt[0] - scheduledAt[0] >= TimeUnit.MILLISECONDS.toNanos(10),
                "10 ms timer fired early");
        assertEquals(0, onLoop(loop, loop::pendingTimers));
    }

    @Test
    void timersScheduledAndCancelledFromOtherThreads() throws Exception {
        AtomicInteger firedBad = new AtomicInteger();
        CountDownLatch good = new CountDownLatch(1);
        EventLoop.Timer bad = loop.schedule(20, firedBad::incrementAndGet);
        EventLoop.Timer ok = loop.schedule(50, good::countDown);
        assertTrue(bad.cancel());
        assertTrue(good.await(TIMEOUT_MS, TimeUnit.MILLISECONDS));
        assertTrue(ok.hasFired());
        assertFalse(ok.cancel());
        assertEquals(0, firedBad.get());
        assertEquals(0, onLoop(loop, loop::pendingTimers));
    }

    @Test
    void heapStressRandomTimersWithCancellation() throws Exception {
        int n = 2000;
        List<EventLoop.Timer> firedOrder = new ArrayList<>(); // loop thread only
        AtomicInteger firedCancelled = new AtomicInteger();
        CountDownLatch done = new CountDownLatch(1);
        onLoopRun(loop, () -> {
            Random rnd = new Random(42);
            List<EventLoop.Timer> timers = new ArrayList<>();
            boolean[] cancelled = new boolean[n];
            EventLoop.Timer[] self = new EventLoop.Timer[n];
            for (int i = 0; i < n; i++) {
                int idx = i;
                self[i] = loop.schedule(rnd.nextInt(60), () -> {
                    if (cancelled[idx]) {
                        firedCancelled.incrementAndGet();
                    }
                    firedOrder.add(self[idx]);
                });
                timers.add(self[i]);
            }
            // cancel a pseudo-random half (exercises removal from the middle of the heap)
            for (int i = 0; i < n; i += 2) {
                int j = (i * 7919) % n;
                cancelled[j] = timers.get(j).cancel();
            }
            loop.schedule(100, done::countDown);
        });
        assertTrue(done.await(TIMEOUT_MS, TimeUnit.MILLISECONDS));
        onLoopRun(loop, () -> {
            assertEquals(n / 2, firedOrder.size());
            assertEquals(0, firedCancelled.get());
            for (int i = 1; i < firedOrder.size(); i++) {
                assertTrue(firedOrder.get(i - 1).compareTo(firedOrder.get(i)) < 0, "timer order broken at " + i);
                assertTrue(firedOrder.get(i - 1).deadlineNanos() - firedOrder.get(i).deadlineNanos() <= 0);
            }
            assertEquals(0, loop.pendingTimers());
        });
    }

    @Test
    void throwingTaskAndTimerDoNotStopTheLoop() throws Exception {
        CountDownLatch after = new CountDownLatch(2);
        loop.execute(() -> {
            throw new IllegalStateException("boom (expected by test)");
        });
        loop.schedule(0, () -> {
            throw new IllegalStateException("timer boom (expected by test)");
        });
        loop.execute(after::countDown);
        loop.schedule(5, after::countDown);
        assertTrue(after.await(TIMEOUT_MS, TimeUnit.MILLISECONDS));
        assertTrue(loop.isRunning());
    }

    @Test
    void throwingIoHandlerDoesNotStopTheLoopAndLevelTriggeredRedelivers() throws Exception {
        int efd = LIBC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
        assertTrue(efd >= 0);
        ByteBuffer b = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        long addr = LibC.Native.address(b);
        AtomicInteger calls = new AtomicInteger();
        CountDownLatch drained = new CountDownLatch(1);
        try {
            onLoopRun(loop, () -> loop.register(efd, EventLoop.READ, (fd, ev) -> {
                assertEquals(efd, fd);
                assertTrue((ev & EventLoop.READ) != 0);
                if (calls.incrementAndGet() == 1) {
                    throw new IllegalStateException("handler boom (expected by test)");
                }
                assertEquals(8, LIBC.read(fd, addr, 8));
                assertEquals(5L, b.getLong(0));
                loop.unregister(fd);
                drained.countDown();
            }));
            b.putLong(0, 5L);
            assertEquals(8, LIBC.write(efd, addr, 8));
            assertTrue(drained.await(TIMEOUT_MS, TimeUnit.MILLISECONDS));
            assertEquals(2, calls.get());
            assertEquals(-1, (int) onLoop(loop, () -> loop.interest(efd)));
        } finally {
            LIBC.close(efd);
        }
    }

    @Test
    void modifyChangesInterest() throws Exception {
        int efd = LIBC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
        AtomicInteger writable = new AtomicInteger();
        CountDownLatch gotWrite = new CountDownLatch(1);
        try {
            onLoopRun(loop, () -> loop.register(efd, 0, (fd, ev) -> {
                if ((ev & EventLoop.WRITE) != 0) {
                    writable.incrementAndGet();
                    loop.modify(fd, 0); // level-triggered: must drop interest or spin
                    gotWrite.countDown();
                }
            }));
            assertEquals(0, (int) onLoop(loop, () -> loop.interest(efd)));
            onLoopRun(loop, () -> loop.modify(efd, EventLoop.WRITE)); // an eventfd is writable
            assertTrue(gotWrite.await(TIMEOUT_MS, TimeUnit.MILLISECONDS));
            assertEquals(0, (int) onLoop(loop, () -> loop.interest(efd)));
            assertEquals(1, writable.get());
            onLoopRun(loop, () -> loop.unregister(efd));
        } finally {
            LIBC.close(efd);
        }
    }

    @Test
    void registrationIsLoopThreadOnly() throws Exception {
        assertThrows(IllegalStateException.class, () -> loop.register(0, EventLoop.READ, (fd, ev) -> { }));
        assertThrows(IllegalStateException.class, () -> loop.unregister(0));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> onLoopRun(loop, () -> loop.register(1_000_000, EventLoop.READ, (fd, ev) -> { })));
        assertTrue(e.getMessage().contains("EBADF"), e.getMessage());
    }

    @Test
    void shutdownStopsTheLoop() throws Exception {
        EventLoop l = new EventLoop("short-lived");
        l.start();
        assertTrue(onLoop(l, () -> l.inLoop()));
        l.shutdown();
        assertTrue(l.awaitTermination(TIMEOUT_MS));
        assertFalse(l.isRunning());
        l.shutdown(); // idempotent
        EventLoop never = new EventLoop("never-started");
        never.shutdown();
        assertTrue(never.awaitTermination(0));
    }

    @Test
    @org.junit.jupiter.api.Timeout(60)
    void aHotLoopThatSpinsLosesNoEventAndNoTask() throws Exception {
        // Back-to-back round trips keep the loop "hot", so it polls without sleeping between
        // them; every byte must still be answered and cross-thread tasks must still run.
        echoRoundTrips(20_000, false);
    }

    @Test
    @org.junit.jupiter.api.Timeout(60)
    void aRelayHintedLoopLosesNoEventAndNoTask() throws Exception {
        // Every echo hints a relay, so the loop takes the long spin before each wait.
        echoRoundTrips(5_000, true);
    }

    /** One-byte round trips through an echo on the loop, with a task queued every 100. */
    private void echoRoundTrips(int rounds, boolean hintRelay) throws Exception {
        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        assertEquals(0, LibC.INSTANCE.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0,
                LibC.Native.address(sv)));
        int mine = sv.getInt(0);
        int loopSide = sv.getInt(4);
        ByteBuffer echo = ByteBuffer.allocateDirect(64);
        long echoAddr = LibC.Native.address(echo);
        onLoopRun(loop, () -> loop.register(loopSide, EventLoop.READ, (fd, ev) -> {
            long n = LibC.INSTANCE.read(fd, echoAddr, 64);
            if (n > 0) {
                LibC.INSTANCE.write(fd, echoAddr, n);
                if (hintRelay) {
                    loop.expectRelay();
                }
            }
        }));
        ByteBuffer b = ByteBuffer.allocateDirect(1);
        long addr = LibC.Native.address(b);
        AtomicInteger tasksRun = new AtomicInteger();
        for (int i = 0; i < rounds; i++) {
            b.put(0, (byte) i);
            assertEquals(1, LibC.INSTANCE.write(mine, addr, 1));
            if (i % 100 == 0) {
                loop.execute(tasksRun::incrementAndGet);
            }
            assertEquals(1, LibC.INSTANCE.read(mine, addr, 1), "round " + i); // blocking: the echo
            assertEquals((byte) i, b.get(0));
        }
        CountDownLatch last = new CountDownLatch(1);
        loop.execute(last::countDown);
        assertTrue(last.await(TIMEOUT_MS, TimeUnit.MILLISECONDS));
        assertEquals(rounds / 100, tasksRun.get());
        onLoopRun(loop, () -> loop.unregister(loopSide));
        LibC.INSTANCE.close(mine);
        LibC.INSTANCE.close(loopSide);
    }

    @Test
    void writeInterestIsCountedThroughEveryChange() throws Exception {
        // The relay spin is skipped while any fd waits for EPOLLOUT; the count must not drift.
        int a = LIBC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
        int b = LIBC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
        try {
            EventLoop.IoHandler none = (fd, ev) -> loop.modify(fd, 0); // an eventfd is always writable
            assertEquals(1, (int) onLoop(loop, () -> {
                loop.register(a, 0, none);
                loop.modify(a, EventLoop.READ | EventLoop.WRITE);
                loop.modify(a, EventLoop.WRITE); // still one
                return loop.writeArmedCount();
            }));
            assertEquals(0, (int) onLoop(loop, () -> {
                loop.modify(a, EventLoop.READ);
                return loop.writeArmedCount();
            }));
            assertEquals(2, (int) onLoop(loop, () -> {
                loop.modify(a, EventLoop.WRITE | EventLoop.READ);
                loop.register(b, EventLoop.WRITE, none);
                return loop.writeArmedCount();
            }));
            assertEquals(0, (int) onLoop(loop, () -> {
                loop.unregister(b);
                loop.forgetBeforeClose(a);
                loop.forgetBeforeClose(a); // idempotent
                loop.unregister(b);
                return loop.writeArmedCount();
            }));
        } finally {
            LIBC.close(a);
            LIBC.close(b);
        }
    }
}
