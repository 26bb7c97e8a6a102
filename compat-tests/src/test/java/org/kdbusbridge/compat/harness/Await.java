package org.kdbusbridge.compat.harness;

import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.time.Duration;
import java.util.Collection;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

/**
 * Waits on conditions with a deadline, woken by the events that change them (inotify for
 * files, process exit), never by a timer.
 */
public final class Await {
    private Await() {
    }

    /**
     * True once {@code condition} holds, re-checked whenever something is created, deleted or
     * written in one of {@code dirs} (a directory that does not exist yet is watched through its
     * parent until it appears); false at the deadline.
     */
    public static boolean files(BooleanSupplier condition, Duration limit, Path... dirs) {
        long deadline = System.nanoTime() + limit.toNanos();
        try (WatchService ws = FileSystems.getDefault().newWatchService()) {
            Set<Path> watched = new HashSet<>();
            while (true) {
                for (Path d : dirs) {
                    Path w = Files.isDirectory(d) ? d : d.getParent();
                    if (w != null && Files.isDirectory(w) && watched.add(w)) {
                        w.register(ws, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_DELETE,
                                StandardWatchEventKinds.ENTRY_MODIFY);
                    }
                }
                // Registered before the check: a change right after it still wakes us.
                if (condition.getAsBoolean()) {
                    return true;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                WatchKey k = ws.poll(left, TimeUnit.NANOSECONDS);
                if (k != null) {
                    k.pollEvents();
                    k.reset();
                }
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** True once every process in {@code pids} has exited (ProcessHandle's exit event); false at the deadline. */
    public static boolean exited(Collection<Long> pids, Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        for (long pid : pids) {
            var h = ProcessHandle.of(pid);
            if (h.isEmpty()) {
                continue;
            }
            try {
                h.get().onExit().get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                return false;
            } catch (ExecutionException e) {
                throw new IllegalStateException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }

    /**
     * Calls {@code onChange} on every change in {@code dir} (and once at the start) until the
     * returned service is closed: for sampling a state that only moves with files there.
     */
    public static WatchService onChanges(Path dir, Runnable onChange) throws IOException {
        WatchService ws = FileSystems.getDefault().newWatchService();
        dir.register(ws, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_DELETE,
                StandardWatchEventKinds.ENTRY_MODIFY);
        Thread t = new Thread(() -> {
            onChange.run();
            try {
                while (true) {
                    WatchKey k = ws.take();
                    k.pollEvents();
                    k.reset();
                    onChange.run();
                }
            } catch (ClosedWatchServiceException | InterruptedException e) {
                // closed: sampling ends
            }
        }, "await-changes");
        t.setDaemon(true);
        t.start();
        return ws;
    }
    /**
     * For a condition that itself blocks on a round trip (a call to a bus): checked again right
     * after each answer; false at the deadline.
     */
    public static boolean roundTrips(BooleanSupplier condition, Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
        }
        return true;
    }

    /**
     * For state with no event to wait on (another process's fd table in /proc): checked on every
     * turn, giving the CPU away in between so the process being waited for can run.
     */
    public static boolean yielding(BooleanSupplier condition, Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.yield();
        }
        return true;
    }
}
