// Invariants: the record is an immutable snapshot of SO_PEERCRED taken when the connection was
// accepted (the credentials of the peer process at connect() time, as the kernel recorded
// them). The static readers ask the kernel for what it recorded at connect() beyond that
// (groups, LSM label, a pidfd); they never block, return null / -1 where the kernel has no
// answer, and allocate only a small buffer per call (they run once per connection at most).
package org.kdbusbridge.bridge.transport;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Peer process credentials of a unix socket connection. */
public record PeerCredentials(int pid, int uid, int gid) {
    private static final LibC LIBC = LibC.INSTANCE;

    /**
     * The peer's supplementary gids as the kernel recorded them at connect() (SO_PEERGROUPS),
     * or null where the kernel can't say (before Linux 4.13: ENOPROTOOPT).
     */
    public static long[] readGroups(int socketFd) {
        int room = 64;
        for (int attempt = 0; attempt < 3; attempt++) {
            ByteBuffer b = ByteBuffer.allocateDirect(8 + room * 4).order(ByteOrder.nativeOrder());
            long addr = LibC.Native.address(b);
            b.putInt(0, room * 4);
            if (LIBC.getsockopt(socketFd, LibC.SOL_SOCKET, LibC.SO_PEERGROUPS, addr + 8, addr) == 0) {
                int n = b.getInt(0) / 4;
                long[] gids = new long[n];
                for (int i = 0; i < n; i++) {
                    gids[i] = b.getInt(8 + 4 * i) & 0xFFFFFFFFL;
                }
                return gids;
            }
            if (LibC.Native.errno() != LibC.ERANGE) {
                return null;
            }
            room = Math.max(room * 2, b.getInt(0) / 4); // the kernel said how much it needs
        }
        return null;
    }

    /**
     * The peer's LSM label (SO_PEERSEC) without a trailing NUL, or null where there is none
     * (ENOPROTOOPT: no LSM labels sockets; or an empty label).
     */
    public static byte[] readSecurityLabel(int socketFd) {
        int room = 256;
        for (int attempt = 0; attempt < 3; attempt++) {
            ByteBuffer b = ByteBuffer.allocateDirect(8 + room).order(ByteOrder.nativeOrder());
            long addr = LibC.Native.address(b);
            b.putInt(0, room);
            if (LIBC.getsockopt(socketFd, LibC.SOL_SOCKET, LibC.SO_PEERSEC, addr + 8, addr) == 0) {
                int n = Math.min(b.getInt(0), room);
                int len = 0;
                while (len < n && b.get(8 + len) != 0) {
                    len++; // a C string: up to the first NUL, as dbus-daemon reads it
                }
                if (len == 0) {
                    return null;
                }
                byte[] label = new byte[len];
                b.get(8, label);
                return label;
            }
            if (LibC.Native.errno() != LibC.ERANGE) {
                return null;
            }
            room = Math.max(room * 2, b.getInt(0));
        }
        return null;
    }

    /**
     * SO_PEERPIDFD: a pidfd (O_CLOEXEC) of the process that called connect(). The socket holds
     * the kernel's reference to that process, not its number, so asking late is as safe against
     * pid reuse as asking at accept. Returns the fd, or minus errno (ENOPROTOOPT: the kernel
     * predates Linux 6.5). {@code scratch}: 8 direct bytes the caller owns.
     */
    public static int peerPidfd(int socketFd, ByteBuffer scratch, long scratchAddr) {
        scratch.putInt(4, 4);
        if (LIBC.getsockopt(socketFd, LibC.SOL_SOCKET, LibC.SO_PEERPIDFD, scratchAddr, scratchAddr + 4) == 0) {
            return scratch.getInt(0);
        }
        return -LibC.Native.errno();
    }

    /** {@link #peerPidfd(int, ByteBuffer, long)} with a buffer of its own (the rare, lazy path). */
    public static int peerPidfd(int socketFd) {
        ByteBuffer b = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        return peerPidfd(socketFd, b, LibC.Native.address(b));
    }

    /**
     * The fallback for kernels without SO_PEERPIDFD, to be called at accept time, while the
     * pid is fresh: pidfd_open(pid), kept only if /proc/self/fdinfo says it refers to a live
     * process with that pid. -1 if that fails (pidfd_open before Linux 5.3, fd exhaustion, the
     * peer already gone): no pidfd rather than no connection.
     */
    public static int openPidfd(int pid) {
        if (pid <= 0) {
            return -1;
        }
        int fd = (int) LIBC.syscall(LibC.SYS_PIDFD_OPEN, pid, 0); // O_CLOEXEC by definition
        if (fd < 0) {
            return -1;
        }
        if (pidOfPidfd(fd) != pid) { // exited (-1), or not in our pid namespace (0)
            LIBC.close(fd);
            return -1;
        }
        return fd;
    }

    /**
     * {@link #pidOfPidfd}'s answer when the fdinfo could not be read at all (EMFILE, ENOMEM, ...):
     * it says nothing about the process, unlike 0 (not in our pid namespace) and -1 (gone).
     */
    public static final long PIDFD_UNREADABLE = -2;

    /**
     * The "Pid:" line of a pidfd's fdinfo: its pid, -1 once the process is gone, 0 if unknown
     * (no such line, or the process is outside our pid namespace), {@link #PIDFD_UNREADABLE} if
     * the fdinfo could not be read.
     */
    public static long pidOfPidfd(int pidfd) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + pidfd), StandardCharsets.US_ASCII)) {
                if (line.startsWith("Pid:")) {
                    return Long.parseLong(line.substring(4).trim());
                }
            }
        } catch (java.io.IOException | SecurityException e) {
            return PIDFD_UNREADABLE;
        } catch (NumberFormatException e) {
            return 0;
        }
        return 0;
    }
}
