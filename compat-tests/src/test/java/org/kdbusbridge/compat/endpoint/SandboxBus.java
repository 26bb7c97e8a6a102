package org.kdbusbridge.compat.endpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;

/**
 * A bus of one kind with the sandbox front that belongs to it: the real xdg-dbus-proxy in front of
 * dbus-daemon, our bin/kdbus-bridge-proxy (an endpoint) on our bus. Both fronts are started the same
 * way, through {@link SandboxFront}. The bus has its own config (no host service directories).
 */
final class SandboxBus implements AutoCloseable {
    final BusKind kind;
    final Path dir;
    private final BusUnderTest bus;
    private final List<AutoCloseable> owned = new ArrayList<>();

    private SandboxBus(BusKind kind, Path dir, BusUnderTest bus) {
        this.kind = kind;
        this.dir = dir;
        this.bus = bus;
    }

    static SandboxBus start(BusKind kind) throws IOException {
        return start(kind, "");
    }

    /**
     * As {@link #start(BusKind)}, with {@code extraPolicy} appended to the default context (later
     * rules win, so a deny there overrides the allow-all) and {@code busOptions} on the bus's command line.
     */
    static SandboxBus start(BusKind kind, String extraPolicy, String... busOptions) throws IOException {
        Path dir = Files.createTempDirectory("kdbus-sandbox-" + kind.label() + "-");
        String xml = "<busconfig><type>session</type><listen>unix:path=" + dir.resolve("bus") + "</listen>"
                + "<auth>EXTERNAL</auth><policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
                + "<allow eavesdrop=\"true\"/><allow own=\"*\"/>" + extraPolicy + "</policy></busconfig>\n";
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, xml);
        String[] options = java.util.Arrays.stream(busOptions).map(o -> o.replace("@DIR@", dir.toString())).toArray(String[]::new);
        return new SandboxBus(kind, dir, kind.start(conf, options));
    }

    /** The front for this bus kind. */
    Path frontProgram() {
        return kind == BusKind.DBUS_DAEMON ? SandboxFront.xdgDbusProxy() : SandboxFront.ourFront();
    }

    String address() {
        return bus.address();
    }

    boolean isAlive() {
        return bus.isAlive();
    }

    String busLog() {
        try {
            return Files.readString(bus.stderrLog());
        } catch (IOException e) {
            return "<" + e + ">";
        }
    }

    /** Starts a front with these rules; {@code viaArgsFd} passes them through --args=FD as flatpak run does. */
    SandboxFront front(String name, List<String> rules, boolean viaArgsFd) throws IOException {
        SandboxFront f = SandboxFront.start(frontProgram(), bus.address(), dir, name, rules, viaArgsFd);
        owned.add(f);
        return f;
    }

    /** Closes {@code c} with the bus (before it). */
    <T extends AutoCloseable> T own(T c) {
        owned.add(c);
        return c;
    }

    @Override
    public void close() {
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
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
