package org.kdbusbridge.bridge.host;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.Set;

import org.kdbusbridge.bridge.config.ConfigCache;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.bridge.transport.UnixListener;
import org.kdbusbridge.core.bus.UserQuota;

/**
 * {@code kdbus-bridge host SOCKET}: the warm bus host. One long-lived JVM per user (and per
 * jar, JDK and JVM options: the front puts those in the socket's name) that runs private buses
 * for fronts (bridge/src/main/c/kdbus_front.c, exec'd by bin/dbus-daemon), so that a test
 * runner's bus-per-test costs a connect instead of a JVM start.
 *
 * <p>Bounds: at most {@link #MAX_BUSES} fronts at once (more are answered "not hostable" and run
 * a JVM of their own); each bus's quotas are computed from 1/MAX_BUSES of the heap and of the fd
 * limit, so all buses together stay within what one bus may use in a JVM of its own. The host
 * exits when it has had no front for {@code KDBUS_BRIDGE_HOST_IDLE_MS} (default 30 s), and, once
 * idle, when its jar was replaced (new fronts use a new socket name then). Only its own uid may
 * connect. Its own stdio is /dev/null; each bus's log lines go to its front's stderr.
 */
public final class BusHost {
    /** Fronts served at once. */
    public static final int MAX_BUSES = 16;
    static final long DEFAULT_IDLE_MS = 30_000;
    /** A front sends its request at once; one that has not within this is closed, freeing its thread. */
    static final long DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
    private static final long CHECK_MS = 1000;

    private final Path socket;
    private final long idleMillis;
    private final ConfigCache configCache;
    private final UserQuota quota;
    private final int logQueueBytes;
    private final long requestTimeoutMillis;
    private final Set<HostedBus> active = new HashSet<>();
    private final Path jar;
    private final String jarStamp;
    private long idleSince = System.nanoTime();
    private UnixListener listener;
    private EventLoop loop;
    private final Object done = new Object();
    private boolean finished;

    BusHost(Path socket, long idleMillis, ConfigCache configCache, int logQueueBytes, long requestTimeoutMillis) {
        this.socket = socket;
        this.logQueueBytes = logQueueBytes;
        this.requestTimeoutMillis = requestTimeoutMillis;
        this.idleMillis = idleMillis;
        this.configCache = configCache;
        long fdLimit = openFilesLimit();
        this.quota = UserQuota.forHeap(Runtime.getRuntime().maxMemory() / MAX_BUSES,
                System.getProperty(UserQuota.PER_USER_PROPERTY), System.getProperty(UserQuota.QUEUE_PER_USER_PROPERTY),
                fdLimit / MAX_BUSES);
        String cp = System.getProperty("java.class.path", "");
        this.jar = cp.isEmpty() || cp.contains(":") ? null : Path.of(cp);
        this.jarStamp = stamp(jar);
    }

    /** The subcommand: 0 after an idle exit or when another host holds the socket. */
    public static int run(String[] args) {
        if (args.length != 1 || !args[0].startsWith("/")) {
            System.err.println("usage: kdbus-bridge host /ABSOLUTE/SOCKET/PATH");
            return 1;
        }
        Path socket = Path.of(args[0]);
        String idle = System.getenv("KDBUS_BRIDGE_HOST_IDLE_MS");
        long idleMs = DEFAULT_IDLE_MS;
        try {
            if (idle != null) {
                idleMs = Math.max(100, Long.parseLong(idle));
            }
        } catch (NumberFormatException e) {
            // the default
        }
        try {
            checkDirectory(socket.getParent());
        } catch (IOException e) {
            System.err.println("kdbus-bridge host: " + e.getMessage());
            return 1;
        }
        try (FileChannel lockFile = FileChannel.open(Path.of(socket + ".lock"), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE)) {
            FileLock lock = lockFile.tryLock();
            if (lock == null) {
                return 0; // another host runs or is starting: the fronts use that one
            }
            ThreadRoutedStream.install();
            BusHost host = new BusHost(socket, idleMs, ConfigCache.in(System.getProperty("kdbus.cacheDir")),
                    LogQueue.DEFAULT_CAPACITY, DEFAULT_REQUEST_TIMEOUT_MS);
            host.serve();
            // Idle exit: the lock file goes too (one per jar/JDK/options key would pile up), while
            // still held, so a host starting now locks a new one.
            Files.deleteIfExists(Path.of(socket + ".lock"));
            return 0;
        } catch (IOException | RuntimeException e) {
            System.err.println("kdbus-bridge host: " + e);
            return 1;
        }
    }

    /** The socket's directory: ours and 0700, or nothing is served (another user could plant a socket). */
    static void checkDirectory(Path dir) throws IOException {
        Object owner = Files.getAttribute(dir, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        if (!(owner instanceof Integer uid) || uid != LibC.INSTANCE.getuid()) {
            throw new IOException(dir + " is not owned by this user");
        }
        if (!Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS).equals(EnumSet.of(
                PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_EXECUTE))) {
            throw new IOException(dir + " is not mode 0700");
        }
    }

