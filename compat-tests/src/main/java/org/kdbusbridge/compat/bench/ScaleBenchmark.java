package org.kdbusbridge.compat.bench;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.kdbusbridge.compat.bench.BusBenchmark.Client;
import org.kdbusbridge.compat.bench.BusBenchmark.Config;

/**
 * Issue 14's scale benchmark ({@code bin/kdbus-bridge-bench --profile scale}): idle peers, match
 * rules, names, ListNames over 100k names and 100 callers x 1,000 pending calls that disconnect,
 * on dbus-daemon, dbus-broker and ours. Every point gets a FRESH bus (so VmRSS and VmHWM belong
 * to that point alone); buses are interleaved and the order rotates per point and repetition.
 *
 * <p>Per point and bus: what the bus accepted and refused (LimitsExceeded is counted, not
 * hidden), bus CPU per operation (run time of the bus's process tree over the step / ops, from
 * schedstat),
 * VmRSS after the step and VmHWM, and for ours the GC log's full and young pauses in the window.
 * All clients are {@code kbb-load} scale modes, one process holding all connections of a step.
 * Not part of any test run.
 */
public final class ScaleBenchmark {
    static final String SINK = "org.kdbusbridge.ScaleSink";
    static final long TICKS_PER_S = BenchProcesses.clockTicksPerSecond();
    static final Pattern GC_LINE = Pattern.compile("\\[gc\\s*\\]");
    static final Pattern RESULT = Pattern.compile("RESULT calls=(\\d+) startNs=(\\d+) endNs=(\\d+)");

    /** A point of the profile: a name and what it runs on a fresh bus. */
    record Point(String name, Workload w) {}

    interface Workload {
        void run(Ctx x) throws Exception;
    }

    /** One point on one bus: the bus, its pid, the results so far. */
    static final class Ctx {
        final Contender kind;
        final Config cfg;
        final String address;
        final long pid;
        final Path gcLog;
        final Map<String, String> out = new LinkedHashMap<>();
        final List<Client> held = new ArrayList<>();

        Ctx(Contender kind, Config cfg, String address, long pid, Path gcLog) {
            this.kind = kind;
            this.cfg = cfg;
            this.address = address;
            this.pid = pid;
            this.gcLog = gcLog;
        }

        void put(String k, String v) {
            out.put(k, v);
        }

        void put(String k, double v) {
            boolean tick = k.contains("CPU") && lastWasTick;
            out.put(k, BenchReport.num(v) + (tick ? " (tick)" : ""));
        }

        double rssMiB() {
            return BenchProcesses.statusSum(kind, pid, "VmRSS:") / 1024.0;
        }

        double hwmMiB() {
            return BenchProcesses.statusSum(kind, pid, "VmHWM:") / 1024.0;
        }
    }

    static List<Point> points() {
        List<Point> p = new ArrayList<>();
        for (int n : new int[] {100, 1_000, 10_000}) {
            p.add(new Point(String.format(Locale.ROOT, "%,d idle peers", n), x -> idle(x, n)));
        }
        for (int r : new int[] {1_000, 10_000, 100_000}) {
            p.add(new Point(String.format(Locale.ROOT, "%,d match rules", r), x -> piped(x, "rules", r, "rule")));
        }
        p.add(new Point("10,000 names", x -> piped(x, "names", 10_000, "name")));
        p.add(new Point("100,000 names + ListNames", x -> {
            piped(x, "names", 100_000, "name");
            listNames(x, 30);
        }));
        p.add(new Point("100 callers x 1,000 pending calls disconnect", x -> pending(x, 100, 1_000)));
        return p;
    }

