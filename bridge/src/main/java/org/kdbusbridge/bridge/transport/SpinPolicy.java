package org.kdbusbridge.bridge.transport;

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
 * peers ({@link EventLoop#expectRelay()}): the service's reply, or the caller's next call, is
 * usually that close. A synchronous call through the bus went from a p50 of 65 to 43 us (p99
 * 0.74x dbus-broker's; 20 us gave the same p50 and a p99 of 1.1x), for ~40 % more bus CPU per
 * call. Hinting only one of the two legs made it worse (75 us), so both are hinted. Not
 * while some connection waits for EPOLLOUT: then the loop waits for a slow reader, and a
 * spin would take CPU from it.</li>
 * </ul>
 * Between polls the loop yields its CPU (spinYield). An idle bus never spins, and a spin
 * that found nothing makes the next 1, 2, 4 ... 64 sleeps skip it, so a lone client calling
 * a slow service costs little CPU. -Dkdbus.spinMicros=N and -Dkdbus.relaySpinMicros=N set
 * the budgets; 0 turns either off (docs/performance.md; read by TransportSettings).
 *
 * Loop thread only. Invariants: 0 <= spinSkip <= spinPenalty <= MAX_SPIN_PENALTY; a wait with
 * a zero timeout never spins; nothing here allocates.
 */
final class SpinPolicy {
    private static final int MAX_SPIN_PENALTY = 64;

    private final LibC libc;
    private final int epfd;
    private final long eventsAddr;
    private final int maxEvents;
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
    /** Sleeps left before the next spin, and how many the last miss cost (doubles per miss). */
    private int spinSkip;
    private int spinPenalty;
    /** Set by expectRelay() since the last wait. */
    private boolean relayed;

    /** Polls {@code epfd} into the loop's {@code maxEvents} epoll_event structs at {@code eventsAddr}. */
    SpinPolicy(TransportSettings settings, LibC libc, int epfd, long eventsAddr, int maxEvents) {
        this.libc = libc;
        this.epfd = epfd;
        this.eventsAddr = eventsAddr;
        this.maxEvents = maxEvents;
        this.spinNanos = settings.spinNanos();
        this.relaySpinNanos = settings.relaySpinNanos();
        this.spinYield = settings.spinYield();
        this.hotWaitNanos = 10 * spinNanos;
    }

    /** See {@link EventLoop#expectRelay()}. */
    void expectRelay() {
        relayed = true;
    }

    /**
     * Before a wait of {@code timeout} ms with {@code writeArmed} fds waiting for EPOLLOUT:
     * spins if the budget and the back-off allow; returns the events found, or 0 (then block).
     */
    int spinBeforeWait(int timeout, int writeArmed) {
        long budget = spinBudget(timeout, writeArmed);
        if (budget <= 0) {
            return 0;
        }
        if (spinSkip > 0) {
            spinSkip--;
            return 0;
        }
        int n = spinPoll(budget);
        // A spin that finds nothing (a lone client calling one at a time) is
        // CPU for nothing: back off exponentially, and start over on a hit.
        spinPenalty = n != 0 ? 0 : Math.min(MAX_SPIN_PENALTY, Math.max(1, spinPenalty * 2));
        spinSkip = spinPenalty;
        return n;
    }

    /** After a blocking wait that began at {@code startNanos} and returned {@code n}. */
    void waited(int n, long startNanos) {
        lastWaitNanos = n > 0 ? System.nanoTime() - startNanos : Long.MAX_VALUE;
    }

    /** The spin budget for the coming wait, in ns (0: block at once). */
    private long spinBudget(int timeout, int writeArmed) {
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
            int n = libc.epoll_wait(epfd, eventsAddr, maxEvents, 0);
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
}
