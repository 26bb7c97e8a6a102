package org.kdbusbridge.compat.bench;

import static org.kdbusbridge.compat.bench.BusBenchmark.PAUSE;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.stream.Stream;

/** What the benchmarks read about a bus process from /proc, and how they stop and clean up after one. */
final class BenchProcesses {
    private BenchProcesses() { }

    /** utime + stime of pid and its descendants, in clock ticks. */
    static long cpuTicks(long pid) {
        long t = ownCpuTicks(pid);
        for (ProcessHandle d : ProcessHandle.of(pid).map(h -> h.descendants().toList()).orElse(List.of())) {
            t += ownCpuTicks(d.pid());
        }
        return t;
    }

    static long ownCpuTicks(long pid) {
        try {
            String s = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
            return Long.parseLong(f[11]) + Long.parseLong(f[12]);
        } catch (IOException gone) {
            return 0;
        }
    }

    /** Sum of VmHWM (KiB) over the bus's memory-relevant processes. */
    static long peakRssKiB(Contender kind, long root) {
        return statusSum(kind, root, "VmHWM:");
    }

    /** Sum of a /proc/PID/status field (KiB) over the bus's memory-relevant processes. */
    static long statusSum(Contender kind, long root, String field) {
        List<Long> pids = new ArrayList<>();
        pids.add(root);
        ProcessHandle.of(root).ifPresent(h -> h.descendants().forEach(d -> pids.add(d.pid())));
        long sum = 0;
        for (long p : pids) {
            if (!kind.countsForMemory(p, root)) {
                continue;
            }
            try {
                for (String l : Files.readAllLines(Path.of("/proc/" + p + "/status"))) {
                    if (l.startsWith(field)) {
                        sum += Long.parseLong(l.replaceAll("[^0-9]", ""));
                    }
                }
            } catch (IOException gone) {
                // exited
            }
        }
        return sum;
    }

    static long clockTicksPerSecond() {
        try {
            Process p = new ProcessBuilder("getconf", "CLK_TCK").start();
            String s = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
            p.waitFor();
            return Long.parseLong(s);
        } catch (Exception e) {
            return 100;
        }
    }

    static String loadavg() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).trim();
        } catch (IOException e) {
            return "?";
        }
    }

    static long size(Path f) {
        try {
            return Files.exists(f) ? Files.size(f) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    /** Longest "Pause" of the unified GC log from byte offset {@code from} on, in ms (0 if none). */
    static double maxPause(Path gcLog, long from) throws IOException {
        if (!Files.exists(gcLog)) {
            return Double.NaN;
        }
        byte[] b;
        try (RandomAccessFile f = new RandomAccessFile(gcLog.toFile(), "r")) {
            long len = f.length();
            b = new byte[(int) Math.max(0, len - from)];
            f.seek(from);
            f.readFully(b);
        }
        double max = 0;
        for (String l : new String(b, StandardCharsets.UTF_8).split("\n")) {
            Matcher mm = PAUSE.matcher(l);
            if (mm.find()) {
                max = Math.max(max, Double.parseDouble(mm.group(1)));
            }
        }
        return max;
    }

    static void stop(Process bus) {
        // dbus-broker's launcher is pid 1 of its pid namespace and ignores SIGTERM there: the
        // broker tree is stopped from the leaves up, everything else with SIGTERM first.
        List<ProcessHandle> desc = bus.descendants().toList();
        desc.forEach(ProcessHandle::destroy);
        bus.destroy();
        try {
            if (!bus.waitFor(10, TimeUnit.SECONDS)) {
                bus.destroyForcibly();
                bus.waitFor(10, TimeUnit.SECONDS);
            }
            for (ProcessHandle d : desc) {
                if (d.isAlive()) {
                    d.destroyForcibly();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // best effort
        }
    }

    // ------------------------------------------------------------------ report

}
