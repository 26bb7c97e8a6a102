package org.kdbusbridge.compat.harness;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/** The two buses every scenario runs against. */
public enum BusKind {
    DBUS_DAEMON("dbus-daemon"),
    KDBUS_BRIDGE("kdbus-bridge");

    /** System property with the path of the shaded bus jar (surefire sets it). */
    public static final String JAR_PROPERTY = "kdbus.bridge.jar";
    /** System property selecting the buses: comma list of dbus-daemon,kdbus-bridge (default both). */
    public static final String BUSES_PROPERTY = "compat.buses";
    /** How long a bus gets to print its address. */
    public static final Duration STARTUP_DEADLINE = Duration.ofSeconds(30);

    private final String label;

    BusKind(String label) {
        this.label = label;
    }

    public String label() {
        return label;
    }

    @Override
    public String toString() {
        return label;
    }

    public static BusKind parse(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT).replace('_', '-');
        for (BusKind k : values()) {
            if (k.label.equals(t) || k.name().toLowerCase(Locale.ROOT).replace('_', '-').equals(t)) {
                return k;
            }
        }
        if (t.equals("ours") || t.equals("bridge")) {
            return KDBUS_BRIDGE;
        }
        throw new IllegalArgumentException("unknown bus '" + s + "' (use dbus-daemon or kdbus-bridge)");
    }

    /** The buses selected by {@code -Dcompat.buses=...} (default: both). */
    public static List<BusKind> selected() {
        String p = System.getProperty(BUSES_PROPERTY, "").trim();
        if (p.isEmpty() || p.equalsIgnoreCase("both") || p.equalsIgnoreCase("all")) {
            return List.of(values());
        }
        List<BusKind> out = new ArrayList<>();
        for (String part : p.split(",")) {
            if (!part.isBlank()) {
                BusKind k = parse(part);
                if (!out.contains(k)) {
                    out.add(k);
                }
            }
        }
        return out;
    }

    /** The command line that starts this bus listening on {@code socket}. */
    public List<String> command(Path socket) {
        return command(List.of("--session", "--nofork", "--print-address", "--address=unix:path=" + socket));
    }

    /** The command line that starts this bus with the given dbus-daemon options. */
    public List<String> command(List<String> common) {
        List<String> argv = new ArrayList<>();
        switch (this) {
            case DBUS_DAEMON -> {
                Path exe = Path.of(System.getProperty("compat.dbus-daemon", "/usr/bin/dbus-daemon"));
                if (!Files.isExecutable(exe)) {
                    throw new IllegalStateException("dbus-daemon not found at " + exe);
                }
                argv.add(exe.toString());
            }
            case KDBUS_BRIDGE -> {
                String jar = System.getProperty(JAR_PROPERTY);
                if (jar == null || jar.isBlank()) {
                    throw new IllegalStateException("System property " + JAR_PROPERTY
                            + " is not set: it must name the shaded bus jar (bridge/target/kdbus-bridge.jar)."
                            + " Run with -Dcompat.buses=dbus-daemon to test dbus-daemon only.");
                }
                Path jarPath = Path.of(jar).toAbsolutePath().normalize();
                if (!Files.isRegularFile(jarPath)) {
                    throw new IllegalStateException("kdbus-bridge jar not found at " + jarPath
                            + ": build it first (mvn -B -pl bridge -am package, or a root mvn verify);"
                            + " or run with -Dcompat.buses=dbus-daemon to test dbus-daemon only.");
                }
                argv.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
                argv.addAll(shippedJvmOptions());
                String extra = System.getProperty("compat.bridge.jvmArgs", "");
                if (!extra.isBlank()) {
                    argv.addAll(Arrays.asList(extra.trim().split("\\s+")));
                }
                argv.add("-jar");
                argv.add(jarPath.toString());
            }
        }
        argv.addAll(common);
        return argv;
    }

    /**
     * The JVM options we ship (dist/conf/jvm.options), so the tests run the bus with the same
     * heap limit and flags users get: a bug that only shows under -Xmx512m shows here too.
     */
    static List<String> shippedJvmOptions() {
        Path options = Path.of(System.getProperty("kdbus.repo.root", ".."), "dist", "conf", "jvm.options");
        List<String> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(options)) {
                String l = line.replaceFirst("#.*$", "").trim();
                if (!l.isEmpty()) {
                    out.add(l);
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the shipped JVM options " + options, e);
        }
        return out;
    }

    /** Starts a fresh bus in a fresh temporary directory and waits until it printed its address. */
    public BusUnderTest start() throws IOException {
        Path dir = Files.createTempDirectory("kdbus-compat-" + label + "-");
        return ProcessBus.start(this, dir);
    }

    /**
     * As {@link #start(Path, String...)}, with {@code env} added to the bus's environment
     * (through env(1), which execs the bus: the process is the bus itself).
     */
    public BusUnderTest start(java.util.Map<String, String> env, Path config, String... extraOptions) throws IOException {
        Path dir = Files.createTempDirectory("kdbus-compat-" + label + "-");
        List<String> options = new ArrayList<>(List.of("--config-file=" + config, "--nofork", "--print-address"));
        options.addAll(Arrays.asList(extraOptions));
        List<String> argv = new ArrayList<>(List.of("/usr/bin/env"));
        env.forEach((k, v) -> argv.add(k + "=" + v));
        argv.addAll(command(options));
        return ProcessBus.start(this, dir, argv);
    }

    /** Starts this bus with {@code --config-file=config --nofork --print-address}. */
    public BusUnderTest start(Path config, String... extraOptions) throws IOException {
        Path dir = Files.createTempDirectory("kdbus-compat-" + label + "-");
        List<String> options = new ArrayList<>(List.of("--config-file=" + config, "--nofork", "--print-address"));
        options.addAll(Arrays.asList(extraOptions));
        return ProcessBus.start(this, dir, command(options));
    }
}
