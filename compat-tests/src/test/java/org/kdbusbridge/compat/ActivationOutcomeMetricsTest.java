package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
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
 * Issue 20: the activation outcomes MetricsTest does not reach, each counted exactly once in
 * {@code kdbus_activations_total{outcome}} of a real bus's dump (parsed by prometheus_client):
 * systemd_failed (systemd, played by a raw client, answers the ActivationRequest with
 * ActivationFailure; a forged ActivationFailure from anyone else ends nothing), limits (the
 * ActivationRequest to systemd, not on the bus yet, would exceed max_pending_service_starts),
 * and what is not a start at all: StartServiceByName or an auto-start of a name no file provides,
 * and a StartServiceByName refused by max_pending_service_starts before it began, count no start
 * and no outcome (service_unknown counts only a start that began and then found its file gone).
 * On both buses: systemd's ActivationFailure still ends a start whose service file went (and was
 * re-read) meanwhile; ours matched it against the current files and let it run into the timeout.
 */
class ActivationOutcomeMetricsTest {
    private static final String PYTHON = "/usr/bin/python3";
    private static final String NAME = SystemdActivationTest.NAME;
    private static final String SYSTEMD = "org.freedesktop.systemd1";
    private static final List<String> OUTCOMES = List.of("acquired", "exec_failed", "exited", "signaled", "timeout",
            "service_unknown", "systemd_failed", "limits");

    /** Prints every sample as {@code name{k="v",...} value} (labels sorted). */
    private static final String PARSE = """
            import sys
            from prometheus_client.openmetrics.parser import text_string_to_metric_families
            for f in text_string_to_metric_families(open(sys.argv[1], encoding='utf-8').read()):
                for s in f.samples:
                    labels = ','.join('%s="%s"' % (k, s.labels[k]) for k in sorted(s.labels))
                    print('%s{%s} %d' % (s.name, labels, int(s.value)))
            """;

    @TempDir
    Path dir;
    private int dumps;

    @BeforeEach
    void needsTheParser() {
        Assumptions.assumeTrue(Cmd.run(List.of(PYTHON, "-c", "import prometheus_client"), Buses.T).ok(),
                "python3-prometheus-client is not installed (.ci/run installs it)");
    }

    private BusUnderTest start(Map<String, String> limits) throws Exception {
        return start(BusKind.KDBUS_BRIDGE, limits);
    }

    private BusUnderTest start(BusKind kind, Map<String, String> limits) throws Exception {
        Path conf = ActivationTest.config(dir, limits);
        Files.writeString(dir.resolve("services").resolve(NAME + ".service"),
                "[D-BUS Service]\nName=" + NAME + "\nExec=/bin/false\nSystemdService=sd-test.service\n");
        return kind == BusKind.DBUS_DAEMON ? kind.start(conf, "--systemd-activation")
                : kind.start(conf, "--systemd-activation", "--kdbus-metrics=unix:path=" + dir.resolve("metrics"));
    }

