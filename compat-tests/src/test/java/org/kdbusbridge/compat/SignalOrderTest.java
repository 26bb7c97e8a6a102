package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.Normalizer;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Scenario 6: the order of signals versus the reply, per connection, with raw clients. The normalised
 * transcript must equal the one recorded from dbus-daemon 1.14 (resource signal-order.golden.txt) and,
 * when both buses run, the two transcripts must be equal.
 */
class SignalOrderTest {
    static final String NOC_RULE = "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'";
    static final long ALLOW_REPLACEMENT = 1;
    static final long REPLACE_EXISTING = 2;
    static final long DO_NOT_QUEUE = 4;
    static final String X = "com.example.X";
    static final String Y = "com.example.Y";

    /** Connections by label, in a fixed order, and the transcript being built. */
    static final class Run {
        final BusUnderTest bus;
        final Map<String, RawClient> conns = new LinkedHashMap<>();
        final Normalizer norm = new Normalizer();
        final List<String> out = new ArrayList<>();

        Run(BusUnderTest bus) {
            this.bus = bus;
        }

        RawClient connect(String label, boolean watchNoc) throws IOException {
            RawClient c = RawClient.connectHello(bus.address(), Buses.T);
            norm.label(c.uniqueName(), label);
            if (watchNoc) {
                Message r = c.callBus("AddMatch", Buses.T, "s", NOC_RULE);
                assertEquals(Message.METHOD_RETURN, r.type, r.toString());
                c.forget(m -> m == r);
            }
            conns.put(label, c);
            return c;
        }

        /** Records a reply as "LABEL> name(args) -> ..." for the step's call. */
        Message call(String label, String member, String sig, Object... args) throws IOException {
            RawClient c = conns.get(label);
            Message r = c.callBus(member, Buses.T, sig, args);
            return r;
        }

        /** Barrier on every live connection, then append each one's transcript under its label. */
        void step(String title) throws IOException {
            out.add("## " + title);
            for (Map.Entry<String, RawClient> e : conns.entrySet()) {
                RawClient c = e.getValue();
                if (c.isEof()) {
                    continue;
                }
                c.sync(Buses.T);
                for (String l : c.drainTranscript()) {
                    out.add(e.getKey() + ": " + norm.line(l));
                }
            }
        }

        void closeAll() {
            conns.values().forEach(RawClient::close);
        }
    }

    static List<String> scenario(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            Run run = new Run(bus);
            try {
                run.connect("W", true);
                run.step("W hello");
                run.connect("A", true);
                run.step("A hello (W sees NameOwnerChanged for A)");
                run.connect("B", true);
                run.step("B hello");
                run.call("A", "RequestName", "su", X, ALLOW_REPLACEMENT);
                run.step("A RequestName X ALLOW_REPLACEMENT");
                run.call("A", "RequestName", "su", X, ALLOW_REPLACEMENT);
                run.step("A RequestName X again (ALREADY_OWNER)");
                run.call("B", "RequestName", "su", X, REPLACE_EXISTING);
                run.step("B RequestName X REPLACE_EXISTING");
                run.connect("C", false);
                run.step("C hello (no match rule)");
                run.call("C", "RequestName", "su", X, 0L);
                run.step("C RequestName X (queued)");
                run.call("C", "RequestName", "su", X, DO_NOT_QUEUE);
                run.step("C RequestName X DO_NOT_QUEUE while queued");
                run.connect("D", false);
                run.call("D", "RequestName", "su", X, DO_NOT_QUEUE);
                run.step("D hello + RequestName X DO_NOT_QUEUE (EXISTS)");
                run.call("D", "ListQueuedOwners", "s", X);
                run.step("ListQueuedOwners X");
                run.call("D", "ReleaseName", "s", X);
                run.step("D ReleaseName X (NOT_OWNER)");
                run.call("D", "ReleaseName", "s", "com.example.Nobody");
                run.step("D ReleaseName unowned (NON_EXISTENT)");
                run.call("B", "ReleaseName", "s", X);
                run.step("B ReleaseName X (A is next in the queue)");
                run.call("D", "ListQueuedOwners", "s", X);
                run.step("ListQueuedOwners X after release");
                run.call("C", "RequestName", "su", X, 0L);
                run.step("C RequestName X again (queued behind A)");
                run.call("A", "RequestName", "su", Y, 0L);
                run.step("A RequestName Y");
                RawClient a = run.conns.get("A");
                String aName = a.uniqueName();
                a.close();
                run.conns.remove("A"); // closed by us: its reader may not have seen EOF yet
                RawClient w = run.conns.get("W");
                assertNotNull(w.await(m -> m.type == Message.SIGNAL && "NameOwnerChanged".equals(m.member)
                        && aName.equals(m.arg(0)), Buses.T, false), "W saw A's unique name go");
                run.step("A disconnects (well-known names first, unique name last)");
                run.call("D", "ListQueuedOwners", "s", X);
                run.call("D", "GetNameOwner", "s", Y);
                run.step("after A left: queue of X, owner of Y");
                return run.out;
            } finally {
                run.closeAll();
            }
        }
    }

    static List<String> golden() throws IOException {
        try (InputStream in = SignalOrderTest.class.getResourceAsStream("signal-order.golden.txt")) {
            assertNotNull(in, "golden resource");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList();
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void transcriptEqualsDbusDaemonGolden(BusKind kind) throws Exception {
        List<String> got = scenario(kind);
        if (Boolean.getBoolean("compat.printTranscripts")) {
            System.out.println("---- " + kind + "\n" + String.join("\n", got));
        }
        String write = System.getProperty("compat.writeGolden");
        if (write != null && kind == BusKind.DBUS_DAEMON) {
            java.nio.file.Files.writeString(java.nio.file.Path.of(write), String.join("\n", got) + "\n");
        }
        assertEquals(String.join("\n", golden()), String.join("\n", got), kind + " transcript");
    }

    @Test
    void transcriptEqualBetweenBuses() throws Exception {
        Buses.assumeBothSelected();
        assertEquals(String.join("\n", scenario(BusKind.DBUS_DAEMON)), String.join("\n", scenario(BusKind.KDBUS_BRIDGE)));
    }
}
