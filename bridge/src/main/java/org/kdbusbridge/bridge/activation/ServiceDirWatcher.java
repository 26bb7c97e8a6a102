// Invariants: one daemon thread owns the WatchService and is the only thread calling the
// callback; the callback never runs concurrently with itself and runs at most once per quiet
// period: after the first event, further events are absorbed until none arrived for the debounce
// interval (bounded by 10 debounce intervals in total, so a constant trickle still notifies).
// Only directories that exist at start() are watched (like dbus-daemon's inotify watches); a
// watched directory that disappears triggers the callback and is then no longer watched. There
// is no periodic rescan. close() is idempotent and stops the thread.
package org.kdbusbridge.bridge.activation;

import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches service directories and calls a callback, debounced, when any of them changed.
 * The callback runs on the watcher's own thread: it may rescan a {@link ServiceRegistry} there
 * (blocking I/O is fine) and then hand the snapshot to the loop with {@code EventLoop.execute}.
 */
public final class ServiceDirWatcher implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ServiceDirWatcher.class);
    public static final Duration DEFAULT_DEBOUNCE = Duration.ofMillis(100);

    private final List<Path> dirs;
    private final Runnable onChange;
    private final long debounceNanos;
    private final WatchService ws;
    private final List<Path> watched = new ArrayList<>();
    private final Thread thread;
    private volatile boolean closed;

    /** Watches {@code dirs} with the default 100 ms debounce. Call {@link #start()}. */
    public ServiceDirWatcher(List<Path> dirs, Runnable onChange) throws IOException {
        this(dirs, onChange, DEFAULT_DEBOUNCE);
    }

    public ServiceDirWatcher(List<Path> dirs, Runnable onChange, Duration debounce) throws IOException {
        this.dirs = List.copyOf(dirs);
        this.onChange = Objects.requireNonNull(onChange, "onChange");
        this.debounceNanos = debounce.toNanos();
        this.ws = FileSystems.getDefault().newWatchService();
        this.thread = new Thread(this::run, "service-dir-watcher");
        this.thread.setDaemon(true);
    }

    /** Registers the existing directories and starts the thread. Returns the directories watched. */
    public synchronized List<Path> start() {
        if (thread.getState() != Thread.State.NEW) {
            throw new IllegalStateException("already started");
        }
        for (Path d : dirs) {
            if (!Files.isDirectory(d)) {
                LOG.debug("not watching {}: not a directory (yet)", d);
                continue;
            }
            try {
                d.register(ws, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_DELETE,
                        StandardWatchEventKinds.ENTRY_MODIFY);
                watched.add(d);
            } catch (IOException e) {
                LOG.warn("cannot watch service directory {}: {}", d, e.toString());
            }
        }
        thread.start();
        return List.copyOf(watched);
    }

    private void run() {
        try {
            while (!closed) {
                WatchKey key = ws.take();
                drain(key);
                long first = System.nanoTime();
                long quietUntil = first + debounceNanos;
                long hardDeadline = first + 10 * debounceNanos;
                while (true) {
                    long now = System.nanoTime();
                    long wait = Math.min(quietUntil, hardDeadline) - now;
                    if (wait <= 0) {
                        break;
                    }
                    WatchKey more = ws.poll(wait, TimeUnit.NANOSECONDS);
                    if (more == null) {
                        break;
                    }
                    drain(more);
                    quietUntil = System.nanoTime() + debounceNanos;
                }
                if (closed) {
                    break;
                }
                try {
                    onChange.run();
                } catch (RuntimeException e) {
                    LOG.error("service directory change callback threw", e);
                }
            }
        } catch (InterruptedException | ClosedWatchServiceException e) {
            // closing
        }
    }

    private static void drain(WatchKey key) {
        key.pollEvents(); // content doesn't matter: any event means "rescan" (OVERFLOW included)
        if (!key.reset()) {
            LOG.debug("service directory {} is no longer watched", key.watchable());
        }
    }

    /** Stops watching; the callback is not called after this returns (unless running right now). */
    @Override
    public void close() {
        closed = true;
        try {
            ws.close();
        } catch (IOException e) {
            LOG.debug("closing watch service: {}", e.toString());
        }
        thread.interrupt();
    }

    /** Waits for the watcher thread to end after {@link #close()} (tests). */
    boolean awaitStopped(long millis) throws InterruptedException {
        thread.join(millis);
        return !thread.isAlive();
    }
}
