// Invariants: exit status 0 = the bus answered as recorded, 1 = it differed, 2 = could not run;
// without --address the replay runs against a fresh kdbus-bridge child process
// (BusLauncher.ours) that is stopped before returning.
package org.kdbusbridge.bridge.migration;

import org.kdbusbridge.bridge.client.BusMessage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** {@code kdbus-bridge replay FILE [--address ADDR]}. */
public final class ReplayCommand {
    static final String USAGE = "kdbus-bridge replay FILE [--address ADDR] [--allow-list=FILE] [--timeout=SECONDS] [--verbose]\n"
            + "  Replays the client messages of a capture (busctl capture, dbus-monitor --pcap, --kdbus-capture) against a bus"
            + " (default: a fresh kdbus-bridge started from this class path) and compares the bus's answers with the recording.\n"
            + "  Exit status: 0 same, 1 different, 2 could not run.";

    private ReplayCommand() { }

    public static int run(String[] argv) {
        String file = null;
        String address = null;
        Path allowFile = null;
        Duration timeout = Duration.ofSeconds(10);
        boolean verbose = false;
        try {
            for (int i = 0; i < argv.length; i++) {
                String a = argv[i];
                if (a.equals("--address") && i + 1 < argv.length) {
                    address = argv[++i];
                } else if (a.startsWith("--address=")) {
                    address = a.substring(10);
                } else if (a.startsWith("--allow-list=")) {
                    allowFile = Path.of(a.substring(13));
                } else if (a.startsWith("--timeout=")) {
                    timeout = Duration.ofMillis((long) (Double.parseDouble(a.substring(10)) * 1000));
                } else if (a.equals("--verbose") || a.equals("-v")) {
                    verbose = true;
                } else if (a.equals("--help") || a.equals("-h")) {
                    System.out.println(USAGE);
                    return 0;
                } else if (!a.startsWith("-") && file == null) {
                    file = a;
                } else {
                    throw new IllegalArgumentException("unexpected argument " + a);
                }
            }
            if (file == null) throw new IllegalArgumentException("no capture file given");
        } catch (RuntimeException e) {
            System.err.println("kdbus-bridge replay: " + e.getMessage());
            System.err.println(USAGE);
            return DiffCommand.CANNOT_RUN;
        }
        BusLauncher.RunningBus bus = null;
        try {
            CaptureReader.Capture cap = CaptureReader.read(Path.of(file));
            List<String> notes = new ArrayList<>();
            List<BusMessage> recording = Replayer.decodeAll(cap.messages(), notes);
            if (cap.truncated() > 0) notes.add(cap.truncated() + " truncated packet(s) skipped");
            if (address == null) {
                bus = BusLauncher.ours().start(Files.createTempDirectory("kdbus-replay-"));
                address = bus.address();
            }
            AllowList allow = allowFile != null ? AllowList.load(allowFile) : AllowList.standard();
            Replayer.Result r = new Replayer(allow, timeout).replay(recording, address);
            notes.addAll(r.notes());
            if (verbose) {
                System.out.println("=== recorded (" + r.recorded().messageCount() + " messages) ===");
                System.out.print(r.recorded().render());
                System.out.println("=== replayed (" + r.replayed().messageCount() + " messages) ===");
                System.out.print(r.replayed().render());
            }
            System.out.println("replayed " + r.sent() + " client message(s) from " + cap.format() + " " + file);
            for (String n : notes) System.out.println("note: " + n);
            System.out.print(r.report().render().replace("dbus-daemon", "recorded").replace("kdbus-bridge:", "replayed:"));
            return r.matches() ? DiffCommand.SAME : DiffCommand.DIFFERENT;
        } catch (Exception e) {
            System.err.println("kdbus-bridge replay: could not run: " + e);
            return DiffCommand.CANNOT_RUN;
        } finally {
            if (bus != null) bus.close();
        }
    }
}
