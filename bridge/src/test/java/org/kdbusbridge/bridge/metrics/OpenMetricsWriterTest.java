// Invariants under test: the exposition's shape (TYPE/UNIT/HELP before each family's samples,
// _total on counters, # EOF last), label escaping per OpenMetrics, the names label cap, the
// series cap (the top N connections by messages get series; counters have no "other" series, the
// bus totals count everyone, departed included), every counter monotonic across renders when
// connections enter and leave the top N, the activation counters and histogram (cumulative
// buckets, +Inf = _count), exact seconds, and the GC and loop families.
package org.kdbusbridge.bridge.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusCounters;
import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.bus.UserQuota;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.Message;

class OpenMetricsWriterTest {
    private static final ConnectionSink SINK = c -> { };

    private static Bus bus() {
        return new Bus(new BusLimits(), UserQuota.forHeap(256L << 20));
    }

    private static Connection hello(Bus bus, long uid) {
        Connection c = bus.connect(new Credentials(uid, uid, -1), SINK);
        bus.hello(c);
        return c;
    }

    @Test
    void escapesLabelValuesAndFindsComm() {
        StringBuilder b = new StringBuilder();
        OpenMetricsWriter.escape(b, "a\\b\"c\nd");
        assertEquals("a\\\\b\\\"c\\nd", b.toString());
        assertEquals("/usr/bin/x --y", OpenMetricsWriter.comm("uid=1 pid=2 comm=\"/usr/bin/x --y\""));
        assertEquals("", OpenMetricsWriter.comm("uid=1 pid=2"));
        assertEquals("", OpenMetricsWriter.comm(null));
    }

    @Test
    void namesLabelIsCapped() {
        Bus bus = bus();
        Connection c = hello(bus, 1000);
        for (int i = 0; i < OpenMetricsWriter.NAMES_LABEL_CAP + 3; i++) {
            bus.requestName(c, "org.example.N" + i, 0);
        }
        String labels = OpenMetricsWriter.connectionLabels(c);
        assertTrue(labels.contains("names=\"org.example.N0,org.example.N1,"), labels);
        assertTrue(labels.contains(",...\""), labels);
        assertFalse(labels.contains("org.example.N" + OpenMetricsWriter.NAMES_LABEL_CAP + ","), labels);
        assertTrue(labels.contains("uid=\"1000\""), labels);
    }

    @Test
    void topConnectionsGetSeriesAndTheBusTotalsCountEveryone() {
        Bus bus = bus();
        List<Connection> cs = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            Connection c = hello(bus, 1000);
            for (int k = 0; k < i; k++) {
                c.counters().countIn(Message.SIGNAL, 10); // connection i sent i signals
            }
            cs.add(c);
        }
        Connection gone = hello(bus, 1000);
        gone.counters().countIn(Message.SIGNAL, 10);
        bus.disconnect(gone);

