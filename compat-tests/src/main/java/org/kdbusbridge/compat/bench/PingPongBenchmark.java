package org.kdbusbridge.compat.bench;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Ping-pong benchmark: dbus-daemon versus our bus, same launch as the compat harness.
 *
 * <p>Each bus gets, per repetition, a fresh bus process, an echo service process and caller processes
 * ({@code java -cp <this classpath> org.kdbusbridge.compat.harness.RawClient echo|caller ...}), so clients
 * never share a JVM with each other or with the bus. Workloads:
 * <ul>
 *   <li>sync: one caller, CALLS sequential calls: p50 latency and calls/s;</li>
 *   <li>pipelined: 4 callers, each keeping 32 calls in flight: aggregate calls/s.</li>
 * </ul>
 * Bus CPU per call = delta(utime+stime) of /proc/PID/stat over the measured window / calls.
 *
 * <p>Run: {@code java -Dkdbus.bridge.jar=bridge/target/kdbus-bridge.jar -cp compat-tests/target/classes
 * org.kdbusbridge.compat.bench.PingPongBenchmark [--calls N] [--pipelined-calls N] [--reps R]
 * [--warmup N] [--buses dbus-daemon,kdbus-bridge]}.
 */
public final class PingPongBenchmark {
    static final String ECHO_NAME = "org.kdbusbridge.BenchEcho";
    static final Duration STEP = Duration.ofSeconds(120);
    static final Pattern RESULT = Pattern.compile("RESULT calls=(\\d+) startNs=(-?\\d+) endNs=(-?\\d+) p50ns=(\\d+) p99ns=(\\d+)");

    record Run(double syncP50us, double syncP99us, double syncCallsPerSec, double syncCpuUsPerCall,
               double pipeCallsPerSec, double pipeCpuUsPerCall) {}