    private void serve() throws IOException {
        Files.deleteIfExists(socket); // a dead host's: we hold the lock
        listener = UnixListener.bind(UnixAddress.path(socket.toString(), null)).processFds(false);
        loop = new EventLoop("kdbus-bridge-host");
        loop.start();
        int own = LibC.INSTANCE.getuid();
        loop.execute(() -> listener.start(loop, conn -> accept(conn, own)));
        loop.schedule(CHECK_MS, this::check);
        if (!"0".equals(System.getenv("KDBUS_BRIDGE_HOST_WARMUP"))) {
            Thread warm = new Thread(new HostWarmup(configCache, quota, this::leaving), "kdbus-bridge-host-warmup");
            warm.setDaemon(true);
            warm.start();
        }
        // Ended by a signal (SIGTERM, SIGINT): every bus stops first, so no socket file is left.
        Runtime.getRuntime().addShutdownHook(new Thread(this::stopAll, "kdbus-bridge-host-stop"));
        synchronized (done) {
            while (!finished) {
                try {
                    done.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
    }

    /** On the loop: one thread per front; other users, and fronts beyond the bound, are turned away. */
    private void accept(SocketConnection conn, int own) {
        if (conn.peer() == null || conn.peer().uid() != own) {
            conn.close();
            return;
        }
        HostedBus bus = new HostedBus(this, conn);
        synchronized (active) {
            if (active.size() >= MAX_BUSES) {
                byte[] no = HostProtocol.reply(HostProtocol.NOT_HOSTABLE, "the host runs " + MAX_BUSES + " buses");
                java.nio.ByteBuffer b = java.nio.ByteBuffer.allocateDirect(no.length).put(no).flip();
                try {
                    conn.write(b);
                } catch (IOException e) {
                    // it falls back either way
                }
                conn.close();
                return;
            }
            active.add(bus);
        }
        Thread t = new Thread(bus, "kdbus-bridge-host-bus");
        t.setDaemon(true);
        t.start();
    }

    private void stopAll() {
        java.util.concurrent.CountDownLatch closed = new java.util.concurrent.CountDownLatch(1);
        loop.execute(() -> {
            listener.close(); // on the loop, as every other use of the listener
            closed.countDown();
        });
        try {
            closed.await(1, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        java.util.List<HostedBus> buses;
        synchronized (active) {
            buses = new java.util.ArrayList<>(active);
        }
        buses.forEach(HostedBus::stopNow);
    }

    void finished(HostedBus bus) {
        synchronized (active) {
            active.remove(bus);
            if (active.isEmpty()) {
                idleSince = System.nanoTime();
            }
        }
    }

    /** On the loop, every second: exit once idle long enough, or idle with the jar replaced. */
    private void check() {
        boolean idle;
        long idleFor;
        synchronized (active) {
            idle = active.isEmpty();
            idleFor = (System.nanoTime() - idleSince) / 1_000_000;
        }
        boolean replaced = !jarStamp.equals(stamp(jar));
        if (idle && (idleFor >= idleMillis || replaced)) {
            listener.close(); // the socket file goes first: a front arriving now starts a new host
            synchronized (active) {
                if (!active.isEmpty()) { // accepted in between: serve it, check again later
                    loop.schedule(CHECK_MS, this::check);
                    return;
                }
            }
            synchronized (done) {
                finished = true;
                done.notifyAll();
            }
            return;
        }
        loop.schedule(CHECK_MS, this::check);
    }

    private static String stamp(Path jar) {
        if (jar == null) {
            return "";
        }
        try {
            return Files.size(jar) + "/" + Files.getLastModifiedTime(jar).toMillis();
        } catch (IOException e) {
            return "gone";
        }
    }

    /** RLIMIT_NOFILE's soft limit from /proc/self/limits (the JVM raised it to the hard one), 0 if unknown. */
    static long openFilesLimit() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/limits"))) {
                if (line.startsWith("Max open files")) {
                    String[] f = line.substring("Max open files".length()).trim().split("\\s+");
                    return f[0].equals("unlimited") ? 1 << 20 : Long.parseLong(f[0]);
                }
            }
        } catch (IOException | RuntimeException e) {
            // unknown
        }
        return 0;
    }

    private boolean leaving() {
        synchronized (done) {
            return finished;
        }
    }

    ConfigCache configCache() {
        return configCache;
    }

    /** How long a front has to send its whole request. */
    long requestTimeoutMillis() {
        return requestTimeoutMillis;
    }

    /** The bound of each bus's stderr queue (LogQueue), bytes. */
    int logQueueBytes() {
        return logQueueBytes;
    }

    UserQuota quotaPerBus() {
        return quota;
    }

    /** This process's namespace link, e.g. "mnt:[4026531840]"; a front in another one runs its own JVM. */
    static String namespace(String kind) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/self/ns/" + kind)).toString();
        } catch (IOException | UnsupportedOperationException e) {
            return "?";
        }
    }
}
