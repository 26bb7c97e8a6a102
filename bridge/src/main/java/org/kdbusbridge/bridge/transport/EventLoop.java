// Invariants: exactly one thread (the loop thread) runs every IoHandler, task and timer, and is the
// only thread that touches the epoll set, the fd->registration table (FdTable) and the timer heap;
// other threads only enqueue into a concurrent queue and poke the eventfd (WakeFd). Readiness is
// level-triggered; EPOLLHUP/EPOLLERR are always also reported as READ. A throwing handler/task/timer is logged and
// never kills the loop. The steady-state wakeup path allocates nothing: epoll results land in a
// preallocated direct buffer and are dispatched through an fd-indexed array.
package org.kdbusbridge.bridge.transport;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Single-threaded epoll event loop with cross-thread tasks and one-shot timers. */
public final class EventLoop {

    /** Interest/readiness bit: readable (EPOLLIN). Also set when the fd reports HUP or ERR. */
    public static final int READ = LibC.EPOLLIN;
    /** Interest/readiness bit: writable (EPOLLOUT). */
    public static final int WRITE = LibC.EPOLLOUT;
    /** Readiness-only bit: error condition on the fd (EPOLLERR); always comes with READ. */
    public static final int ERROR = LibC.EPOLLERR;
    /** Readiness-only bit: hang-up (EPOLLHUP); always comes with READ. */
    public static final int HUP = LibC.EPOLLHUP;

    private static final Logger LOG = LoggerFactory.getLogger(EventLoop.class);
    private static final int MAX_EVENTS = 256;

    /** Called on the loop thread when a registered fd is ready. */
    @FunctionalInterface
    public interface IoHandler {
        /**
         * @param fd          the ready fd
         * @param readyEvents bit set of {@link #READ}, {@link #WRITE}, {@link #ERROR}, {@link #HUP}
         */
        void onReady(int fd, int readyEvents);
    }

    /** A one-shot timer; {@link #cancel()} may be called from any thread, any number of times. */
    public static final class Timer implements Comparable<Timer> {
        private static final int PENDING = 0;
        private static final int FIRED = 1;
        private static final int CANCELLED = 2;
        private static final AtomicIntegerFieldUpdater<Timer> STATE =
                AtomicIntegerFieldUpdater.newUpdater(Timer.class, "state");

        private final EventLoop loop;
        private final Runnable task;
        private final long deadlineNanos;
        private final long seq;
        /** position in the loop's TimerHeap, -1 when not queued; loop thread only. */
        int heapIndex = -1;
        private volatile int state = PENDING;

        Timer(EventLoop loop, Runnable task, long deadlineNanos, long seq) {
            this.loop = loop;
            this.task = task;
            this.deadlineNanos = deadlineNanos;
            this.seq = seq;
        }

        /**
         * Cancels the timer. Returns true if this call prevented it from running (it had neither
         * started nor been cancelled before); in that case the task will never run. Off the loop
         * thread the removal from the heap is deferred to the loop thread.
         */
        public boolean cancel() {
            if (!STATE.compareAndSet(this, PENDING, CANCELLED)) {
                return false;
            }
            if (loop.inLoop()) {
                loop.heapRemove(this);
            } else {
                loop.execute(() -> loop.heapRemove(this));
            }
            return true;
        }

        public boolean isCancelled() {
            return state == CANCELLED;
        }

        /** True once the task has started running. */
        public boolean hasFired() {
            return state == FIRED;
        }

        /** Milliseconds until it is due (0 or less: due now); for a hand-over, which carries what is left. */
        public long remainingMillis() {
            return TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime());
        }

        /** System.nanoTime() based deadline (for tests/diagnostics). */
        long deadlineNanos() {
            return deadlineNanos;
        }

        /** Loop thread: claims the timer for running; false if it was cancelled. */
        private boolean claim() {
            return STATE.compareAndSet(this, PENDING, FIRED);
        }

