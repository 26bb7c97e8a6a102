// Invariants under test, with real clients (dbus-send, busctl): org.freedesktop.DBus.Debug.Stats
// answers GetStats / GetConnectionStats / GetAllMatchRules with dbus-daemon's keys (the same key
// set as Debian's /usr/bin/dbus-daemon, which is built with stats, plus our documented
// additions), is listed in the Interfaces property, and DroppedMessages grows when a slow
// reader's full pool skips a broadcast. Process waits are bounded; nothing sleeps.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;

@Timeout(90)
class DebugStatsCliTest {
    private static final String STATS = "org.freedesktop.DBus.Debug.Stats";
    private static final Pattern KEY = Pattern.compile("string \"(\\w+)\"\\s+variant");

    @TempDir
    Path dir;

    private BusServer server;
    private String address;
    private final List<RawClient> clients = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (RawClient c : clients) {
            c.close();
        }
        if (server != null) {
            server.stop();
        }
    }

    private void start(BusConfig config) throws Exception {
        server = new BusServer(config);
        address = server.start();
    }

    private RawClient open() throws Exception {
        RawClient c = RawClient.open(dir.resolve("bus"));
        clients.add(c);
        return c;
    }

    private static String run(List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> drain(p.getInputStream()));
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> drain(p.getErrorStream()));
        boolean done = p.waitFor(20, TimeUnit.SECONDS);
        if (!done) {
            p.destroyForcibly();
        }
        assertTrue(done && p.exitValue() == 0, String.join(" ", cmd) + "\n" + out.join() + err.join());
        return out.join();
    }

    private static String drain(InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static List<String> dbusSend(String address, String method, String... args) {
        List<String> cmd = new ArrayList<>(List.of("dbus-send", "--bus=" + address, "--print-reply",
                "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", method));
        cmd.addAll(List.of(args));
        return cmd;
    }

    private static Set<String> keys(String printed) {
        Set<String> out = new TreeSet<>();
        Matcher m = KEY.matcher(printed);
        while (m.find()) {
            out.add(m.group(1));
        }
        return out;
    }

    private static long busctlValue(String printed, String key) {
        Matcher m = Pattern.compile("\"" + key + "\" u (\\d+)").matcher(printed);
        assertTrue(m.find(), key + " in " + printed);
        return Long.parseLong(m.group(1));
    }

    private static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, tool))) {
                return true;
            }
        }
        return false;
    }

    @Test
    void getStatsHasDbusDaemonsKeys() throws Exception {
        Assumptions.assumeTrue(onPath("dbus-send"), "dbus-send not installed");
        start(BusConfig.forAddress("unix:path=" + dir.resolve("bus")));
        Set<String> ours = keys(run(dbusSend(address, STATS + ".GetStats")));
        Set<String> expected = new TreeSet<>(Set.of("Serial", "ListMemPoolUsedBytes", "ListMemPoolCachedBytes",
                "ListMemPoolAllocatedBytes", "ActiveConnections", "IncompleteConnections", "MatchRules", "PeakMatchRules",
                "PeakMatchRulesPerConnection", "BusNames", "PeakBusNames", "PeakBusNamesPerConnection"));
        assertTrue(ours.containsAll(expected), ours.toString());
        if (onPath("dbus-run-session") && onPath("dbus-daemon")) {
            // Debian's dbus-daemon is built with stats: every key it reports, we report too.
            String theirs = run(List.of("dbus-run-session", "--", "dbus-send", "--session", "--print-reply",
                    "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", STATS + ".GetStats"));
            Set<String> reference = keys(theirs);
            if (!reference.isEmpty()) {
                assertTrue(ours.containsAll(reference), "ours " + ours + " vs dbus-daemon " + reference);
            }
        }
        String props = run(dbusSend(address, "org.freedesktop.DBus.Properties.Get",
                "string:org.freedesktop.DBus", "string:Interfaces"));
        assertTrue(props.contains("\"" + STATS + "\""), props);
        String xml = run(dbusSend(address, "org.freedesktop.DBus.Introspectable.Introspect"));
        assertTrue(xml.contains("<interface name=\"" + STATS + "\">") && xml.contains("GetAllMatchRules"), xml);
    }

    @Test
    void connectionStatsAndMatchRulesAndDroppedBroadcasts() throws Exception {
        Assumptions.assumeTrue(onPath("busctl") && onPath("dbus-send"), "busctl/dbus-send not installed");
        BusConfig config = BusConfig.forAddress("unix:path=" + dir.resolve("bus"));
        config.limits().maxOutgoingBytes = 64 * 1024;
        start(config);
        RawClient a = open();
        RawClient slow = open();
        slow.addMatch("type='signal',interface='com.example.Big'");
        List<String> call = List.of("busctl", "--address=" + address.split(";")[0], "call", "org.freedesktop.DBus",
                "/org/freedesktop/DBus", STATS, "GetConnectionStats", "s", slow.uniqueName);
        String before = run(call);
        assertEquals(0, busctlValue(before, "DroppedMessages"));
        assertEquals(1, busctlValue(before, "MatchRules"));
        for (String k : List.of("UniqueName", "IncomingBytes", "OutgoingBytes", "PeakOutgoingBytes", "PoolBudgetBytes")) {
            assertTrue(before.contains("\"" + k + "\""), k + " in " + before);
        }
        byte[] body = new BodyWriter().writeByteArray(new byte[512 * 1024]).toByteArray();
        // Past what slow's socket can hold: the bus asks for a bigger send buffer for large
        // messages, and the kernel doubles the request (at most 2 x TransportSettings.largeSendBuffer).
        int signals = 4 + 2 * server.transport().largeSendBuffer() / body.length;
        for (int i = 0; i < signals; i++) {
            a.signal(null, "/big", "com.example.Big", "Blob", "ay", body);
        }
        a.expectReturn(a.call(0, RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Peer", "Ping", null, null));
        String after = run(call);
        assertTrue(busctlValue(after, "DroppedMessages") >= 1, after);

        String rules = run(dbusSend(address, STATS + ".GetAllMatchRules"));
        assertTrue(rules.contains("\"" + slow.uniqueName + "\"") && rules.contains("interface='com.example.Big'"), rules);
    }
}
