package org.kdbusbridge.bridge.handover;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.bridge.transport.LibC;

/**
 * The FDS section: every fd that crosses the hand-over, once, by index. The number is the fd
 * itself (execve, and a restore in the same process, keep fd numbers); the link target
 * ({@code readlink /proc/self/fd/N}) lets the reader check that the fd is still what it was.
 */
public final class FdTable {
    /** What an fd is for. */
    public enum Kind {
        LISTENER, CLIENT, PEER_PIDFD,
        /**
         * A unix fd of a queued message (its receivers get it after the hand-over), also one
         * received ahead of its frame or riding on a session's first committed byte (step 5).
         */
        MESSAGE,
        /** A sender's pidfd queued messages hold for AttachMetadata (shared by those messages). */
        SENDER_PIDFD;
    }

    public record Entry(int fd, Kind kind, String link) {
    }

    private final List<Entry> entries = new ArrayList<>();

    /** Adds {@code fd} (its link target read now); returns its index. */
    public int add(int fd, Kind kind) {
        entries.add(new Entry(fd, kind, linkOf(fd)));
        return entries.size() - 1;
    }

    public List<Entry> entries() {
        return List.copyOf(entries);
    }

    /** The fd's link target, or "" if it cannot be read. */
    static String linkOf(int fd) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
        } catch (IOException | UnsupportedOperationException e) {
            return "";
        }
    }

    /**
     * R1: each entry is an open fd of this process with the same link target (the same socket
     * inode); the reasons it is not, empty if every one checks out.
     */
    public static List<String> check(List<Entry> entries) {
        List<String> bad = new ArrayList<>();
        for (int i = 0; i < entries.size(); i++) {
            Entry e = entries.get(i);
            if (LibC.INSTANCE.fcntl(e.fd(), LibC.F_GETFD, 0) < 0) {
                bad.add("fd " + e.fd() + " (" + e.kind() + ", index " + i + ") is not open");
                continue;
            }
            String now = linkOf(e.fd());
            if (!now.equals(e.link())) {
                bad.add("fd " + e.fd() + " (" + e.kind() + ") is " + now + ", the snapshot says " + e.link());
            }
        }
        return bad;
    }
}
