package org.kdbusbridge.compat.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.PcapStream;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.LineReader;
import org.kdbusbridge.compat.harness.Message;

/**
 * Issue 18, endpoints together with the features they meet, on both buses with the same
 * assertions (the real xdg-dbus-proxy on dbus-daemon, our endpoint front on ours):
 * <ul>
 * <li><b>zero-copy payloads</b>: a sandboxed dbus-python client sends and receives 1 MiB byte
 * arrays (16x our 64 KiB zero-copy threshold) through the endpoint, checked by CRC at both ends;</li>
 * <li><b>monitors</b>: a {@code dbus-monitor --pcap} on the host bus sees the sandboxed client's
 * calls, under its own unique name, with their whole bodies, and the replies;</li>
 * <li><b>busconfig policy</b>: the endpoint's {@code --talk} and {@code --own} rules never
 * widen the bus's policy: a {@code <deny send_destination>} and a {@code <deny own>} still answer
 * AccessDenied inside the sandbox;</li>
 * <li><b>capture</b> (ours only: dbus-daemon has no {@code --kdbus-capture}): the capture file
 * holds the sandboxed client's 1 MiB call and the reply to it.</li>
 * <li>a call the endpoint's filter refuses (a hidden name) reaches neither the bus nor its monitors,
 * on either bus.</li>
 * </ul>
 */
class EndpointCombinationsTest {
    static final Duration T = Duration.ofSeconds(30);
    static final int SIZE = 1 << 20;
    static final String DENIED = "org.freedesktop.DBus.Error.AccessDenied";
    static final String POLICY = "<deny send_destination=\"org.example.Secret\"/><deny own=\"org.example.Denied\"/>";
    static final List<String> RULES = List.of("--filter", "--talk=org.example.Big", "--talk=org.example.Secret",
            "--own=org.example.Denied", "--own=org.example.Mine");

    static List<BusKind> buses() {
        return BusKind.selected();
    }

