package org.kdbusbridge.bridge.server;

import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.core.bus.Bus;

/**
 * Memory goes back after a burst: every {@link MemoryReclaimer#CHECK_INTERVAL_MILLIS} the loop
 * asks the {@link MemoryReclaimer} whether it is quiet after growth, and if so trims the spare
 * direct buffers and collects; quiet without growth, it still trims the spares (no GC). Loop thread only; re-schedules itself for the bus's life.
 */
final class MemoryWatch {
    private final Bus bus;
    private final DirectBuffers buffers;
    private final EventLoop loop;
    private final SessionFlusher flusher;
    private final MemoryReclaimer reclaimer = new MemoryReclaimer(
            MemoryReclaimer.DEFAULT_QUIET_NANOS, MemoryReclaimer.DEFAULT_GROWTH_BYTES,
            MemoryReclaimer.DEFAULT_QUIET_EVENTS);

    /** Looks taken so far (tests). */
    private long looks;

    /** {@code flusher}: its socket-event count tells whether the loop is busy. */
    MemoryWatch(BusServer server, SessionFlusher flusher) {
        this.bus = server.bus();
        this.buffers = server.buffers();
        this.loop = server.loop();
        this.flusher = flusher;
    }

    /** Loop thread: the first check. */
    void start() {
        loop.schedule(MemoryReclaimer.CHECK_INTERVAL_MILLIS, this::checkMemory);
    }

    /** What the core's ledgers hold for clients: rules, names, reply slots and queued messages. */
    private long accounted() {
        return bus.quotaUsedTotal() + bus.queued().totalBytes();
    }

    /** Trim and collect once the loop is quiet after a burst. */
    private void checkMemory() {
        Runtime rt = Runtime.getRuntime();
        looks++;
        if (reclaimer.shouldReclaim(System.nanoTime(), flusher.ioEvents(), rt.totalMemory(), buffers.heldBytes(),
                buffers.highBytes(), accounted())) {
            buffers.trimSpares();
            System.gc(); // uncommits the heap's free part (-XX:-ShrinkHeapInSteps); the loop is idle
            buffers.resetHigh();
            reclaimer.reclaimed(rt.totalMemory(), buffers.heldBytes(), accounted());
        } else if (reclaimer.shouldTrimSpares(System.nanoTime(), buffers.spareTotalBytes())) {
            buffers.trimSpares(); // no GC needed: spares are released at once
        }
        loop.schedule(MemoryReclaimer.CHECK_INTERVAL_MILLIS, this::checkMemory);
    }

    /** How many times it has looked (tests; loop thread). */
    long looks() {
        return looks;
    }

    /** How many reclaims it has made (tests; loop thread). */
    long reclaims() {
        return reclaimer.reclaimCount();
    }
}
