package org.kdbusbridge.compat.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.kdbusbridge.compat.harness.Addresses;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Issue 19's pause benchmark: the longest stall a client sees during a live hand-over, and what
 * it costs the bus in CPU, with N idle connections. Our bus runs through {@code bin/kdbus-bridge}
 * (the shipped launcher and JVM options, so Reexec execs the launcher again). The runner holds N
 * connections that said Hello and then stay idle (raw sockets, SASL + Hello pipelined, 64 at a
 * time), a prober that sends {@code org.freedesktop.DBus.Peer.Ping} to the driver every 1 ms and
 * records the longest gap between two answers, and a trigger connection that calls
 * {@code Extensions1.Reexec}. Per hand-over it reports: the longest gap (and when it ended,
 * relative to the Reexec reply), the Reexec call's time,
 * the check run's time and the pause as the new program logs them, and the bus process's CPU
 * (utime + stime of {@code /proc/PID/stat}, the same pid across the exec) and its reaped
 * children's (cutime + cstime: the check run) from just before the call to 200 answered pings
 * after its reply. After each hand-over every connection is checked: ListNames lists each
 * holder's unique name (and no other but the prober's and the trigger's) and no holder socket
 * reads end-of-file. One bus per N, with the repetitions as hand-overs in a row.
 *
 * <p>Not part of any test run: {@code bin/kdbus-bridge-bench --profile handover [--conns
 * 10,1000,5000] [--reps 3] [--java-home DIR] [--out FILE.md]}. See docs/performance.md.
 */
public final class HandOverPauseBench {
    private static final String EXT = "org.kdbusbridge.Extensions1";
    private static final Duration REEXEC = Duration.ofSeconds(120);
    private static final Pattern DONE = Pattern.compile(
            "hand-over \\(reexec\\) from \\S+ done: (\\d+) connections, \\d+ names, check (-?\\d+) ms, pause (\\d+) ms \\(restore (\\d+) ms\\)");
    /** Answered pings after the Reexec reply before the gap and the CPU are read. */
    private static final int AFTER_PINGS = 200;

    private HandOverPauseBench() { }

    /** One hand-over's figures. */
    record Row(int conns, int rep, long callMs, double gapMs, double afterReplyMs, long checkMs, long pauseMs, long restoreMs,
            long busCpuMs, long childCpuMs, long pings, String load, int loggedConns) { }

    static final class Cfg {
        Path root = Path.of(".").toAbsolutePath().normalize();
        Path work;
        Path out;
        int reps = 3;
        List<Integer> conns = List.of(10, 1_000, 5_000);
        String javaHome;
        String jvmOpts;
    }