    @ParameterizedTest
    @MethodSource("buses")
    void largePayloadsMonitorsPolicyAndCaptureThroughAnEndpoint(BusKind kind) throws Exception {
        Path captureDir = Files.createTempDirectory("kdbus-endpoint-capture-");
        Path capture = captureDir.resolve("bus.pcapng");
        String[] options = kind == BusKind.KDBUS_BRIDGE ? new String[] {"--kdbus-capture=" + capture} : new String[0];
        String client;
        try (SandboxBus bus = SandboxBus.start(kind, POLICY, options)) {
            Path service = FakeDesktop.script(bus.dir, "big_service.py");
            org.kdbusbridge.compat.harness.Background svc = bus.own(
                    org.kdbusbridge.compat.harness.Background.start(List.of(FakeDesktop.PYTHON, service.toString(), bus.address()), null));
            String ready = svc.stdout().awaitLine(l -> l.startsWith("ready "), T);
            assertNotNull(ready, svc.describe());
            String serviceName = ready.substring("ready ".length()).trim();

            Process monitor = new ProcessBuilder("dbus-monitor", "--pcap", "--address", bus.address()).start();
            try (PcapStream pcap = new PcapStream(monitor.getInputStream());
                 LineReader monErr = new LineReader(monitor.getErrorStream(), "monitor-err")) {
                try {
                    // dbus-monitor records its own NameLost once it is a monitor.
                    assertNotNull(pcap.await(m -> PcapStream.hasMember(m, Message.SIGNAL, "NameLost"), T),
                            "dbus-monitor did not become a monitor: " + monErr.text());

                    SandboxFront front = bus.front("combo", RULES, false);
                    Map<String, String> out = runClient(bus, front);
                    client = out.get("unique");
                    assertEquals(SIZE + " crc-ok", out.get("echo"), "1 MiB up through the endpoint\n" + front.describe());
                    assertEquals(SIZE + " crc-ok", out.get("blob"), "1 MiB down through the endpoint\n" + front.describe());
                    assertEquals("error:" + DENIED, out.get("secret"), "--talk does not override the bus's <deny send_destination>");
                    assertEquals("error:" + DENIED, out.get("own-denied"), "--own does not override the bus's <deny own>");
                    assertEquals("ok:1", out.get("own-mine"), "an allowed --own name is owned");

                    // The host's monitor saw the sandboxed client's traffic as the client's.
                    Predicate<List<Message>> all = m -> has(m, bigCallFrom(client, "Echo"))
                            && has(m, x -> x.type == Message.METHOD_RETURN && serviceName.equals(x.sender)
                                    && client.equals(x.destination) && x.body.length >= SIZE)
                            && has(m, x -> x.type == Message.ERROR && DENIED.equals(x.errorName) && client.equals(x.destination));
                    List<Message> seen = pcap.await(all, T);
                    assertNotNull(seen, "the monitor's capture so far:\n" + PcapStream.describe(PcapStream.messages(pcap.bytes())));
                    // A call the endpoint's filter refuses never reaches the bus: on neither bus does
                    // the host's monitor see it (seen once the call after it is seen).
                    assertEquals("error:org.freedesktop.DBus.Error.ServiceUnknown", out.get("hidden"), "a name outside the rules is hidden");
                    List<Message> later = pcap.await(m -> has(m, x -> "Echo".equals(x.member) && client.equals(x.sender)
                            && x.body.length < 64), T);
                    assertNotNull(later, "the monitor saw the call after the refused one");
                    assertTrue(!has(later, x -> "HiddenProbe".equals(x.member)), "the filtered call did not reach the host's monitor\n" + summary(later));
                } finally {
                    monitor.destroy();
                    monitor.waitFor(10, TimeUnit.SECONDS);
                }
            }
        }
        if (kind == BusKind.KDBUS_BRIDGE) {
            // The bus was stopped by SIGTERM above (SandboxBus.close): the capture is complete.
            List<Message> msgs = PcapStream.messages(Files.readAllBytes(capture));
            String c = client;
            assertTrue(has(msgs, bigCallFrom(c, "Echo")), "the capture holds the 1 MiB call\n" + summary(msgs));
            assertTrue(has(msgs, x -> x.type == Message.METHOD_RETURN && c.equals(x.destination) && x.body.length >= SIZE),
                    "and the 1 MiB reply\n" + summary(msgs));
            assertTrue(has(msgs, x -> x.type == Message.ERROR && DENIED.equals(x.errorName) && c.equals(x.destination)),
                    "and the policy's refusal\n" + summary(msgs));
        }
        try (var s = Files.walk(captureDir)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }

    private static Predicate<Message> bigCallFrom(String client, String member) {
        return x -> x.type == Message.METHOD_CALL && member.equals(x.member) && client.equals(x.sender) && x.body.length >= SIZE;
    }

    private static boolean has(List<Message> msgs, Predicate<Message> p) {
        return msgs.stream().anyMatch(p);
    }

    /** Message transcripts without the bodies (a 1 MiB array would be the whole failure text). */
    private static String summary(List<Message> msgs) {
        StringBuilder sb = new StringBuilder();
        for (Message m : msgs) {
            sb.append(m.typeName()).append(" sender=").append(m.sender).append(" dest=").append(m.destination)
                    .append(" member=").append(m.member).append(" error=").append(m.errorName)
                    .append(" body=").append(m.body.length).append('\n');
        }
        return sb.toString();
    }

    private static Map<String, String> runClient(SandboxBus bus, SandboxFront front) throws IOException {
        Path script = FakeDesktop.script(bus.dir, "big_client.py");
        Cmd.Result r = Cmd.run(List.of(FakeDesktop.PYTHON, script.toString(), front.clientAddress(), String.valueOf(SIZE)), T);
        assertTrue(r.ok() && r.stdout().contains("done"), r.describe() + "\n" + front.describe() + "\n--- bus ---\n" + bus.busLog());
        Map<String, String> out = new LinkedHashMap<>();
        for (String line : r.stdout().split("\n")) {
            int sp = line.indexOf(' ');
            if (sp > 0) {
                out.put(line.substring(0, sp), line.substring(sp + 1).trim());
            }
        }
        List<String> missing = new ArrayList<>();
        for (String k : List.of("unique", "echo", "blob", "secret", "own-denied", "own-mine", "hidden", "after")) {
            if (!out.containsKey(k)) {
                missing.add(k);
            }
        }
        assertTrue(missing.isEmpty(), "client output lacks " + missing + ": " + r.describe());
        return out;
    }
}