    public static void main(String[] args) throws Exception {
        int calls = 20000;
        int pipeCalls = 20000;
        int reps = 3;
        int warmup = 5000;
        String buses = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--calls" -> calls = Integer.parseInt(args[++i]);
                case "--pipelined-calls" -> pipeCalls = Integer.parseInt(args[++i]);
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--buses" -> buses = args[++i];
                default -> {
                    System.err.println("unknown option " + args[i]);
                    System.exit(2);
                }
            }
        }
        if (buses != null) {
            System.setProperty(BusKind.BUSES_PROPERTY, buses);
        }
        List<BusKind> kinds = BusKind.selected();
        long tick = clockTickMicros();
        System.out.printf("ping-pong benchmark: sync calls=%d, pipelined 4 callers x %d calls (32 in flight each), reps=%d, warmup=%d, nproc=%d, clock tick=%d us%n",
                calls, pipeCalls, reps, warmup, Runtime.getRuntime().availableProcessors(), tick);
        Map<BusKind, List<Run>> runs = new EnumMap<>(BusKind.class);
        for (int r = 0; r < reps; r++) {
            for (BusKind k : kinds) { // interleaved: d, ours, d, ours, ...
                Run run = once(k, calls, pipeCalls, warmup, tick);
                runs.computeIfAbsent(k, x -> new ArrayList<>()).add(run);
                System.out.printf("rep %d %-13s sync p50 %7.1f us  p99 %7.1f us  %8.0f calls/s  cpu %6.1f us/call | pipelined %8.0f calls/s  cpu %6.1f us/call%n",
                        r + 1, k, run.syncP50us, run.syncP99us, run.syncCallsPerSec, run.syncCpuUsPerCall,
                        run.pipeCallsPerSec, run.pipeCpuUsPerCall);
            }
        }
        System.out.println();
        System.out.println("medians:");
        Map<BusKind, double[]> med = new LinkedHashMap<>();
        for (BusKind k : kinds) {
            List<Run> l = runs.get(k);
            double[] m = {
                median(l.stream().mapToDouble(Run::syncP50us).toArray()),
                median(l.stream().mapToDouble(Run::syncCallsPerSec).toArray()),
                median(l.stream().mapToDouble(Run::syncCpuUsPerCall).toArray()),
                median(l.stream().mapToDouble(Run::pipeCallsPerSec).toArray()),
                median(l.stream().mapToDouble(Run::pipeCpuUsPerCall).toArray())};
            med.put(k, m);
            System.out.printf("%-13s sync p50 %7.1f us  %8.0f calls/s  cpu %6.1f us/call | pipelined %8.0f calls/s  cpu %6.1f us/call%n",
                    k, m[0], m[1], m[2], m[3], m[4]);
        }
        if (med.containsKey(BusKind.DBUS_DAEMON) && med.containsKey(BusKind.KDBUS_BRIDGE)) {
            double[] d = med.get(BusKind.DBUS_DAEMON);
            double[] o = med.get(BusKind.KDBUS_BRIDGE);
            System.out.printf("ratio ours/dbus-daemon: sync p50 %.2fx  sync calls/s %.2fx  sync cpu/call %.2fx | pipelined calls/s %.2fx  pipelined cpu/call %.2fx%n",
                    o[0] / d[0], o[1] / d[1], o[2] / d[2], o[3] / d[3], o[4] / d[4]);
            System.out.println("(latency and cpu: lower is better; calls/s: higher is better)");
        }
    }

    static Run once(BusKind kind, int calls, int pipeCalls, int warmup, long tickUs) throws Exception {
        try (BusUnderTest bus = kind.start();
             Background echo = worker("echo", bus.address(), ECHO_NAME)) {
            if (echo.stdout().awaitLine(l -> l.startsWith("READY") || l.startsWith("FAILED"), STEP) == null
                    || !echo.stdout().text().contains("READY")) {
                throw new IllegalStateException("echo service did not start\n" + echo.describe());
            }
            if (warmup > 0) {
                runCallers(bus, 1, warmup, 8, tickUs);
            }
            long[] sync = runCallers(bus, 1, calls, 1, tickUs);
            long[] pipe = runCallers(bus, 4, pipeCalls, 32, tickUs);
            return new Run(sync[2] / 1000.0, sync[3] / 1000.0, calls * 1e9 / sync[1], sync[4] / (double) calls,
                    4L * pipeCalls * 1e9 / pipe[1], pipe[4] / (double) (4L * pipeCalls));
        }
    }

    /** Returns {calls, wallNs, p50ns (median over callers), p99ns, busCpuUs}. */
    static long[] runCallers(BusUnderTest bus, int n, int calls, int inflight, long tickUs) throws Exception {
        List<Background> callers = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                callers.add(worker("caller", bus.address(), ECHO_NAME, Integer.toString(calls), Integer.toString(inflight)));
            }
            for (Background c : callers) {
                if (c.stdout().awaitLine(l -> l.startsWith("READY"), STEP) == null) {
                    throw new IllegalStateException("caller did not connect\n" + c.describe());
                }
            }
            long cpu0 = cpuTicks(bus.pid());
            for (Background c : callers) {
                OutputStream os = c.process().getOutputStream();
                os.write("GO\n".getBytes(StandardCharsets.US_ASCII));
                os.flush();
            }
            long minStart = Long.MAX_VALUE;
            long maxEnd = Long.MIN_VALUE;
            List<Long> p50 = new ArrayList<>();
            List<Long> p99 = new ArrayList<>();
            for (Background c : callers) {
                String l = c.stdout().awaitLine(s -> s.startsWith("RESULT"), STEP);
                if (l == null) {
                    throw new IllegalStateException("caller did not finish\n" + c.describe());
                }
                Matcher m = RESULT.matcher(l);
                if (!m.find()) {
                    throw new IllegalStateException("bad result line " + l);
                }
                minStart = Math.min(minStart, Long.parseLong(m.group(2)));
                maxEnd = Math.max(maxEnd, Long.parseLong(m.group(3)));
                p50.add(Long.parseLong(m.group(4)));
                p99.add(Long.parseLong(m.group(5)));
            }
            long cpu1 = cpuTicks(bus.pid());
            Collections.sort(p50);
            Collections.sort(p99);
            return new long[] {(long) n * calls, maxEnd - minStart, p50.get(p50.size() / 2), p99.get(p99.size() / 2),
                (cpu1 - cpu0) * tickUs};
        } finally {
            callers.forEach(Background::close);
        }
    }

    static Background worker(String... args) {
        List<String> argv = new ArrayList<>();
        argv.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        argv.add("-cp");
        argv.add(System.getProperty("java.class.path"));
        argv.add(org.kdbusbridge.compat.harness.BenchWorker.class.getName());
        argv.addAll(List.of(args));
        return Background.start(argv, Map.of());
    }

    /** utime + stime of the bus process and its descendants (if launched via a wrapper), in clock ticks. */
    static long cpuTicks(long pid) throws IOException {
        long t = ownCpuTicks(pid);
        for (ProcessHandle d : ProcessHandle.of(pid).map(h -> h.descendants().toList()).orElse(List.of())) {
            try {
                t += ownCpuTicks(d.pid());
            } catch (IOException gone) {
                // exited meanwhile
            }
        }
        return t;
    }

    /** utime + stime of one process, in clock ticks (fields 14 and 15 of /proc/PID/stat). */
    static long ownCpuTicks(long pid) throws IOException {
        String s = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    }

    static long clockTickMicros() {
        Cmd.Result r = Cmd.run(List.of("getconf", "CLK_TCK"), Duration.ofSeconds(10));
        long hz = 100;
        if (r.ok()) {
            try {
                hz = Long.parseLong(r.stdout().trim());
            } catch (NumberFormatException ignored) {
                // keep 100
            }
        }
        return 1_000_000L / hz;
    }

    static double median(double[] v) {
        double[] c = v.clone();
        java.util.Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }
}
