package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.kdbusbridge.core.message.MessageFacts;

/**
 * A sending process's facts from /proc (AttachMetadata's groups, comm, exe, cmdline, cgroup)
 * and its connection's security label, as read once for one pid and send-time uid.
 *
 * Invariants: immutable, so messages admitted while it was current share it and keep it after
 * a refresh replaced it; {@code items} says which items were asked for (an item that could not
 * be read, or that belongs to another process, is null, and then absent from the field); the
 * /proc items are only ever read for send-time credentials and kept only if the process's real
 * uid (the status file's {@code Uid:} line) is the uid the kernel stamped on the bytes, so a pid
 * reused by another user's process gives nothing. Every file is read with a bound (cmdline at
 * most {@link #CMDLINE_MAX} bytes, the rest cut where noted), on the loop thread: procfs files
 * are generated in memory, a read does not block on a disk.
 */
record SenderProcess(long pid, long uid, int items, long[] groups, byte[] comm, byte[] exe, byte[] cmdline,
                     byte[] cgroup, byte[] seclabel) {
    /** The items this class provides. */
    static final int ITEMS = MessageFacts.GROUPS | MessageFacts.COMM | MessageFacts.EXE | MessageFacts.CMDLINE
            | MessageFacts.CGROUP | MessageFacts.SECLABEL;
    /** The items read from /proc (all but the connection's label). */
    static final int PROC_ITEMS = ITEMS & ~MessageFacts.SECLABEL;
    /** At most this much of /proc/PID/cmdline is attached (the first bytes; documented truncation). */
    static final int CMDLINE_MAX = 4096;
    /** Bounds for the other files: comm is at most 16 bytes, status and cgroup a few KiB in practice. */
    private static final int COMM_MAX = 64;
    private static final int STATUS_MAX = 64 * 1024;
    private static final int CGROUP_MAX = 4096;

    /**
     * Reads {@code items} (a mask of {@link #ITEMS}) of process {@code pid} under {@code procRoot}
     * (/proc; a test may point it elsewhere), whose bytes the kernel said uid {@code uid} wrote;
     * {@code label} is the connection's. The /proc items stay null unless the process's real uid
     * is {@code uid}.
     */
    static SenderProcess read(Path procRoot, long pid, long uid, int items, byte[] label) {
        byte[] seclabel = (items & MessageFacts.SECLABEL) != 0 ? label : null;
        if ((items & PROC_ITEMS) == 0 || pid <= 0) {
            return new SenderProcess(pid, uid, items, null, null, null, null, null, seclabel);
        }
        Path dir = procRoot.resolve(Long.toString(pid));
        byte[] statusBytes = bytes(dir.resolve("status"), STATUS_MAX);
        String status = statusBytes == null ? null : new String(statusBytes, StandardCharsets.UTF_8);
        if (status == null || realUid(status) != uid) {
            // Gone, or another user's process under the pid: none of its facts.
            return new SenderProcess(pid, uid, items, null, null, null, null, null, seclabel);
        }
        long[] groups = (items & MessageFacts.GROUPS) != 0 ? groups(status) : null;
        byte[] comm = (items & MessageFacts.COMM) != 0 ? trimNewline(bytes(dir.resolve("comm"), COMM_MAX)) : null;
        byte[] exe = null;
        if ((items & MessageFacts.EXE) != 0) {
            try {
                exe = Files.readSymbolicLink(dir.resolve("exe")).toString().getBytes(StandardCharsets.UTF_8);
            } catch (IOException | UnsupportedOperationException | SecurityException e) {
                exe = null; // gone, or a kernel thread
            }
        }
        byte[] cmdline = (items & MessageFacts.CMDLINE) != 0 ? bytes(dir.resolve("cmdline"), CMDLINE_MAX) : null;
        byte[] cgroup = (items & MessageFacts.CGROUP) != 0 ? cgroup(dir) : null;
        return new SenderProcess(pid, uid, items, groups, comm, exe, cmdline, cgroup, seclabel);
    }

    /**
     * {@link #realUidOf}'s answer when the status file could not be read: the process may be
     * gone, or the bus short of fds (EMFILE) or memory; the caller tells which (a pidfd does).
     */
    static final long UNREADABLE = -2;

    /**
     * The real uid of process {@code pid} under {@code procRoot}, -1 if its status has no Uid
     * line, {@link #UNREADABLE} if it could not be read.
     */
    static long realUidOf(Path procRoot, long pid) {
        byte[] status = bytes(procRoot.resolve(Long.toString(pid)).resolve("status"), STATUS_MAX);
        return status == null ? UNREADABLE : realUid(new String(status, StandardCharsets.UTF_8));
    }

    /** At most {@code max} bytes of {@code p}, or null if it cannot be read. */
    private static byte[] bytes(Path p, int max) {
        try (InputStream in = Files.newInputStream(p)) {
            return in.readNBytes(max);
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

    /** The real uid (the first of the "Uid:" line's four), or -1 if there is none. */
    static long realUid(String status) {
        String line = line(status, "Uid:");
        if (line == null) {
            return -1;
        }
        String[] parts = line.trim().split("\\s+");
        try {
            return parts.length == 0 ? -1 : Long.parseLong(parts[0]);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** The rest of the complete line starting with {@code key}, or null (absent, or cut by the read bound). */
    private static String line(String status, String key) {
        int at = status.startsWith(key) ? 0 : status.indexOf("\n" + key);
        if (at < 0) {
            return null;
        }
        int start = at == 0 ? key.length() : at + 1 + key.length();
        int end = status.indexOf('\n', start);
        return end < 0 ? null : status.substring(start, end);
    }

    /** The "Groups:" line of /proc/PID/status (supplementary gids). */
    private static long[] groups(String status) {
        String line = line(status, "Groups:");
        if (line == null) {
            return null;
        }
        String rest = line.trim();
        if (rest.isEmpty()) {
            return new long[0];
        }
        String[] parts = rest.split("\\s+");
        long[] g = new long[parts.length];
        try {
            for (int i = 0; i < parts.length; i++) {
                g[i] = Long.parseLong(parts[i]);
            }
        } catch (NumberFormatException e) {
            return null;
        }
        return g;
    }

    /**
     * The unified (cgroup v2) path: the "0::" line of /proc/PID/cgroup; on a v1-only system the
     * whole file (one "id:controllers:path" line per hierarchy; its first CGROUP_MAX bytes),
     * without the last newline.
     */
    private static byte[] cgroup(Path dir) {
        byte[] all = bytes(dir.resolve("cgroup"), CGROUP_MAX);
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
