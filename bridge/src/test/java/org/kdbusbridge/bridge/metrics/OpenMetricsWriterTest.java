// Invariants under test: the exposition's shape (TYPE/UNIT/HELP before each family's samples,
// _total on counters, # EOF last), label escaping per OpenMetrics, the names label cap, and the
// series cap: the top N connections by messages get series, one "other" series sums the rest
// and the departed, so per-connection series add up to the bus totals.
package org.kdbusbridge.bridge.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.bus.Bus;
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
    void topConnectionsGetSeriesAndOtherSumsTheRest() {
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
        long perConnection = 0;
        for (String line : text.split("\n")) {
            if (line.startsWith("kdbus_connection_messages_in_total{") && line.contains("type=\"signal\"")) {
                names.add(line.substring(line.indexOf("unique_name=\""), line.indexOf("\",names")));
                perConnection += Long.parseLong(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        assertEquals(6, names.size(), text); // the top 5 and "other"
        assertTrue(names.contains("unique_name=\"" + cs.get(29).uniqueName()), text);
        assertTrue(names.contains("unique_name=\"" + cs.get(25).uniqueName()), text);
        assertFalse(names.contains("unique_name=\"" + cs.get(24).uniqueName()), text);
        long total = 30 * 29 / 2 + 1;
        assertEquals(total, perConnection, text);
        assertTrue(text.contains("\nkdbus_messages_in_total{type=\"signal\"} " + total + "\n"), text);
        assertTrue(text.contains("\nkdbus_connection_series_other 25\n"), text);
        // Every family's metadata comes before its samples, each family once.
        Set<String> families = new HashSet<>();
        String current = null;
        for (String line : text.split("\n")) {
            if (line.startsWith("# TYPE ")) {
                current = line.split(" ")[2];
                assertTrue(families.add(current), "family twice: " + current);
            } else if (!line.startsWith("#")) {
                String name = line.split("[{ ]")[0];
                assertTrue(name.equals(current) || name.equals(current + "_total"), line + " outside " + current);
            }
        }
    }
}
