package org.kdbusbridge.compat.bench;

import static org.kdbusbridge.compat.bench.BusBenchmark.FAILURES;
import static org.kdbusbridge.compat.bench.BusBenchmark.METRICS;
import org.kdbusbridge.compat.bench.BusBenchmark.Config;
import org.kdbusbridge.compat.bench.BusBenchmark.Metric;
import java.time.LocalDateTime;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Medians, ratios and the markdown table of a benchmark run. */
final class BenchReport {
    private BenchReport() { }

    static Map<String, Double> medians(List<Map<String, Double>> l) {
        Map<String, Double> out = new HashMap<>();
        for (Metric mt : BusBenchmark.ALL_METRICS) {
            double[] v = l.stream().filter(x -> x.containsKey(mt.key())).mapToDouble(x -> x.get(mt.key())).toArray();
            if (v.length > 0) {
                out.put(mt.key(), median(v));
            }
        }
        return out;
    }

    static double median(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }

    static String format(Map<String, Double> m) {
        StringBuilder sb = new StringBuilder();
        for (Metric mt : BusBenchmark.ALL_METRICS) {
            if (m.containsKey(mt.key())) {
                sb.append(mt.key()).append('=').append(num(m.get(mt.key()))).append(' ');
            }
        }
        return sb.toString().trim();
    }

    static String num(double v) {
        if (Double.isNaN(v)) {
            return "n/a";
        }
        double a = Math.abs(v);
        if (a >= 1000) {
            return String.format(Locale.ROOT, "%.0f", v);
        }
        if (a >= 10) {
            return String.format(Locale.ROOT, "%.1f", v);
        }
        if (a >= 0.1) {
            return String.format(Locale.ROOT, "%.2f", v);
        }
        return String.format(Locale.ROOT, "%.3f", v);
    }

