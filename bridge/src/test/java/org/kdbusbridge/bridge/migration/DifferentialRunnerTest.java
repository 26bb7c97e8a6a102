// Invariants: real buses only (/usr/bin/dbus-daemon as a process, our bus as a child JVM; the
// seeded fault is a FaultRelay in front of it, never inside it); the
// workload is raw BusConnection clients, so every message is known; no sleeps: every wait is
// on a received message. Skipped (not failed) where dbus-daemon is not installed.
package org.kdbusbridge.bridge.migration;

import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.bridge.client.BusConnection;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Assumptions;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;

class DifferentialRunnerTest {
    static final String DBUS_DAEMON = "/usr/bin/dbus-daemon";

    @BeforeAll
    static void needsDbusDaemon() {
        Assumptions.assumeTrue(Files.isExecutable(Path.of(DBUS_DAEMON)), "needs " + DBUS_DAEMON);
    }

    static BusLauncher reference() {
        return BusLauncher.process("dbus-daemon", List.of(DBUS_DAEMON));
    }

    /** Two clients: A owns a name and emits three signals; B calls a missing name and GetNameOwner. */
    static int workload(String address, Path dir) throws Exception {
        try (BusConnection a = BusConnection.open(address, "a"); BusConnection b = BusConnection.open(address, "b")) {
            BusMessage r = a.callDriver("RequestName", "su", new Object[] {"com.example.Diff", 0}, Duration.ofSeconds(10));
            assertNotNull(r);
            for (int i = 1; i <= 3; i++) {
                a.send(MessageBuilder.signal(a.nextSerial(), "/d", "com.example.Diff", "Tick", null, null, "s",
                        new BodyWriter().writeString("tick" + i).toByteArray()));
            }
            assertNotNull(b.callDriver("GetNameOwner", "s", new Object[] {"com.example.Nope"}, Duration.ofSeconds(10)));
            assertNotNull(b.callDriver("GetNameOwner", "s", new Object[] {"com.example.Diff"}, Duration.ofSeconds(10)));
            // A round trip on A: its signals have passed the bus before it disconnects.
            assertNotNull(a.callDriver("GetId", "", new Object[0], Duration.ofSeconds(10)));
        }
        return 0;
    }

    @Test
    void theSameWorkloadIsIdenticalOnBothBuses() throws Exception {
        DifferentialRunner.Result r = new DifferentialRunner(reference(), BusLauncher.ours())
                .run(DifferentialRunnerTest::workload);
        assertTrue(r.matches(), r.report().render() + r.referenceTranscript().render() + r.oursTranscript().render());
        assertTrue(r.referenceTranscript().render().contains("com.example.Diff.Tick (s) [\"tick3\"]"), r.referenceTranscript().render());
        assertTrue(r.referenceTranscript().errors().stream().anyMatch(e -> e.startsWith("org.freedesktop.DBus.Error.NameHasNoOwner")),
                r.referenceTranscript().errors().toString());
    }

    @Test
    void aSeededDroppedSignalIsReportedExactly() throws Exception {
        SignalDrop drop = SignalDrop.dropSignal("Tick", 2);
        DifferentialRunner.Result r = new DifferentialRunner(reference(), BusLauncher.withFaults(BusLauncher.ours(), drop))
                .run(DifferentialRunnerTest::workload);
        assertEquals(1, drop.dropped());
        assertFalse(r.matches());
        assertEquals(1, r.report().streamDiffs().size(), r.report().render());
        DiffReport.StreamDiff d = r.report().streamDiffs().get(0);
        assertEquals(DiffReport.Kind.MISSING_IN_OURS, d.kind(), r.report().render());
        assertEquals("peer :A", d.stream());
        assertEquals("signal -> * /d com.example.Diff.Tick (s) [\"tick2\"]", d.reference());
        assertTrue(r.report().errorsOnlyInOurs().isEmpty() && r.report().errorsOnlyInReference().isEmpty());
        assertFalse(r.report().exitCodesDiffer());
    }

    @Test
    void aRecordingFromDbusDaemonReplaysIdenticallyOnOurBusAndNotOnAFaultyOne() throws Exception {
        DifferentialRunner runner = new DifferentialRunner(reference(), BusLauncher.ours());
        DifferentialRunner.Run recorded = runner.runOnce(reference(), DifferentialRunnerTest::workload);
        // The recording as a capture would hold it: the tools' own connections left out.
        List<BusMessage> recording = recorded.transcript().stream()
                .filter(m -> !recorded.ownNames().contains(m.sender()) && !recorded.ownNames().contains(m.destination())
                        && (m.stringArg(0) == null || !recorded.ownNames().contains(m.stringArg(0))))
                .toList();
        try (BusLauncher.RunningBus bus = BusLauncher.ours().start(Files.createTempDirectory("replay-test"))) {
            Replayer.Result ok = new Replayer(AllowList.standard(), Duration.ofSeconds(10)).replay(recording, bus.address());
            assertTrue(ok.matches(), ok.report().render() + ok.notes() + ok.recorded().render() + ok.replayed().render());
            assertTrue(ok.sent() >= 7, "sent " + ok.sent());
            assertTrue(ok.notes().isEmpty(), ok.notes().toString());
        }
        try (BusLauncher.RunningBus bus = BusLauncher.withFaults(BusLauncher.ours(), SignalDrop.dropSignal("Tick", 1))
                .start(Files.createTempDirectory("replay-test"))) {
            Replayer.Result bad = new Replayer(AllowList.standard(), Duration.ofSeconds(2)).replay(recording, bus.address());
            assertFalse(bad.matches());
            assertTrue(bad.report().render().contains("tick1"), bad.report().render());
        }
    }
}
