package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.Bystanders;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Issue 14, never-read queues: one uid (root) floods a receiver of its own uid that never reads
 * with calls, within the receiver's max_outgoing_bytes. dbus-daemon queues all of it (the busconfig
 * limit is all it has); ours stops at the uid's queue quota (made small here with
 * -Dkdbus.queueQuotaBytes) and answers the rest as a full queue does, with dbus-daemon's
 * LimitsExceeded text, logged once. On both buses: a bystander of another uid (nobody) gets every
 * one of its signals in order, a newcomer of the flooding uid is answered by the driver, and once
 * the non-reader is gone the flooding uid's calls are delivered again.
 */
class QueueQuotaTest {
    private static final String PYTHON = System.getProperty("compat.python", "/usr/bin/python3");
    private static final int BODY = 64 * 1024;
    private static final int CALLS = 200; // 12.8 MiB: under max_outgoing_bytes, far over the quota below
    private static final long QUOTA = 2L << 20;
    private static final int TICKS = 200;
    private static final String LIMITS = "org.freedesktop.DBus.Error.LimitsExceeded";

    /** Emits TICKS signals to itself as its own uid and reports whether all came back in order. */
    private static final String BYSTANDER = Bystanders.tickCounter("org.example.QueueQuota", true, false);

    private static String config(Path dir) {
        return Bystanders.openConfig(dir.resolve("bus"), java.util.Map.of(
                "max_outgoing_bytes", 64L << 20, "max_incoming_bytes", 64L << 20));
    }

    private static Message bigCall(String dest) {
        return Message.call(dest, "/org/example/Sink", "org.example.Sink", "Take").flags(0x1) // NO_REPLY_EXPECTED
                .body("s", "x".repeat(BODY));
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void aNonReaderFloodedByOneUidIsBoundedAndOtherUidsAreServed(BusKind kind, @TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(RawClient.uid() == 0, "needs root to run a client as nobody (runuser)");
        Assumptions.assumeTrue(Files.isExecutable(Path.of(PYTHON)), "no " + PYTHON);
        Bystanders.Setup files = Bystanders.prepare(dir, config(dir), BYSTANDER);
        Path conf = files.conf();
        Path script = files.script();
        boolean ours = kind == BusKind.KDBUS_BRIDGE;
        List<String> argv = Launched.onConfig(kind, conf);
        Map<String, String> env = ours ? Map.of("KDBUS_BRIDGE_JAVA_OPTS", "-Dkdbus.queueQuotaBytes=" + QUOTA)
                : Map.of();
        try (Background bus = Background.start(argv, env)) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            int refused = 0;
            String text = null;
            try (RawClient sink = RawClient.connectDirect(address);
                 RawClient flooder = RawClient.connectHello(address, Buses.T)) {
                String sinkName = sink.hello(Buses.T); // from here on the sink never reads
                for (int i = 0; i < CALLS; i++) {
                    flooder.send(bigCall(sinkName));
                }
                flooder.sync(Buses.T); // every error the flood earned came before this reply
                for (Message m : flooder.messages()) {
                    if (m.type == Message.ERROR) {
                        assertEquals(LIMITS, m.errorName, m.toString());
                        text = String.valueOf(m.arg(0));
                        refused++;
                    }
                }
                System.out.println("QUEUE-QUOTA " + kind + ": " + refused + " of " + CALLS + " calls of " + BODY
                        + " bytes refused");
                if (ours) {
                    // Held: at most the quota, plus what the sink's socket buffer took off the bus.
                    long accepted = (long) (CALLS - refused) * BODY;
                    assertTrue(refused > 0 && accepted <= QUOTA + (4L << 20), refused + " of " + CALLS + " refused");
                    assertEquals("The destination service \"" + sinkName + "\" has a full message queue", text);
                } else {
                    assertEquals(0, refused, "dbus-daemon is bounded by max_outgoing_bytes only");
                }
                // Another uid is served in full while the flood is held.
                Cmd.Result by = Cmd.run(List.of("runuser", "-u", "nobody", "--", PYTHON, script.toString(), address,
                        String.valueOf(TICKS)), Buses.T.multipliedBy(2));
                assertTrue(by.ok() && by.stdout().contains("got " + TICKS + " in order"), by.describe());
                // A newcomer of the flooding uid is answered by the driver (its replies are never refused).
                try (RawClient newcomer = RawClient.connectHello(address, Buses.T)) {
                    assertEquals(Message.METHOD_RETURN, newcomer.callBus("GetId", Buses.T, null).type);
                }
            }
            // The non-reader is gone: its queue goes back, and the flooding uid's calls arrive again.
            try (RawClient reader = RawClient.connectHello(address, Buses.T);
                 RawClient sender = RawClient.connectHello(address, Buses.T)) {
                long deadline = System.nanoTime() + Buses.T.toNanos();
                Message got = null;
                while (got == null) {
                    sender.send(bigCall(reader.uniqueName()));
                    got = reader.await(m -> m.type == Message.METHOD_CALL && "Take".equals(m.member),
                            java.time.Duration.ofMillis(200), false);
                    assertTrue(got != null || System.nanoTime() < deadline, "the quota never came back");
                }
            }
            if (ours) {
                long lines = bus.stderr().all().stream().filter(l -> l.contains("Queued messages of uid 0 reached"))
                        .count();
                assertEquals(1, lines, "one uid's flood is logged once a minute:\n" + bus.stderr().text());
                assertTrue(bus.stderr().all().stream().noneMatch(l -> l.contains("the recipient's queue is full")),
                        "no line per refused message:\n" + bus.stderr().text());
            }
        }
    }

    /**
     * Ours: a flood into a receiver whose own max_outgoing_bytes is spent (not the uid budget)
     * is refused message by message, as dbus-daemon does, but logged at most 10 lines a second.
     */
    @org.junit.jupiter.api.Test
    void fullQueueRefusalsAreLoggedRateLimited(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(BusKind.selected().contains(BusKind.KDBUS_BRIDGE), "our bus not selected");
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, Bystanders.openConfig(dir.resolve("bus"), Map.of("max_outgoing_bytes", 1L << 20)));
        List<String> argv = Launched.onConfig(BusKind.KDBUS_BRIDGE, conf);
        try (Background bus = Background.start(argv, Map.of())) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            int refused = 0;
            try (RawClient sink = RawClient.connectDirect(address);
                 RawClient flooder = RawClient.connectHello(address, Buses.T)) {
                String sinkName = sink.hello(Buses.T); // never reads again
                for (int i = 0; i < CALLS; i++) {
                    flooder.send(bigCall(sinkName));
                }
                flooder.sync(Buses.T);
                for (Message m : flooder.messages()) {
                    refused += m.type == Message.ERROR && LIMITS.equals(m.errorName) ? 1 : 0;
                }
            }
            long lines = bus.stderr().all().stream().filter(l -> l.contains("the recipient's queue is full")).count();
            System.out.println("QUEUE-FULL kdbus-bridge: " + refused + " refused, " + lines + " log lines");
            assertTrue(refused > 50, refused + " of " + CALLS + " refused by the 1 MiB queue");
            assertTrue(lines >= 1 && lines <= 20, lines + " log lines for " + refused + " refusals:\n" + bus.stderr().text());
        }
    }
}
