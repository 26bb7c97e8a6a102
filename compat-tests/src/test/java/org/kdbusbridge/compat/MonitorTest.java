package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.LineReader;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.Normalizer;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * BecomeMonitor as real monitoring tools use it (dbus-monitor, dbus-monitor --pcap, busctl
 * monitor, busctl capture), and its rules: privileged, no flags, monitors are invisible and
 * must not send, and what a new monitor receives matches dbus-daemon.
 */
class MonitorTest {
    static final String SVC = "com.example.MonitorSvc";
    static final String IFACE = "com.example.Monitored";

    /** What {@link #traffic} did, for the assertions. */
    record Traffic(String service, String client, long callSerial) { }

    /**
     * A service takes a name, a client calls it and gets a reply, emits a signal, and calls a name
     * nobody owns (ServiceUnknown from the bus).
     */
    static Traffic traffic(String address) throws IOException {
        try (RawClient svc = RawClient.connectHello(address, Buses.T);
             RawClient cli = RawClient.connectHello(address, Buses.T)) {
            Message r = svc.callBus("RequestName", Buses.T, "su", SVC, 4L);
            assertEquals(1L, r.arg(0), r.toString());
            long serial = cli.send(Message.call(SVC, "/p", IFACE, "Ping").body("s", "hello"));
            Message call = svc.await(m -> m.type == Message.METHOD_CALL && "Ping".equals(m.member), Buses.T, true);
            assertNotNull(call, "the service got the call");
            Message reply = new Message();
            reply.type = Message.METHOD_RETURN;
            reply.destination = call.sender;
            reply.replySerial = call.serial;
            reply.body("s", "pong");
            svc.send(reply);
            assertEquals(Message.METHOD_RETURN, cli.awaitReply(serial, Buses.T).type);
            Message sig = new Message();
            sig.type = Message.SIGNAL;
            sig.path = "/p";
            sig.iface = IFACE;
            sig.member = "Tick";
            cli.send(sig);
            Message err = cli.call(Message.call("com.example.NobodyHere", "/p", IFACE, "Ping"), Buses.T);
            assertEquals("org.freedesktop.DBus.Error.ServiceUnknown", err.errorName, err.toString());
            cli.sync(Buses.T);
            return new Traffic(svc.uniqueName(), cli.uniqueName(), serial);
        }
    }

    /** BecomeMonitor lives on its own interface, org.freedesktop.DBus.Monitoring. */
    static Message becomeMonitor(RawClient c, List<String> rules, long flags) throws IOException {
        return c.call(Message.call(RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Monitoring", "BecomeMonitor")
                .body("asu", rules, flags), Buses.T);
    }

    private static Process startBinary(List<String> argv) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(argv).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        Cmd.sanitize(pb.environment());
        return pb.start();
    }

