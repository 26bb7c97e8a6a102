// Invariants: the two runs are sequential (reference first), each on a fresh bus in a fresh
// work directory, with the same workload and environment; a transcript is taken only after
// the end-of-run barrier (every client seen to disconnect, or the settle time passed, then a
// marker connection observed by the monitor), so it holds everything the workload caused;
// every bus, monitor and marker started here is closed before run() returns.
package org.kdbusbridge.bridge.migration;

import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.bridge.client.BusConnection;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The differential runner: one workload under dbus-daemon and under our bus, both transcripts
 * recorded by a BecomeMonitor connection, normalised ({@link Normalizer}) and compared
 * ({@link DiffReport}).
 */
public final class DifferentialRunner {
    private static final Pattern UNIQUE = Pattern.compile(":\\d+\\.\\d+");

    /** One run on one bus. */
    public record Run(String bus, List<BusMessage> transcript, Set<String> ownNames, int exitStatus,
                      String output, Path workDir) { }

    /** Both runs and their comparison. */
    public record Result(Run reference, Run ours, NormalizedTranscript referenceTranscript,
                         NormalizedTranscript oursTranscript, DiffReport report) {
        public boolean matches() {
            return report.matches();
        }
    }

    private final BusLauncher reference;
    private final BusLauncher ours;
    private AllowList allow = AllowList.standard();
    private Duration settle = Duration.ofSeconds(5);

    public DifferentialRunner(BusLauncher reference, BusLauncher ours) {
        this.reference = reference;
        this.ours = ours;
    }

    public DifferentialRunner allowList(AllowList allow) {
        this.allow = allow;
        return this;
    }

    /** How long to wait after the workload for its clients to disconnect (default 5 s). */
    public DifferentialRunner settle(Duration settle) {
        this.settle = settle;
        return this;
    }

    public Result run(Workload w) throws Exception {
        Run ref = runOnce(reference, w);
        Run our = runOnce(ours, w);
        NormalizedTranscript a = new Normalizer(allow, ref.ownNames()).normalize(ref.transcript());
        NormalizedTranscript b = new Normalizer(allow, our.ownNames()).normalize(our.transcript());
        return new Result(ref, our, a, b, DiffReport.compare(a, b, ref.exitStatus(), our.exitStatus()));
    }

    /** Runs the workload once on a fresh bus from {@code launcher} and records the transcript. */
    public Run runOnce(BusLauncher launcher, Workload w) throws Exception {
        Path dir = Files.createTempDirectory("kdbus-diff-" + launcher.name() + "-");
        try (BusLauncher.RunningBus bus = launcher.start(dir);
             BusConnection monitor = BusConnection.open(bus.address(), "monitor-" + launcher.name())) {
            monitor.becomeMonitor();
            int status = w.run(bus.address(), dir);
            Set<String> own = new HashSet<>();
            own.add(monitor.uniqueName());
            awaitDisconnects(monitor, own);
            try (BusConnection marker = BusConnection.open(bus.address(), "marker-" + launcher.name())) {
                own.add(marker.uniqueName());
                String name = marker.uniqueName();
                BusMessage seen = monitor.await(m -> m.fromDriver() && "NameOwnerChanged".equals(m.member())
                        && name.equals(m.stringArg(0)), Duration.ofSeconds(30));
                if (seen == null) {
                    throw new IOException(launcher.name() + ": the monitor never saw the end-of-run marker "
                            + name + (monitor.failure() != null ? " (" + monitor.failure() + ")" : ""));
                }
            }
            List<BusMessage> all = monitor.received();
            int cut = all.size();
            for (int i = 0; i < all.size(); i++) {
                BusMessage m = all.get(i);
                if (m.fromDriver() && "NameOwnerChanged".equals(m.member()) && own.contains(m.stringArg(0))
                        && !m.stringArg(0).equals(monitor.uniqueName())) {
                    cut = i; // the marker's appearance: everything after it is the tools' teardown
                    break;
                }
            }
            Path out = dir.resolve("command.out");
            String output = Files.exists(out) ? Files.readString(out, StandardCharsets.UTF_8) : "";
            return new Run(launcher.name(), all.subList(0, cut), own, status, output, dir);
        }
    }

    /** Waits (up to the settle time) until every client that appeared has disconnected. */
    private void awaitDisconnects(BusConnection monitor, Set<String> own) {
        long deadline = System.nanoTime() + settle.toNanos();
        while (true) {
            Set<String> live = liveClients(monitor.received(), own);
            if (live.isEmpty()) return;
            long left = deadline - System.nanoTime();
            if (left <= 0) return;
            String any = live.iterator().next();
            monitor.await(m -> m.fromDriver() && "NameOwnerChanged".equals(m.member()) && any.equals(m.stringArg(0))
                    && "".equals(m.stringArg(2)), Duration.ofNanos(left));
        }
    }

    static Set<String> liveClients(List<BusMessage> transcript, Set<String> own) {
        Set<String> live = new LinkedHashSet<>();
        for (BusMessage m : transcript) {
            if (!m.fromDriver() || !"NameOwnerChanged".equals(m.member())) continue;
            String n = m.stringArg(0);
            if (n == null || !UNIQUE.matcher(n).matches() || own.contains(n)) continue;
            if ("".equals(m.stringArg(2))) {
                live.remove(n);
            } else {
                live.add(n);
            }
        }
        return live;
    }
}
