package org.kdbusbridge.compat.bench;

import static org.kdbusbridge.compat.bench.BenchProcesses.*;
import static org.kdbusbridge.compat.bench.BenchReport.*;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.kdbusbridge.compat.harness.LineReader;

/**
 * Issue 7's benchmark: dbus-daemon, dbus-broker and kdbus-bridge, each started FRESH for every
 * repetition, interleaved (the order rotates per repetition), driven by the native sd-bus load
 * generator {@code kbb-load} (compat-tests/src/main/c/kbb-load.c) in separate processes.
 *
 * <p>Per bus and repetition: start-up to first Hello, then with one echo service: pipelined calls
 * (4 callers x 32 in flight), sync ping-pong (p50/p99), 1 MiB {@code ay} echo, fd passing (a pipe
 * fd per call), signal fan-out (10 subscribers, 100 unrelated rules each), 1 MiB signal fan-out (10
 * subscribers; CPU per delivered MiB, issue 5) and connect + Hello +
 * RequestName + close; on our bus only, issue 17's "metadata" cost (small signals to one raw
 * subscriber, not opted in vs AttachMetadata(creds,seq), alternating); issue 18's "endpoint" cost
 * (sync and pipelined calls from behind a {@code --filter --talk} sandbox front vs direct, see
 * {@link #endpoint}). Daemon CPU per op = delta(utime+stime) of the bus's process tree from
 * /proc over the measured window / ops; peak RSS = VmHWM from /proc/PID/status; for our bus the
 * GC log ({@code -Xlog:gc*:file=}) gives the longest pause inside the pipelined window.
 * Readiness is always a condition (a printed address, a READY line, a Hello answered), never a sleep.
 *
 * <p>Run through {@code bin/kdbus-bridge-bench}; not part of any test run.
 */
public final class BusBenchmark {
    static final Duration STEP = Duration.ofSeconds(180);
    static final String ECHO_NAME = "org.kdbusbridge.BenchEcho";
    static final Pattern RESULT = Pattern.compile(
            "RESULT calls=(\\d+) startNs=(\\d+) endNs=(\\d+) p50ns=(\\d+) p99ns=(\\d+)");
    static final Pattern PAUSE = Pattern.compile("\\[gc\\s*\\].*Pause.* ([0-9]+(?:\\.[0-9]+)?)ms\\s*$");

    /** Options. */
    static final class Config {
        Path root = Path.of(".").toAbsolutePath().normalize();
        Path loadgen;
        Path work;
        Path out;
        int reps = 3;
        double scale = 1.0;
        String ourJvmOpts = "";
        /** --check-metrics: our bus serves --kdbus-metrics and the pipelined workload checks it (MetricsCheck). */
        boolean checkMetrics;
        List<Contender> buses = List.of(Contender.values());

        int n(int base) {
            return Math.max(1, (int) Math.round(base * scale));
        }
    }

    /** One metric: key, label, unit, whether higher is better, and the target vs dbus-broker. */
    record Metric(String key, String label, boolean higherBetter, String target) {}