    private static void stop(Process p) throws InterruptedException {
        p.destroy();
        if (!p.waitFor(5, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            p.waitFor(5, TimeUnit.SECONDS);
        }
    }

    // ------------------------------------------------------------------ text monitors

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void dbusMonitorUsesBecomeMonitorAndSeesEverything(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start();
             Background mon = Background.start(List.of("dbus-monitor", "--address", bus.address()), Map.of())) {
            // Its own NameLost arrives once it is a monitor (it lost its unique name).
            assertNotNull(mon.stdout().awaitLine(l -> l.contains("member=NameLost"), Buses.T), mon.describe());
            Traffic t = traffic(bus.address());
            String err = "error_name=org.freedesktop.DBus.Error.ServiceUnknown";
            assertNotNull(mon.stdout().awaitLine(l -> l.startsWith("error ") && l.contains(err), Buses.T), mon.describe());
            List<String> out = mon.stdout().all();
            String text = String.join("\n", out);
            assertFalse(mon.stderr().text().contains("unable to enable new-style monitoring"),
                    "BecomeMonitor worked, no eavesdropping fallback\n" + mon.describe());
            assertTrue(out.stream().anyMatch(l -> l.startsWith("method call ") && l.contains("sender=" + t.client())
                    && l.contains("destination=" + SVC) && l.contains("member=Ping")), text);
            assertTrue(out.stream().anyMatch(l -> l.startsWith("method return ") && l.contains("sender=" + t.service())
                    && l.contains("destination=" + t.client()) && l.contains("reply_serial=" + t.callSerial())), text);
            assertTrue(out.stream().anyMatch(l -> l.startsWith("signal ") && l.contains("sender=" + t.client())
                    && l.contains("member=Tick")), text);
            assertTrue(out.stream().anyMatch(l -> l.startsWith("method call ") && l.contains("destination=com.example.NobodyHere")),
                    "the undeliverable call itself is shown\n" + text);
            int noc = -1;
            for (int i = 0; i < out.size() - 3; i++) {
                if (out.get(i).contains("member=NameOwnerChanged") && out.get(i + 1).contains("\"" + SVC + "\"")) {
                    noc = i;
                    break;
                }
            }
            assertTrue(noc >= 0, "driver NameOwnerChanged for " + SVC + "\n" + text);
            assertTrue(out.get(noc).contains("sender=org.freedesktop.DBus"), out.get(noc));
            assertTrue(out.get(noc + 3).contains("\"" + t.service() + "\""), "new owner\n" + text);
            assertTrue(mon.process().isAlive(), mon.describe());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void busctlMonitorPrintsTypes(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start();
             Background mon = Background.start(List.of("busctl", "--address=" + bus.address(), "monitor"), Map.of())) {
            // busctl says so after its BecomeMonitor call returned.
            assertNotNull(mon.stderr().awaitLine(l -> l.contains("Monitoring bus message stream"), Buses.T), mon.describe());
            Traffic t = traffic(bus.address());
            assertNotNull(mon.stdout().awaitLine(l -> l.contains("ErrorName=org.freedesktop.DBus.Error.ServiceUnknown"), Buses.T),
                    mon.describe());
            String text = mon.stdout().text();
            for (String type : List.of("Type=method_call", "Type=method_return", "Type=signal", "Type=error")) {
                assertTrue(text.contains(type), type + "\n" + mon.describe());
            }
            assertTrue(text.contains("Sender=" + t.client() + "  Destination=" + SVC), text);
            assertTrue(text.contains("Member=Ping"), text);
            assertTrue(text.contains("Member=Tick"), text);
            assertTrue(text.contains("Member=NameOwnerChanged"), text);
            assertTrue(text.contains("STRING \"" + SVC + "\";"), text);
        }
    }

    // ------------------------------------------------------------------ pcap monitors

    private static void assertCaptured(List<Message> msgs, Traffic t) {
        String text = PcapStream.describe(msgs);
        assertTrue(msgs.stream().anyMatch(m -> m.type == Message.METHOD_CALL && "Ping".equals(m.member)
                && t.client().equals(m.sender) && SVC.equals(m.destination)), text);
        assertTrue(msgs.stream().anyMatch(m -> m.type == Message.METHOD_RETURN && t.service().equals(m.sender)
                && m.replySerial == t.callSerial()), text);
        assertTrue(PcapStream.hasMember(msgs, Message.SIGNAL, "Tick"), text);
        assertTrue(PcapStream.hasMember(msgs, Message.SIGNAL, "NameOwnerChanged"), text);
        assertTrue(PcapStream.hasError(msgs, "org.freedesktop.DBus.Error.ServiceUnknown"), text);
    }

    private void pcapScenario(BusKind kind, List<String> tool, String format, boolean readyOnStderr) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            List<String> argv = new ArrayList<>(tool);
            argv.replaceAll(a -> a.replace("ADDR", bus.address()));
            Process p = startBinary(argv);
            try (PcapStream pcap = new PcapStream(p.getInputStream());
                 LineReader err = new LineReader(p.getErrorStream(), "pcap-tool-err")) {
                try {
                    if (readyOnStderr) {
                        // busctl says so once its BecomeMonitor call returned.
                        assertNotNull(err.awaitLine(l -> l.contains("Monitoring bus message stream"), Buses.T), err.text());
                    } else {
                        // dbus-monitor records its own NameLost once it is a monitor.
                        assertNotNull(pcap.await(m -> PcapStream.hasMember(m, Message.SIGNAL, "NameLost"), Buses.T),
                                "no NameLost captured; stderr:\n" + err.text());
                    }
                    Traffic t = traffic(bus.address());
                    List<Message> msgs = pcap.await(m -> PcapStream.hasError(m, "org.freedesktop.DBus.Error.ServiceUnknown"), Buses.T);
                    assertNotNull(msgs, "captured so far:\n" + PcapStream.describe(PcapStream.messages(pcap.bytes())));
                    PcapStream.Header h = PcapStream.header(pcap.bytes());
                    assertEquals(format, h.format());
                    assertEquals(PcapStream.DLT_DBUS, h.linkType(), "DLT_DBUS");
                    assertCaptured(msgs, t);
                } finally {
                    stop(p);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void dbusMonitorPcap(BusKind kind) throws Exception {
        pcapScenario(kind, List.of("dbus-monitor", "--pcap", "--address", "ADDR"), "pcap", false);
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void busctlCapture(BusKind kind) throws Exception {
        pcapScenario(kind, List.of("busctl", "--address=ADDR", "capture"), "pcapng", true);
    }

    // ------------------------------------------------------------------ the rules

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void flagsAreRefusedAndTheCallerStaysNormal(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start(); RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            Message r = becomeMonitor(c, List.of(), 1L);
            assertEquals("org.freedesktop.DBus.Error.InvalidArgs", r.errorName, r.toString());
            Message names = c.callBus("ListNames", Buses.T, "");
            assertTrue(((List<?>) names.arg(0)).contains(c.uniqueName()), names.toString());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void monitorsAreInvisibleAndMustNotSend(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start();
             RawClient mon = RawClient.connectHello(bus.address(), Buses.T);
             RawClient other = RawClient.connectHello(bus.address(), Buses.T)) {
            Message r = becomeMonitor(mon, List.of(), 0L);
            assertEquals(Message.METHOD_RETURN, r.type, r.toString());
            Message names = other.callBus("ListNames", Buses.T, "");
            assertFalse(((List<?>) names.arg(0)).contains(mon.uniqueName()), "monitor listed: " + names);
            Message has = other.callBus("NameHasOwner", Buses.T, "s", mon.uniqueName());
            assertEquals(false, has.arg(0), has.toString());
            // The monitor saw other's ListNames call.
            assertNotNull(mon.await(m -> "ListNames".equals(m.member) && other.uniqueName().equals(m.sender), Buses.T, false),
                    String.join("\n", mon.transcript()));
            mon.send(Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "GetId"));
            assertTrue(mon.awaitEof(Buses.T), "a monitor that sends is disconnected");
        }
    }

    /**
     * What a client that owns a name receives when it becomes a monitor, and what a watcher of
     * NameOwnerChanged sees, must be the same on both buses (reply first, then NameLost for the
     * unique name and each well-known name; the monitor never sees its own NameOwnerChanged).
     */
    @Test
    void becomingAMonitorReleasesNamesInDbusDaemonsOrder() throws Exception {
        Buses.assumeBothSelected();
        List<String> dd = becomeMonitorTranscript(BusKind.DBUS_DAEMON);
        List<String> ours = becomeMonitorTranscript(BusKind.KDBUS_BRIDGE);
        assertEquals(String.join("\n", dd), String.join("\n", ours));
        assertTrue(dd.stream().anyMatch(l -> l.contains("member=NameLost") && l.contains("args=\"com.example.Mon\"")), String.join("\n", dd));
    }

    private static List<String> becomeMonitorTranscript(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start();
             RawClient watcher = RawClient.connectHello(bus.address(), Buses.T);
             RawClient mon = RawClient.connectHello(bus.address(), Buses.T);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T)) {
            Normalizer norm = new Normalizer().label(mon.uniqueName(), "M").label(watcher.uniqueName(), "W")
                    .label(caller.uniqueName(), "C");
            assertEquals(Message.METHOD_RETURN, watcher.callBus("AddMatch", Buses.T, "s",
                    "type='signal',member='NameOwnerChanged'").type);
            assertEquals(1L, mon.callBus("RequestName", Buses.T, "su", "com.example.Mon", 0L).arg(0));
            assertEquals(Message.METHOD_RETURN, mon.callBus("AddMatch", Buses.T, "s", "type='signal'").type);
            // A call the monitor-to-be never answers: the caller is told it will not be.
            long pending = caller.send(Message.call(mon.uniqueName(), "/p", IFACE, "Slow"));
            assertNotNull(mon.await(m -> "Slow".equals(m.member), Buses.T, false));
            watcher.sync(Buses.T);
            mon.clearLog();
            watcher.clearLog();
            Message r = becomeMonitor(mon, List.of("type='signal',member='Marker'"), 0L);
            assertEquals(Message.METHOD_RETURN, r.type, r.toString());
            Message noReply = caller.awaitReply(pending, Buses.T);
            Message marker = new Message();
            marker.type = Message.SIGNAL;
            marker.path = "/p";
            marker.iface = IFACE;
            marker.member = "Marker";
            watcher.send(marker);
            assertNotNull(mon.awaitSignal("Marker", Buses.T), String.join("\n", mon.transcript()));
            watcher.sync(Buses.T);
            List<String> out = new ArrayList<>();
            out.add("caller: " + norm.line(noReply.transcript()));
            for (String l : mon.transcript()) {
                out.add("monitor: " + norm.line(l));
            }
            for (String l : watcher.transcript()) {
                out.add("watcher: " + norm.line(l));
            }
            return out;
        }
    }

    // ------------------------------------------------------------------ privilege

    private static String openConfig(Path dir) {
        return "<busconfig><type>session</type><listen>unix:path=" + dir.resolve("bus") + "</listen>"
                + "<auth>EXTERNAL</auth><policy context=\"default\"><allow user=\"*\"/>"
                + "<allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/><allow own=\"*\"/>"
                + "</policy></busconfig>\n";
    }

    /** BecomeMonitor by another uid than the bus's (and not root): AccessDenied; dbus-monitor then falls back. */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void becomeMonitorByAnotherUidIsDenied(BusKind kind, @TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(RawClient.uid() == 0, "needs root to run a client as nobody (runuser)");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, openConfig(dir));
        List<String> argv = kind == BusKind.DBUS_DAEMON
                ? List.of("/usr/bin/dbus-daemon", "--config-file=" + conf, "--nofork", "--print-address")
                : List.of(DropInTest.BIN + "/kdbus-bridge", "--config-file=" + conf, "--nofork", "--print-address");
        try (Background bus = Background.start(argv, null)) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            try (Background mon = Background.start(List.of("runuser", "-u", "nobody", "--", "dbus-monitor", "--address", address),
                    Map.of())) {
                String line = mon.stderr().awaitLine(l -> l.contains("unable to enable new-style monitoring"), Buses.T);
                assertNotNull(line, mon.describe());
                assertTrue(line.contains("org.freedesktop.DBus.Error.AccessDenied"), line);
            }
            // Root may (uid 0 is always privileged).
            try (RawClient root = RawClient.connectHello(address, Buses.T)) {
                assertEquals(Message.METHOD_RETURN, becomeMonitor(root, List.of(), 0L).type);
            }
        }
    }
}
