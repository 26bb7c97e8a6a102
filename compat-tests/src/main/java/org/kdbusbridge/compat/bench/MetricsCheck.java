package org.kdbusbridge.compat.bench;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Issue 20's check against the bench's own load ({@code --check-metrics}, our bus only): the
 * OpenMetrics dump of our bus's {@code --kdbus-metrics=unix:path=} socket, read before the
 * pipelined callers are released and again after every one of them printed its RESULT (they stay
 * connected, {@code KBB_LOAD_HOLD=1}, so their series are still there), against what each
 * kbb-load caller counted itself.
 *
 * <p>Messages, exactly, per caller (absolute, from the second dump): method_call in = its calls +
 * 1 (Hello; kbb-load's caller makes no other driver call), method_return out = its calls + 1
 * (Hello's reply), signal out = 1 (NameAcquired), nothing else in either direction. The echo
 * service's connection (long-lived, so deltas between the dumps): method_call out = the sum of
 * the calls, method_return in = the same; bus-wide deltas the same.
 *
 * <p>Bytes, within 1%, per caller: the bus's in_bytes (out_bytes) delta over the workload, all
 * types, against the bytes the caller's socket carried from its GO on, counted by kbb-load
 * around the system calls sd-bus makes (sendmsg/recvmsg: see kbb-load.c; /proc/PID/io does not
 * count socket sendmsg/recvmsg). Independent of the bus: the kernel's return values. SASL and
 * Hello are before GO and in neither figure.
 */
final class MetricsCheck {
    private MetricsCheck() { }

    /** One caller: its unique name, calls made, and the bytes its socket sent and received from GO on. */
    record Caller(String name, long calls, long sent, long received) {}

    /** Connects, reads to end of file, parses "series value" lines (comments skipped). */
    static Map<String, Double> dump(Path socket) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            ByteBuffer b = ByteBuffer.allocate(1 << 16);
            while (ch.read(b) >= 0) {
                bytes.write(b.array(), 0, b.position());
                b.clear();
            }
        }
        Map<String, Double> m = new HashMap<>();
        for (String l : bytes.toString(StandardCharsets.UTF_8).split("\n")) {
            if (l.isEmpty() || l.startsWith("#")) {
                continue;
            }
            int sp = l.lastIndexOf(' ');
            m.put(l.substring(0, sp), Double.parseDouble(l.substring(sp + 1)));
        }
        if (m.isEmpty()) {
            throw new IllegalStateException("empty metrics dump from " + socket);
        }
        return m;
    }

    /** A connection's counter {@code family} (e.g. kdbus_connection_messages_in_total), one type or all (null). */
    static long conn(Map<String, Double> d, String family, String unique, String type) {
        String label = "unique_name=\"" + unique + "\"";
        double sum = 0;
        for (var e : d.entrySet()) {
            String k = e.getKey();
            if (k.startsWith(family + "{") && k.contains(label) && (type == null || k.endsWith(",type=\"" + type + "\"}"))) {
                sum += e.getValue();
            }
        }
        return (long) sum;
    }

    static long bus(Map<String, Double> d, String family, String type) {
        Double v = d.get(family + "{type=\"" + type + "\"}");
        return v == null ? 0 : v.longValue();
    }

    /** The outcome: message mismatches (empty = exact), the worst byte differences in percent, the lines. */
    record Outcome(List<String> mismatches, double worstInPct, double worstOutPct, List<String> lines) {
        boolean ok() {
            return mismatches.isEmpty() && Math.abs(worstInPct) <= 1.0 && Math.abs(worstOutPct) <= 1.0;
        }

        String summary() {
            return String.format(Locale.ROOT, "metrics %s: messages %s, bytes in %+.3f %%, bytes out %+.3f %% (worst caller; bound 1 %%)",
                    ok() ? "agree" : "DISAGREE", mismatches.isEmpty() ? "exact" : mismatches.size() + " mismatches",
                    worstInPct, worstOutPct);
        }
    }

    static Outcome check(Map<String, Double> before, Map<String, Double> after, List<Caller> callers, String echo) {
        List<String> bad = new ArrayList<>();
        List<String> lines = new ArrayList<>();
        double worstIn = 0;
        double worstOut = 0;
        long total = 0;
        String[] types = {"method_call", "method_return", "error", "signal"};
        for (Caller c : callers) {
            total += c.calls();
            for (String t : types) {
                long in = conn(after, "kdbus_connection_messages_in_total", c.name(), t);
                long out = conn(after, "kdbus_connection_messages_out_total", c.name(), t);
                long wantIn = t.equals("method_call") ? c.calls() + 1 : 0;
                long wantOut = t.equals("method_return") ? c.calls() + 1 : t.equals("signal") ? 1 : 0;
                expect(bad, c.name() + " " + t + " in", in, wantIn);
                expect(bad, c.name() + " " + t + " out", out, wantOut);
            }
            long inB = conn(after, "kdbus_connection_in_bytes_total", c.name(), null)
                    - conn(before, "kdbus_connection_in_bytes_total", c.name(), null);
            long outB = conn(after, "kdbus_connection_out_bytes_total", c.name(), null)
                    - conn(before, "kdbus_connection_out_bytes_total", c.name(), null);
            double inPct = pct(inB, c.sent());
            double outPct = pct(outB, c.received());
            worstIn = Math.abs(inPct) > Math.abs(worstIn) ? inPct : worstIn;
            worstOut = Math.abs(outPct) > Math.abs(worstOut) ? outPct : worstOut;
            // The bus counts each frame as the client wrote it (docs/extensions.md, "Metrics"),
            // so in-bytes should equal what the caller's socket sent, exactly.
            lines.add(String.format(Locale.ROOT,
                    "metrics check %s: %d calls; bus in %d calls + %d returns out (want %d each, Hello included);"
                            + " bytes: bus in %d vs socket sent %d (%+.3f %%, %+d),"
                            + " bus out %d vs socket received %d (%+.3f %%, %+d)",
                    c.name(), c.calls(), conn(after, "kdbus_connection_messages_in_total", c.name(), "method_call"),
                    conn(after, "kdbus_connection_messages_out_total", c.name(), "method_return"), c.calls() + 1,
                    inB, c.sent(), inPct, inB - c.sent(),
                    outB, c.received(), outPct, outB - c.received()));
        }
        long echoCalls = conn(after, "kdbus_connection_messages_out_total", echo, "method_call")
                - conn(before, "kdbus_connection_messages_out_total", echo, "method_call");
        long echoReturns = conn(after, "kdbus_connection_messages_in_total", echo, "method_return")
                - conn(before, "kdbus_connection_messages_in_total", echo, "method_return");
        expect(bad, "echo " + echo + " calls delivered", echoCalls, total);
        expect(bad, "echo " + echo + " returns sent", echoReturns, total);
        long busCalls = bus(after, "kdbus_messages_in_total", "method_call") - bus(before, "kdbus_messages_in_total", "method_call");
        long busReturns = bus(after, "kdbus_messages_out_total", "method_return")
                - bus(before, "kdbus_messages_out_total", "method_return");
        expect(bad, "bus-wide calls in", busCalls, total);
        expect(bad, "bus-wide returns out", busReturns, total);
        lines.add(String.format(Locale.ROOT, "metrics check echo %s: %d calls delivered, %d returns sent; bus-wide %d calls in,"
                + " %d returns out (want %d each)", echo, echoCalls, echoReturns, busCalls, busReturns, total));
        bad.forEach(b -> lines.add("metrics check MISMATCH " + b));
        return new Outcome(bad, worstIn, worstOut, lines);
    }

    private static void expect(List<String> bad, String what, long got, long want) {
        if (got != want) {
            bad.add(what + ": " + got + " (want " + want + ")");
        }
    }

    private static double pct(long bus, long load) {
        return load == 0 ? (bus == 0 ? 0 : Double.POSITIVE_INFINITY) : (bus - load) * 100.0 / load;
    }
}
