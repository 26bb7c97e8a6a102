package org.kdbusbridge.compat.endpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;

/**
 * One bus with the outside services every case shares, and one sandbox front per rule set (started
 * on first use). The services are started before any sandboxed client connects, so a front learns
 * their owners the way it does in real life: at the client's Hello.
 */
final class MatrixWorld implements AutoCloseable {
    /** The long-lived outside peers: label, then the names it owns. */
    static final Map<String, List<String>> SERVICES = new LinkedHashMap<>();
    static {
        SERVICES.put("T", List.of("org.example.Talk"));
        SERVICES.put("S", List.of("org.example.See"));
        SERVICES.put("H", List.of("org.example.Hidden"));
        SERVICES.put("W", List.of("org.example.Wild.Sub"));
        SERVICES.put("X", List.of("org.example.WildCard"));
        SERVICES.put("C", List.of("org.example.Call"));
        SERVICES.put("B", List.of("org.example.Bcast"));
        SERVICES.put("D", List.of("org.example.DualSee", "org.example.DualTalk"));
        // P: a plain peer that calls the sandboxed client; Z: a peer that never answers.
        SERVICES.put("P", List.of());
    }

    final BusKind kind;
    private final Path front;
    private final BusUnderTest bus;
    private final Path dir;
    private final Map<String, OutsidePeer> peers = new LinkedHashMap<>();
    private final Map<String, SandboxFront> fronts = new LinkedHashMap<>();

    private MatrixWorld(BusKind kind, Path front, BusUnderTest bus, Path dir) {
        this.kind = kind;
        this.front = front;
        this.bus = bus;
        this.dir = dir;
    }

    /** Names with a .service file (whose Exec fails at once): for ListActivatableNames and StartServiceByName. */
    static final List<String> ACTIVATABLE = List.of("org.example.Talk", "org.example.Hidden", "org.example.Lazy", "org.example.SeeLazy");

    static MatrixWorld start(BusKind kind, Path front) throws IOException {
        Path dir = Files.createTempDirectory("kdbus-endpoint-matrix-");
        BusUnderTest bus = kind.start(config(dir));
        MatrixWorld w = new MatrixWorld(kind, front, bus, dir);
        try {
            for (Map.Entry<String, List<String>> e : SERVICES.entrySet()) {
                w.peers.put(e.getKey(), OutsidePeer.service(bus.address(), e.getKey(), e.getValue().toArray(String[]::new)));
            }
            w.peers.put("Z", OutsidePeer.connect(bus.address(), "Z", false));
        } catch (IOException | RuntimeException e) {
            w.close();
            throw e;
        }
        return w;
    }

    /** A session bus with its own service directory (the stock session config reads the host's). */
    private static Path config(Path dir) throws IOException {
        Path services = Files.createDirectories(dir.resolve("services"));
        for (String n : ACTIVATABLE) {
            Files.writeString(services.resolve(n + ".service"), "[D-BUS Service]\nName=" + n + "\nExec=/bin/false\n");
        }
        String xml = "<busconfig><type>session</type><listen>unix:path=" + dir.resolve("bus") + "</listen>"
                + "<auth>EXTERNAL</auth><servicedir>" + services + "</servicedir>"
                + "<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
                + "<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n";
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, xml);
        return conf;
    }

    String busAddress() {
        return bus.address();
    }

    OutsidePeer peer(String label) {
        OutsidePeer p = peers.get(label);
        if (p == null) {
            throw new IllegalArgumentException("no outside peer " + label);
        }
        return p;
    }

    /** Unique name to label, for every long-lived outside peer. */
    Map<String, String> labels() {
        Map<String, String> m = new LinkedHashMap<>();
        peers.forEach((label, p) -> m.put(p.unique(), ":" + label));
        return m;
    }

    /** The front for a rule set, started the first time a case needs it. */
    SandboxFront front(String ruleSet, List<String> rules) throws IOException {
        SandboxFront f = fronts.get(ruleSet);
        if (f != null && !f.isAlive()) {
            throw new IllegalStateException("the front for rule set " + ruleSet + " died: " + f.describe());
        }
        if (f == null) {
            f = SandboxFront.start(front, bus.address(), dir, ruleSet, rules);
            fronts.put(ruleSet, f);
        }
        return f;
    }

    /** Starts a front that no case shares (for the lifetime checks). */
    SandboxFront privateFront(String name, List<String> rules, boolean viaArgsFd) throws IOException {
        return SandboxFront.start(front, bus.address(), dir, name, rules, viaArgsFd);
    }

    /** The front's log for a rule set, for failure messages. */
    String describeFront(String ruleSet) {
        SandboxFront f = fronts.get(ruleSet);
        return f == null ? "(front not started)" : f.describe();
    }

    @Override
    public void close() {
        List<AutoCloseable> all = new ArrayList<>(fronts.values());
        all.addAll(peers.values());
        for (AutoCloseable c : all) {
            try {
                c.close();
            } catch (Exception ignored) {
                // best effort
            }
        }
        bus.close();
        if (!Boolean.getBoolean("compat.keepTemp")) {
            try (Stream<Path> s = Files.walk(dir)) {
                s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            } catch (IOException ignored) {
                // best effort
            }
        }
    }
}
