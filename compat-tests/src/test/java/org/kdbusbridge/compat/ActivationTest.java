package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Service activation with real service files and real processes, on both buses: auto-start,
 * StartServiceByName, ListActivatableNames, the failure errors, directory watching, and the
 * exit-on-idle stress run (our DisconnectIfIdle vs dbus-daemon's release-then-exit).
 */
class ActivationTest {
    static final String NAME = "com.example.IdleEcho";

    static Path resource(Path dir, String name) throws IOException {
        Path out = dir.resolve(name);
        try (InputStream in = ActivationTest.class.getResourceAsStream("activation/" + name)) {
            Files.copy(in, out);
        }
        return out;
    }

    /** A config with a service dir, allowing everything (dbus-daemon denies all without policy). */
    static Path config(Path dir, Map<String, String> limits) throws IOException {
        Path services = Files.createDirectories(dir.resolve("services"));
        StringBuilder x = new StringBuilder("<busconfig><type>session</type>")
                .append("<listen>unix:path=").append(dir.resolve("bus")).append("</listen>")
                .append("<auth>EXTERNAL</auth><servicedir>").append(services).append("</servicedir>")
                .append("<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>")
                .append("<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy>");
        limits.forEach((k, v) -> x.append("<limit name=\"").append(k).append("\">").append(v).append("</limit>"));
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, x.append("</busconfig>\n").toString());
        return conf;
    }

    static void service(Path dir, String name, String exec) throws IOException {
        Files.writeString(dir.resolve("services").resolve(name + ".service"),
                "[D-BUS Service]\nName=" + name + "\nExec=" + exec + "\n");
    }

    static String idleService(Path dir, String mode, int idleMs) throws IOException {
        Path py = resource(dir, "idle_service.py");
        return "/usr/bin/python3 " + py + " " + mode + " " + idleMs + " " + dir.resolve("service.log");
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void autoStartStartServiceByNameAndListing(BusKind kind, @TempDir Path dir) throws Exception {
        Path conf = config(dir, Map.of());
        service(dir, NAME, idleService(dir, "byebye", 60_000));
        try (BusUnderTest bus = kind.start(conf); RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            Message listed = c.callBus("ListActivatableNames", Buses.T, "");
            assertTrue(String.valueOf(listed.arg(0)).contains(NAME), listed.toString());
            Message has = c.callBus("NameHasOwner", Buses.T, "s", NAME);
            assertEquals(Boolean.FALSE, has.arg(0), "an activatable name has no owner until started");
            Cmd.Result busctl = Cmd.run(List.of("busctl", "--address=" + bus.address(), "--no-pager", "list",
                    "--activatable"), Buses.T);
            assertTrue(busctl.ok() && busctl.stdout().contains(NAME), busctl.describe());

            Message noStart = Message.call(NAME, "/com/example/IdleEcho", "com.example.IdleEcho", "Echo")
                    .body("u", 1L).flags(Message.FLAG_NO_AUTO_START);
            Message refused = c.call(noStart, Buses.T);
            assertEquals("org.freedesktop.DBus.Error.NameHasNoOwner", refused.errorName, refused.toString());

            Cmd.Result gdbus = Cmd.run(List.of("gdbus", "call", "--address", bus.address(), "--dest", NAME,
                    "--object-path", "/com/example/IdleEcho", "--method", "com.example.IdleEcho.Echo", "42"), Buses.T);
            assertTrue(gdbus.ok(), gdbus.describe());
            assertTrue(gdbus.stdout().contains("42"), "gdbus auto-started the service\n" + gdbus.describe());
            Message again = c.callBus("StartServiceByName", Buses.T, "su", NAME, 0L);
            assertEquals(2L, again.arg(0), "ALREADY_RUNNING");
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void startServiceByNameRepliesOnceTheNameIsOwned(BusKind kind, @TempDir Path dir) throws Exception {
        Path conf = config(dir, Map.of());
        service(dir, NAME, idleService(dir, "byebye", 60_000));
        try (BusUnderTest bus = kind.start(conf); RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            Message r = c.callBus("StartServiceByName", Buses.T, "su", NAME, 0L);
            assertEquals(1L, r.arg(0), "SUCCESS " + r);
            Message has = c.callBus("NameHasOwner", Buses.T, "s", NAME);
            assertEquals(Boolean.TRUE, has.arg(0));
            Message unknown = c.callBus("StartServiceByName", Buses.T, "su", "com.example.Nope", 0L);
            assertEquals("org.freedesktop.DBus.Error.ServiceUnknown", unknown.errorName);
        }
    }

    /** Failures give dbus-daemon's error names to every waiting caller; compared bus vs bus. */
    @Test
    void failureErrorNamesMatchDbusDaemon(@TempDir Path dir) throws Exception {
        Map<BusKind, Map<String, String>> seen = new TreeMap<>();
        for (BusKind kind : BusKind.selected()) {
            Path d = Files.createDirectories(dir.resolve(kind.label()));
            Path conf = config(d, Map.of("service_start_timeout", "1500"));
            service(d, "com.example.Missing", "/nonexistent/binary --flag");
            service(d, "com.example.Exits", "/bin/sh -c 'exit 3'");
            service(d, "com.example.Killed", "/bin/sh -c 'kill -KILL $$'");
            service(d, "com.example.Slow", "/bin/sh -c 'exec sleep 30'");
            Map<String, String> errors = new TreeMap<>();
            try (BusUnderTest bus = kind.start(conf); RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
                for (String n : List.of("com.example.Missing", "com.example.Exits", "com.example.Killed", "com.example.Slow")) {
                    Message call = Message.call(n, "/x", "com.example.I", "M");
                    Message r = c.call(call, Buses.T);
                    errors.put(n, r.errorName);
                }
            }
            seen.put(kind, errors);
        }
        for (Map<String, String> errors : seen.values()) {
            assertEquals("org.freedesktop.DBus.Error.Spawn.ChildExited", errors.get("com.example.Exits"), errors.toString());
            assertEquals("org.freedesktop.DBus.Error.Spawn.ChildSignaled", errors.get("com.example.Killed"), errors.toString());
            assertEquals("org.freedesktop.DBus.Error.TimedOut", errors.get("com.example.Slow"), errors.toString());
        }
        if (seen.size() == 2) {
            assertEquals(seen.get(BusKind.DBUS_DAEMON), seen.get(BusKind.KDBUS_BRIDGE), "same error names as dbus-daemon");
        }
    }

    @Test
    void newServiceFilesAreNoticedAndAnnounced(@TempDir Path dir) throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(BusKind.selected().contains(BusKind.KDBUS_BRIDGE));
        Path conf = config(dir, Map.of());
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start(conf); RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            c.callBus("AddMatch", Buses.T, "s", "type='signal',member='ActivatableServicesChanged'");
            service(dir, "com.example.Late", "/bin/true");
            assertNotNull(c.awaitSignal("ActivatableServicesChanged", Buses.T));
            Message listed = c.callBus("ListActivatableNames", Buses.T, "");
            assertTrue(String.valueOf(listed.arg(0)).contains("com.example.Late"), listed.toString());
        }
    }

    /**
     * Clients keep calling a service that exits whenever it is idle. With DisconnectIfIdle no
     * call is ever lost; dbus-daemon with release-then-exit is measured for comparison.
     */
    @Test
    void exitOnIdleStressLosesNoCall(@TempDir Path dir) throws Exception {
        Map<String, String> outcome = new TreeMap<>();
        for (BusKind kind : BusKind.selected()) {
            Path d = Files.createDirectories(dir.resolve(kind.label()));
            Path conf = config(d, Map.of());
            String mode = kind == BusKind.KDBUS_BRIDGE ? "byebye" : "classic";
            service(d, NAME, idleService(d, mode, 10));
            Path clients = resource(d, "idle_clients.py");
            try (BusUnderTest bus = kind.start(conf)) {
                Cmd.Result r = Cmd.run(List.of("/usr/bin/python3", clients.toString(), bus.address(), "8", "100", "20"),
                        Map.of(), java.time.Duration.ofMinutes(4));
                assertTrue(r.ok(), r.describe());
                Matcher m = Pattern.compile("calls (\\d+) replies (\\d+) wrong (\\d+) errors (\\d+)").matcher(r.stdout());
                assertTrue(m.find(), r.describe());
                long calls = Long.parseLong(m.group(1));
                long replies = Long.parseLong(m.group(2));
                long errors = Long.parseLong(m.group(4));
                assertEquals(calls, replies + errors + Long.parseLong(m.group(3)), "exactly one answer per call");
                List<String> log = Files.readAllLines(d.resolve("service.log"));
                long starts = log.stream().filter(l -> l.startsWith("start")).count();
                long exits = log.stream().filter(l -> l.startsWith("exit")).count();
                String line = kind.label() + " (" + mode + "): calls " + calls + ", replies " + replies + ", lost "
                        + errors + ", service starts " + starts + ", exits " + exits + "\n" + r.stdout().trim();
                outcome.put(kind.label(), line);
                System.out.println("exit-on-idle stress: " + line);
                if (kind == BusKind.KDBUS_BRIDGE) {
                    assertEquals(0, errors, "no call lost with DisconnectIfIdle\n" + line);
                    assertEquals(calls, replies, line);
                    assertTrue(exits >= 2 && starts >= 3, "the service really exited and came back\n" + line);
                }
            }
        }
        assertTrue(!outcome.isEmpty());
    }

}
