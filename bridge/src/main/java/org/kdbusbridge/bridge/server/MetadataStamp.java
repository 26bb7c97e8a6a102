package org.kdbusbridge.bridge.server;

import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.MessageFacts;

/**
 * The sender's side of AttachMetadata for one session: the credentials the kernel stamped on
 * the bytes of the read that completed the frame (SCM_CREDENTIALS), else the connect-time ones
 * (SO_PEERCRED, marked so), and the sender's /proc facts, cached.
 *
 * Staleness rule: the /proc facts are read the first time a message needs them and kept while
 * the send-time pid stays the same (and no further item is wanted); a process that execs or
 * changes its comm or cgroup under the same pid keeps its old facts until its pid changes.
 * Invariants: loop thread only; made only once somebody wants a sender item.
 */
final class MetadataStamp {
    private final SocketConnection socket;
    private final Connection conn;
    private SenderProcess cached;

    MetadataStamp(SocketConnection socket, Connection conn) {
        this.socket = socket;
        this.conn = conn;
    }

    /** The facts of the message being routed now, for the items in {@code wanted}. */
    MessageFacts stamp(int wanted) {
        MessageFacts f = new MessageFacts();
        long pid = socket.readPid();
        // pid 0: the bytes were queued before SO_PASSCRED was on (the kernel then reports pid 0
        // and the overflow uid/gid), so the connect-time facts stand in, marked as such.
        if (pid > 0) {
            f.setCreds(pid, socket.readUid(), socket.readGid(), true);
        } else {
            // SO_PASSCRED was not on for this read: the connect-time facts, marked as such.
            Credentials c = conn.credentials();
            pid = c == null ? -1 : c.pid();
            f.setCreds(pid, c == null ? -1 : c.uid(), c == null ? -1 : c.gid(), false);
        }
        int proc = wanted & SenderProcess.ITEMS;
        if (proc != 0 && pid > 0) {
            SenderProcess p = cached;
            if (p == null || p.pid() != pid || (p.items() & proc) != proc) {
                int items = p != null && p.pid() == pid ? proc | p.items() : proc;
                p = SenderProcess.read(pid, items, conn.peerDetails().securityLabel());
                cached = p;
            }
            f.setProcess(p);
        }
        return f;
    }
}
