// Invariants: exactly one thread (the loop thread) runs every IoHandler, task and timer, and is the
// only thread that touches the epoll set, the fd->registration table and the timer heap; other
// threads only enqueue into a concurrent queue and poke the eventfd. Readiness is level-triggered;
// EPOLLHUP/EPOLLERR are always also reported as READ. A throwing handler/task/timer is logged and
// never kills the loop. The steady-state wakeup path allocates nothing: epoll results land in a
// preallocated direct buffer and are dispatched through an fd-indexed array.
package org.kdbusbridge.bridge.transport;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
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

    private static final class Registration {
        final IoHandler handler;
        final int generation;
        int events;

        Registration(IoHandler handler, int generation, int events) {
            this.handler = handler;
            this.generation = generation;
            this.events = events;
        }
    }

    private final String name;
    private final LibC libc = LibC.INSTANCE;
    private final int epfd;
    private final int wakeFd;
    private final ByteBuffer events;      // MAX_EVENTS epoll_event structs
    private final long eventsAddr;
    private final ByteBuffer ctlEvent;    // one epoll_event for epoll_ctl
    private final long ctlEventAddr;
    private final ByteBuffer wakeReadBuf; // 8 bytes, loop thread
    private final long wakeReadAddr;
    private final long wakeWriteAddr;     // 8 bytes holding 1, shared read-only by all writers
    @SuppressWarnings("unused")
    private final ByteBuffer wakeWriteBuf; // keeps wakeWriteAddr's memory alive

    private final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean wakePending = new AtomicBoolean();
    private final Object fdLock = new Object();
    private boolean fdsClosed; // guarded by fdLock
    private final CountDownLatch terminated = new CountDownLatch(1);
    private volatile boolean running;
    private volatile boolean shutdownRequested;
    private volatile Thread thread;

    private Registration[] regs = new Registration[256];
    private int nextGeneration = 1;

    private final TimerHeap timers = new TimerHeap();
    private long timerSeq;

    /** A loop with the default spin budgets ({@link TransportSettings#DEFAULTS}). */
    public EventLoop(String name) {
        this(name, TransportSettings.DEFAULTS);
    }

    /** {@code settings}: the spin budgets and yield (the other fields are not the loop's). */
    public EventLoop(String name, TransportSettings settings) {
        this.name = Objects.requireNonNull(name, "name");
        this.spinNanos = settings.spinNanos();
        this.relaySpinNanos = settings.relaySpinNanos();
        this.spinYield = settings.spinYield();
        this.hotWaitNanos = 10 * spinNanos;
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
        wakeFd = ev;
        events = ByteBuffer.allocateDirect(MAX_EVENTS * LibC.Native.EPOLL_EVENT_SIZE).order(ByteOrder.nativeOrder());
        eventsAddr = LibC.Native.address(events);
        ctlEvent = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
        ctlEventAddr = LibC.Native.address(ctlEvent);
        wakeReadBuf = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        wakeReadAddr = LibC.Native.address(wakeReadBuf);
        wakeWriteBuf = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        wakeWriteBuf.putLong(0, 1L);
        wakeWriteAddr = LibC.Native.address(wakeWriteBuf);
        // the eventfd uses generation 0 and is not in the table
        if (ctl(LibC.EPOLL_CTL_ADD, wakeFd, LibC.EPOLLIN, 0) < 0) {
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
        Objects.requireNonNull(h, "handler");
        if (fd < 0) {
            throw new IllegalArgumentException("bad fd " + fd);
        }
        if (fd >= regs.length) {
            regs = Arrays.copyOf(regs, Math.max(fd + 1, regs.length * 2));
        }
        int gen = nextGeneration++;
        if (nextGeneration == 0) {
            nextGeneration = 1;
        }
        if (ctl(LibC.EPOLL_CTL_ADD, fd, events & (READ | WRITE), gen) < 0) {
            throw new IllegalStateException("epoll_ctl(ADD, fd " + fd + "): "
                    + LibC.Native.strerror(LibC.Native.errno()));
        }
        if (regs[fd] != null) {
            // the kernel accepted the ADD, so the old fd was closed without unregister()
            LOG.warn("{}: fd {} re-registered without unregister(); dropping the stale handler", name, fd);
            dropRegistration(fd);
        }
        regs[fd] = new Registration(h, gen, events & (READ | WRITE));
        if ((events & WRITE) != 0) {
            writeArmed++;
        }
    }

    /** Changes the interest set of a registered fd. Loop thread only. */
    public void modify(int fd, int events) {
        checkLoopThread();
        Registration r = fd >= 0 && fd < regs.length ? regs[fd] : null;
        if (r == null) {
            throw new IllegalStateException("fd " + fd + " not registered");
        }
        int ev = events & (READ | WRITE);
        if (ev == r.events) {
            return;
        }
        if (ctl(LibC.EPOLL_CTL_MOD, fd, ev, r.generation) < 0) {
            throw new IllegalStateException("epoll_ctl(MOD, fd " + fd + "): "
                    + LibC.Native.strerror(LibC.Native.errno()));
        }
        writeArmed += ((ev & WRITE) != 0 ? 1 : 0) - ((r.events & WRITE) != 0 ? 1 : 0);
        r.events = ev;
    }

    /** Current interest set of fd, or -1 if not registered. Loop thread only. */
    public int interest(int fd) {
        checkLoopThread();
        Registration r = fd >= 0 && fd < regs.length ? regs[fd] : null;
        return r == null ? -1 : r.events;
    }

    /** Removes fd from the loop; no further events are delivered for it. Loop thread only. Idempotent. */
    public void unregister(int fd) {
        checkLoopThread();
        if (fd < 0 || fd >= regs.length || regs[fd] == null) {
            return;
        }
        dropRegistration(fd);
        if (ctl(LibC.EPOLL_CTL_DEL, fd, 0, 0) < 0) {
            int e = LibC.Native.errno();
            // EBADF/ENOENT: fd already closed (the kernel dropped it from the set) - harmless
            if (e != LibC.EBADF && e != LibC.ENOENT) {
                LOG.warn("{}: epoll_ctl(DEL, fd {}): {}", name, fd, LibC.Native.strerror(e));
            }
        }
    }

    /**
     * Forgets fd without the EPOLL_CTL_DEL syscall, for a caller that closes fd next and never
     * duplicated it: close drops it from the epoll set. Should a copy survive (a child between
     * fork and exec), its late events carry the old generation and are ignored.
     */
    public void forgetBeforeClose(int fd) {
        checkLoopThread();
        if (fd >= 0 && fd < regs.length && regs[fd] != null) {
            dropRegistration(fd);
        }
    }

    private void dropRegistration(int fd) {
        if ((regs[fd].events & WRITE) != 0) {
            writeArmed--;
        }
        regs[fd] = null;
    }

    private int ctl(int op, int fd, int ev, int generation) {
        ctlEvent.putInt(0, ev);
        long data = ((long) generation << 32) | (fd & 0xffffffffL);
        ctlEvent.putLong(LibC.Native.EPOLL_DATA_OFFSET, data);
        return libc.epoll_ctl(epfd, op, fd, ctlEventAddr);
    }

    // ---------------------------------------------------------------- tasks

    /** Runs task on the loop thread soon (FIFO). Thread-safe. Tasks submitted after shutdown are dropped. */
    public void execute(Runnable task) {
        Objects.requireNonNull(task, "task");
        tasks.add(task);
        if (!inLoop()) {
            wakeup();
        }
    }

    private void wakeup() {
        if (wakePending.compareAndSet(false, true)) {
            writeWakeFd();
        }
    }

    private void writeWakeFd() {
        synchronized (fdLock) { // never write to the fd number after it was closed (and maybe reused)
            if (fdsClosed) {
                return;
            }
            long n = libc.write(wakeFd, wakeWriteAddr, 8);
            if (n < 0) {
                int e = LibC.Native.errno();
                if (e != LibC.EAGAIN) { // EAGAIN: counter saturated, loop is woken anyway
                    LOG.warn("{}: eventfd write: {}", name, LibC.Native.strerror(e));
                }
            }
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
                heapAdd(t);
                return t;
            }
        }
        Timer t;
        synchronized (this) {
            t = new Timer(this, task, deadline, timerSeq++);
        }
        execute(() -> {
            if (t.state == Timer.PENDING) {
                heapAdd(t);
            }
        });
        return t;
    }

    private void heapAdd(Timer t) {
        timers.add(t);
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
     * Adaptive spinning (the idle strategy of busy I/O loops such as Aeron's): before it blocks,
     * the loop may poll epoll without sleeping for a short budget. A sleeping loop costs each
     * message that arrives next a wake-up from an idle CPU (an IPI; slow in a VM), and the
     * sender waits through it. Two budgets:
     * <ul>
     * <li>spinNanos (5 us) while traffic is dense (the last sleep ended within hotWaitNanos).
     * That is about what a sleep and a wake-up cost the loop anyway, so it is CPU-neutral: on
     * 2 vCPUs connect + Hello + RequestName + close went from 0.95x to 1.07x dbus-broker's rate
     * at 0.97x its CPU per connection.</li>
     * <li>relaySpinNanos (30 us) right after the loop relayed a call or a reply between two
     * peers ({@link #expectRelay()}): the service's reply, or the caller's next call, is usually
     * that close. A synchronous call through the bus went from a p50 of 65 to 43 us (p99 0.74x
     * dbus-broker's; 20 us gave the same p50 and a p99 of 1.1x), for ~40 % more bus CPU per
     * call. Hinting only one of the two legs made it worse (75 us), so both are hinted. Not
     * while some connection waits for EPOLLOUT: then the loop waits for a slow reader, and a
     * spin would take CPU from it.</li>
     * </ul>
     * Between polls the loop yields its CPU (spinYield). An idle bus never spins, and a spin
     * that found nothing makes the next 1, 2, 4 ... 64 sleeps skip it, so a lone client calling
     * a slow service costs little CPU. -Dkdbus.spinMicros=N and -Dkdbus.relaySpinMicros=N set
     * the budgets; 0 turns either off (docs/performance.md; read by TransportSettings).
     */
    private final long spinNanos;
    private final long relaySpinNanos;
    /**
     * sched_yield(2) between polls. A Unix socket write wakes its reader with a "sync" hint,
     * so the scheduler often queues the reader on the writer's CPU, where a spinning loop kept
     * it waiting out the whole budget: the p50 of a synchronous call went to ~80 us in some
     * runs and connect fell to ~11k/s. Yielding lets it run at once. -Dkdbus.spinYield=false
     * turns it off.
     */
    private final boolean spinYield;
    private final long hotWaitNanos;
    /** How long the last blocking wait lasted before events came (MAX_VALUE: a timeout). */
    private long lastWaitNanos = Long.MAX_VALUE;
    private static final int MAX_SPIN_PENALTY = 64;
    /** Sleeps left before the next spin, and how many the last miss cost (doubles per miss). */
    private int spinSkip;
    private int spinPenalty;
    /** Set by expectRelay() since the last wait. */
    private boolean relayed;
    /** Registrations whose interest includes WRITE (connections with output the kernel refused). */
    private int writeArmed;

    /**
     * The caller just relayed a call or a reply between two peers, so more traffic is likely
     * within microseconds: the next wait spins for the longer budget. Loop thread only.
     */
    public void expectRelay() {
        relayed = true;
    }

    /** Registrations with WRITE interest (loop thread only; for tests). */
    int writeArmedCount() {
        checkLoopThread();
        return writeArmed;
    }

    /** The spin budget for the coming wait, in ns (0: block at once). */
    private long spinBudget(int timeout) {
        boolean relay = relayed;
        relayed = false;
        if (timeout == 0) {
            return 0;
        }
        if (relay && writeArmed == 0 && relaySpinNanos > 0) {
            return relaySpinNanos;
        }
        return lastWaitNanos < hotWaitNanos ? spinNanos : 0;
    }

    /** Polls (timeout 0) for up to budget ns; returns the events found, or 0. */
    private int spinPoll(long budget) {
        long start = System.nanoTime();
        do {
            int n = libc.epoll_wait(epfd, eventsAddr, MAX_EVENTS, 0);
            if (n != 0) {
                lastWaitNanos = System.nanoTime() - start;
                return n; // (n < 0: the blocking call below reports it)
            }
            if (spinYield) {
                libc.sched_yield();
            }
        } while (System.nanoTime() - start < budget);
        return 0;
    }

    private void run() {
        LOG.debug("{}: event loop started", name);
        try {
            while (!shutdownRequested) {
                runTasks();
                if (shutdownRequested) {
                    break;
                }
                int timeout = computeTimeout();
                int n = 0;
                long budget = spinBudget(timeout);
                if (budget > 0) {
                    if (spinSkip > 0) {
                        spinSkip--;
                    } else {
                        n = spinPoll(budget);
                        // A spin that finds nothing (a lone client calling one at a time) is
                        // CPU for nothing: back off exponentially, and start over on a hit.
                        spinPenalty = n != 0 ? 0 : Math.min(MAX_SPIN_PENALTY, Math.max(1, spinPenalty * 2));
                        spinSkip = spinPenalty;
                    }
                }
                if (n == 0) {
                    long t0 = System.nanoTime();
                    n = libc.epoll_wait(epfd, eventsAddr, MAX_EVENTS, timeout);
                    lastWaitNanos = n > 0 ? System.nanoTime() - t0 : Long.MAX_VALUE;
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
            closeFds();
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
            if (fd == wakeFd) {
                drainWakeFd();
            }
            return;
        }
        Registration r = fd >= 0 && fd < regs.length ? regs[fd] : null;
        if (r == null || r.generation != gen) {
            return; // unregistered (or replaced) earlier in this batch
        }
        int ready = ev & (READ | WRITE | ERROR | HUP);
        if ((ev & (ERROR | HUP)) != 0) {
            ready |= READ;
        }
        try {
            r.handler.onReady(fd, ready);
        } catch (Throwable t) {
            LOG.error("{}: handler for fd {} threw", name, fd, t);
        }
    }

    private void drainWakeFd() {
        long n = libc.read(wakeFd, wakeReadAddr, 8);
        if (n < 0) {
            int e = LibC.Native.errno();
            if (e != LibC.EAGAIN) {
                LOG.warn("{}: eventfd read: {}", name, LibC.Native.strerror(e));
            }
        }
        // Clear AFTER consuming the counter and BEFORE the next runTasks(): a task added before this
        // point is run by that runTasks(); an execute() after it wins the CAS and writes again.
        // (Clearing before the read could consume a write whose CAS left the flag set -> lost wakeup.)
        wakePending.set(false);
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
                    closeFds();
                    thread = Thread.currentThread(); // prevents a later start()
                    terminated.countDown();
                    return;
                }
            }
        }
        if (!inLoop()) {
            writeWakeFd();
        }
    }

    private void closeFds() {
        synchronized (fdLock) {
            if (!fdsClosed) {
                fdsClosed = true;
                libc.close(wakeFd);
                libc.close(epfd);
            }
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
