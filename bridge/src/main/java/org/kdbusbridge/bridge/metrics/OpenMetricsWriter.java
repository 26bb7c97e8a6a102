package org.kdbusbridge.bridge.metrics;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;

import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusCounters;
import org.kdbusbridge.core.bus.DisconnectReason;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionCounters;
import org.kdbusbridge.core.message.Message;

/**
 * Renders the bus's counters in the OpenMetrics text format 1.0.0 (the Prometheus exposition,
 * {@code application/openmetrics-text; version=1.0.0}): bus-wide families, then per-connection
 * ones for the {@code topN} connections with the most messages in and out, and one series
 * labelled {@code unique_name="other"} summing every other connection, departed ones included
 * (so per-connection series always add up to the bus totals, and a connection storm adds one
 * series, not thousands). Run on the bus thread: one call is one consistent snapshot.
 */
public final class OpenMetricsWriter {
    public static final String CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    /** At most this many well-known names in a connection's {@code names} label (then ",..."). */
    static final int NAMES_LABEL_CAP = 8;
    private static final int[] TYPES = {Message.METHOD_CALL, Message.METHOD_RETURN, Message.ERROR, Message.SIGNAL};
    private static final String[] TYPE_LABELS = {"", "method_call", "method_return", "error", "signal"};

    private final int topN;

    public OpenMetricsWriter(int topN) {
        if (topN < 0) {
            throw new IllegalArgumentException("topN < 0");
        }
        this.topN = topN;
    }

    /** The whole exposition, ending with {@code # EOF}. */
    public byte[] render(Bus bus) {
        return renderText(bus).getBytes(StandardCharsets.UTF_8);
    }

