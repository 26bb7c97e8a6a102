// Invariants: exit status 0 = page written, 2 = usage error or unreadable capture; the page is
// written to a temporary file beside OUT and moved into place, so OUT is never half-written.
package org.kdbusbridge.bridge.draw;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

import org.kdbusbridge.bridge.migration.CaptureReader;

/** {@code kdbus-bridge draw CAPTURE [-o OUT.html]}. */
public final class DrawCommand {
    static final String USAGE = "kdbus-bridge draw CAPTURE [-o OUT.html]\n"
            + "  Draws a capture (--kdbus-capture, busctl capture, dbus-monitor --pcap) as a sequence diagram in one"
            + " self-contained HTML page (default OUT: CAPTURE with .html appended).";

    private DrawCommand() { }

    public static int run(String[] argv) {
        String file = null;
        String out = null;
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            if ((a.equals("-o") || a.equals("--output")) && i + 1 < argv.length) {
                out = argv[++i];
            } else if (a.startsWith("--output=")) {
                out = a.substring(9);
            } else if (a.equals("--help") || a.equals("-h")) {
                System.out.println(USAGE);
                return 0;
            } else if (!a.startsWith("-") && file == null) {
                file = a;
            } else {
                System.err.println("kdbus-bridge draw: unexpected argument " + a);
                System.err.println(USAGE);
                return 2;
            }
        }
        if (file == null) {
            System.err.println("kdbus-bridge draw: no capture file given");
            System.err.println(USAGE);
            return 2;
        }
        Path in = Path.of(file);
        Path target = Path.of(out != null ? out : file + ".html");
        try {
            byte[] data = Files.readAllBytes(in);
            CaptureReader.Capture cap = CaptureReader.parse(data);
            long[] times = CaptureClock.times(data);
            if (times != null && times.length != cap.messages().size()) times = null;
            SequenceModel m = SequenceModel.build(cap.messages(), times);
            m.truncated = cap.truncated();
            String page = HtmlRenderer.render(m, "D-Bus capture " + in.getFileName());
            Path abs = target.toAbsolutePath();
            // Not createTempFile: its 0600 mode would stay on the page; this one gets the umask's.
            Path tmp = abs.resolveSibling("." + abs.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
            Files.deleteIfExists(tmp); // left by a killed run of a process with our pid
            try {
                Files.writeString(tmp, page, StandardCharsets.UTF_8, StandardOpenOption.CREATE_NEW,
                        StandardOpenOption.WRITE);
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(tmp);
            }
            System.out.println("drew " + m.messages.size() + " message(s), " + m.peers.size() + " peer(s) from "
                    + cap.format() + " " + file + " to " + target
                    + (m.notDrawn > 0 ? " (" + m.notDrawn + " more not drawn: limit " + SequenceModel.MAX_MESSAGES + ")" : "")
                    + (cap.truncated() > 0 ? "; " + cap.truncated() + " truncated packet(s) skipped" : "")
                    + (m.undecodable > 0 ? "; " + m.undecodable + " undecodable packet(s) skipped" : ""));
            return 0;
        } catch (Exception e) {
            System.err.println("kdbus-bridge draw: " + file + ": "
                    + (e instanceof java.nio.file.NoSuchFileException ? "no such file" : e.getMessage()));
            return 2;
        }
    }
}
