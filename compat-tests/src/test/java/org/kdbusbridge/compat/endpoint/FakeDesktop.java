package org.kdbusbridge.compat.endpoint;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;

import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.Message;

/**
 * The outside half of the sandboxed-app scenario: fake_desktop.py (dbus-python) owning
 * org.freedesktop.portal.Desktop, org.freedesktop.Notifications and org.example.Private on
 * connections of their own, and org.example.DesktopControl, which tells the test every call the
 * services received (so the test sees what the outside saw, not only what the client says).
 */
final class FakeDesktop implements AutoCloseable {
    static final String PYTHON = System.getProperty("compat.python", "/usr/bin/python3");
    static final Duration T = Duration.ofSeconds(20);

    final String portal;
    final String notifications;
    final String hidden;
    final String control;
    private final Background process;
    private final OutsidePeer asker;

    private FakeDesktop(Background process, String[] uniques, OutsidePeer asker) {
        this.process = process;
        this.portal = uniques[0];
        this.notifications = uniques[1];
        this.hidden = uniques[2];
        this.control = uniques[3];
        this.asker = asker;
    }

    /** Copies a script of resources/endpoint/ into {@code dir}; returns its path. */
    static Path script(Path dir, String name) throws IOException {
        Path p = dir.resolve(name);
        try (InputStream in = FakeDesktop.class.getResourceAsStream("/endpoint/" + name)) {
            if (in == null) {
                throw new IOException("test resource endpoint/" + name + " missing");
            }
            Files.copy(in, p, StandardCopyOption.REPLACE_EXISTING);
        }
        return p;
    }

    static FakeDesktop start(SandboxBus bus) throws IOException {
        Path py = script(bus.dir, "fake_desktop.py");
        Background b = Background.start(List.of(PYTHON, py.toString(), bus.address()), null);
        String ready = b.stdout().awaitLine(l -> l.startsWith("ready "), T);
        if (ready == null) {
            String why = b.describe();
            b.close();
            throw new IOException("fake desktop services did not start: " + why);
        }
        String[] u = ready.substring("ready ".length()).trim().split(" ");
        return new FakeDesktop(b, u, OutsidePeer.connect(bus.address(), "ask", false));
    }

    /** Every call the three services received so far: "service|interface.member|sender[|summary]". */
    List<String> calls() throws IOException {
        Message r = asker.call(Message.call("org.example.DesktopControl", "/control", "org.example.Control", "Calls"));
        if (r.type != Message.METHOD_RETURN) {
            throw new IOException("Control.Calls failed: " + r + "\n" + process.describe());
        }
        return ((List<?>) r.arg(0)).stream().map(String::valueOf).toList();
    }

    /** The calls from {@code sender}, without the sender part. */
    List<String> callsFrom(String sender) throws IOException {
        return calls().stream().filter(c -> c.split("\\|")[2].equals(sender))
                .map(c -> c.replace("|" + sender, "")).toList();
    }

    /** The calls the private service received, from anyone. */
    List<String> privateCalls() throws IOException {
        return calls().stream().filter(c -> c.startsWith("private|")).toList();
    }

    String describe() {
        return process.describe();
    }

    @Override
    public void close() {
        asker.close();
        process.close();
    }
}