    public String renderText(Bus bus) {
        StringBuilder b = new StringBuilder(8192);
        Collection<Connection> live = bus.activeConnections();
        Connection[] ranked = live.toArray(new Connection[0]);
        Arrays.sort(ranked, Comparator.comparingLong((Connection c) -> c.counters().totalMessages()).reversed()
                .thenComparingLong(Connection::id));
        int shown = Math.min(topN, ranked.length);
        ConnectionCounters total = new ConnectionCounters();
        total.add(bus.counters().departed());
        ConnectionCounters other = new ConnectionCounters();
        other.add(bus.counters().departed());
        long poolBytes = 0;
        long poolFds = 0;
        long otherPoolBytes = 0;
        long otherPoolFds = 0;
        long otherMatchRules = 0;
        for (int i = 0; i < ranked.length; i++) {
            Connection c = ranked[i];
            total.add(c.counters());
            poolBytes += c.pool().bytes();
            poolFds += c.pool().fds();
            if (i >= shown) {
                other.add(c.counters());
                otherPoolBytes += c.pool().bytes();
                otherPoolFds += c.pool().fds();
                otherMatchRules += c.matchRuleCount();
            }
        }
        List<String> labels = new ArrayList<>(shown + 1);
        for (int i = 0; i < shown; i++) {
            labels.add(connectionLabels(ranked[i]));
        }
        String otherLabels = "unique_name=\"other\",names=\"\",uid=\"\",comm=\"\"";

        // --- bus-wide -------------------------------------------------------------------
        BusCounters bc = bus.counters();
        byType(b, "kdbus_messages_in", "counter", null, "Messages connections sent that the bus admitted, by type",
                "", total, true, false);
        byType(b, "kdbus_in_bytes", "counter", "bytes", "Bytes of the messages connections sent that the bus admitted",
                "", total, true, true);
        byType(b, "kdbus_messages_out", "counter", null, "Messages queued to connections' receive pools, by type",
                "", total, false, false);
        byType(b, "kdbus_out_bytes", "counter", "bytes", "Bytes of the messages queued to connections' receive pools",
                "", total, false, true);
        family(b, "kdbus_unicasts_refused", "counter", null, "Unicasts the bus refused, by the kind of error returned");
        reasons(b, "kdbus_unicasts_refused_total", "", total.refusedLimitsCount(), total.refusedAccessCount(),
                total.refusedOtherCount(), "limits_exceeded", "access_denied", "other");
        family(b, "kdbus_broadcasts_skipped", "counter", null, "Broadcast deliveries skipped, by cause");
        reasons(b, "kdbus_broadcasts_skipped_total", "", total.skippedFullCount(), total.skippedPolicyCount(),
                total.skippedOtherCount(), "full", "policy", "other");
        family(b, "kdbus_disconnects", "counter", null, "Connections the bus closed or lost, by reason");
        for (DisconnectReason r : DisconnectReason.values()) {
            sample(b, "kdbus_disconnects_total", "reason=\"" + r.name().toLowerCase() + "\"", bc.disconnects(r));
        }
        family(b, "kdbus_bus_messages", "counter", null, "Messages the bus itself originated (replies, errors, signals)");
        sample(b, "kdbus_bus_messages_total", "", bc.busOriginated());
        gauge(b, "kdbus_connections", null, "Connections, including those not yet past Hello", bus.connectionCount());
        gauge(b, "kdbus_active_connections", null, "Connections past Hello", ranked.length);
        gauge(b, "kdbus_names", null, "Well-known names with an owner", bus.busNameCount());
        gauge(b, "kdbus_match_rules", null, "Match rules held", bus.matches().size());
        gauge(b, "kdbus_pool_bytes", "bytes", "Bytes queued in receive pools", poolBytes);
        gauge(b, "kdbus_pool_fds", null, "Unix fds queued in receive pools", poolFds);
        gauge(b, "kdbus_pending_activations", null, "Messages waiting for an activated service",
                bus.pendingActivationEntries());
        gauge(b, "kdbus_connection_series_other", null,
                "Active connections summed in the unique_name=\"other\" series", ranked.length - shown);

        // --- per connection -------------------------------------------------------------
        perConnectionByType(b, "kdbus_connection_messages_in", null, "Messages the connection sent that the bus admitted",
                ranked, shown, labels, other, otherLabels, true, false);
        perConnectionByType(b, "kdbus_connection_in_bytes", "bytes", "Bytes of the messages the connection sent",
                ranked, shown, labels, other, otherLabels, true, true);
        perConnectionByType(b, "kdbus_connection_messages_out", null, "Messages queued to the connection",
                ranked, shown, labels, other, otherLabels, false, false);
        perConnectionByType(b, "kdbus_connection_out_bytes", "bytes", "Bytes of the messages queued to the connection",
                ranked, shown, labels, other, otherLabels, false, true);
        family(b, "kdbus_connection_unicasts_refused", "counter", null, "The connection's unicasts the bus refused");
        for (int i = 0; i <= shown; i++) {
            ConnectionCounters c = i < shown ? ranked[i].counters() : other;
            reasons(b, "kdbus_connection_unicasts_refused_total", (i < shown ? labels.get(i) : otherLabels) + ",",
                    c.refusedLimitsCount(), c.refusedAccessCount(), c.refusedOtherCount(),
                    "limits_exceeded", "access_denied", "other");
        }
        family(b, "kdbus_connection_broadcasts_skipped", "counter", null, "Broadcasts that skipped the connection");
        for (int i = 0; i <= shown; i++) {
            ConnectionCounters c = i < shown ? ranked[i].counters() : other;
            reasons(b, "kdbus_connection_broadcasts_skipped_total", (i < shown ? labels.get(i) : otherLabels) + ",",
                    c.skippedFullCount(), c.skippedPolicyCount(), c.skippedOtherCount(), "full", "policy", "other");
        }
        family(b, "kdbus_connection_pool_bytes", "gauge", "bytes", "Bytes queued in the connection's receive pool");
        for (int i = 0; i < shown; i++) {
            sample(b, "kdbus_connection_pool_bytes", labels.get(i), ranked[i].pool().bytes());
        }
        sample(b, "kdbus_connection_pool_bytes", otherLabels, otherPoolBytes);
        family(b, "kdbus_connection_pool_fds", "gauge", null, "Unix fds queued in the connection's receive pool");
        for (int i = 0; i < shown; i++) {
            sample(b, "kdbus_connection_pool_fds", labels.get(i), ranked[i].pool().fds());
        }
        sample(b, "kdbus_connection_pool_fds", otherLabels, otherPoolFds);
        family(b, "kdbus_connection_match_rules", "gauge", null, "Match rules the connection holds");
        for (int i = 0; i < shown; i++) {
            sample(b, "kdbus_connection_match_rules", labels.get(i), ranked[i].matchRuleCount());
        }
        sample(b, "kdbus_connection_match_rules", otherLabels, otherMatchRules);
        b.append("# EOF\n");
        return b.toString();
    }

