// Invariants: exit status 0 = the runs match, 1 = they differ, 2 = could not run (usage
// error, a bus that did not start, an I/O failure); the report goes to stdout, diagnostics to
// stderr. The hidden --x-test-drop-signal option is TEST-ONLY: it puts a FaultRelay in front
// of our bus, never into it (docs/migration.md, "Seeded divergence").
package org.kdbusbridge.bridge.migration;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/** {@code kdbus-bridge diff [OPTIONS] -- COMMAND...}. */
public final class DiffCommand {
    public static final int SAME = 0;
    public static final int DIFFERENT = 1;
    public static final int CANNOT_RUN = 2;

    static final String USAGE = "kdbus-bridge diff [--reference=PATH] [--ours=PATH] [--allow-list=FILE]"
            + " [--timeout=SECONDS] [--settle=SECONDS] [--verbose] -- COMMAND [ARGS...]\n"
            + "  Runs COMMAND under PATH (default /usr/bin/dbus-daemon) and under kdbus-bridge (a child JVM on this"
            + " class path, or the executable given by --ours), each with a fresh session bus, and compares what went"
            + " over the buses.\n  Exit status: 0 identical, 1 different, 2 could not run.";

    private DiffCommand() { }

    public static int run(String[] argv) {
        String reference = "/usr/bin/dbus-daemon";
        String oursExe = null;
        Path allowFile = null;
        Duration timeout = Duration.ofSeconds(120);
        Duration settle = Duration.ofSeconds(5);
        boolean verbose = false;
        SignalDrop faults = null;
        int cmd = -1;
        try {
            for (int i = 0; i < argv.length; i++) {
                String a = argv[i];
                if (a.equals("--")) {
                    cmd = i + 1;
                    break;
                } else if (a.startsWith("--reference=")) {
                    reference = a.substring(12);
                } else if (a.startsWith("--ours=")) {
                    oursExe = a.substring(7);
                } else if (a.startsWith("--allow-list=")) {
                    allowFile = Path.of(a.substring(13));
                } else if (a.startsWith("--timeout=")) {
                    timeout = Duration.ofMillis((long) (Double.parseDouble(a.substring(10)) * 1000));
                } else if (a.startsWith("--settle=")) {
                    settle = Duration.ofMillis((long) (Double.parseDouble(a.substring(9)) * 1000));
                } else if (a.equals("--verbose") || a.equals("-v")) {
                    verbose = true;
                } else if (a.startsWith("--x-test-drop-signal=")) {
                    faults = SignalDrop.parse(a.substring(21));
                } else if (a.equals("--help") || a.equals("-h")) {
                    System.out.println(USAGE);
                    return SAME;
                } else if (!a.startsWith("-")) {
                    cmd = i;
                    break;
                } else {
                    throw new IllegalArgumentException("unknown option " + a);
                }
            }
            if (cmd < 0 || cmd >= argv.length) throw new IllegalArgumentException("no command given");
        } catch (RuntimeException e) {
            System.err.println("kdbus-bridge diff: " + e.getMessage());
            System.err.println(USAGE);
            return CANNOT_RUN;
        }
        if (!Files.isExecutable(Path.of(reference))) {
            System.err.println("kdbus-bridge diff: reference bus " + reference + " is not executable");
            return CANNOT_RUN;
        }
        List<String> command = new ArrayList<>(Arrays.asList(argv).subList(cmd, argv.length));
        BusLauncher ref = BusLauncher.process("dbus-daemon", List.of(reference));
        BusLauncher ours = oursExe != null ? BusLauncher.process("kdbus-bridge", List.of(oursExe)) : BusLauncher.ours();
        if (faults != null) ours = BusLauncher.withFaults(ours, faults);
        try {
            AllowList allow = allowFile != null ? AllowList.load(allowFile) : AllowList.standard();
            DifferentialRunner.Result r = new DifferentialRunner(ref, ours).allowList(allow).settle(settle)
                    .run(Workload.command(command, Map.of(), timeout));
            if (verbose) {
                System.out.println("=== dbus-daemon (" + r.referenceTranscript().messageCount() + " messages, exit "
                        + r.reference().exitStatus() + ") ===");
                System.out.print(r.referenceTranscript().render());
                System.out.println("=== kdbus-bridge (" + r.oursTranscript().messageCount() + " messages, exit "
                        + r.ours().exitStatus() + ") ===");
                System.out.print(r.oursTranscript().render());
            }
            System.out.print(r.report().render());
            if (r.report().exitCodesDiffer()) {
                System.out.println("--- command output on dbus-daemon ---\n" + tail(r.reference().output()));
                System.out.println("--- command output on kdbus-bridge ---\n" + tail(r.ours().output()));
            }
            return r.matches() ? SAME : DIFFERENT;
        } catch (Exception e) {
            System.err.println("kdbus-bridge diff: could not run: " + e);
            return CANNOT_RUN;
        }
    }

    private static String tail(String s) {
        return s.length() <= 2000 ? s : "..." + s.substring(s.length() - 2000);
    }
}
