package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Bystanders;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Issue 14, match rules and names: one uid (root, several connections) floods AddMatch and
 * RequestName; it is refused with LimitsExceeded (dbus-daemon: at max_*_per_connection; ours:
 * earlier, at the uid's memory quota, here made small with -Dkdbus.userQuotaBytes) while a
 * bystander of another uid (nobody) keeps getting its signals, the bus keeps answering, and a
 * newcomer of either uid is served. Same assertions on both buses, plus, on ours, that the
 * quota and not the per-connection limit refused, that the refusal names the uid, that it was
 * logged once, and that a disconnect gives the budget back.
 */
class UserQuotaTest {
    private static final String PYTHON = System.getProperty("compat.python", "/usr/bin/python3");
    private static final int CONNECTIONS = 4;
    private static final int PER_CONNECTION = 400;
    private static final int TICKS = 200;
    /** About 270 rules of the flood's kind at the measured charge: below one connection's 400. */
    private static final long QUOTA = 100_000;
    private static final String LIMITS = "org.freedesktop.DBus.Error.LimitsExceeded";

    private static final String BYSTANDER = Bystanders.tickCounter("org.example.Quota", false, false);

    private static String config(Path dir) {
        return Bystanders.openConfig(dir.resolve("bus"), java.util.Map.of(
                "max_match_rules_per_connection", (long) PER_CONNECTION, "max_names_per_connection", (long) PER_CONNECTION));
    }

    /** Pipelines {@code n} driver calls, then returns how many succeeded and the LimitsExceeded texts. */
    private static int flood(RawClient c, String member, int n, java.util.function.IntFunction<Object[]> args,
            String sig, List<String> refusals) throws Exception {
        List<Long> serials = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            serials.add(c.send(Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, member)
                    .body(sig, args.apply(i))));
        }
        int ok = 0;
        for (long s : serials) {
            Message r = c.awaitReply(s, Buses.T);
            if (r.type == Message.METHOD_RETURN) {
                ok++;
            } else {
                assertEquals(LIMITS, r.errorName, r.toString());
                refusals.add(String.valueOf(r.arg(0)));
            }
        }
        c.clearLog();
        return ok;
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void aFloodingUidIsRefusedWhileAnotherUidIsServed(BusKind kind, @TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(RawClient.uid() == 0, "needs root to run a client as nobody (runuser)");
        Assumptions.assumeTrue(Files.isExecutable(Path.of(PYTHON)), "no " + PYTHON);
        Bystanders.Setup files = Bystanders.prepare(dir, config(dir), BYSTANDER);
        Path conf = files.conf();
        Path script = files.script();
        boolean ours = kind == BusKind.KDBUS_BRIDGE;
        List<String> argv = Launched.onConfig(kind, conf);
        Map<String, String> env = ours ? Map.of("KDBUS_BRIDGE_JAVA_OPTS", "-Dkdbus.userQuotaBytes=" + QUOTA)
                : Map.of();
        try (Background bus = Background.start(argv, env)) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            try (Background bystander = Background.start(List.of("runuser", "-u", "nobody", "--", PYTHON,
                    script.toString(), address, String.valueOf(TICKS)), Map.of())) {
                assertNotNull(bystander.stdout().awaitLine(l -> l.equals("ready 1"), Buses.T), bystander.describe());

                List<RawClient> flooders = new ArrayList<>();
                List<String> ruleRefusals = new ArrayList<>();
                List<String> nameRefusals = new ArrayList<>();
                int rules = 0;
                int names = 0;
                try {
                    for (int k = 0; k < CONNECTIONS; k++) {
                        flooders.add(RawClient.connectHello(address, Buses.T));
                    }
                    for (int k = 0; k < CONNECTIONS; k++) {
                        int kk = k;
                        rules += flood(flooders.get(k), "AddMatch", PER_CONNECTION + 10, i -> new Object[] {
                                "type='signal',sender='org.example.Flood',path='/org/example/Flood/c" + kk + "/r" + i
                                        + "',interface='org.example.Flood',member='Changed'" }, "s", ruleRefusals);
                    }
                    for (int k = 0; k < CONNECTIONS; k++) {
                        int kk = k;
                        names += flood(flooders.get(k), "RequestName", PER_CONNECTION + 10,
                                i -> new Object[] { "org.example.Flood.c" + kk + ".n" + i, 0L }, "su", nameRefusals);
                    }
                    // Every connection of the flooding uid was refused in the end, on both buses.
                    assertTrue(ruleRefusals.size() >= CONNECTIONS, ruleRefusals.size() + " AddMatch refusals");
                    assertTrue(nameRefusals.size() >= CONNECTIONS, nameRefusals.size() + " RequestName refusals");
                    assertTrue(ruleRefusals.get(0).contains("is not allowed to add more match rules"),
                            ruleRefusals.get(0));
                    assertTrue(nameRefusals.get(0).contains("is not allowed to own more services"),
                            nameRefusals.get(0));
                    if (ours) {
                        // The quota, not max_*_per_connection, stopped it: far fewer were held.
                        assertTrue(rules < CONNECTIONS * PER_CONNECTION / 2, rules + " rules held");
                        assertTrue(ruleRefusals.stream().allMatch(t -> t.contains("uid 0")), ruleRefusals.get(0));
                        assertTrue(nameRefusals.stream().allMatch(t -> t.contains("uid 0")), nameRefusals.get(0));
                    } else {
                        assertEquals(CONNECTIONS * PER_CONNECTION, rules);
                    }

                    // The bus still answers: a newcomer of the same uid says Hello and is answered;
                    // its signals reach the bystander (nobody), every one, in order.
                    try (RawClient sender = RawClient.connectHello(address, Buses.T)) {
                        assertEquals(Message.METHOD_RETURN, sender.callBus("GetId", Buses.T, null).type);
                        for (int i = 0; i < TICKS; i++) {
                            Message tick = new Message();
                            tick.type = Message.SIGNAL;
                            tick.path = "/org/example/Quota";
                            tick.iface = "org.example.Quota";
                            tick.member = "Tick";
                            sender.send(tick.body("i", i));
                        }
                        assertNotNull(bystander.stdout().awaitLine(l -> l.startsWith("got "), Buses.T),
                                bystander.describe());
                        assertTrue(bystander.stdout().text().contains("got " + TICKS + " in order"),
                                bystander.describe());
                    }
                    // A newcomer of the other uid gets a name and a rule.
                    Cmd.Result own = Cmd.run(List.of("runuser", "-u", "nobody", "--", "dbus-send",
                            "--bus=" + address, "--print-reply", "--dest=org.freedesktop.DBus",
                            "/org/freedesktop/DBus", "org.freedesktop.DBus.RequestName",
                            "string:org.example.Newcomer", "uint32:0"), Buses.T);
                    assertTrue(own.ok() && own.stdout().contains("uint32 1"), own.describe());
                    Cmd.Result match = Cmd.run(List.of("runuser", "-u", "nobody", "--", "dbus-send",
                            "--bus=" + address, "--print-reply", "--dest=org.freedesktop.DBus",
                            "/org/freedesktop/DBus", "org.freedesktop.DBus.AddMatch", "string:member='X'"),
                            Buses.T);
                    assertTrue(match.ok(), match.describe());
                } finally {
                    for (RawClient c : flooders) {
                        c.close();
                    }
                }
                // The flooders left (wait until the bus saw it): their uid's budget is back.
                try (RawClient again = RawClient.connectHello(address, Buses.T)) {
                    long deadline = System.nanoTime() + Buses.T.toNanos();
                    for (RawClient gone : flooders) {
                        while (Boolean.TRUE.equals(again.callBus("NameHasOwner", Buses.T, "s", gone.uniqueName())
                                .arg(0))) {
                            assertTrue(System.nanoTime() < deadline, gone.uniqueName() + " still connected");
                            Thread.onSpinWait();
                        }
                    }
                    Message r = again.callBus("AddMatch", Buses.T, "s", "member='Again'");
                    assertEquals(Message.METHOD_RETURN, r.type, r.toString());
                    Message n = again.callBus("RequestName", Buses.T, "su", "org.example.Again", 0L);
                    assertEquals(Message.METHOD_RETURN, n.type, n.toString());
                }
            }
            if (ours) {
                String refused = bus.stderr().awaitLine(l -> l.contains("refusing"), Buses.T);
                assertNotNull(refused, bus.describe());
                long lines = bus.stderr().all().stream().filter(l -> l.contains("refusing")).count();
                assertEquals(1, lines, "one uid's flood is logged once a minute:\n" + bus.stderr().text());
                assertTrue(bus.stderr().text().contains("the per-uid quota of " + QUOTA + " bytes"),
                        "the start notes the busconfig limits the quota overrides:\n" + bus.stderr().text());
            }
        }
    }
}
