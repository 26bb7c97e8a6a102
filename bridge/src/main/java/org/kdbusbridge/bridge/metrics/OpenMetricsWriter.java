package org.kdbusbridge.bridge.metrics;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;

import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusCounters;
import org.kdbusbridge.core.bus.DisconnectReason;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionCounters;
import org.kdbusbridge.core.message.Message;

/**
 * Renders the bus's counters in the OpenMetrics text format 1.0.0 (the Prometheus exposition,
 * {@code application/openmetrics-text; version=1.0.0}): bus-wide families (traffic including
 * departed connections, disconnects, activations with a start-duration histogram, the loop's
 * busy time, GC totals), then per-connection ones for the {@code topN} connections with the most
 * messages in and out (a connection storm adds no series). Every counter is monotonic: a
 * per-connection counter is that connection's own, and connections outside the top N have no
 * counter series (an "other" sum would fall whenever one of them entered the top N, which a
 * scraper reads as a reset); the bus-wide totals count them. Per-connection gauges (pool bytes
 * and fds, match rules) do carry a {@code unique_name="other"} series for the rest. Run on the
 * bus thread: one call is one consistent snapshot.
 */
public final class OpenMetricsWriter {
    public static final String CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    /** At most this many well-known names in a connection's {@code names} label (then ",..."). */
    static final int NAMES_LABEL_CAP = 8;
    private static final int[] TYPES = {Message.METHOD_CALL, Message.METHOD_RETURN, Message.ERROR, Message.SIGNAL};
    private static final String[] TYPE_LABELS = {"", "method_call", "method_return", "error", "signal"};

    private final int topN;
    /** The bus's loop, for its busy time (it must account it), or null: no loop families. */
    private final EventLoop loop;

    public OpenMetricsWriter(int topN) {
        this(topN, null);
    }

    /** {@code loop}: the bus's loop with {@link EventLoop#accountBusyTime()} on, or null. */
    public OpenMetricsWriter(int topN, EventLoop loop) {
        if (topN < 0) {
            throw new IllegalArgumentException("topN < 0");
        }
        this.topN = topN;
        this.loop = loop;
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
                "Active connections without per-connection series (their gauges are summed in unique_name=\"other\")",
                ranked.length - shown);
        activations(b, bc);
        loopTime(b);
        GcTotals.render(b);

        // --- per connection -------------------------------------------------------------
        perConnectionByType(b, "kdbus_connection_messages_in", null, "Messages the connection sent that the bus admitted",
                ranked, shown, labels, true, false);
        perConnectionByType(b, "kdbus_connection_in_bytes", "bytes", "Bytes of the messages the connection sent",
                ranked, shown, labels, true, true);
        perConnectionByType(b, "kdbus_connection_messages_out", null, "Messages queued to the connection",
                ranked, shown, labels, false, false);
        perConnectionByType(b, "kdbus_connection_out_bytes", "bytes", "Bytes of the messages queued to the connection",
                ranked, shown, labels, false, true);
        family(b, "kdbus_connection_unicasts_refused", "counter", null, "The connection's unicasts the bus refused");
        for (int i = 0; i < shown; i++) {
            ConnectionCounters c = ranked[i].counters();
            reasons(b, "kdbus_connection_unicasts_refused_total", labels.get(i) + ",",
                    c.refusedLimitsCount(), c.refusedAccessCount(), c.refusedOtherCount(),
                    "limits_exceeded", "access_denied", "other");
        }
        family(b, "kdbus_connection_broadcasts_skipped", "counter", null, "Broadcasts that skipped the connection");
        for (int i = 0; i < shown; i++) {
            ConnectionCounters c = ranked[i].counters();
            reasons(b, "kdbus_connection_broadcasts_skipped_total", labels.get(i) + ",",
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
                                            int shown, List<String> labels, boolean in, boolean bytes) {
        family(b, name, "counter", unit, help);
        for (int i = 0; i < shown; i++) {
            ConnectionCounters c = ranked[i].counters();
            String l = labels.get(i) + ",type=\"";
            for (int t : TYPES) {
                sample(b, name + "_total", l + TYPE_LABELS[t] + "\"", value(c, t, in, bytes));
            }
        }
    }

    /** Starts by outcome, the ones still running, and the start-duration histogram by result. */
    private static void activations(StringBuilder b, BusCounters bc) {
        family(b, "kdbus_activations_started", "counter", null, "Service starts the bus began (one per start)");
        sample(b, "kdbus_activations_started_total", "", bc.activationsStarted());
        family(b, "kdbus_activations", "counter", null, "Service starts that ended, by outcome");
        long ended = 0;
        for (BusCounters.Activation o : BusCounters.Activation.values()) {
            long n = bc.activations(o);
            ended += n;
            sample(b, "kdbus_activations_total", "outcome=\"" + o.name().toLowerCase() + "\"", n);
        }
        gauge(b, "kdbus_activations_running", null, "Service starts begun and not ended yet",
                bc.activationsStarted() - ended);
        String name = "kdbus_activation_start_seconds";
        family(b, name, "histogram", "seconds",
                "How long service starts took until the name was acquired (result=success) or the start failed");
        long[] bounds = BusCounters.ACTIVATION_BUCKET_NANOS;
        for (int r = 0; r < 2; r++) {
            boolean success = r == 0;
            String result = success ? "result=\"success\"" : "result=\"failure\"";
            long cumulative = 0;
            for (int i = 0; i <= bounds.length; i++) {
                cumulative += bc.activationBucket(success, i);
                b.append(name).append("_bucket{").append(result).append(",le=\"");
                if (i < bounds.length) {
                    seconds(b, bounds[i]);
                } else {
                    b.append("+Inf");
                }
                b.append("\"} ").append(cumulative).append('\n');
            }
            sample(b, name + "_count", result, cumulative);
            b.append(name).append("_sum{").append(result).append("} ");
            seconds(b, bc.activationNanos(success));
            b.append('\n');
        }
    }

    /** The loop's busy and total run time (busy / total: the busy fraction), if it keeps them. */
    private void loopTime(StringBuilder b) {
        if (loop == null) {
            return;
        }
        family(b, "kdbus_loop_busy_seconds", "counter", "seconds",
                "Time the bus's event loop spent handling events, tasks and timers (not waiting in epoll_wait)");
        b.append("kdbus_loop_busy_seconds_total ");
        seconds(b, loop.busyNanos());
        b.append('\n');
        family(b, "kdbus_loop_run_seconds", "counter", "seconds", "Time the bus's event loop has run, busy or waiting");
        b.append("kdbus_loop_run_seconds_total ");
        seconds(b, loop.runNanos());
        b.append('\n');
    }

    /** {@code nanos} as seconds, exactly ("1.5", "0.01", "25"): no float rounding, no trailing zeros. */
    static void seconds(StringBuilder b, long nanos) {
        b.append(nanos / 1_000_000_000L);
        long frac = nanos % 1_000_000_000L;
        if (frac == 0) {
            return;
        }
        String f = Long.toString(1_000_000_000L + frac).substring(1); // nine digits
        int end = f.length();
        while (f.charAt(end - 1) == '0') {
            end--;
        }
        b.append('.').append(f, 0, end);
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