    static final List<Metric> METRICS = List.of(
            new Metric("pipe_cps", "pipelined calls, 4 clients x 32 in flight: calls/s", true, ">= 1.0x"),
            new Metric("pipe_cpu", "pipelined: daemon CPU us/call", false, "<= 1.0x"),
            new Metric("fan_dps", "signal fan-out, 10 subs + 100 unrelated rules each: delivered/s", true, ">= 1.0x"),
            new Metric("fan_cpu", "fan-out: daemon CPU us/delivered", false, "<= 1.0x"),
            new Metric("bigfan_mbps", "1 MiB signal fan-out to 10 subscribers: delivered MiB/s", true, ">= 1.0x"),
            new Metric("bigfan_cpu", "1 MiB fan-out: daemon CPU us per delivered MiB", false, "<= 1.0x"),
            new Metric("mib_mbps", "1 MiB ay echo: MiB/s", true, ">= 1.0x"),
            new Metric("mib_cpu", "1 MiB echo: daemon CPU us per call", false, "<= 1.0x"),
            new Metric("conn_ps", "connect + Hello + RequestName + close: per s", true, ">= 1.0x"),
            new Metric("conn_cpu", "connect: daemon CPU us/connection", false, "<= 1.0x"),
            new Metric("meta_off_cpu", "metadata: 1 subscriber not opted in: bus CPU us/delivered (ours only)", false, ""),
            new Metric("meta_on_cpu", "metadata: the subscriber asked AttachMetadata(creds,seq): bus CPU us/delivered", false, ""),
            new Metric("meta_extra_ns", "metadata: extra bus CPU ns per delivered message (on - off)", false, ""),
            new Metric("fd_cps", "fd passing (pipe fd per call, 8 in flight): calls/s", true, ">= 1.0x"),
            new Metric("fd_cpu", "fd passing: daemon CPU us/call", false, ""),
            new Metric("sync_p50", "sync ping-pong p50 us", false, ""),
            new Metric("sync_p99", "sync ping-pong p99 us", false, ""),
            new Metric("sync_cps", "sync ping-pong calls/s", true, ">= 1.0x"),
            new Metric("sync_cpu", "sync ping-pong: daemon CPU us/call", false, ""),
            new Metric("metrics_msgs", "metrics check (--check-metrics, ours): message counts that differ from the load", false, "ours 0"),
            new Metric("metrics_in_pct", "metrics check: bus bytes in vs the callers' sent bytes, worst caller, %", false, "ours within 1 %"),
            new Metric("metrics_out_pct", "metrics check: bus bytes out vs the callers' received bytes, worst caller, %", false, "ours within 1 %"),
            new Metric("rss_pipe", "peak RSS after pipelined (VmHWM) MiB", false, "ours < 64 MiB"),
            new Metric("rss_end", "peak RSS at end of run (VmHWM) MiB", false, ""),
            new Metric("startup", "start-up to first Hello, s", false, ""),
            new Metric("gc_pipe", "longest GC pause in pipelined window, ms", false, "ours <= 5 ms"),
            new Metric("gc_all", "longest GC pause over the whole run, ms", false, ""));

    /** The "endpoint" workload's two call patterns: name, key prefix, callers' in-flight, calls per leg (scale 1). */
    record EndpointMode(String label, String key, int inflight, int calls) {}

    static final List<EndpointMode> ENDPOINT_MODES = List.of(
            new EndpointMode("sync ping-pong (1 in flight)", "ep_sync", 1, 20000),
            new EndpointMode("pipelined (1 caller x 32 in flight)", "ep_pipe", 32, 100000));

    /**
     * Issue 18's numbers per mode: direct ("_d"), through the front ("_f"), the front process's own
     * CPU ("_fcpu") and the ratios front / direct ("_r"). Rendered in their own table (BenchReport).
     */
    static final List<Metric> ENDPOINT_METRICS = endpointMetrics();

    /** Everything a repetition may hold: medians and the per-repetition lines cover both lists. */
    static final List<Metric> ALL_METRICS = concat(METRICS, ENDPOINT_METRICS);

    private static List<Metric> endpointMetrics() {
        List<Metric> l = new ArrayList<>();
        for (EndpointMode em : ENDPOINT_MODES) {
            String k = em.key();
            String n = "endpoint " + em.label() + ": ";
            l.add(new Metric(k + "_cps_d", n + "calls/s direct", true, ""));
            l.add(new Metric(k + "_cps_f", n + "calls/s through the front", true, ""));
            l.add(new Metric(k + "_cps_r", n + "calls/s front / direct", true, ""));
            l.add(new Metric(k + "_p50_d", n + "p50 us direct", false, ""));
            l.add(new Metric(k + "_p50_f", n + "p50 us through the front", false, ""));
            l.add(new Metric(k + "_p50_r", n + "p50 front / direct", false, "ours <= 1.1x"));
            l.add(new Metric(k + "_cpu_d", n + "bus CPU us/call direct", false, ""));
            l.add(new Metric(k + "_cpu_f", n + "bus + front CPU us/call through the front", false, ""));
            l.add(new Metric(k + "_fcpu", n + "of which the front process, us/call", false, ""));
            l.add(new Metric(k + "_cpu_r", n + "CPU per call front / direct", false, "ours <= 1.1x"));
        }
        return List.copyOf(l);
    }

    private static List<Metric> concat(List<Metric> a, List<Metric> b) {
        List<Metric> l = new ArrayList<>(a);
        l.addAll(b);
        return List.copyOf(l);
    }

    /** The front for dbus-daemon and dbus-broker: the real proxy, a process on the message path. */
    static final Path XDG_DBUS_PROXY = Path.of("/usr/bin/xdg-dbus-proxy");