    static String markdown(Config cfg, Map<Contender, Map<String, Double>> med,
                           Map<Contender, List<Map<String, Double>>> runs) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "Medians of %d interleaved repetitions, scale %.2f, %s, nproc %d, loadavg at end %s.%n%n",
                cfg.reps, cfg.scale, LocalDateTime.now().withNano(0), Runtime.getRuntime().availableProcessors(), BenchProcesses.loadavg()));
        sb.append("| workload / metric |");
        for (Contender c : cfg.buses) {
            sb.append(' ').append(c).append(" |");
        }
        Map<String, Double> ours = med.get(Contender.KDBUS_BRIDGE);
        boolean hasD = med.containsKey(Contender.DBUS_DAEMON) && ours != null;
        boolean hasB = med.containsKey(Contender.DBUS_BROKER) && ours != null;
        if (hasD) {
            sb.append(" ours / dbus-daemon |");
        }
        if (hasB) {
            sb.append(" ours / dbus-broker |");
        }
        sb.append(" target | met? |\n|---|");
        sb.append("---:|".repeat(cfg.buses.size() + (hasD ? 1 : 0) + (hasB ? 1 : 0)));
        sb.append("---|---|\n");
        for (Metric mt : METRICS) {
            boolean any = med.values().stream().anyMatch(x -> x.containsKey(mt.key()));
            if (!any) {
                continue;
            }
            sb.append("| ").append(mt.label()).append(" |");
            for (Contender c : cfg.buses) {
                Double v = med.get(c).get(mt.key());
                sb.append(' ').append(v == null ? "–" : num(v)).append(" |");
            }
            if (hasD) {
                sb.append(' ').append(ratio(ours, med.get(Contender.DBUS_DAEMON), mt.key())).append(" |");
            }
            if (hasB) {
                sb.append(' ').append(ratio(ours, med.get(Contender.DBUS_BROKER), mt.key())).append(" |");
            }
            sb.append(' ').append(mt.target()).append(" | ").append(met(mt, ours, hasB ? med.get(Contender.DBUS_BROKER) : null)).append(" |\n");
        }
        sb.append("\nRatios are ours / other for the metric as written: throughput wants >= 1, CPU, latency, RSS and start-up want <= 1.\n");
        endpointTable(sb, cfg, med);
        if (!BusBenchmark.CHECKS.isEmpty()) {
            sb.append("\nMetrics checks (--check-metrics: our bus's counters against the pipelined load, see MetricsCheck):\n\n");
            BusBenchmark.CHECKS.forEach(f -> sb.append("- ").append(f).append('\n'));
        }
        if (!FAILURES.isEmpty()) {
            sb.append("\nFailed workloads (no numbers for them):\n\n");
            FAILURES.forEach(f -> sb.append("- ").append(f).append('\n'));
        }
        sb.append("\nPer repetition:\n\n```\n");
        for (var e : runs.entrySet()) {
            int r = 1;
            for (Map<String, Double> m : e.getValue()) {
                sb.append(String.format(Locale.ROOT, "rep %d %-12s %s%n", r++, e.getKey(), format(m)));
            }
        }
        sb.append("```\n");
        return sb.toString();
    }

    /**
     * Issue 18's table: per bus and call pattern, calls/s, p50 and CPU per call direct and through the
     * sandbox front, with front / direct; the goal is ours <= 1.1x on latency and CPU.
     */
    static void endpointTable(StringBuilder sb, Config cfg, Map<Contender, Map<String, Double>> med) {
        boolean any = med.values().stream().anyMatch(x -> x.keySet().stream().anyMatch(k -> k.startsWith("ep_")));
        if (!any) {
            return;
        }
        sb.append("\nEndpoint cost (issue 18): 64-byte Echo calls from one caller behind a sandbox front `--filter --talk=")
                .append(BusBenchmark.ECHO_NAME).append("` vs the same caller connected directly, legs alternating")
                .append(" (direct, front, three pairs per row). Front: kdbus-bridge = bin/kdbus-bridge-proxy (an endpoint of the bus,")
                .append(" no process on the path); dbus-daemon and dbus-broker = /usr/bin/xdg-dbus-proxy (its CPU is added to the")
                .append(" bus's and shown apart). Caller: kbb-load rawcall (plain libc, step-by-step SASL: xdg-dbus-proxy 0.1.4")
                .append(" cannot serve sd-bus clients), the same for both legs; a second service outside --talk is checked")
                .append(" to answer directly and not through the front.\n\n");
        sb.append("| bus | calls | calls/s direct | calls/s front | front / direct | p50 us direct | p50 us front | front / direct"
                + " | CPU us/call direct (bus) | CPU us/call front (bus + front) | of which front process | front / direct |\n");
        sb.append("|---|---|" + "---:|".repeat(10) + "\n");
        for (Contender c : cfg.buses) {
            Map<String, Double> m = med.get(c);
            for (BusBenchmark.EndpointMode em : BusBenchmark.ENDPOINT_MODES) {
                String k = em.key();
                if (!m.containsKey(k + "_cps_r")) {
                    continue;
                }
                sb.append("| ").append(c).append(" | ").append(em.label()).append(" |");
                for (String s : List.of("_cps_d", "_cps_f", "_cps_r", "_p50_d", "_p50_f", "_p50_r",
                        "_cpu_d", "_cpu_f", "_fcpu", "_cpu_r")) {
                    Double v = m.get(k + s);
                    String cell = v == null ? "–" : s.endsWith("_r") ? String.format(Locale.ROOT, "%.2fx", v) : num(v);
                    sb.append(' ').append(cell).append(" |");
                }
                sb.append('\n');
            }
        }
        Map<String, Double> ours = med.get(Contender.KDBUS_BRIDGE);
        if (ours != null) {
            sb.append("\nGoal (issue 18): our endpoint costs <= 1.1x an unfiltered connection:");
            for (BusBenchmark.EndpointMode em : BusBenchmark.ENDPOINT_MODES) {
                Double p = ours.get(em.key() + "_p50_r");
                Double u = ours.get(em.key() + "_cpu_r");
                if (p != null && u != null) {
                    sb.append(String.format(Locale.ROOT, " %s: p50 %.2fx (%s), CPU %.2fx (%s);", em.label(),
                            p, p <= 1.1 ? "met" : "**not met**", u, u <= 1.1 ? "met" : "**not met**"));
                }
            }
            sb.setLength(sb.length() - 1);
            sb.append(".\n");
        }
    }

    static String ratio(Map<String, Double> ours, Map<String, Double> other, String key) {
        Double a = ours.get(key);
        Double b = other.get(key);
        if (a == null || b == null || b == 0 || a.isNaN() || b.isNaN()) {
            return "–";
        }
        return String.format(Locale.ROOT, "%.2fx", a / b);
    }

    static String met(Metric mt, Map<String, Double> ours, Map<String, Double> broker) {
        if (ours == null || mt.target().isEmpty()) {
            return "";
        }
        Double o = ours.get(mt.key());
        if (o == null) {
            return "";
        }
        switch (mt.key()) {
            case "rss_pipe" -> {
                return o < 64 ? "yes" : "**no**";
            }
            case "gc_pipe" -> {
                return o <= 5 ? "yes" : "**no**";
            }
            default -> {
                if (broker == null || !broker.containsKey(mt.key())) {
                    return "";
                }
                double r = o / broker.get(mt.key());
                boolean ok = mt.higherBetter() ? r >= 1.0 : r <= 1.0;
                return ok ? "yes" : "**no**";
            }
        }
    }
}