    private static void byType(StringBuilder b, String name, String type, String unit, String help, String labels,
                               ConnectionCounters c, boolean in, boolean bytes) {
        family(b, name, type, unit, help);
        for (int t : TYPES) {
            sample(b, name + "_total", labels + "type=\"" + TYPE_LABELS[t] + "\"", value(c, t, in, bytes));
        }
    }

    private static long value(ConnectionCounters c, int t, boolean in, boolean bytes) {
        return in ? (bytes ? c.bytesIn(t) : c.messagesIn(t)) : (bytes ? c.bytesOut(t) : c.messagesOut(t));
    }

    private static void perConnectionByType(StringBuilder b, String name, String unit, String help, Connection[] ranked,
                                            int shown, List<String> labels, ConnectionCounters other,
                                            String otherLabels, boolean in, boolean bytes) {
        family(b, name, "counter", unit, help);
        for (int i = 0; i <= shown; i++) {
            ConnectionCounters c = i < shown ? ranked[i].counters() : other;
            String l = (i < shown ? labels.get(i) : otherLabels) + ",type=\"";
            for (int t : TYPES) {
                sample(b, name + "_total", l + TYPE_LABELS[t] + "\"", value(c, t, in, bytes));
            }
        }
    }

    private static void reasons(StringBuilder b, String sample, String labels, long a, long c, long d,
                                String la, String lc, String ld) {
        sample(b, sample, labels + "reason=\"" + la + "\"", a);
        sample(b, sample, labels + "reason=\"" + lc + "\"", c);
        sample(b, sample, labels + "reason=\"" + ld + "\"", d);
    }

    private static void gauge(StringBuilder b, String name, String unit, String help, long value) {
        family(b, name, "gauge", unit, help);
        sample(b, name, "", value);
    }

    private static void family(StringBuilder b, String name, String type, String unit, String help) {
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
        if (unit != null) {
            b.append("# UNIT ").append(name).append(' ').append(unit).append('\n');
        }
        b.append("# HELP ").append(name).append(' ');
        escape(b, help);
        b.append('\n');
    }

    private static void sample(StringBuilder b, String name, String labels, long value) {
        b.append(name);
        if (!labels.isEmpty()) {
            b.append('{').append(labels).append('}');
        }
        b.append(' ').append(value).append('\n');
    }

    /** unique_name, names (its well-known names joined with ',', capped), uid and comm. */
    static String connectionLabels(Connection c) {
        StringBuilder b = new StringBuilder(96);
        b.append("unique_name=\"");
        escape(b, c.uniqueName());
        b.append("\",names=\"");
        List<String> names = c.ownedNames(); // primary and queued: what it asked for
        for (int i = 0, n = names.size(); i < n; i++) {
            if (i == NAMES_LABEL_CAP) {
                b.append(",...");
                break;
            }
            if (i > 0) {
                b.append(',');
            }
            escape(b, names.get(i));
        }
        b.append("\",uid=\"");
        if (c.credentials() != null && c.credentials().uid() >= 0) {
            b.append(c.credentials().uid());
        }
        b.append("\",comm=\"");
        escape(b, comm(c.logInfo()));
        b.append('"');
        return b.toString();
    }

    /**
     * The {@code comm="..."} part of a connection's log info (read from procfs once per
     * connection, on first use, and cached by the connection), or "".
     */
    static String comm(String logInfo) {
        int at = logInfo == null ? -1 : logInfo.indexOf("comm=\"");
        if (at < 0) {
            return "";
        }
        int end = logInfo.lastIndexOf('"');
        return end > at + 6 ? logInfo.substring(at + 6, end) : "";
    }

    /**
     * OpenMetrics escaping (label values and HELP text alike): backslash, double quote, line feed.
     */
    static void escape(StringBuilder b, String s) {
        if (s == null) {
            return;
        }
        for (int i = 0, n = s.length(); i < n; i++) {
            char ch = s.charAt(i);
            switch (ch) {
                case '\\' -> b.append("\\\\");
                case '"' -> b.append("\\\"");
                case '\n' -> b.append("\\n");
                default -> b.append(ch);
            }
        }
    }
}