    public static void main(String[] args) throws Exception {
        Config cfg = new Config();
        cfg.reps = 1;
        List<String> only = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--root" -> cfg.root = Path.of(args[++i]).toAbsolutePath().normalize();
                case "--loadgen" -> cfg.loadgen = Path.of(args[++i]).toAbsolutePath();
                case "--work" -> cfg.work = Path.of(args[++i]).toAbsolutePath();
                case "--out" -> cfg.out = Path.of(args[++i]).toAbsolutePath();
                case "--reps" -> cfg.reps = Integer.parseInt(args[++i]);
                case "--our-jvm-opts" -> cfg.ourJvmOpts = args[++i];
                case "--points" -> only.addAll(Arrays.asList(args[++i].split(";")));
                case "--buses" -> cfg.buses = Arrays.stream(args[++i].split(",")).map(Contender::parse).toList();
                default -> {
                    System.err.println("usage: ScaleBenchmark --loadgen PATH [--root DIR] [--work DIR] [--out FILE.md]"
                            + " [--reps N] [--buses a,b] [--points \"10,000 idle peers;100,000 names + ListNames\"]"
                            + " [--our-jvm-opts S]");
                    System.exit(2);
                }
            }
        }
        if (cfg.work == null) {
            cfg.work = cfg.root.resolve("compat-tests/target/bench");
        }
        Files.createDirectories(cfg.work);
        if (cfg.out == null) {
            cfg.out = cfg.work.resolve("scale-results.md");
        }
        String loadStart = BenchProcesses.loadavg();
        System.out.printf("scale benchmark: reps=%d buses=%s loadavg=%s%n", cfg.reps, cfg.buses, loadStart);
        // point -> bus -> metric -> values of each repetition
        Map<String, Map<Contender, Map<String, List<String>>>> res = new LinkedHashMap<>();
        int turn = 0;
        for (int r = 0; r < cfg.reps; r++) {
            for (Point pt : points()) {
                if (!only.isEmpty() && !only.contains(pt.name)) {
                    continue;
                }
                for (int j = 0; j < cfg.buses.size(); j++) {
                    Contender c = cfg.buses.get((j + turn) % cfg.buses.size());
                    Map<String, String> m = once(c, cfg, pt, r);
                    System.out.printf("rep %d %-45s %-12s %s%n", r + 1, pt.name, c, m);
                    var perBus = res.computeIfAbsent(pt.name, k -> new LinkedHashMap<>())
                            .computeIfAbsent(c, k -> new LinkedHashMap<>());
                    m.forEach((k, v) -> perBus.computeIfAbsent(k, kk -> new ArrayList<>()).add(v));
                }
                turn++;
            }
        }
        String md = markdown(cfg, res, loadStart);
        Files.writeString(cfg.out, md);
        System.out.println();
        System.out.println(md);
        System.out.println("written to " + cfg.out);
    }

    static Map<String, String> once(Contender kind, Config cfg, Point pt, int rep) throws Exception {
        Path dir = Files.createTempDirectory(cfg.work, "scale-" + kind.label + "-r" + (rep + 1) + "-");
        Process bus = null;
        Ctx x = null;
        try (Client probe = Client.start(cfg, "probe", dir.resolve("bus").toString())) {
            probe.awaitReady();
            Map<String, String> env = new LinkedHashMap<>();
            ProcessBuilder pb = new ProcessBuilder(kind.command(dir, cfg, env))
                    .redirectError(dir.resolve("bus.stderr.log").toFile())
                    .redirectOutput(dir.resolve("bus.stdout.log").toFile());
            pb.environment().remove("DBUS_SESSION_BUS_ADDRESS");
            pb.environment().remove("DBUS_STARTER_ADDRESS");
            pb.environment().putAll(env);
            bus = pb.start();
            probe.await("RESULT helloNs=");
            x = new Ctx(kind, cfg, "unix:path=" + dir.resolve("bus"), bus.pid(), dir.resolve("gc.log"));
            x.put("VmRSS at start, MiB", x.rssMiB());
            int fallbacks0 = tickFallbacks;
            pt.w.run(x);
            if (tickFallbacks > fallbacks0) {
                x.put("CPU windows on the 10 ms tick (a bus thread exited in them)", Integer.toString(tickFallbacks - fallbacks0));
            }
            if (!bus.isAlive()) {
                x.put("note", "bus died");
            }
            return x.out;
        } catch (Exception e) {
            String msg = String.valueOf(e.getMessage()).lines().limit(3).reduce((a, b) -> a + " / " + b).orElse("");
            Map<String, String> m = x == null ? new LinkedHashMap<>() : x.out;
            m.put("FAILED", msg.replace('|', '/'));
            return m;
        } finally {
            if (x != null) {
                x.held.forEach(Client::close);
            }
            if (bus != null) {
                BenchProcesses.stop(bus);
            }
            if (!Boolean.getBoolean("bench.keep")) {
                BenchProcesses.deleteTree(dir);
            }
        }
    }

    // ------------------------------------------------------------------ workloads

    /** N idle Hello'd peers in one process, then a pipelined call run with them connected. */
    static void idle(Ctx x, int n) throws Exception {
        Client echo = hold(x, Client.start(x.cfg, "echo", x.address, BusBenchmark.ECHO_NAME));
        echo.awaitReady();
        // warm-up for our JIT, same for every bus; then the same run measured without and with the peers
        step(x, callers(x));
        long[] before = step(x, callers(x));
        x.put("pipelined call before the peers: bus CPU us/call", before[4] / (double) before[0]);
        double rss0 = x.rssMiB();
        x.put("VmRSS before the step, MiB", rss0);
        long[] s = step(x, hold(x, Client.start(x.cfg, "idle", x.address, Integer.toString(n))));
        x.put("connected (Hello answered)", Long.toString(s[5]));
        x.put("bus CPU per connect + Hello, us", s[4] / (double) n);
        double rss = x.rssMiB();
        x.put("VmRSS with the peers, MiB", rss);
        x.put("RSS per idle peer, KiB", (rss - rss0) * 1024 / n);
        long[] p = step(x, callers(x));
        x.put("pipelined call with the peers: bus CPU us/call", p[4] / (double) p[0]);
        x.put("VmHWM, MiB", x.hwmMiB());
    }

    /** R rules or K names over enough connections that no per-connection limit of 50,000 is hit. */
    static void piped(Ctx x, String mode, int total, String what) throws Exception {
        int conns = Math.max(1, total / 10_000);
        double rss0 = x.rssMiB();
        long gc0 = BenchProcesses.size(x.gcLog);
        Client c = hold(x, Client.start(x.cfg, mode, x.address, Integer.toString(conns), Integer.toString(total)));
        long[] s = step(x, c);
        x.put(what + "s accepted / LimitsExceeded / other error (" + conns + " conns)",
                s[5] + " / " + s[6] + " / " + s[7]);
        x.put("bus CPU per " + what + " request, us", s[4] / (double) total);
        double rss = x.rssMiB();
        x.put("VmRSS after, MiB", rss);
        if (s[5] > 0) {
            x.put("RSS growth per accepted " + what + ", bytes", (rss - rss0) * 1024 * 1024 / s[5]);
        }
        x.put("VmHWM, MiB", x.hwmMiB());
        gc(x, gc0, what + "s");
    }

    /** M ListNames calls with the names of the previous step still owned. */
    static void listNames(Ctx x, int calls) throws Exception {
        long gc0 = BenchProcesses.size(x.gcLog);
        Client c = Client.start(x.cfg, "listnames", x.address, Integer.toString(calls));
        try {
            c.awaitReady();
            CpuSnap cpu0 = snap(x.pid);
            c.go();
            String l = c.await("RESULT");
            CpuSnap cpu1 = snap(x.pid);
            Matcher m = RESULT.matcher(l);
            if (!m.find()) {
                throw new IllegalStateException("bad result " + l);
            }
            double wallMs = (Long.parseLong(m.group(3)) - Long.parseLong(m.group(2))) / 1e6;
            x.put("ListNames: names in the reply", l.replaceAll(".*names=(\\d+).*", "$1"));
            x.put("ListNames: ms per call (" + calls + " calls)", wallMs / calls);
            x.put("ListNames: bus CPU per call, ms", cpuUs(cpu0, cpu1) / 1000.0 / calls);
            x.put("VmHWM after ListNames, MiB", x.hwmMiB());
            gc(x, gc0, "ListNames");
        } finally {
            c.close();
        }
    }

    /**
     * Callers with open calls to a callee that never answers disconnect at once; bus CPU from the
     * disconnect until the last of them is gone. Two rounds on the same bus: the first one also
     * pays our JIT for a path nothing before it used, the second one is warm.
     */
    static void pending(Ctx x, int callers, int calls) throws Exception {
        hold(x, Client.start(x.cfg, "sink", x.address, SINK)).awaitReady();
        for (int round = 1; round <= 2; round++) {
            String r = " (round " + round + ")";
            Client p = hold(x, Client.start(x.cfg, "pending", x.address, SINK, Integer.toString(callers),
                    Integer.toString(calls)));
            CpuSnap cpuOpen0 = snap(x.pid);
            p.awaitReady(); // all calls routed (each caller's GetId answered)
            CpuSnap cpuOpen1 = snap(x.pid);
            x.put("bus CPU per open call (connects included), us" + r, cpuUs(cpuOpen0, cpuOpen1) / (double) callers / calls);
            x.put("VmRSS with the calls open, MiB" + r, x.rssMiB());
            Client w = hold(x, Client.start(x.cfg, "watch", x.address, Integer.toString(callers)));
            w.awaitReady();
            long gc0 = BenchProcesses.size(x.gcLog);
            CpuSnap cpu0 = snap(x.pid);
            p.go();
            Matcher a = RESULT.matcher(p.await("RESULT"));
            Matcher b = RESULT.matcher(w.await("RESULT"));
            CpuSnap cpu1 = snap(x.pid);
            if (!a.find() || !b.find()) {
                throw new IllegalStateException("bad pending/watch result");
            }
            x.put("disconnect until the last NameOwnerChanged + a GetId: wall ms" + r,
                    (Long.parseLong(b.group(3)) - Long.parseLong(a.group(2))) / 1e6);
            x.put("bus CPU for the disconnects, ms" + r, cpuUs(cpu0, cpu1) / 1000.0);
            x.put("VmRSS after, MiB" + r, x.rssMiB());
            gc(x, gc0, "disconnects" + r);
        }
        x.put("VmHWM, MiB", x.hwmMiB());
    }

    /** One caller, 20,000 pipelined 64-byte echo calls, 32 in flight. */
    static Client callers(Ctx x) throws IOException {
        return hold(x, Client.start(x.cfg, "call", x.address, BusBenchmark.ECHO_NAME, "32", "20000", "64"));
    }

    static Client hold(Ctx x, Client c) {
        x.held.add(c);
        return c;
    }

    /** Releases one client; returns {ops, wallNs, 0, 0, busCpuUs, ok, limits, other}. */
    static long[] step(Ctx x, Client c) throws Exception {
        c.awaitReady();
        CpuSnap cpu0 = snap(x.pid);
        c.go();
        String l = c.await("RESULT");
        CpuSnap cpu1 = snap(x.pid);
        Matcher m = RESULT.matcher(l);
        if (!m.find()) {
            throw new IllegalStateException("bad result " + l);
        }
        return new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(3)) - Long.parseLong(m.group(2)), 0, 0,
            cpuUs(cpu0, cpu1), field(l, "ok"), field(l, "limits"), field(l, "other")};
    }

    static long field(String l, String k) {
        Matcher m = Pattern.compile(" " + k + "=(\\d+)").matcher(l);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }

    /** The run time of every thread of the bus's process tree, and the tree's utime+stime ticks. */
    record CpuSnap(Map<Long, Long> nsByTid, long ticks) {}

    /** How many CPU windows fell back to utime+stime; shown per point when not zero. */
    static int tickFallbacks;
    /** Whether the last {@link #cpuUs} fell back; its figure is marked "(tick)" in the table. */
    static boolean lastWasTick;

    static CpuSnap snap(long root) {
        List<Long> pids = new ArrayList<>();
        pids.add(root);
        ProcessHandle.of(root).ifPresent(h -> h.descendants().forEach(d -> pids.add(d.pid())));
        Map<Long, Long> ns = new LinkedHashMap<>();
        for (long p : pids) {
            try (var tasks = Files.list(Path.of("/proc/" + p + "/task"))) {
                for (Path t : tasks.toList()) {
                    try {
                        String st = Files.readString(t.resolve("schedstat"));
                        ns.put(Long.parseLong(t.getFileName().toString()), Long.parseLong(st.substring(0, st.indexOf(' '))));
                    } catch (IOException | RuntimeException gone) {
                        // thread exited
                    }
                }
            } catch (IOException gone) {
                // process exited
            }
        }
        return new CpuSnap(ns, BenchProcesses.cpuTicks(root));
    }

    /**
     * Bus CPU between two snapshots in microseconds: per thread, the scheduler's run time
     * ({@code /proc/PID/task/TID/schedstat}, nanoseconds), which resolves the short disconnect
     * windows the 10 ms tick of utime+stime cannot. If a thread exited in between (the JVM ends
     * idle compiler threads), its time would be lost: then the coarse utime+stime delta is used.
     */
    static long cpuUs(CpuSnap a, CpuSnap b) {
        if (!b.nsByTid.keySet().containsAll(a.nsByTid.keySet())) {
            tickFallbacks++;
            lastWasTick = true;
            return (b.ticks - a.ticks) * (1_000_000L / TICKS_PER_S);
        }
        lastWasTick = false;
        long ns = 0;
        for (var e : b.nsByTid.entrySet()) {
            ns += e.getValue() - a.nsByTid.getOrDefault(e.getKey(), 0L);
        }
        return ns / 1000;
    }

    /** Our bus only: full and young pauses in the GC log since byte offset {@code from}. */
    static void gc(Ctx x, long from, String window) throws IOException {
        if (x.kind != Contender.KDBUS_BRIDGE || !Files.exists(x.gcLog)) {
            return;
        }
        byte[] b;
        try (RandomAccessFile f = new RandomAccessFile(x.gcLog.toFile(), "r")) {
            b = new byte[(int) Math.max(0, f.length() - from)];
            f.seek(from);
            f.readFully(b);
        }
        int full = 0;
        int young = 0;
        for (String l : new String(b, StandardCharsets.UTF_8).split("\n")) {
            if (!GC_LINE.matcher(l).find()) {
                continue; // [gc,start] and the other tags repeat the pause's name
            }
            if (l.contains("Pause Full")) {
                full++;
            } else if (l.contains("Pause Young")) {
                young++;
            }
        }
        x.put("ours: full / young GCs during the " + window, full + " / " + young);
    }

    // ------------------------------------------------------------------ report

    static String markdown(Config cfg, Map<String, Map<Contender, Map<String, List<String>>>> res, String loadStart) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%d repetition(s) (values per repetition separated by ;), a fresh bus per"
                + " point, %s, nproc %d, loadavg at start %s, at end %s.%n%n", cfg.reps, LocalDateTime.now().withNano(0),
                Runtime.getRuntime().availableProcessors(), loadStart, BenchProcesses.loadavg()));
        sb.append("| point | metric |");
        cfg.buses.forEach(c -> sb.append(' ').append(c).append(" |"));
        sb.append("\n|---|---|").append("---:|".repeat(cfg.buses.size())).append('\n');
        for (var pe : res.entrySet()) {
            List<String> keys = new ArrayList<>();
            List<Map<String, List<String>>> byBus = new ArrayList<>(pe.getValue().values());
            Map<String, List<String>> ours = pe.getValue().get(Contender.KDBUS_BRIDGE);
            if (ours != null) { // ours has every row (its GC rows too), in the order measured
                byBus.remove(ours);
                byBus.add(0, ours);
            }
            byBus.forEach(m -> m.keySet().forEach(k -> {
                if (!keys.contains(k)) {
                    keys.add(k);
                }
            }));
            boolean first = true;
            for (String k : keys) {
                sb.append("| ").append(first ? pe.getKey() : "").append(" | ").append(k).append(" |");
                for (Contender c : cfg.buses) {
                    List<String> v = pe.getValue().getOrDefault(c, Map.of()).get(k);
                    sb.append(' ').append(v == null ? "–" : String.join("; ", v)).append(" |");
                }
                sb.append('\n');
                first = false;
            }
        }
        return sb.toString();
    }
}
