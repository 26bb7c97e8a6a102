package org.kdbusbridge.bridge.top;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Draws the model as plain text lines cut to the terminal's size: header, column titles, one
 * row per connection. The caller adds the ANSI home/clear codes; no terminal here.
 */
public final class TopScreen {

    private TopScreen() {
    }

    public static List<String> render(TopModel m, String source, String prompt, int width, int height) {
        List<String> lines = new ArrayList<>();
        Snapshot s = m.current();
        int n = s == null ? 0 : s.conns().size();
        lines.add(cut(String.format(Locale.ROOT, "kdbus-bridge top - %s - %d connections - bus %s msg/s, %s B/s - sort: %s%s",
                source, n, num(m.busMsgRate()), num(m.busByteRate()), m.sort().name().toLowerCase(Locale.ROOT),
                m.filterText().isEmpty() ? "" : " - filter: " + m.filterText()), width));
        String note = s == null ? "" : s.note();
        if (m.unanswered() > 0) {
            note = "no answer from the bus (" + m.unanswered() + (m.unanswered() == 1 ? " reading" : " readings")
                    + ")" + (note.isEmpty() ? "" : " - " + note);
        }
        lines.add(cut(prompt != null ? "/" + prompt
                : (note.isEmpty() ? "" : note + " - ") + "keys: m msgs, b bytes, d drops, x denials, Q queue, n name, / filter, q quit",
                width));
        lines.add(cut(String.format(Locale.ROOT, "%-12s %9s %10s %9s %7s %7s %7s %-15s %s", "UNIQUE", "MSG/S", "B/S",
                "QUEUE", "DROPS", "DENIED", "PID", "COMM", "NAMES"), width));
        for (TopModel.Row r : m.rows()) {
            if (lines.size() >= height - 1) break;
            Snapshot.Conn c = r.conn();
            lines.add(cut(String.format(Locale.ROOT, "%-12s %9s %10s %9s %7s %7s %7s %-15s %s", c.unique(),
                    num(r.msgRate()), num(r.byteRate()), num(c.queueBytes()), num(c.drops()), num(c.denials()),
                    c.pid() < 0 ? "-" : Long.toString(c.pid()), cut(c.comm(), 15), c.names()), width));
        }
        return lines;
    }

    private static String num(double v) {
        if (v < 0) return "-";
        if (v >= 10_000_000) return String.format(Locale.ROOT, "%.1fM", v / 1e6);
        if (v >= 100_000) return String.format(Locale.ROOT, "%.0fk", v / 1e3);
        return String.format(Locale.ROOT, "%.0f", v);
    }

    private static String num(long v) {
        return v < 0 ? "-" : num((double) v);
    }

    private static String cut(String s, int width) {
        return s.length() <= width ? s : s.substring(0, Math.max(0, width));
    }
}