        String text = new OpenMetricsWriter(5).renderText(bus);
        assertTrue(text.endsWith("# EOF\n"), text);
        Set<String> names = new HashSet<>();
        for (String line : text.split("\n")) {
            if (line.startsWith("kdbus_connection_messages_in_total{") && line.contains("type=\"signal\"")) {
                names.add(line.substring(line.indexOf("unique_name=\""), line.indexOf("\",names")));
            }
        }
        assertEquals(5, names.size(), text); // the top 5, no "other" counter
        assertTrue(names.contains("unique_name=\"" + cs.get(29).uniqueName()), text);
        assertTrue(names.contains("unique_name=\"" + cs.get(25).uniqueName()), text);
        assertFalse(names.contains("unique_name=\"" + cs.get(24).uniqueName()), text);
        long total = 30 * 29 / 2 + 1;
        assertTrue(text.contains("\nkdbus_messages_in_total{type=\"signal\"} " + total + "\n"), text);
        assertTrue(text.contains("\nkdbus_connection_series_other 25\n"), text);
        // Gauges may sum the rest: they may fall.
        assertTrue(text.contains("\nkdbus_connection_match_rules{unique_name=\"other\",names=\"\",uid=\"\",comm=\"\"} 0\n"),
                text);
        assertFalse(text.contains("_total{unique_name=\"other\""), text);
        // Every family's metadata comes before its samples, each family once.
        Set<String> families = new HashSet<>();
        String current = null;
        for (String line : text.split("\n")) {
            if (line.startsWith("# TYPE ")) {
                current = line.split(" ")[2];
                assertTrue(families.add(current), "family twice: " + current);
            } else if (!line.startsWith("#")) {
                String name = line.split("[{ ]")[0];
                assertTrue(name.equals(current) || name.equals(current + "_total") || name.equals(current + "_bucket")
                        || name.equals(current + "_count") || name.equals(current + "_sum"), line + " outside " + current);
            }
        }
    }

    /** Every counter sample (a {@code _total}, {@code _bucket}, {@code _count} or {@code _sum}) by series. */
    private static Map<String, Double> counters(String text) {
        Map<String, Double> out = new HashMap<>();
        for (String line : text.split("\n")) {
            if (line.startsWith("#")) {
                continue;
            }
            int sp = line.lastIndexOf(' ');
            String series = line.substring(0, sp);
            String name = series.split("\\{")[0];
            if (name.endsWith("_total") || name.endsWith("_bucket") || name.endsWith("_count") || name.endsWith("_sum")) {
                out.put(series, Double.parseDouble(line.substring(sp + 1)));
            }
        }
        return out;
    }

    @Test
    void countersNeverFallWhenConnectionsEnterOrLeaveTheTopN() {
        Bus bus = bus();
        List<Connection> cs = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            Connection c = hello(bus, 1000);
            for (int k = 0; k <= i; k++) {
                c.counters().countIn(Message.SIGNAL, 10);
            }
            cs.add(c);
        }
        OpenMetricsWriter w = new OpenMetricsWriter(3);
        Map<String, Double> before = counters(w.renderText(bus));
        // The quietest overtakes everyone (enters the top 3), the busiest leaves the bus.
        for (int k = 0; k < 100; k++) {
            cs.get(0).counters().countIn(Message.SIGNAL, 10);
        }
        bus.disconnect(cs.get(5));
        Map<String, Double> after = counters(w.renderText(bus));
        assertTrue(after.keySet().stream().anyMatch(k -> k.contains(cs.get(0).uniqueName())), after.toString());
        for (Map.Entry<String, Double> e : before.entrySet()) {
            Double now = after.get(e.getKey());
            if (now != null) {
                assertTrue(now >= e.getValue(), e.getKey() + " fell from " + e.getValue() + " to " + now);
            }
        }
        assertEquals(before.get("kdbus_messages_in_total{type=\"signal\"}") + 100,
                after.get("kdbus_messages_in_total{type=\"signal\"}"));
    }

    @Test
    void activationsAreCountedByOutcomeWithAHistogram() {
        Bus bus = bus();
        BusCounters c = bus.counters();
        for (int i = 0; i < 4; i++) {
            c.noteActivationStarted();
        }
        c.noteActivationEnded(BusCounters.Activation.ACQUIRED, 30_000_000L); // 0.03 s: the 0.05 bucket
        c.noteActivationEnded(BusCounters.Activation.ACQUIRED, 2_000_000_000L); // 2 s: the 2.5 bucket
        c.noteActivationEnded(BusCounters.Activation.TIMEOUT, 90_000_000_000L); // over 60 s: +Inf only
        String text = new OpenMetricsWriter(0).renderText(bus);
        assertTrue(text.contains("\nkdbus_activations_started_total 4\n"), text);
        assertTrue(text.contains("\nkdbus_activations_total{outcome=\"acquired\"} 2\n"), text);
        assertTrue(text.contains("\nkdbus_activations_total{outcome=\"timeout\"} 1\n"), text);
        assertTrue(text.contains("\nkdbus_activations_total{outcome=\"exec_failed\"} 0\n"), text);
        assertTrue(text.contains("\nkdbus_activations_running 1\n"), text);
        assertTrue(text.contains("# TYPE kdbus_activation_start_seconds histogram\n"
                + "# UNIT kdbus_activation_start_seconds seconds\n"), text);
        String h = "kdbus_activation_start_seconds";
        assertTrue(text.contains("\n" + h + "_bucket{result=\"success\",le=\"0.025\"} 0\n"
                + h + "_bucket{result=\"success\",le=\"0.05\"} 1\n"), text);
        assertTrue(text.contains("\n" + h + "_bucket{result=\"success\",le=\"2.5\"} 2\n"), text);
        assertTrue(text.contains("\n" + h + "_bucket{result=\"success\",le=\"+Inf\"} 2\n"
                + h + "_count{result=\"success\"} 2\n" + h + "_sum{result=\"success\"} 2.03\n"), text);
        assertTrue(text.contains("\n" + h + "_bucket{result=\"failure\",le=\"60\"} 0\n"
                + h + "_bucket{result=\"failure\",le=\"+Inf\"} 1\n"), text);
        assertTrue(text.contains("\n" + h + "_sum{result=\"failure\"} 90\n"), text);
    }

    @Test
    void secondsAreExactAndGcFamiliesArePresent() {
        StringBuilder b = new StringBuilder();
        OpenMetricsWriter.seconds(b, 1_500_000_000L);
        b.append(' ');
        OpenMetricsWriter.seconds(b, 10_000_000L);
        b.append(' ');
        OpenMetricsWriter.seconds(b, 25_000_000_000L);
        b.append(' ');
        OpenMetricsWriter.seconds(b, 1L);
        assertEquals("1.5 0.01 25 0.000000001", b.toString());
        String text = new OpenMetricsWriter(0).renderText(bus());
        assertTrue(text.contains("# TYPE kdbus_gc_collections counter\n"), text);
        assertTrue(text.contains("\nkdbus_gc_seconds_total{gc=\""), text);
        assertFalse(text.contains("kdbus_loop_busy_seconds"), text); // no loop given
    }
}