    public static void main(String[] args) throws Exception {
        Config cfg = new Config();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--root" -> cfg.root = Path.of(args[++i]).toAbsolutePath().normalize();
                case "--loadgen" -> cfg.loadgen = Path.of(args[++i]).toAbsolutePath();
                case "--work" -> cfg.work = Path.of(args[++i]).toAbsolutePath();
                case "--out" -> cfg.out = Path.of(args[++i]).toAbsolutePath();
                case "--reps" -> cfg.reps = Integer.parseInt(args[++i]);
                case "--scale" -> cfg.scale = Double.parseDouble(args[++i]);
                case "--our-jvm-opts" -> cfg.ourJvmOpts = args[++i];
                case "--check-metrics" -> cfg.checkMetrics = true;
                case "--workloads" -> ONLY.addAll(Arrays.asList(args[++i].split(",")));
                case "--buses" -> cfg.buses = Arrays.stream(args[++i].split(",")).map(Contender::parse).toList();
                default -> {
                    System.err.println("usage: BusBenchmark --loadgen PATH [--root DIR] [--work DIR] [--out FILE.md]"
                            + " [--reps N] [--scale X] [--buses dbus-daemon,dbus-broker,kdbus-bridge] [--our-jvm-opts S]"
                            + " [--workloads W,...] [--check-metrics]");
                    System.exit(2);
                }
            }
        }
        if (cfg.loadgen == null || !Files.isExecutable(cfg.loadgen)) {
            throw new IllegalArgumentException("--loadgen must name the compiled kbb-load");
        }
        if (cfg.work == null) {
            cfg.work = cfg.root.resolve("compat-tests/target/bench");
        }
        Files.createDirectories(cfg.work);
        if (cfg.out == null) {
            cfg.out = cfg.work.resolve("results.md");
        }
        long tickUs = 1_000_000L / clockTicksPerSecond();
        System.out.printf("bus benchmark: reps=%d scale=%.2f buses=%s nproc=%d clock tick=%d us loadavg=%s%n",
                cfg.reps, cfg.scale, cfg.buses, Runtime.getRuntime().availableProcessors(), tickUs, loadavg());

        Map<Contender, List<Map<String, Double>>> runs = new LinkedHashMap<>();
        for (Contender c : cfg.buses) {
            runs.put(c, new ArrayList<>());
        }
        for (int r = 0; r < cfg.reps; r++) {
            for (int j = 0; j < cfg.buses.size(); j++) {
                Contender c = cfg.buses.get((j + r) % cfg.buses.size()); // interleaved, rotated
                Map<String, Double> m = once(c, cfg, tickUs, r);
                runs.get(c).add(m);
                System.out.printf("rep %d %-12s %s%n", r + 1, c, format(m));
            }
        }
        Map<Contender, Map<String, Double>> med = new LinkedHashMap<>();
        for (var e : runs.entrySet()) {
            med.put(e.getKey(), medians(e.getValue()));
        }
        String md = markdown(cfg, med, runs);
        Files.writeString(cfg.out, md);
        System.out.println();
        System.out.println(md);
        System.out.println("written to " + cfg.out);
    }

    // ------------------------------------------------------------------ one repetition of one bus

    static Map<String, Double> once(Contender kind, Config cfg, long tickUs, int rep) throws Exception {
        Path dir = Files.createTempDirectory(cfg.work, kind.label + "-r" + (rep + 1) + "-");
        Map<String, Double> m = new HashMap<>();
        String address = "unix:path=" + dir.resolve("bus");
        List<Client> clients = new ArrayList<>();
        Process bus = null;
        try (Client probe = Client.start(cfg, "probe", dir.resolve("bus").toString())) {
            probe.awaitReady();
            Map<String, String> env = new HashMap<>();
            List<String> argv = kind.command(dir, cfg, env);
            ProcessBuilder pb = new ProcessBuilder(argv).redirectError(dir.resolve("bus.stderr.log").toFile());
            pb.environment().remove("DBUS_SESSION_BUS_ADDRESS");
            pb.environment().remove("DBUS_STARTER_ADDRESS");
            pb.environment().putAll(env);
            long t0 = System.nanoTime();
            bus = pb.start();
            LineReader busOut = new LineReader(bus.getInputStream(), kind.label);
            String hello = probe.await("RESULT helloNs=");
            m.put("startup", (Long.parseLong(hello.substring("RESULT helloNs=".length()).trim()) - t0) / 1e9);
            if (kind.printsAddress() && busOut.awaitLine(l -> l.startsWith("unix:"), STEP) == null) {
                throw new IllegalStateException(kind + " printed no address; stderr:\n"
                        + Files.readString(dir.resolve("bus.stderr.log")));
            }
            long pid = bus.pid();
            Path gcLog = dir.resolve("gc.log");

            Client echo = Client.start(cfg, "echo", address, ECHO_NAME);
            clients.add(echo);
            String echoName = nameOf(echo.awaitReady());

            // warm-up, the same for every bus (our JIT is the one that needs it)
            runCallers(cfg, address, pid, tickUs, 2, cfg.n(20000), 16, 64, false);
            // ... and of the connect path (auth, Hello, names, teardown), which calls never reach
            connectLoop(cfg, address, pid, tickUs, 2, cfg.n(1000));

            // pipelined: 4 callers x 32 in flight
            long gcFrom = size(gcLog);
            step(kind, "pipelined", () -> {
                Path metrics = kind == Contender.KDBUS_BRIDGE && cfg.checkMetrics ? dir.resolve("metrics") : null;
                MetricsCheck.Outcome[] checked = new MetricsCheck.Outcome[1];
                long[] pipe = runCallers(cfg, address, pid, tickUs, 4, cfg.n(40000), 32, 64, false, metrics, echoName,
                        checked);
                m.put("pipe_cps", pipe[0] * 1e9 / pipe[1]);
                m.put("pipe_cpu", pipe[4] / (double) pipe[0]);
                if (checked[0] != null) {
                    MetricsCheck.Outcome o = checked[0];
                    o.lines().forEach(System.out::println);
                    System.out.println(o.summary());
                    synchronized (CHECKS) {
                        CHECKS.add(kind + ": pipelined: " + o.summary());
                    }
                    m.put("metrics_msgs", (double) o.mismatches().size());
                    m.put("metrics_in_pct", o.worstInPct());
                    m.put("metrics_out_pct", o.worstOutPct());
                    if (!o.ok()) {
                        throw new IllegalStateException(o.summary() + ": " + String.join("; ", o.mismatches()));
                    }
                }
            });
            m.put("rss_pipe", peakRssKiB(kind, pid) / 1024.0);
            if (kind == Contender.KDBUS_BRIDGE) {
                m.put("gc_pipe", maxPause(gcLog, gcFrom));
            }
            step(kind, "sync ping-pong", () -> {
                long[] sync = runCallers(cfg, address, pid, tickUs, 1, cfg.n(20000), 1, 64, false);
                m.put("sync_p50", sync[2] / 1000.0);
                m.put("sync_p99", sync[3] / 1000.0);
                m.put("sync_cps", sync[0] * 1e9 / sync[1]);
                m.put("sync_cpu", sync[4] / (double) sync[0]); // the relay spin's price
            });
            step(kind, "1 MiB echo", () -> { // 2 in flight
                long[] mib = runCallers(cfg, address, pid, tickUs, 1, cfg.n(600), 2, 1 << 20, false);
                m.put("mib_mbps", mib[0] * 1e9 / mib[1]);
                m.put("mib_cpu", mib[4] / (double) mib[0]);
            });
            step(kind, "signal fan-out", () -> { // 10 subscribers with 100 unrelated rules each
                long[] fan = fanOut(cfg, address, pid, tickUs, 10, 100, cfg.n(20000), 256, 64);
                m.put("fan_dps", fan[0] * 1e9 / fan[1]);
                m.put("fan_cpu", fan[4] / (double) fan[0]);
            });
            step(kind, "1 MiB signal fan-out", () -> { // 10 subscribers, 4 signals per window
                long[] big = fanOut(cfg, address, pid, tickUs, 10, 0, cfg.n(600), 4, 1 << 20);
                m.put("bigfan_mbps", big[0] * 1e9 / big[1]); // one delivered signal = 1 MiB
                m.put("bigfan_cpu", big[4] / (double) big[0]);
            });
            step(kind, "connect", () -> { // connect + Hello + RequestName + close, 2 clients
                long[] conn = connectLoop(cfg, address, pid, tickUs, 2, cfg.n(6000));
                m.put("conn_ps", conn[0] * 1e9 / conn[1]);
                m.put("conn_cpu", conn[4] / (double) conn[0]);
            });
            if (kind == Contender.KDBUS_BRIDGE) { // AttachMetadata is ours (issue 17)
                step(kind, "metadata", () -> {
                    Path socket = dir.resolve("bus");
                    int signals = cfg.n(200000);
                    metadataFan(cfg, socket, pid, tickUs, META_ITEMS, cfg.n(20000)); // JIT warm-up of the opted-in path
                    long offCpu = 0;
                    long onCpu = 0;
                    long delivered = 0;
                    for (int pair = 0; pair < 2; pair++) { // alternating, so drift hits both alike
                        offCpu += metadataFan(cfg, socket, pid, tickUs, List.of(), signals)[4];
                        onCpu += metadataFan(cfg, socket, pid, tickUs, META_ITEMS, signals)[4];
                        delivered += signals;
                    }
                    m.put("meta_off_cpu", offCpu / (double) delivered);
                    m.put("meta_on_cpu", onCpu / (double) delivered);
                    m.put("meta_extra_ns", (onCpu - offCpu) * 1000.0 / delivered);
                });
            }
            step(kind, "endpoint", () -> endpoint(kind, cfg, dir, address, pid, tickUs, m));
            step(kind, "fd passing", () -> { // a pipe fd on every call, 8 in flight; last: it may wedge a bus
                long[] fd = runCallers(cfg, address, pid, tickUs, 1, cfg.n(15000), 8, 64, true);
                m.put("fd_cps", fd[0] * 1e9 / fd[1]);
                m.put("fd_cpu", fd[4] / (double) fd[0]);
            });

            m.put("rss_end", peakRssKiB(kind, pid) / 1024.0);
            if (kind == Contender.KDBUS_BRIDGE) {
                m.put("gc_all", maxPause(gcLog, 0));
            }
            if (!bus.isAlive()) {
                throw new IllegalStateException(kind + " died during the run");
            }
            return m;
        } finally {
            clients.forEach(Client::close);
            if (bus != null) {
                stop(bus);
            }
            if (!Boolean.getBoolean("bench.keep")) {
                deleteTree(dir);
            }
        }
    }

    /**
     * Issue 18: a caller behind a sandbox front started with {@code --filter --talk=ECHO_NAME} (ours:
     * bin/kdbus-bridge-proxy, which makes an endpoint of the bus and stays off the message path;
     * dbus-daemon and dbus-broker: /usr/bin/xdg-dbus-proxy, whose CPU counts with the bus's and is
     * also kept apart) against the same caller connected directly. Legs alternate direct, front
     * (three pairs per mode), so drift and background load hit both alike.
     */
    static void endpoint(Contender kind, Config cfg, Path dir, String address, long pid, long tickUs,
                         Map<String, Double> m) throws Exception {
        Path front = kind == Contender.KDBUS_BRIDGE ? cfg.root.resolve("bin/kdbus-bridge-proxy") : XDG_DBUS_PROXY;
        try (Client hidden = Client.start(cfg, "echo", address, HIDDEN_NAME);
             BenchFront f = BenchFront.start(front, address, dir, List.of("--talk=" + ECHO_NAME))) {
            hidden.awaitReady();
            // the filter is really on: a service outside --talk answers directly, not through the front
            if (!oneCall(cfg, address, HIDDEN_NAME) || oneCall(cfg, f.address(), HIDDEN_NAME)) {
                throw new IllegalStateException("the front does not filter: " + HIDDEN_NAME + " reachable through it");
            }
            long[] direct = {pid};
            long[] fronted = {pid, f.pid()};
            // warm-up of the filtered path (our endpoint's checks need the JIT like the rest)
            callers(cfg, f.address(), fronted, tickUs, 1, cfg.n(40000), 16);
            callers(cfg, f.address(), fronted, tickUs, 1, cfg.n(5000), 1);
            for (EndpointMode em : ENDPOINT_MODES) {
                int calls = cfg.n(em.calls());
                long[] d = new long[5];
                long[] t = new long[6];
                double dP50 = 0;
                double tP50 = 0;
                int legs = 3; // pairs: CPU is counted in clock ticks, so each side gets enough of them
                for (int leg = 0; leg < legs; leg++) {
                    long[] a = callers(cfg, address, direct, tickUs, 1, calls, em.inflight());
                    long[] b = callers(cfg, f.address(), fronted, tickUs, 1, calls, em.inflight());
                    add(d, a);
                    add(t, b);
                    dP50 += a[2] / 1000.0 / legs;
                    tP50 += b[2] / 1000.0 / legs;
                }
                if (!f.isAlive()) {
                    throw new IllegalStateException("the front died: " + f.logText());
                }
                String k = em.key();
                double dCps = d[0] * 1e9 / d[1];
                double tCps = t[0] * 1e9 / t[1];
                double dCpu = d[4] / (double) d[0];
                double tCpu = (t[4] + t[5]) / (double) t[0];
                m.put(k + "_cps_d", dCps);
                m.put(k + "_cps_f", tCps);
                m.put(k + "_cps_r", tCps / dCps);
                m.put(k + "_p50_d", dP50);
                m.put(k + "_p50_f", tP50);
                m.put(k + "_p50_r", tP50 / dP50);
                m.put(k + "_cpu_d", dCpu);
                m.put(k + "_cpu_f", tCpu);
                m.put(k + "_fcpu", t[5] / (double) t[0]);
                m.put(k + "_cpu_r", dCpu == 0 ? Double.NaN : tCpu / dCpu);
            }
        }
    }

    /** Sums calls, wall time and CPU; p50/p99 (indices 2, 3) are left to the caller. */
    private static void add(long[] sum, long[] r) {
        for (int i = 0; i < sum.length; i++) {
            if (i != 2 && i != 3) {
                sum[i] += r[i];
            }
        }
    }

    /** A second echo service, which the front's {@code --talk} leaves out. */
    static final String HIDDEN_NAME = "org.kdbusbridge.BenchHidden";

    /** Whether one Echo call to {@code name} on {@code address} is answered (kbb-load rawcall). */
    static boolean oneCall(Config cfg, String address, String name) throws Exception {
        try (Client c = Client.start(cfg, "rawcall", address, name, "1", "1", "64")) {
            c.awaitReady();
            c.go();
            c.await("RESULT");
            return true;
        } catch (IllegalStateException refused) {
            return false;
        }
    }

    /**
     * n callers of 64-byte Echo on {@code address}; returns measure()'s array, one CPU figure per pid.
     * kbb-load's rawcall, not call: xdg-dbus-proxy 0.1.4 cannot take sd-bus's pipelined SASL
     * handshake (flatpak/xdg-dbus-proxy#21), and every leg, direct or fronted, uses the same client.
     */
    static long[] callers(Config cfg, String address, long[] pids, long tickUs, int n, int calls, int inflight)
            throws Exception {
        List<Client> cs = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                cs.add(Client.start(cfg, "rawcall", address, ECHO_NAME, Integer.toString(inflight),
                        Integer.toString(calls), "64"));
            }
            long[] r = measure(cs, pids, tickUs, (long) n * calls);
            for (int i = 4; i < r.length; i++) {
                if (r[i] < 0) { // a descendant's ticks left the sum with it
                    throw new IllegalStateException("CPU of pid " + pids[i - 4] + " went down over the window:"
                            + " a child process exited in it (class-data cache training?)");
                }
            }
            return r;
        } finally {
            cs.forEach(Client::close);
        }
    }

    interface Step {
        void run() throws Exception;
    }

    /** Failures per bus and workload ("bus: workload: message"), reported under the table. */
    static final List<String> FAILURES = new ArrayList<>();

    /** --workloads: the step names to run (e.g. "1 MiB signal fan-out"); empty = all. */
    static final List<String> ONLY = new ArrayList<>();

    /** Runs one workload; a failure is recorded and the run goes on (its metrics stay empty). */
    static void step(Contender kind, String workload, Step s) {
        if (!ONLY.isEmpty() && !ONLY.contains(workload)) {
            return;
        }
        try {
            s.run();
        } catch (Exception e) {
            String msg = String.valueOf(e.getMessage()).lines().limit(3).reduce((a, b) -> a + " / " + b).orElse("");
            String line = kind + ": " + workload + ": " + msg;
            System.out.println("FAILED " + line);
            synchronized (FAILURES) {
                FAILURES.add(line);
            }
        }
    }

    /** Starts n callers, releases them together; returns {calls, wallNs, p50ns, p99ns, busCpuUs}. */
    static long[] runCallers(Config cfg, String address, long pid, long tickUs, int n, int calls, int inflight,
                             int size, boolean fd) throws Exception {
        return runCallers(cfg, address, pid, tickUs, n, calls, inflight, size, fd, null, null, null);
    }

    /** A "READY name=:1.N" line's unique name. */
    static String nameOf(String ready) {
        int i = ready.indexOf("name=");
        return i < 0 ? "" : ready.substring(i + 5).trim();
    }

    /**
     * As above; with {@code metrics} (our bus's metrics socket) the callers stay connected after
     * their RESULT (KBB_LOAD_HOLD=1) and {@code checked[0]} gets {@link MetricsCheck}'s outcome: a
     * dump read after every caller is READY and before GO, another after every RESULT.
     */
    static long[] runCallers(Config cfg, String address, long pid, long tickUs, int n, int calls, int inflight,
                             int size, boolean fd, Path metrics, String echoName, MetricsCheck.Outcome[] checked)
            throws Exception {
        List<Client> cs = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                List<String> a = new ArrayList<>(List.of(address, ECHO_NAME, Integer.toString(inflight),
                        Integer.toString(calls), Integer.toString(size)));
                if (fd) {
                    a.add("fd");
                }
                cs.add(Client.start(cfg, metrics == null ? Map.of() : Map.of("KBB_LOAD_HOLD", "1"), "call",
                        a.toArray(String[]::new)));
            }
            if (metrics == null) {
                return measure(cs, pid, tickUs, (long) n * calls);
            }
            List<Map<String, Double>> before = new ArrayList<>();
            long[] r = measure(cs, new long[] {pid}, tickUs, (long) n * calls, () -> before.add(MetricsCheck.dump(metrics)));
            Map<String, Double> after = MetricsCheck.dump(metrics);
            List<MetricsCheck.Caller> callers = new ArrayList<>();
            for (Client c : cs) {
                callers.add(new MetricsCheck.Caller(nameOf(c.awaitReady()), calls, field(c.result, "sentBytes"),
                        field(c.result, "receivedBytes")));
            }
            checked[0] = MetricsCheck.check(before.get(0), after, callers, echoName);
            return r;
        } finally {
            cs.forEach(Client::close);
        }
    }

    /** A numeric key=value field of a RESULT line. */
    static long field(String line, String key) {
        Matcher mm = Pattern.compile("\\b" + key + "=(\\d+)").matcher(line);
        if (!mm.find()) {
            throw new IllegalStateException("no " + key + " in: " + line);
        }
        return Long.parseLong(mm.group(1));
    }

    /** The metrics checks' summaries ("bus: workload: metrics agree: ..."), reported under the table. */
    static final List<String> CHECKS = new ArrayList<>();

    static long[] measure(List<Client> cs, long pid, long tickUs, long ops) throws Exception {
        return measure(cs, new long[] {pid}, tickUs, ops);
    }

    static long[] measure(List<Client> cs, long[] pids, long tickUs, long ops) throws Exception {
        return measure(cs, pids, tickUs, ops, null);
    }

    interface BeforeGo {
        void run() throws IOException;
    }

    /**
     * As above; the CPU (us) of each of {@code pids}' trees over the window follows at index 4 on.
     * {@code beforeGo} (may be null) runs once every client is READY, before the CPU reading and GO.
     */
    static long[] measure(List<Client> cs, long[] pids, long tickUs, long ops, BeforeGo beforeGo) throws Exception {
        for (Client c : cs) {
            c.awaitReady();
        }
        if (beforeGo != null) {
            beforeGo.run();
        }
        long[] cpu0 = new long[pids.length];
        for (int i = 0; i < pids.length; i++) {
            cpu0[i] = cpuTicks(pids[i]);
        }
        for (Client c : cs) {
            c.go();
        }
        long minStart = Long.MAX_VALUE;
        long maxEnd = Long.MIN_VALUE;
        List<Long> p50 = new ArrayList<>();
        List<Long> p99 = new ArrayList<>();
        for (Client c : cs) {
            c.result = c.await("RESULT");
            Matcher mm = RESULT.matcher(c.result);
            if (!mm.find()) {
                throw new IllegalStateException("bad result from " + c);
            }
            minStart = Math.min(minStart, Long.parseLong(mm.group(2)));
            maxEnd = Math.max(maxEnd, Long.parseLong(mm.group(3)));
            p50.add(Long.parseLong(mm.group(4)));
            p99.add(Long.parseLong(mm.group(5)));
        }
        long[] r = new long[4 + pids.length];
        for (int i = 0; i < pids.length; i++) {
            r[4 + i] = (cpuTicks(pids[i]) - cpu0[i]) * tickUs;
        }
        p50.sort(null);
        p99.sort(null);
        r[0] = ops;
        r[1] = maxEnd - minStart;
        r[2] = p50.get(p50.size() / 2);
        r[3] = p99.get(p99.size() / 2);
        return r;
    }

    static long[] fanOut(Config cfg, String address, long pid, long tickUs, int subs, int unrelated, int signals,
                         int window, int size) throws Exception {
        List<Client> cs = new ArrayList<>();
        try {
            List<String> names = new ArrayList<>();
            for (int i = 0; i < subs; i++) {
                cs.add(Client.start(cfg, "subscribe", address, Integer.toString(unrelated)));
            }
            for (Client c : cs) {
                String ready = c.awaitReady();
                names.add(ready.substring(ready.indexOf("name=") + 5).trim());
            }
            Client emitter = Client.start(cfg, "emit", address, Integer.toString(signals), Integer.toString(window),
                    Integer.toString(size), String.join(",", names));
            List<Client> one = List.of(emitter);
            cs.add(emitter);
            long[] r = measure(one, pid, tickUs, (long) signals * subs);
            long received = 0;
            long bytes = 0;
            for (int i = 0; i < subs; i++) {
                String l = cs.get(i).await("RESULT received=");
                received += Long.parseLong(l.replaceAll(".*received=(\\d+).*", "$1"));
                bytes += Long.parseLong(l.replaceAll(".*bytes=(\\d+).*", "$1"));
            }
            if (received != (long) signals * subs) {
                throw new IllegalStateException("fan-out delivered " + received + " of " + (long) signals * subs);
            }
            if (bytes != (long) signals * subs * size) {
                throw new IllegalStateException("fan-out delivered " + bytes + " payload bytes of " + (long) signals * subs * size);
            }
            return r;
        } finally {
            cs.forEach(Client::close);
        }
    }

    /** The items the metadata workload's opted-in subscriber asks for (issue 17: "creds,seq"). */
    static final List<String> META_ITEMS = List.of("creds", "seq");

    /**
     * kbb-load emit sends {@code signals} small Tick signals (64-byte payload, windows of 100) to
     * one raw Java subscriber ({@link MetadataReceiver}: sd-bus cannot receive field 107) that
     * asked AttachMetadata({@code items}) first, or nothing if empty; returns measure()'s array.
     */
    static long[] metadataFan(Config cfg, Path socket, long pid, long tickUs, List<String> items, int signals)
            throws Exception {
        try (MetadataReceiver sub = MetadataReceiver.connect(socket, items);
             Client emitter = Client.start(cfg, "emit", "unix:path=" + socket, Integer.toString(signals), "100", "64",
                     sub.uniqueName())) {
            long[] r = measure(List.of(emitter), pid, tickUs, signals);
            long got = sub.awaitDone(STEP);
            if (got != signals) {
                throw new IllegalStateException("metadata fan-out delivered " + got + " of " + signals);
            }
            return r;
        }
    }

    static long[] connectLoop(Config cfg, String address, long pid, long tickUs, int n, int loops) throws Exception {
        List<Client> cs = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                cs.add(Client.start(cfg, "connect", address, Integer.toString(loops), "org.kdbusbridge.BenchConn" + i));
            }
            return measure(cs, pid, tickUs, (long) n * loops);
        } finally {
            cs.forEach(Client::close);
        }
    }

    // ------------------------------------------------------------------ a kbb-load process

    static final class Client implements AutoCloseable {
        final Process p;
        final LineReader out;
        final String what;
        final Path err;
        /** The READY line, once seen (awaitReady returns it again). */
        String ready;
        /** The RESULT line measure() read. */
        String result;

        private Client(Process p, String what, Path err) {
            this.p = p;
            this.out = new LineReader(p.getInputStream(), "kbb-" + what);
            this.what = what;
            this.err = err;
        }

        static Client start(Config cfg, String mode, String... args) throws IOException {
            return start(cfg, Map.of(), mode, args);
        }

        static Client start(Config cfg, Map<String, String> env, String mode, String... args) throws IOException {
            List<String> argv = new ArrayList<>();
            argv.add(cfg.loadgen.toString());
            argv.add(mode);
            argv.addAll(List.of(args));
            Path err = Files.createTempFile(cfg.work, "kbb-" + mode + "-", ".stderr");
            ProcessBuilder pb = new ProcessBuilder(argv).redirectError(err.toFile());
            pb.environment().remove("DBUS_SESSION_BUS_ADDRESS");
            pb.environment().putAll(env);
            return new Client(pb.start(), mode + " " + String.join(" ", args), err);
        }

        String awaitReady() throws IOException {
            if (ready != null) {
                return ready;
            }
            String l = out.awaitLine(s -> s.startsWith("READY") || s.startsWith("FAILED"), STEP);
            if (l == null || l.startsWith("FAILED")) {
                throw new IllegalStateException("kbb-load " + what + " not ready: " + l + "\n" + Files.readString(err));
            }
            ready = l;
            return l;
        }

        void go() throws IOException {
            OutputStream os = p.getOutputStream();
            os.write("GO\n".getBytes(StandardCharsets.US_ASCII));
            os.flush();
        }

        String await(String prefix) throws IOException {
            String l = out.awaitLine(s -> s.startsWith(prefix) || s.startsWith("FAILED"), STEP);
            if (l == null || l.startsWith("FAILED")) {
                throw new IllegalStateException("kbb-load " + what + ": " + l + "\n" + Files.readString(err));
            }
            return l;
        }

        @Override
        public void close() {
            p.destroy();
            try {
                if (!p.waitFor(5, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            try {
                Files.deleteIfExists(err);
            } catch (IOException ignored) {
                // best effort
            }
        }

        @Override
        public String toString() {
            return "kbb-load " + what;
        }
    }

    // ------------------------------------------------------------------ /proc

}
