package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * SIGHUP and ReloadConfig reload the configuration atomically: a good file takes effect,
 * a broken one is refused with a log line (or an error reply) and the old one stays.
 * The limit max_match_rules_per_connection makes the active configuration observable.
 */
class ReloadTest {
    private static String config(Path dir, int maxMatches) {
        return "<busconfig><type>session</type><listen>unix:path=" + dir.resolve("bus") + "</listen>"
                + "<auth>EXTERNAL</auth><policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
                + "<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy><limit name=\"max_match_rules_per_connection\">" + maxMatches + "</limit></busconfig>\n";
    }

    /** How many of {@code n} new rules the bus accepts (stops at the first refusal). */
    private static int acceptedRules(RawClient c, int n, String tag) throws Exception {
        for (int i = 0; i < n; i++) {
            Message r = c.callBus("AddMatch", Buses.T, "s", "type='signal',member='M" + tag + i + "'");
            if (r.type == Message.ERROR) {
                assertEquals("org.freedesktop.DBus.Error.LimitsExceeded", r.errorName, r.toString());
                return i;
            }
        }
        return n;
    }

    @Test
    void sighupAndReloadConfigSwapTheConfigAtomically(@TempDir Path dir) throws Exception {
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, config(dir, 2));
        try (Background bus = Background.start(List.of(DropInTest.BIN + "/kdbus-bridge", "--config-file=" + conf,
                "--nofork", "--print-address", "--print-pid"), null)) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            long pid = Long.parseLong(bus.stdout().awaitLine(l -> l.matches("\\d+"), Buses.T));
            try (RawClient a = RawClient.connectHello(address, Buses.T)) {
                assertEquals(2, acceptedRules(a, 5, "a"), "limit 2 from the first config");
            }

            // A good new file, applied on SIGHUP.
            Files.writeString(conf, config(dir, 4));
            new ProcessBuilder("kill", "-HUP", String.valueOf(pid)).start().waitFor();
            assertNotNull(bus.stderr().awaitLine(l -> l.contains("Reloaded configuration"), Buses.T), bus.describe());
            try (RawClient b = RawClient.connectHello(address, Buses.T)) {
                assertEquals(4, acceptedRules(b, 6, "b"), "limit 4 after SIGHUP");
            }

            // A broken file: SIGHUP logs and keeps the old config.
            Files.writeString(conf, "<busconfig><limit name=\"max_match_rules_per_connection\">oops</limit>");
            new ProcessBuilder("kill", "-HUP", String.valueOf(pid)).start().waitFor();
            assertNotNull(bus.stderr().awaitLine(l -> l.contains("Unable to reload configuration"), Buses.T), bus.describe());

            try (RawClient c = RawClient.connectHello(address, Buses.T)) {
                // ReloadConfig with the broken file: an error reply, nothing changes.
                Message r = c.callBus("ReloadConfig", Buses.T, "");
                assertEquals(Message.ERROR, r.type, r.toString());
                assertEquals("org.freedesktop.DBus.Error.Failed", r.errorName);
                assertEquals(4, acceptedRules(c, 6, "c"), "the old config stays after a broken reload");
            }

            // ReloadConfig with a good file succeeds and applies it.
            Files.writeString(conf, config(dir, 1));
            try (RawClient d = RawClient.connectHello(address, Buses.T)) {
                Message r = d.callBus("ReloadConfig", Buses.T, "");
                assertEquals(Message.METHOD_RETURN, r.type, r.toString());
                assertEquals(1, acceptedRules(d, 3, "d"), "limit 1 after ReloadConfig");
            }
            assertFalse(!bus.process().isAlive(), "the bus survived every reload");
        }
    }

    @Test
    void dbusDaemonAlsoRefusesABrokenReload(@TempDir Path dir) throws Exception {
        // The same contract on the reference bus: ReloadConfig of a broken file is an error.
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, config(dir, 2));
        try (Background bus = Background.start(List.of("/usr/bin/dbus-daemon", "--config-file=" + conf, "--nofork",
                "--print-address"), null)) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            Files.writeString(conf, "<busconfig><limit name=\"max_match_rules_per_connection\">oops</limit>");
            try (RawClient c = RawClient.connectHello(address, Buses.T)) {
                Message r = c.callBus("ReloadConfig", Buses.T, "");
                assertEquals(Message.ERROR, r.type, r.toString());
                assertEquals("org.freedesktop.DBus.Error.Failed", r.errorName, r.toString());
            }
        }
    }
}
