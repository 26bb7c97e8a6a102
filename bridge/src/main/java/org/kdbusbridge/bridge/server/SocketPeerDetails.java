package org.kdbusbridge.bridge.server;

import java.util.Arrays;
import java.util.function.LongFunction;

import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.core.connection.PeerDetails;
import org.kdbusbridge.core.message.FdSet;

/**
 * A client's groups, LSM label and pidfd, as GetConnectionCredentials reports them, from its
 * socket. Groups and label are read on first use (SO_PEERGROUPS, SO_PEERSEC: the kernel's
 * record from connect(), so reading late changes nothing) and kept; the pidfd was taken at
 * accept and belongs to the socket (closed with it). Groups are what dbus-daemon reports: the
 * supplementary gids plus the primary one if missing, ascending; without SO_PEERGROUPS the
 * uid's groups from the table read at config time.
 */
final class SocketPeerDetails implements PeerDetails {
    private static final java.util.function.IntConsumer CLOSE_FD = fd -> LibC.INSTANCE.close(fd);

    private final SocketConnection socket;
    private final LongFunction<long[]> groupsOfUid;
    private long[] groups;

    SocketPeerDetails(SocketConnection socket, LongFunction<long[]> groupsOfUid) {
        this.socket = socket;
        this.groupsOfUid = groupsOfUid;
    }

    @Override
    public long[] groups() {
        if (groups == null) {
            long[] g = socket.peerGroups();
            if (g != null) {
                g = withPrimary(g, socket.peer().gid() & 0xFFFFFFFFL);
            } else if (socket.peer().uid() >= 0) {
                g = groupsOfUid.apply(socket.peer().uid() & 0xFFFFFFFFL);
            }
            if (g == null || g.length == 0) {
                return null;
            }
            g = g.clone();
            Arrays.sort(g); // gids are below 2^32: a signed sort is the unsigned order
            groups = g;
        }
        return groups.clone();
    }

    /** dbus-daemon adds the primary gid from SO_PEERCRED unless the kernel's list has it. */
    static long[] withPrimary(long[] gids, long primary) {
        for (long g : gids) {
            if (g == primary) {
                return gids;
            }
        }
        long[] out = Arrays.copyOf(gids, gids.length + 1);
        out[gids.length] = primary;
        return out;
    }

    @Override
    public byte[] securityLabel() {
        byte[] l = socket.peerSecurityLabel();
        return l == null ? null : l.clone();
    }

    @Override
    public FdSet processFd() {
        int pidfd = socket.peerPidfd();
        if (pidfd < 0) {
            return null;
        }
        int dup = LibC.INSTANCE.fcntl(pidfd, LibC.F_DUPFD_CLOEXEC, 0); // the reply's own copy
        return dup < 0 ? null : new FdSet(new int[] {dup}, CLOSE_FD);
    }
}
