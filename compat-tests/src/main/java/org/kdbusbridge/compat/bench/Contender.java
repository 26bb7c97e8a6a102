package org.kdbusbridge.compat.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The three buses of {@link BusBenchmark}, each started fresh per repetition on {@code DIR/bus}.
 *
 * <p>dbus-broker runs without systemd: {@code dbus-broker-launch --scope user} under
 * {@code systemd-socket-activate -l DIR/bus}, inside {@code unshare -m -p -f --kill-child} with a
 * tmpfs on {@code /run/systemd} (private to that mount namespace) holding a datagram socket at
 * {@code /run/systemd/journal/socket} that {@code kbb-load journal-sink} drains. The launcher also
 * needs {@code XDG_RUNTIME_DIR} and {@code DBUS_SESSION_BUS_ADDRESS} (it connects to the bus it
 * launched as a regular client; without them it fails with ENOMEDIUM); systemd-socket-activate
 * passes on only what {@code -E} names.
 */
enum Contender {
    DBUS_DAEMON("dbus-daemon"),
    DBUS_BROKER("dbus-broker"),
    KDBUS_BRIDGE("kdbus-bridge");

    final String label;

    Contender(String label) {
        this.label = label;
    }

    @Override
    public String toString() {
        return label;
    }

    static Contender parse(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        for (Contender c : values()) {
            if (c.label.equals(t)) {
                return c;
            }
        }
        if (t.equals("ours") || t.equals("bridge")) {
            return KDBUS_BRIDGE;
        }
        throw new IllegalArgumentException("unknown bus " + s + " (dbus-daemon, dbus-broker, kdbus-bridge)");
    }

    /** The command line that starts this bus on {@code dir/bus}; {@code env} gets its variables. */
    List<String> command(Path dir, BusBenchmark.Config cfg, Map<String, String> env) {
        Path socket = dir.resolve("bus");
        List<String> argv = new ArrayList<>();
        switch (this) {
            case DBUS_DAEMON -> argv.addAll(List.of("/usr/bin/dbus-daemon", "--session", "--nofork", "--print-address",
                    "--address=unix:path=" + socket));
            case KDBUS_BRIDGE -> {
                // The shipped launcher script and JVM flags (dist/conf/jvm.options); it execs java,
                // so the pid is the JVM's. The GC log goes to the run directory.
                argv.addAll(List.of(cfg.root.resolve("bin/kdbus-bridge").toString(), "--session", "--nofork",
                        "--print-address", "--address=unix:path=" + socket));
                if (cfg.checkMetrics) { // issue 20's check (BusBenchmark's pipelined step, MetricsCheck)
                    argv.add("--kdbus-metrics=unix:path=" + dir.resolve("metrics"));
                }
                String extra = "-Xlog:gc*:file=" + dir.resolve("gc.log") + " " + cfg.ourJvmOpts;
                env.put("KDBUS_BRIDGE_JAVA_OPTS", extra.trim());
                env.put("KDBUS_BRIDGE_CDS_DIR", cfg.work.resolve("cds").toString());
            }
            case DBUS_BROKER -> {
                String inner = "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal && "
                        + q(cfg.loadgen.toString()) + " journal-sink /run/systemd/journal/socket && "
                        + "exec systemd-socket-activate -E XDG_RUNTIME_DIR=" + q(dir.toString())
                        + " -E DBUS_SESSION_BUS_ADDRESS=unix:path=" + q(socket.toString())
                        + " -l " + q(socket.toString())
                        + " dbus-broker-launch --scope user --config-file /usr/share/dbus-1/session.conf";
                argv.addAll(List.of("unshare", "-m", "-p", "-f", "--kill-child", "sh", "-c", inner));
            }
        }
        return argv;
    }

    /** Whether the bus prints its address on stdout when it is ready (dbus-broker: socket-activated). */
    boolean printsAddress() {
        return this != DBUS_BROKER;
    }

    /** Whether a process of the bus's tree counts for memory (not our journal sink, not wrappers). */
    boolean countsForMemory(long pid, long root) {
        if (this != DBUS_BROKER) {
            return pid == root;
        }
        try {
            String comm = Files.readString(Path.of("/proc/" + pid + "/comm")).trim();
            return comm.startsWith("dbus-broker");
        } catch (IOException gone) {
            return false;
        }
    }

    private static String q(String s) {
        return "'" + s.replace("'", "'\\''") + "'";
    }
}
