package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.kdbusbridge.core.message.MessageFacts;

/**
 * A sending process's facts from /proc (AttachMetadata's groups, comm, exe, cmdline, cgroup)
 * and its connection's security label, as read once for one pid.
 *
 * Invariants: immutable, so messages admitted while it was current share it and keep it after
 * a refresh replaced it; {@code items} says which items were read (an item that could not be
 * read is null, and then absent from the field); read on the loop thread (small procfs files,
 * no blocking I/O beyond procfs itself).
 */
record SenderProcess(long pid, int items, long[] groups, byte[] comm, byte[] exe, byte[] cmdline, byte[] cgroup,
                     byte[] seclabel) {
    /** The items this class provides. */
    static final int ITEMS = MessageFacts.GROUPS | MessageFacts.COMM | MessageFacts.EXE | MessageFacts.CMDLINE
            | MessageFacts.CGROUP | MessageFacts.SECLABEL;

    /** Reads {@code items} (a mask of {@link #ITEMS}) of process {@code pid}; {@code label} is the connection's. */
    static SenderProcess read(long pid, int items, byte[] label) {
        Path dir = Path.of("/proc", Long.toString(pid));
        long[] groups = (items & MessageFacts.GROUPS) != 0 ? groups(dir) : null;
        byte[] comm = (items & MessageFacts.COMM) != 0 ? trimNewline(bytes(dir.resolve("comm"))) : null;
        byte[] exe = null;
        if ((items & MessageFacts.EXE) != 0) {
            try {
                exe = Files.readSymbolicLink(dir.resolve("exe")).toString().getBytes(StandardCharsets.UTF_8);
            } catch (IOException | UnsupportedOperationException | SecurityException e) {
                exe = null; // gone, or a kernel thread
            }
        }
        byte[] cmdline = (items & MessageFacts.CMDLINE) != 0 ? bytes(dir.resolve("cmdline")) : null;
        byte[] cgroup = (items & MessageFacts.CGROUP) != 0 ? cgroup(dir) : null;
        byte[] seclabel = (items & MessageFacts.SECLABEL) != 0 ? label : null;
        return new SenderProcess(pid, items, groups, comm, exe, cmdline, cgroup, seclabel);
    }

    private static byte[] bytes(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (IOException | SecurityException e) {
            return null;
        }
    }

    private static byte[] trimNewline(byte[] b) {
        if (b == null || b.length == 0 || b[b.length - 1] != '\n') {
            return b;
        }
        return java.util.Arrays.copyOf(b, b.length - 1);
    }

    /** The "Groups:" line of /proc/PID/status (supplementary gids). */
    private static long[] groups(Path dir) {
        byte[] status = bytes(dir.resolve("status"));
        if (status == null) {
            return null;
        }
        for (String line : new String(status, StandardCharsets.UTF_8).split("\n")) {
            if (line.startsWith("Groups:")) {
                String rest = line.substring(7).trim();
                if (rest.isEmpty()) {
                    return new long[0];
                }
                String[] parts = rest.split("\\s+");
                long[] g = new long[parts.length];
                for (int i = 0; i < parts.length; i++) {
                    g[i] = Long.parseLong(parts[i]);
                }
                return g;
            }
        }
        return null;
    }

    /**
     * The unified (cgroup v2) path: the "0::" line of /proc/PID/cgroup; on a v1-only system the
     * whole file (one "id:controllers:path" line per hierarchy), without the last newline.
     */
    private static byte[] cgroup(Path dir) {
        byte[] all = bytes(dir.resolve("cgroup"));
        if (all == null) {
            return null;
        }
        String text = new String(all, StandardCharsets.UTF_8);
        for (String line : text.split("\n")) {
            if (line.startsWith("0::")) {
                return line.substring(3).getBytes(StandardCharsets.UTF_8);
            }
        }
        return trimNewline(all);
    }
}
