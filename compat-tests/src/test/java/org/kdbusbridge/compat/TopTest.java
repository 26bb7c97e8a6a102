package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * {@code kdbus-bridge top} (issue 20) in a real terminal: tmux runs it against our bus's
 * {@code --kdbus-metrics} socket; a raw client floods signals and must be the first data row
 * within 2 s of starting (the proof); the name sort and the filter reorder the rows,
 * {@code m} brings the flooder back, {@code q} ends the program with status 0. A wedged bus
 * (stopped with SIGSTOP) does not freeze top: it says "no answer" within its 2 s read timeout
 * and picks up again when the bus resumes.
 */
class TopTest {
    private static final String TMUX = "/usr/bin/tmux";
    /** Rows 0-2 are the header, the key line and the column titles. */
    private static final int FIRST_ROW = 3;

    private final String server = "kbb-top-" + ProcessHandle.current().pid();

    private Cmd.Result tmux(String... args) {
        List<String> argv = new java.util.ArrayList<>(List.of(TMUX, "-L", server));
        argv.addAll(List.of(args));
        return Cmd.run(argv, Buses.SHORT);
    }

    private List<String> pane() {
        return tmux("capture-pane", "-p", "-t", "top").stdout().lines().toList();
    }

    /** Polls the pane until {@code p} holds or {@code within} passes; the last capture either way. */
    private List<String> awaitPane(Predicate<List<String>> p, Duration within) {
        long deadline = System.nanoTime() + within.toNanos();
        List<String> lines = pane();
        while (!p.test(lines) && System.nanoTime() < deadline) {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20)); // pacing between captures
            lines = pane();
        }
        return lines;
    }

    private static String row(List<String> lines, int i) {
        return lines.size() > FIRST_ROW + i ? lines.get(FIRST_ROW + i) : "";
    }

    private static boolean rowIs(List<String> lines, int i, String unique) {
        return row(lines, i).startsWith(unique + " ");
    }

    @Test
    void floodingClientTopsTheViewKeysSortFilterAndQuit(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of(TMUX)), "tmux is not installed (.ci/run installs it)");
        Path metrics = dir.resolve("metrics");
        Path status = dir.resolve("status");
        try (Background bus = Background.start(List.of(DropInTest.BIN + "/kdbus-bridge", "--session", "--nofork",
                "--print-address", "--address=unix:path=" + dir.resolve("bus"), "--kdbus-metrics=unix:path=" + metrics),
                null);
             RawClient idle = RawClient.connectHello(bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T),
                     Buses.T)) {
            String address = "unix:path=" + dir.resolve("bus");
            Message r = idle.callBus("RequestName", Buses.T, "su", "org.example.TopIdle", 0L);
            assertEquals(Message.METHOD_RETURN, r.type, r.toString());
            try {
                String command = DropInTest.BIN + "/kdbus-bridge top --metrics=unix:path=" + metrics + " --address="
                        + address + " 2>" + dir.resolve("top.err") + "; echo exit=$? >" + status;
                Cmd.Result started = tmux("new-session", "-d", "-s", "top", "-x", "160", "-y", "40", command);
                assertTrue(started.ok(), started.describe());
                List<String> lines = awaitPane(l -> rowIs(l, 0, idle.uniqueName()), Buses.T);
                assertTrue(rowIs(lines, 0, idle.uniqueName()), "top did not show the idle client: " + lines);
                assertTrue(lines.get(0).startsWith("kdbus-bridge top"), lines.toString());
                assertTrue(row(lines, 0).contains("org.example.TopIdle"), lines.toString());

                AtomicBoolean stop = new AtomicBoolean();
                try (RawClient flooder = RawClient.connectHello(address, Buses.T)) {
                    long start = System.nanoTime();
                    Thread load = new Thread(() -> {
                        Message s = new Message();
                        s.type = Message.SIGNAL;
                        s.path = "/org/example/Flood";
                        s.iface = "org.example.Flood";
                        s.member = "Tick";
                        try {
                            while (!stop.get()) flooder.send(s);
                        } catch (Exception e) {
                            // the bus went away: the assertions below report it
                        }
                    }, "flooder");
                    load.start();
                    try {
                        String f = flooder.uniqueName();
                        lines = awaitPane(l -> rowIs(l, 0, f), Duration.ofSeconds(5));
                        double secs = (System.nanoTime() - start) / 1e9;
                        assertTrue(rowIs(lines, 0, f), "flooder " + f + " not on top: " + lines);
                        System.out.printf("TopTest: flooder %s in the first row after %.2f s%n", f, secs);
                        assertTrue(secs < 2.0, "flooder on top after " + secs + " s");
                        assertTrue(rowIs(lines, 1, idle.uniqueName()), lines.toString());

                        // n: by unique name, the idle client (connected first) leads.
                        tmux("send-keys", "-t", "top", "n");
                        lines = awaitPane(l -> l.get(0).contains("sort: name"), Buses.SHORT);
                        assertTrue(lines.get(0).contains("sort: name") && rowIs(lines, 0, idle.uniqueName())
                                && rowIs(lines, 1, f), lines.toString());
                        // m: by message rate again.
                        tmux("send-keys", "-t", "top", "m");
                        lines = awaitPane(l -> l.get(0).contains("sort: messages") && rowIs(l, 0, f), Buses.SHORT);
                        assertTrue(rowIs(lines, 0, f), lines.toString());
                        // /TopIdle Enter: only the idle client is left.
                        tmux("send-keys", "-t", "top", "/", "TopIdle", "Enter");
                        lines = awaitPane(l -> l.get(0).contains("filter: topidle"), Buses.SHORT);
                        assertTrue(rowIs(lines, 0, idle.uniqueName()) && row(lines, 1).isBlank(), lines.toString());
                    } finally {
                        stop.set(true);
                        load.join(10_000);
                    }
                }
                tmux("send-keys", "-t", "top", "q");
                long deadline = System.nanoTime() + Buses.SHORT.toNanos();
                while (!Files.exists(status) && System.nanoTime() < deadline) {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
                }
                assertTrue(Files.exists(status), "q did not end top: " + pane());
                assertEquals("exit=0", Files.readString(status).strip(),
                        Files.exists(dir.resolve("top.err")) ? Files.readString(dir.resolve("top.err")) : "");
            } finally {
                tmux("kill-server");
            }
        }
    }

    @Test
    void aWedgedBusShowsNoAnswerAndTopKeepsGoing(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of(TMUX)), "tmux is not installed (.ci/run installs it)");
        Path metrics = dir.resolve("metrics");
        Path status = dir.resolve("status");
        try (Background bus = Background.start(List.of(DropInTest.BIN + "/kdbus-bridge", "--session", "--nofork",
                "--print-address", "--address=unix:path=" + dir.resolve("bus"), "--kdbus-metrics=unix:path=" + metrics),
                null);
             RawClient idle = RawClient.connectHello(bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T),
                     Buses.T)) {
            long pid = bus.process().pid();
            try {
                String command = DropInTest.BIN + "/kdbus-bridge top --metrics=unix:path=" + metrics
                        + " 2>" + dir.resolve("top.err") + "; echo exit=$? >" + status;
                assertTrue(tmux("new-session", "-d", "-s", "top", "-x", "160", "-y", "40", command).ok());
                List<String> lines = awaitPane(l -> rowIs(l, 0, idle.uniqueName()), Buses.T);
                assertTrue(rowIs(lines, 0, idle.uniqueName()), "top did not show the client: " + lines);

                // The bus stops answering: its socket still accepts (the kernel does), nothing is written.
                assertTrue(Cmd.run(List.of("kill", "-STOP", Long.toString(pid)), Buses.SHORT).ok());
                long stopped = System.nanoTime();
                lines = awaitPane(l -> l.size() > 1 && l.get(1).startsWith("no answer from the bus"),
                        Duration.ofSeconds(10));
                double secs = (System.nanoTime() - stopped) / 1e9;
                assertTrue(lines.size() > 1 && lines.get(1).startsWith("no answer from the bus"),
                        "top froze or said nothing: " + lines);
                System.out.printf("TopTest: \"no answer\" shown %.2f s after the bus stopped%n", secs);
                assertTrue(rowIs(lines, 0, idle.uniqueName()), "the last reading stays: " + lines);
                // Keys still work while the bus is wedged.
                tmux("send-keys", "-t", "top", "n");
                lines = awaitPane(l -> l.get(0).contains("sort: name"), Buses.SHORT);
                assertTrue(lines.get(0).contains("sort: name"), lines.toString());

                assertTrue(Cmd.run(List.of("kill", "-CONT", Long.toString(pid)), Buses.SHORT).ok());
                lines = awaitPane(l -> l.size() > 1 && l.get(1).startsWith("keys:"), Duration.ofSeconds(10));
                assertTrue(lines.get(1).startsWith("keys:"), "top did not pick up again: " + lines);

                tmux("send-keys", "-t", "top", "q");
                long deadline = System.nanoTime() + Buses.SHORT.toNanos();
                while (!Files.exists(status) && System.nanoTime() < deadline) {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
                }
                assertEquals("exit=0", Files.exists(status) ? Files.readString(status).strip() : "no status", pane()
                        + (Files.exists(dir.resolve("top.err")) ? Files.readString(dir.resolve("top.err")) : ""));
            } finally {
                Cmd.run(List.of("kill", "-CONT", Long.toString(pid)), Buses.SHORT);
                tmux("kill-server");
            }
        }
    }
}
