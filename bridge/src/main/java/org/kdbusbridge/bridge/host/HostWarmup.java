package org.kdbusbridge.bridge.host;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

import org.kdbusbridge.bridge.activation.ServiceProcessContext;
import org.kdbusbridge.bridge.cli.BusLaunch;
import org.kdbusbridge.bridge.client.BusConnection;
import org.kdbusbridge.bridge.config.ConfigCache;
import org.kdbusbridge.core.bus.UserQuota;

/**
 * Right after the host starts, on a background thread: private buses started, called (Hello,
 * ListNames) and stopped in a loop, the way fronts' buses are, so the JIT has compiled the
 * start path before the fronts need it. A bus's start runs each of its methods once, so the
 * first fronts would otherwise pay the interpreter (a hosted start took 3-7 ms for the first
 * few dozen buses). Bounded: {@link #ROUNDS} buses or {@link #MAX_MILLIS}, one at a time,
 * stopped at once when the host leaves. Nothing is printed.
 */
final class HostWarmup implements Runnable {
    static final int ROUNDS = 300;
    static final long MAX_MILLIS = 5000;
    static final String PREFIX = "kdbus-bridge-host-warmup";
    static final long STALE_MILLIS = 60_000;
    private static final Duration WAIT = Duration.ofSeconds(5);
    private final ConfigCache cache;
    private final UserQuota quota;
    private final BooleanSupplier leaving;

    HostWarmup(ConfigCache cache, UserQuota quota, BooleanSupplier leaving) {
        this.cache = cache;
        this.quota = quota;
        this.leaving = leaving;
    }

    @Override
    public void run() {
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream(), true);
        ThreadRoutedStream.route(quiet);
        Path dir = null;
        try {
            sweepStale(Path.of(System.getProperty("java.io.tmpdir")));
            dir = Files.createTempDirectory(PREFIX);
            Path conf = dir.resolve("bus.conf");
            Files.writeString(conf, "<busconfig><type>session</type><listen>unix:tmpdir=" + dir + "</listen>"
                    + "<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
                    + "<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>");
            Map<String, String> env = System.getenv();
            ServiceProcessContext children = new ServiceProcessContext(env, dir.toFile(),
                    ProcessBuilder.Redirect.DISCARD, ProcessBuilder.Redirect.DISCARD);
            long deadline = System.nanoTime() + MAX_MILLIS * 1_000_000L;
            for (int i = 0; i < ROUNDS && System.nanoTime() < deadline && !leaving.getAsBoolean(); i++) {
                BusLaunch launch = BusLaunch.hosted(new String[] {"--config-file=" + conf, "--nofork",
                        "--print-address"}, env, dir, quiet, cache);
                if (launch == null || launch.loadHosted() != 0
                        || launch.startHosted(quota, ProcessHandle.current().pid(), children) != 0) {
                    return;
                }
                try (BusConnection c = BusConnection.open(launch.address(), "warmup")) {
                    c.callDriver("ListNames", "", new Object[0], WAIT);
                } finally {
                    launch.stop();
                }
            }
        } catch (IOException | RuntimeException e) {
            // a host that could not warm up is only slower for its first buses
        } finally {
            ThreadRoutedStream.route(null);
            delete(dir);
        }
    }

    /**
     * A killed host's warm-up directory: ours, and untouched for a minute (a live warm-up makes
     * and removes a socket in its directory every few milliseconds, and lasts 5 s at most).
     */
    static void sweepStale(Path tmp) {
        long cutoff = System.currentTimeMillis() - STALE_MILLIS;
        Integer me = org.kdbusbridge.bridge.transport.LibC.INSTANCE.getuid();
        try (Stream<Path> s = Files.list(tmp)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                try {
                    if (p.getFileName().toString().startsWith(PREFIX) && Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)
                            && Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS).toMillis() < cutoff
                            && me.equals(Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS))) {
                        delete(p);
                    }
                } catch (IOException | RuntimeException e) {
                    // gone meanwhile
                }
            }
        } catch (IOException e) {
            // nothing to sweep
        }
    }

    private static void delete(Path dir) {
        if (dir == null) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            // a temporary directory left behind is harmless
        }
    }
}