    public static void main(String[] args) throws Exception {
        Cfg cfg = new Cfg();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--root" -> cfg.root = Path.of(args[++i]).toAbsolutePath().normalize();
                case "--work" -> cfg.work = Path.of(args[++i]).toAbsolutePath();
                case "--out" -> cfg.out = Path.of(args[++i]).toAbsolutePath();
                case "--reps" -> cfg.reps = Integer.parseInt(args[++i]);
                case "--conns" -> cfg.conns = Arrays.stream(args[++i].split(",")).map(String::trim).map(Integer::parseInt).toList();
                case "--java-home" -> cfg.javaHome = args[++i];
                case "--our-jvm-opts" -> cfg.jvmOpts = args[++i];
                case "--loadgen" -> i++; // bin/kdbus-bridge-bench passes it to every profile; not used here
                default -> {
                    System.err.println("usage: HandOverPauseBench [--root DIR] [--work DIR] [--out FILE.md] [--reps N]"
                            + " [--conns 10,1000,5000] [--java-home DIR] [--our-jvm-opts S]");
                    System.exit(2);
                }
            }
        }
        if (cfg.work == null) {
            cfg.work = cfg.root.resolve("compat-tests/target/bench");
        }
        Files.createDirectories(cfg.work);
        if (cfg.out == null) {
            cfg.out = cfg.work.resolve("handover-pause.md");
        }
        String started = Instant.now().toString();
        String jdk = javaVersion(cfg.javaHome);
        System.out.printf("hand-over pause: conns=%s reps=%d jdk=%s loadavg=%s%n", cfg.conns, cfg.reps, jdk,
                BenchProcesses.loadavg());
        List<Row> rows = new ArrayList<>();
        for (int n : cfg.conns) {
            rows.addAll(runBus(cfg, n));
        }
        StringBuilder md = new StringBuilder();
        md.append("Hand-over pause, ").append(started).append(", ").append(jdk).append(", ")
                .append(Runtime.getRuntime().availableProcessors()).append(" CPUs\n\n");
        md.append("| connections | rep | longest ping gap ms | gap end - Reexec reply ms | Reexec call ms | check ms (log) "
                + "| pause ms (log) | restore ms (log) | bus CPU ms | check CPU ms | pings | load (1, 5, 15 min) |\n");
        md.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for (Row r : rows) {
            md.append(String.format(Locale.ROOT, "| %,d | %d | %.1f | %.1f | %d | %d | %d | %d | %d | %d | %d | %s |%n",
                    r.conns(), r.rep(), r.gapMs(), r.afterReplyMs(), r.callMs(), r.checkMs(), r.pauseMs(), r.restoreMs(), r.busCpuMs(),
                    r.childCpuMs(), r.pings(), r.load()));
        }
        Files.writeString(cfg.out, md);
        System.out.print(md);
        System.out.println("written to " + cfg.out);
    }

    private static String javaVersion(String javaHome) {
        Path release = Path.of(javaHome != null ? javaHome : System.getProperty("java.home"), "release");
        try {
            for (String l : Files.readAllLines(release)) {
                if (l.startsWith("JAVA_VERSION=")) {
                    return "JDK " + l.substring(13).replace("\"", "") + (javaHome == null ? " (java on PATH)" : " (" + javaHome + ")");
                }
            }
        } catch (IOException e) {
            // fall through
        }
        return javaHome == null ? "java on PATH" : javaHome;
    }

    private static String config(Path dir, int n) throws IOException {
        Path sock = dir.resolve("bus");
        int max = n + 100;
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                + " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n"
                + "  <type>session</type>\n  <listen>unix:path=" + sock + "</listen>\n  <auth>EXTERNAL</auth>\n"
                + "  <limit name=\"max_completed_connections\">" + max + "</limit>\n"
                + "  <limit name=\"max_connections_per_user\">" + max + "</limit>\n"
                + "  <limit name=\"max_incomplete_connections\">256</limit>\n"
                + "  <policy context=\"default\">\n    <allow user=\"*\"/>\n    <allow own=\"*\"/>\n"
                + "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow eavesdrop=\"true\"/>\n"
                + "  </policy>\n</busconfig>\n");
        return conf.toString();
    }

    /** One bus with {@code n} idle connections, handed over {@code cfg.reps} times in a row. */
    private static List<Row> runBus(Cfg cfg, int n) throws Exception {
        Path dir = Files.createTempDirectory(cfg.work, "handover-" + n + "-");
        List<String> argv = List.of(cfg.root.resolve("bin/kdbus-bridge").toString(), "--config-file=" + config(dir, n),
                "--nofork", "--print-address");
        ProcessBuilder pb = new ProcessBuilder(argv);
        Map<String, String> env = pb.environment();
        env.remove("DBUS_SESSION_BUS_ADDRESS");
        env.remove("DBUS_SYSTEM_BUS_ADDRESS");
        env.put("KDBUS_BRIDGE_HOST", "0");
        if (cfg.javaHome != null) {
            env.put("JAVA_HOME", cfg.javaHome);
        }
        if (cfg.jvmOpts != null) {
            env.put("KDBUS_BRIDGE_JAVA_OPTS", cfg.jvmOpts);
        }
        Path stderr = dir.resolve("bus.stderr");
        pb.redirectError(stderr.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        Process bus = pb.start();
        long pid = bus.pid();
        List<Row> rows = new ArrayList<>();
        List<java.nio.channels.SocketChannel> holders = new ArrayList<>();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(bus.getInputStream(), StandardCharsets.UTF_8));
            String address = out.readLine();
            if (address == null || !address.startsWith("unix:")) {
                throw new IOException("no address from the bus:\n" + Files.readString(stderr));
            }
            RawClient prober = RawClient.connectHello(address, Duration.ofSeconds(30));
            RawClient trigger = RawClient.connectHello(address, Duration.ofSeconds(30));
            long t0 = System.nanoTime();
            Set<String> names = openIdle(Addresses.unixPath(address), n, holders);
            System.out.printf("  %,d idle connections in %d ms%n", n, (System.nanoTime() - t0) / 1_000_000);
            Set<String> expected = new HashSet<>(names);
            expected.add(prober.uniqueName());
            expected.add(trigger.uniqueName());
            verify(trigger, expected, holders);

            Prober p = new Prober(prober);
            Thread pt = new Thread(p, "prober");
            pt.setDaemon(true);
            pt.start();
            p.awaitAnswers(500, Duration.ofSeconds(30)); // the prober runs before the first measurement
            long hz = BenchProcesses.clockTicksPerSecond();
            for (int rep = 1; rep <= cfg.reps; rep++) {
                String load = BenchProcesses.loadavg();
                load = String.join(", ", Arrays.asList(load.split(" ")).subList(0, 3));
                long[] cpu0 = cpu(pid);
                p.maxGapNs.set(0);
                long c0 = System.nanoTime();
                Message r = trigger.call(Message.call(RawClient.BUS, RawClient.BUS_PATH, EXT, "Reexec"), REEXEC);
                long replyNs = System.nanoTime();
                long callMs = (replyNs - c0) / 1_000_000;
                if (r == null || r.type != Message.METHOD_RETURN) {
                    throw new IOException("Reexec: " + r + "\n" + Files.readString(stderr));
                }
                long answered = p.answers.get();
                p.awaitAnswers(answered + AFTER_PINGS, Duration.ofSeconds(60));
                long[] cpu1 = cpu(pid);
                double gapMs = p.maxGapNs.get() / 1e6;
                double afterReplyMs = (p.gapEndNs - replyNs) / 1e6;
                if (p.error != null) {
                    throw new IOException("the prober failed across the hand-over", p.error);
                }
                Matcher m = awaitDone(stderr, rep, Duration.ofSeconds(60));
                verify(trigger, expected, holders);
                Row row = new Row(n, rep, callMs, gapMs, afterReplyMs, Long.parseLong(m.group(2)), Long.parseLong(m.group(3)),
                        Long.parseLong(m.group(4)), (cpu1[0] - cpu0[0]) * 1000 / hz, (cpu1[1] - cpu0[1]) * 1000 / hz,
                        p.answers.get(), load, Integer.parseInt(m.group(1)));
                if (row.loggedConns() != n + 2) {
                    throw new IOException("the new program carried " + row.loggedConns() + " connections, not " + (n + 2));
                }
                rows.add(row);
                System.out.printf(Locale.ROOT, "  %,d conns rep %d: gap %.1f ms (ends %.1f ms after the reply), Reexec %d ms, check %d ms, pause %d ms, "
                        + "bus CPU %d ms, check CPU %d ms, load %s; all %d connections still there%n", n, rep, gapMs, afterReplyMs, callMs,
                        row.checkMs(), row.pauseMs(), row.busCpuMs(), row.childCpuMs(), load, n);
            }
            p.stop.set(true);
            pt.join(10_000);
            trigger.close();
            prober.close();
        } finally {
            for (var h : holders) {
                h.close();
            }
            bus.destroy(); // SIGTERM: the bus removes its socket and exits 0
            if (!bus.waitFor(30, TimeUnit.SECONDS)) {
                bus.destroyForcibly();
            }
        }
        BenchProcesses.deleteTree(dir);
        return rows;
    }

    /** utime + stime of the process, and cutime + cstime (children it has reaped), in clock ticks. */
    private static long[] cpu(long pid) throws IOException {
        String s = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
        return new long[] {Long.parseLong(f[11]) + Long.parseLong(f[12]), Long.parseLong(f[13]) + Long.parseLong(f[14])};
    }

    /** The {@code rep}-th success line of the bus's log. */
    private static Matcher awaitDone(Path stderr, int rep, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            List<Matcher> done = new ArrayList<>();
            for (String l : Files.readAllLines(stderr)) {
                Matcher m = DONE.matcher(l);
                if (m.find()) {
                    done.add(m);
                }
            }
            if (done.size() >= rep) {
                return done.get(rep - 1);
            }
            if (System.nanoTime() > deadline) {
                throw new IOException("no hand-over line " + rep + " in the bus's log:\n" + Files.readString(stderr));
            }
            LockSupport.parkNanos(10_000_000L); // polling the log file, with a deadline
        }
    }

    /** ListNames has exactly these unique names, and no holder socket has been closed by the bus. */
    private static void verify(RawClient c, Set<String> expected, List<java.nio.channels.SocketChannel> holders)
            throws IOException {
        Message r = c.callBus("ListNames", REEXEC, "");
        if (r == null || r.type != Message.METHOD_RETURN) {
            throw new IOException("ListNames: " + r);
        }
        Set<String> unique = new HashSet<>();
        for (Object o : (List<?>) r.arg(0)) {
            if (String.valueOf(o).startsWith(":")) {
                unique.add(String.valueOf(o));
            }
        }
        if (!unique.equals(expected)) {
            Set<String> missing = new HashSet<>(expected);
            missing.removeAll(unique);
            throw new IOException("ListNames: " + unique.size() + " unique names, expected " + expected.size()
                    + "; missing e.g. " + missing.stream().limit(5).toList());
        }
        ByteBuffer sink = ByteBuffer.allocate(4096);
        for (var h : holders) {
            h.configureBlocking(false);
            int got;
            do {
                sink.clear();
                got = h.read(sink);
            } while (got > 0);
            if (got < 0) {
                throw new IOException("a holder connection was closed by the bus");
            }
        }
    }

    /**
     * {@code n} connections, each SASL EXTERNAL + BEGIN + Hello written at once, 64 at a time,
     * then each reply read up to Hello's answer; returns the unique names. The NameAcquired signal
     * stays in the socket; the bus holds nothing for them.
     */
    static Set<String> openIdle(String path, int n, List<java.nio.channels.SocketChannel> out) throws IOException {
        byte[] hello = Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "Hello").encode(1);
        byte[] auth = RawClient.authLine();
        byte[] begin = "BEGIN\r\n".getBytes(StandardCharsets.US_ASCII);
        ByteBuffer first = ByteBuffer.allocate(auth.length + begin.length + hello.length).put(auth).put(begin).put(hello);
        Set<String> names = new HashSet<>();
        UnixDomainSocketAddress addr = UnixDomainSocketAddress.of(path);
        for (int i = 0; i < n; i += 64) {
            List<java.nio.channels.SocketChannel> batch = new ArrayList<>();
            for (int j = i; j < Math.min(n, i + 64); j++) {
                var ch = java.nio.channels.SocketChannel.open(addr);
                ByteBuffer b = first.duplicate().flip();
                while (b.hasRemaining()) {
                    ch.write(b);
                }
                batch.add(ch);
            }
            for (var ch : batch) {
                names.add(readHelloReply(ch));
                out.add(ch);
            }
        }
        if (names.size() != n) {
            throw new IOException(names.size() + " distinct unique names for " + n + " connections");
        }
        return names;
    }

    /** Reads "OK guid\r\n" and the first message (Hello's reply), returns the unique name it carries. */
    private static String readHelloReply(java.nio.channels.SocketChannel ch) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8192);
        int lineEnd = -1;
        while (true) {
            if (ch.read(b) < 0) {
                throw new IOException("the bus closed a connection during SASL/Hello");
            }
            byte[] a = b.array();
            if (lineEnd < 0) {
                for (int k = 1; k < b.position(); k++) {
                    if (a[k - 1] == '\r' && a[k] == '\n') {
                        lineEnd = k + 1;
                        break;
                    }
                }
                if (lineEnd > 0 && !new String(a, 0, 3, StandardCharsets.US_ASCII).equals("OK ")) {
                    throw new IOException("SASL: " + new String(a, 0, lineEnd, StandardCharsets.US_ASCII).trim());
                }
            }
            if (lineEnd > 0 && b.position() >= lineEnd + 16) {
                ByteBuffer h = ByteBuffer.wrap(a, lineEnd, b.position() - lineEnd).slice()
                        .order(a[lineEnd] == 'B' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN);
                int bodyLen = h.getInt(4);
                int fieldsLen = h.getInt(12);
                int bodyAt = 16 + ((fieldsLen + 7) & ~7);
                if (h.limit() >= bodyAt + bodyLen) {
                    if (h.get(1) != Message.METHOD_RETURN) {
                        throw new IOException("Hello was not answered with a return (type " + h.get(1) + ")");
                    }
                    int len = h.getInt(bodyAt);
                    return new String(a, lineEnd + bodyAt + 4, len, StandardCharsets.UTF_8);
                }
            }
            if (!b.hasRemaining()) {
                throw new IOException("Hello's reply does not fit in " + b.capacity() + " bytes");
            }
        }
    }

    /** Pings the driver every 1 ms (blocking round trips on its own connection); the longest gap between answers. */
    static final class Prober implements Runnable {
        final RawClient c;
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicLong maxGapNs = new AtomicLong();
        final AtomicLong answers = new AtomicLong();
        /** When the longest gap so far ended (the first answer after it). */
        volatile long gapEndNs;
        volatile IOException error;

        Prober(RawClient c) {
            this.c = c;
        }

        @Override
        public void run() {
            long last = System.nanoTime();
            long next = last;
            while (!stop.get()) {
                try {
                    Message r = c.call(Message.call(RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Peer", "Ping"),
                            REEXEC);
                    if (r == null || r.type != Message.METHOD_RETURN) {
                        throw new IOException("Ping: " + r);
                    }
                    c.clearLog(); // await scans the log: keep it short
                } catch (IOException e) {
                    error = e;
                    return;
                }
                long now = System.nanoTime();
                if (now - last > maxGapNs.get()) {
                    maxGapNs.set(now - last);
                    gapEndNs = now;
                }
                last = now;
                synchronized (this) {
                    answers.incrementAndGet();
                    notifyAll();
                }
                next += 1_000_000L;
                if (next < now) {
                    next = now + 1_000_000L; // after a stall: 1 ms from now, not a burst to catch up
                }
                LockSupport.parkNanos(next - now);
            }
        }

        /** Waits until {@code count} pings were answered (a condition, with a deadline). */
        synchronized void awaitAnswers(long count, Duration timeout) throws IOException, InterruptedException {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (answers.get() < count) {
                if (error != null) {
                    throw error;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IOException("the prober got " + answers.get() + " answers, not " + count);
                }
                wait(Math.max(1, left / 1_000_000));
            }
        }
    }
}