    /**
     * The service file goes (ReloadConfig re-reads the directory) while systemd is starting its
     * unit: systemd's ActivationFailure for that unit still ends the start, as dbus-daemon
     * matches it against the unit the pending start asked for, and the StartServiceByName caller
     * gets systemd's error, not TimedOut; on ours it counts as systemd_failed.
     */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void activationFailureAfterTheFileWentStillEndsTheStart(BusKind kind) throws Exception {
        try (BusUnderTest bus = start(kind, Map.of("service_start_timeout", "20000"));
             RawClient systemd = RawClient.connectHello(bus.address(), Buses.T);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(1L, systemd.callBus("RequestName", Buses.T, "su", SYSTEMD, 4L).arg(0));
            long serial = caller.send(Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "StartServiceByName")
                    .body("su", NAME, 0L));
            assertNotNull(systemd.await(m -> "ActivationRequest".equals(m.member), Buses.T, true), "no ActivationRequest");
            Files.delete(dir.resolve("services").resolve(NAME + ".service"));
            Message reload = caller.callBus("ReloadConfig", Buses.T, "");
            assertEquals(Message.METHOD_RETURN, reload.type, reload.toString());
            Message listed = caller.callBus("ListActivatableNames", Buses.T, "");
            assertTrue(!String.valueOf(listed.arg(0)).contains(NAME), "the file is gone: " + listed);
            systemd.send(failure());
            Message reply = caller.awaitReply(serial, Duration.ofSeconds(10));
            assertEquals("org.freedesktop.systemd1.NoSuchUnit", reply.errorName, reply.toString());
            if (kind != BusKind.DBUS_DAEMON) {
                Map<String, Long> m = dump(bus);
                assertOutcomes(m, 1, Map.of("systemd_failed", 1L));
                assertEquals(0, m.get("kdbus_activations_running{}"), m.toString());
            }
        }
    }

    @Test
    void activationFailureFromSystemdIsCountedAsSystemdFailed() throws Exception {
        try (BusUnderTest bus = start(Map.of());
             RawClient systemd = RawClient.connectHello(bus.address(), Buses.T);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(1L, systemd.callBus("RequestName", Buses.T, "su", SYSTEMD, 4L).arg(0));
            long serial = caller.send(Message.call(NAME, "/x", "com.example.I", "Ping"));
            Message req = systemd.await(m -> "ActivationRequest".equals(m.member), Buses.T, true);
            assertNotNull(req, "systemd got no ActivationRequest");
            // Only systemd's word ends a start: the caller's forgery is ignored (and logged).
            caller.send(failure());
            caller.sync(Buses.T);
            Map<String, Long> m = dump(bus);
            assertOutcomes(m, 1, Map.of());
            assertEquals(1, m.get("kdbus_activations_running{}"), m.toString());

            systemd.send(failure());
            Message reply = caller.awaitReply(serial, Buses.T);
            assertEquals("org.freedesktop.systemd1.NoSuchUnit", reply.errorName, reply.toString());
            m = dump(bus);
            assertOutcomes(m, 1, Map.of("systemd_failed", 1L));
            assertEquals(0, m.get("kdbus_activations_running{}"), m.toString());
            assertEquals(1, m.get("kdbus_activation_start_seconds_count{result=\"failure\"}"), m.toString());
            assertEquals(0, m.get("kdbus_activation_start_seconds_count{result=\"success\"}"), m.toString());
        }
    }

    @Test
    void aRequestToSystemdOverMaxPendingServiceStartsIsCountedAsLimits() throws Exception {
        try (BusUnderTest bus = start(Map.of("max_pending_service_starts", "1"));
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T)) {
            // Not starts: no file provides the name.
            Message unknown = caller.callBus("StartServiceByName", Buses.T, "su", "com.example.NoFile", 0L);
            assertEquals("org.freedesktop.DBus.Error.ServiceUnknown", unknown.errorName, unknown.toString());
            Message auto = caller.call(Message.call("com.example.NoFile", "/x", "com.example.I", "M"), Buses.T);
            assertEquals("org.freedesktop.DBus.Error.ServiceUnknown", auto.errorName, auto.toString());
            assertOutcomes(dump(bus), 0, Map.of());

            // NAME's call is the one pending activation; its ActivationRequest would be a second.
            Message refused = caller.call(Message.call(NAME, "/x", "com.example.I", "Ping"), Buses.T);
            assertEquals("org.freedesktop.DBus.Error.LimitsExceeded", refused.errorName, refused.toString());
            assertOutcomes(dump(bus), 1, Map.of("limits", 1L));

            // A call to systemd waits for it (a start of systemd begins); StartServiceByName is then
            // refused by the limit before any start begins: neither started nor an outcome.
            long waiting = caller.send(Message.call(SYSTEMD, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                    "GetDefaultTarget"));
            Message front = caller.callBus("StartServiceByName", Buses.T, "su", NAME, 0L);
            assertEquals("org.freedesktop.DBus.Error.LimitsExceeded", front.errorName, front.toString());
            Map<String, Long> m = dump(bus);
            assertOutcomes(m, 2, Map.of("limits", 1L));
            assertEquals(1, m.get("kdbus_activations_running{}"), m.toString());

            try (RawClient systemd = RawClient.connectHello(bus.address(), Buses.T)) {
                assertEquals(1L, systemd.callBus("RequestName", Buses.T, "su", SYSTEMD, 4L).arg(0));
                Message call = systemd.await(x -> "GetDefaultTarget".equals(x.member), Buses.T, true);
                assertNotNull(call, "the waiting call reached systemd");
                assertEquals(waiting, call.serial);
                m = dump(bus);
                assertOutcomes(m, 2, Map.of("limits", 1L, "acquired", 1L));
                assertEquals(0, m.get("kdbus_activations_running{}"), m.toString());
            }
        }
    }

    private static Message failure() {
        Message f = new Message();
        f.type = Message.SIGNAL;
        f.flags = Message.FLAG_NO_REPLY_EXPECTED;
        f.destination = "org.freedesktop.DBus";
        f.path = "/org/freedesktop/DBus";
        f.iface = "org.freedesktop.systemd1.Activator";
        f.member = "ActivationFailure";
        return f.body("sss", "sd-test.service", "org.freedesktop.systemd1.NoSuchUnit", "Unit sd-test.service not found.");
    }

    /** {@code started} starts begun, and every outcome's count as in {@code nonZero} (else 0). */
    private static void assertOutcomes(Map<String, Long> m, long started, Map<String, Long> nonZero) {
        assertEquals(started, m.get("kdbus_activations_started_total{}"), m.toString());
        for (String o : OUTCOMES) {
            assertEquals(nonZero.getOrDefault(o, 0L), m.get("kdbus_activations_total{outcome=\"" + o + "\"}"), o + " " + m);
        }
    }

    /** One dump from the metrics socket, parsed by prometheus_client; samples by name and sorted labels. */
    private Map<String, Long> dump(BusUnderTest bus) throws Exception {
        Path file = dir.resolve("dump" + (++dumps) + ".om");
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(dir.resolve("metrics")));
             InputStream in = Channels.newInputStream(ch)) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            Files.write(file, out.toByteArray());
        }
        Cmd.Result r = Cmd.run(List.of(PYTHON, "-c", PARSE, file.toString()), Buses.T);
        assertTrue(r.ok(), "the OpenMetrics parser refused the dump\n" + r.describe());
        Map<String, Long> out = new HashMap<>();
        for (String line : r.stdout().split("\n")) {
            int sp = line.lastIndexOf(' ');
            out.put(line.substring(0, sp), Long.parseLong(line.substring(sp + 1)));
        }
        assertTrue(out.containsKey("kdbus_activations_started_total{}"), r.stdout());
        return out;
    }
}