        @Override
        public int compareTo(Timer o) {
            int c = Long.compare(deadlineNanos - o.deadlineNanos, 0);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }
    }

    private final String name;
    private final LibC libc = LibC.INSTANCE;
    private final int epfd;
    /** Wakes the loop from other threads; closes the loop's descriptors. */
    private final WakeFd wake;
    private final ByteBuffer events;      // MAX_EVENTS epoll_event structs
    private final long eventsAddr;

    private final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
    private final CountDownLatch terminated = new CountDownLatch(1);
    private volatile boolean running;
    private volatile boolean shutdownRequested;
    private volatile Thread thread;

    /** The registered fds; created with the epoll set. */
    private final FdTable fds;
    /** When to poll before blocking; see SpinPolicy. */
    private final SpinPolicy spin;

    private final TimerHeap timers = new TimerHeap();
    private long timerSeq;

    /**
     * The metrics' busy fraction: off unless asked for before start (two nanoTime reads per
     * iteration). Written on the loop thread, read there (the exposition renders on it).
     */
    private boolean accountTime;
    private long startNanos;
    private long waitNanos;

    /** A loop with the default spin budgets ({@link TransportSettings#DEFAULTS}). */
    public EventLoop(String name) {
        this(name, TransportSettings.DEFAULTS);
    }

    /** {@code settings}: the spin budgets and yield (the other fields are not the loop's). */
    public EventLoop(String name, TransportSettings settings) {
        this.name = Objects.requireNonNull(name, "name");
        int ep = libc.epoll_create1(LibC.EPOLL_CLOEXEC);
        if (ep < 0) {
            throw new IllegalStateException("epoll_create1: " + LibC.Native.strerror(LibC.Native.errno()));
        }
        int ev = libc.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        if (ev < 0) {
            int e = LibC.Native.errno();
            libc.close(ep);
            throw new IllegalStateException("eventfd: " + LibC.Native.strerror(e));
        }
        epfd = ep;
        wake = new WakeFd(this.name, libc, ev, ep);
        events = ByteBuffer.allocateDirect(MAX_EVENTS * LibC.Native.EPOLL_EVENT_SIZE).order(ByteOrder.nativeOrder());
        eventsAddr = LibC.Native.address(events);
        fds = new FdTable(this.name, libc, ep);
        spin = new SpinPolicy(settings, libc, ep, eventsAddr, MAX_EVENTS);
        // the eventfd uses generation 0 and is not in the table
        if (fds.ctl(LibC.EPOLL_CTL_ADD, ev, LibC.EPOLLIN, 0) < 0) {
            int e = LibC.Native.errno();
            libc.close(ev);
            libc.close(ep);
            throw new IllegalStateException("epoll_ctl(eventfd): " + LibC.Native.strerror(e));
        }
    }

    public String name() {
        return name;
    }

    /** Starts the loop thread. May be called once. */
    public synchronized void start() {
        if (thread != null) {
            throw new IllegalStateException("already started");
        }
        Thread t = new Thread(this::run, name);
        t.setDaemon(false);
        thread = t;
        running = true;
        t.start();
    }

    /** True when called on the loop thread. */
    public boolean inLoop() {
        return Thread.currentThread() == thread;
    }

    private void checkLoopThread() {
        Thread t = thread;
        if (t != null && t != Thread.currentThread()) {
            throw new IllegalStateException("not on event loop thread " + name);
        }
    }

    // ------------------------------------------------------------------ fds

    /**
     * Registers fd with interest {@code events} ({@link #READ}|{@link #WRITE}, may be 0: HUP/ERR are
     * still reported). Loop thread only (or before {@link #start()}).
     *
     * @throws IllegalStateException if epoll_ctl fails (e.g. bad fd, already registered)
     */
    public void register(int fd, int events, IoHandler h) {
        checkLoopThread();
        fds.register(fd, events, h);
    }

    /** Changes the interest set of a registered fd. Loop thread only. */
    public void modify(int fd, int events) {
        checkLoopThread();
        fds.modify(fd, events);
    }

    /** Current interest set of fd, or -1 if not registered. Loop thread only. */
    public int interest(int fd) {
        checkLoopThread();
        return fds.interest(fd);
    }

    /** Removes fd from the loop; no further events are delivered for it. Loop thread only. Idempotent. */
    public void unregister(int fd) {
        checkLoopThread();
        fds.unregister(fd);
    }

    /**
     * Forgets fd without the EPOLL_CTL_DEL syscall, for a caller that closes fd next and never
     * duplicated it: close drops it from the epoll set. Should a copy survive (a child between
     * fork and exec), its late events carry the old generation and are ignored.
     */
    public void forgetBeforeClose(int fd) {
        checkLoopThread();
        fds.forget(fd);
    }

    // ---------------------------------------------------------------- tasks

    /** Runs task on the loop thread soon (FIFO). Thread-safe. Tasks submitted after shutdown are dropped. */
    public void execute(Runnable task) {
        Objects.requireNonNull(task, "task");
        tasks.add(task);
        if (!inLoop()) {
            wake.wake();
        }
    }

    // --------------------------------------------------------------- timers

    /**
     * Runs task once on the loop thread after delayMillis (>= 0). Thread-safe; off the loop thread
     * the timer is inserted asynchronously. Timers with equal deadlines fire in scheduling order.
     */
    public Timer schedule(long delayMillis, Runnable task) {
        Objects.requireNonNull(task, "task");
        if (delayMillis < 0) {
            delayMillis = 0;
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(delayMillis);
        if (inLoop() || thread == null) {
            synchronized (this) { // only contended before start()
                Timer t = new Timer(this, task, deadline, timerSeq++);
                timers.add(t);
                return t;
            }
        }
        Timer t;
        synchronized (this) {
            t = new Timer(this, task, deadline, timerSeq++);
        }
        execute(() -> {
            if (t.state == Timer.PENDING) {
                timers.add(t);
            }
        });
        return t;
    }

    private void heapRemove(Timer t) {
        timers.remove(t);
    }

    /** Number of pending timers (loop thread only; for tests/diagnostics). */
    public int pendingTimers() {
        checkLoopThread();
        return timers.size();
    }

    // ----------------------------------------------------------------- loop

    /**
     * The caller just relayed a call or a reply between two peers, so more traffic is likely
     * within microseconds: the next wait spins for the longer budget. Loop thread only.
     */
    public void expectRelay() {
        spin.expectRelay();
    }

    /**
     * Keep {@link #busyNanos()} and {@link #runNanos()}: call before {@link #start()} (the
     * thread's start publishes it).
     */
    public void accountBusyTime() {
        if (thread != null) {
            throw new IllegalStateException("already started");
        }
        accountTime = true;
    }

    /** Time the loop has run (since its thread started), ns; loop thread; 0 unless accounted. */
    public long runNanos() {
        checkLoopThread();
        return accountTime && startNanos != 0 ? System.nanoTime() - startNanos : 0;
    }

    /**
     * Of {@link #runNanos()}, the time not spent waiting for events (epoll_wait and the spin
     * before it): handling I/O, tasks and timers. Loop thread; 0 unless accounted.
     */
    public long busyNanos() {
        checkLoopThread();
        return accountTime && startNanos != 0 ? Math.max(0, System.nanoTime() - startNanos - waitNanos) : 0;
    }

    /** Registrations with WRITE interest (loop thread only; for tests). */
    int writeArmedCount() {
        checkLoopThread();
        return fds.writeArmed();
    }

    private void run() {
        LOG.debug("{}: event loop started", name);
        startNanos = System.nanoTime();
        try {
            while (!shutdownRequested) {
                runTasks();
                if (shutdownRequested) {
                    break;
                }
                int timeout = computeTimeout();
                long w0 = accountTime ? System.nanoTime() : 0;
                int n = spin.spinBeforeWait(timeout, fds.writeArmed());
                if (n == 0) {
                    long t0 = System.nanoTime();
                    n = libc.epoll_wait(epfd, eventsAddr, MAX_EVENTS, timeout);
                    spin.waited(n, t0);
                }
                if (accountTime) {
                    waitNanos += System.nanoTime() - w0; // the spin counts as waiting: no event was handled
                }
                if (n < 0) {
                    int e = LibC.Native.errno();
                    if (e != LibC.EINTR) {
                        LOG.error("{}: epoll_wait: {}", name, LibC.Native.strerror(e));
                        break;
                    }
                    n = 0;
                }
                for (int i = 0; i < n; i++) {
                    dispatch(i);
                }
                runTimers();
            }
        } catch (Throwable t) {
            LOG.error("{}: event loop died", name, t);
        } finally {
            running = false;
            wake.closeAll();
            tasks.clear();
            LOG.debug("{}: event loop stopped", name);
            terminated.countDown();
        }
    }

    private void dispatch(int i) {
        int base = i * LibC.Native.EPOLL_EVENT_SIZE;
        int ev = events.getInt(base);
        long data = events.getLong(base + LibC.Native.EPOLL_DATA_OFFSET);
        int fd = (int) data;
        int gen = (int) (data >>> 32);
        if (gen == 0) {
            if (fd == wake.fd()) {
                wake.drain();
            }
            return;
        }
        IoHandler h = fds.handler(fd, gen);
        if (h == null) {
            return; // unregistered (or replaced) earlier in this batch
        }
        int ready = ev & (READ | WRITE | ERROR | HUP);
        if ((ev & (ERROR | HUP)) != 0) {
            ready |= READ;
        }
        try {
            h.onReady(fd, ready);
        } catch (Throwable t) {
            LOG.error("{}: handler for fd {} threw", name, fd, t);
        }
    }

    private void runTasks() {
        // bounded: tasks queued by tasks run in the next iteration, so I/O is not starved
        int budget = tasks.size();
        for (int i = 0; i < budget; i++) {
            Runnable r = tasks.poll();
            if (r == null) {
                break;
            }
            try {
                r.run();
            } catch (Throwable t) {
                LOG.error("{}: task threw", name, t);
            }
        }
    }

    private int computeTimeout() {
        if (!tasks.isEmpty()) {
            return 0;
        }
        if (timers.size() == 0) {
            return -1;
        }
        long delta = timers.peek().deadlineNanos - System.nanoTime();
        if (delta <= 0) {
            return 0;
        }
        long ms = (delta + 999_999L) / 1_000_000L;
        return ms > Integer.MAX_VALUE ? Integer.MAX_VALUE : (int) ms;
    }

    private void runTimers() {
        if (timers.size() == 0) {
            return;
        }
        long now = System.nanoTime();
        while (timers.size() > 0 && timers.peek().deadlineNanos - now <= 0) {
            Timer t = timers.poll();
            if (!t.claim()) {
                continue;
            }
            try {
                t.task.run();
            } catch (Throwable e) {
                LOG.error("{}: timer task threw", name, e);
            }
        }
    }

    // ------------------------------------------------------------- shutdown

    /**
     * Asks the loop to stop after the current iteration. Thread-safe, idempotent. Pending tasks and
     * timers are dropped; registered fds are NOT closed (their owners close them).
     */
    public void shutdown() {
        shutdownRequested = true;
        if (thread == null) {
            synchronized (this) {
                if (thread == null) {
                    wake.closeAll();
                    thread = Thread.currentThread(); // prevents a later start()
                    terminated.countDown();
                    return;
                }
            }
        }
        if (!inLoop()) {
            wake.write();
        }
    }

    /** Waits up to millis for the loop thread to finish; true if it has. */
    public boolean awaitTermination(long millis) throws InterruptedException {
        return terminated.await(millis, TimeUnit.MILLISECONDS);
    }

    /** True while the loop thread is running. */
    public boolean isRunning() {
        return running;
    }
}
