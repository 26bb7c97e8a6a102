package org.kdbusbridge.bridge.top;

import java.io.IOException;
import java.io.PrintWriter;
import java.util.List;

import org.jline.terminal.Attributes;
import org.jline.terminal.Terminal;
import org.jline.terminal.TerminalBuilder;
import org.jline.utils.NonBlockingReader;

/**
 * {@code kdbus-bridge top [--metrics=unix:path=P] [--address=BUS] [--interval-ms=N]}: the live
 * view. JLine gives raw mode, size and keys; the screen is plain ANSI. Only this subcommand
 * loads JLine, so the bus's start-up never does.
 */
public final class TopCommand {

    private TopCommand() {
    }

    public static int run(String[] args) {
        String metrics = null; // unix:path=PATH or http://127.0.0.1:PORT
        String address = null;
        long interval = 1000;
        for (String a : args) {
            if (a.startsWith("--metrics=")) metrics = a.substring("--metrics=".length());
            else if (a.startsWith("--address=")) address = a.substring("--address=".length());
            else if (a.startsWith("--interval-ms=")) interval = Long.parseLong(a.substring("--interval-ms=".length()));
            else {
                System.err.println("usage: kdbus-bridge top [--metrics=unix:path=PATH|http://127.0.0.1:PORT] [--address=BUSADDR]"
                        + " [--interval-ms=1000]");
                return 64;
            }
        }
        if (metrics == null && address == null) address = System.getenv("DBUS_SESSION_BUS_ADDRESS");
        if (metrics == null && address == null) {
            System.err.println("kdbus-bridge top: give --metrics=unix:path=PATH or --address=BUSADDR");
            return 64;
        }
        try (MetricsSource m = metrics == null ? null : new MetricsSource(metrics);
             StatsSource s = address == null ? null : new StatsSource(address)) {
            return loop(m, s, metrics != null ? metrics : address, interval);
        } catch (IOException e) {
            System.err.println("kdbus-bridge top: " + e.getMessage());
            return 1;
        }
    }

    private static int loop(MetricsSource metrics, StatsSource stats, String label, long interval) throws IOException {
        TopModel model = new TopModel();
        try (Terminal t = TerminalBuilder.builder().system(true).build()) {
            Attributes saved = t.enterRawMode();
            PrintWriter w = t.writer();
            w.print("\033[?1049h\033[?25l"); // alternate screen, no cursor
            try {
                NonBlockingReader in = t.reader();
                StringBuilder prompt = null; // non-null while typing a filter
                long next = 0;
                while (true) {
                    long now = System.nanoTime();
                    if (now >= next) {
                        model.answered(read(metrics, stats));
                        next = System.nanoTime() + interval * 1_000_000;
                    }
                    draw(w, model, label, prompt, t.getWidth(), t.getHeight());
                    int c = in.read(Math.max(1, (next - System.nanoTime()) / 1_000_000));
                    if (c == NonBlockingReader.READ_EXPIRED) continue;
                    if (c < 0) return 0;
                    if (prompt != null) {
                        if (c == '\r' || c == '\n') {
                            prompt = null;
                        } else if (c == 27) { // Esc: no filter
                            prompt = null;
                            model.filter("");
                        } else if (c == 127 || c == 8) {
                            if (prompt.length() > 0) prompt.setLength(prompt.length() - 1);
                            model.filter(prompt.toString());
                        } else if (c >= ' ') {
                            prompt.append((char) c);
                            model.filter(prompt.toString());
                        }
                    } else if (c == 'q' || c == 3) {
                        return 0;
                    } else if (c == '/') {
                        prompt = new StringBuilder();
                        model.filter("");
                    } else {
                        TopModel.Sort s = TopModel.sortForKey((char) c);
                        if (s != null) model.sortBy(s);
                    }
                }
            } finally {
                w.print("\033[?25h\033[?1049l");
                w.flush();
                t.setAttributes(saved);
            }
        }
    }

    /**
     * One reading, or null if the bus gave none in time (or the source failed): the screen then
     * says "no answer" over the last reading, and the next tick tries again.
     */
    private static Snapshot read(MetricsSource metrics, StatsSource stats) {
        try {
            Snapshot snap = metrics != null ? metrics.read() : stats.read();
            if (metrics != null && stats != null) snap = stats.withPids(snap);
            return snap;
        } catch (IOException e) {
            return null;
        }
    }

    private static void draw(PrintWriter w, TopModel m, String label, StringBuilder prompt, int width, int height) {
        width = width > 0 ? width : 80;
        height = height > 0 ? height : 24;
        List<String> lines = TopScreen.render(m, label, prompt == null ? null : prompt.toString(), width, height);
        StringBuilder b = new StringBuilder("\033[H");
        for (String l : lines) b.append(l).append("\033[K\r\n");
        b.append("\033[J");
        w.print(b);
        w.flush();
    }
}
