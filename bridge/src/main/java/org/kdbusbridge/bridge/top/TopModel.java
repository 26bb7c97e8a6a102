package org.kdbusbridge.bridge.top;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code top} shows: per-connection and bus-wide rates from the last two snapshots, sorted
 * by the chosen key and narrowed by a filter. No terminal here, so it is tested on its own.
 */
public final class TopModel {

    /** Sort keys, each bound to the key that picks it. */
    public enum Sort {
        MESSAGES('m'), BYTES('b'), DROPS('d'), DENIALS('x'), QUEUE('Q'), NAME('n');

        final char key;

        Sort(char key) {
            this.key = key;
        }
    }

    /** A connection with its rates (per second; -1 when unknown: first reading, or no counters). */
    public record Row(Snapshot.Conn conn, double msgRate, double byteRate) {
    }

    private Snapshot previous;
    private Snapshot current;
    private Sort sort = Sort.MESSAGES;
    private String filter = "";

    /** Readings in a row that got no answer (0: the last one did). */
    private int unanswered;

    public void update(Snapshot s) {
        previous = current;
        current = s;
        unanswered = 0;
    }

    /** A reading's result: the snapshot, or null when the bus did not answer in time. */
    public void answered(Snapshot s) {
        if (s == null) {
            unanswered++;
        } else {
            update(s);
        }
    }

    /** Readings in a row the bus did not answer; the screen says so over the last good one. */
    public int unanswered() {
        return unanswered;
    }

    public void sortBy(Sort s) {
        sort = s;
    }

    public Sort sort() {
        return sort;
    }

    /** Case-insensitive substring of unique name, names or comm; empty shows all. */
    public void filter(String f) {
        filter = f == null ? "" : f.toLowerCase(Locale.ROOT);
    }

    public String filterText() {
        return filter;
    }

    public Snapshot current() {
        return current;
    }

    /** The sort key bound to {@code c}, or null. */
    public static Sort sortForKey(char c) {
        for (Sort s : Sort.values()) {
            if (s.key == c) return s;
        }
        return null;
    }

    private double seconds() {
        if (previous == null) return 0;
        return (current.nanos() - previous.nanos()) / 1e9;
    }

    private static double rate(long now, long before, double secs) {
        if (now < 0 || before < 0 || secs <= 0) return -1;
        return Math.max(0, now - before) / secs;
    }

    /** Bus-wide messages/s, -1 if unknown. */
    public double busMsgRate() {
        return current == null || previous == null ? -1
                : rate(current.busMessages(), previous.busMessages(), seconds());
    }

    /** Bus-wide bytes/s, -1 if unknown. */
    public double busByteRate() {
        return current == null || previous == null ? -1 : rate(current.busBytes(), previous.busBytes(), seconds());
    }

    public List<Row> rows() {
        List<Row> out = new ArrayList<>();
        if (current == null) return out;
        Map<String, Snapshot.Conn> before = new HashMap<>();
        if (previous != null) {
            for (Snapshot.Conn c : previous.conns()) before.put(c.unique(), c);
        }
        double secs = seconds();
        for (Snapshot.Conn c : current.conns()) {
            if (!matches(c)) continue;
            Snapshot.Conn b = before.get(c.unique());
            // A connection new since the last reading started from zero.
            long bm = b == null ? (previous == null ? -1 : 0) : b.messages();
            long bb = b == null ? (previous == null ? -1 : 0) : b.bytes();
            out.add(new Row(c, rate(c.messages(), bm, secs), rate(c.bytes(), bb, secs)));
        }
        out.sort(comparator());
        return out;
    }

    private boolean matches(Snapshot.Conn c) {
        if (filter.isEmpty()) return true;
        return c.unique().toLowerCase(Locale.ROOT).contains(filter)
                || c.names().toLowerCase(Locale.ROOT).contains(filter)
                || c.comm().toLowerCase(Locale.ROOT).contains(filter);
    }

    private Comparator<Row> comparator() {
        // ":1.9" before ":1.10": the shorter unique name is the older connection.
        Comparator<Row> byName = Comparator.<Row>comparingInt(r -> r.conn().unique().length())
                .thenComparing(r -> r.conn().unique());
        Comparator<Row> key = switch (sort) {
            // Rates first; before two readings exist, the cumulative count stands in.
            case MESSAGES -> Comparator.<Row>comparingDouble(Row::msgRate)
                    .thenComparingLong(r -> r.conn().messages()).reversed();
            case BYTES -> Comparator.<Row>comparingDouble(Row::byteRate)
                    .thenComparingLong(r -> r.conn().bytes()).reversed();
            case DROPS -> Comparator.<Row>comparingLong(r -> r.conn().drops()).reversed();
            case DENIALS -> Comparator.<Row>comparingLong(r -> r.conn().denials()).reversed();
            case QUEUE -> Comparator.<Row>comparingLong(r -> r.conn().queueBytes()).reversed();
            case NAME -> byName;
        };
        return key.thenComparing(byName);
    }
}
