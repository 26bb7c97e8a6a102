package org.kdbusbridge.bridge.server;

import java.nio.file.Path;

import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.MessageFacts;

/**
 * The sender's side of AttachMetadata for one session: the credentials the kernel stamped on
 * the bytes of the frame (SCM_CREDENTIALS; every read of the frame had the same ones), else the
 * connect-time ones (SO_PEERCRED, marked so), and the sender's /proc facts, cached.
 *
 * Which /proc facts: only those of a send-time pid (a connect-time pid may be long gone, or
 * reused by another process), and only if that process's real uid is the send-time uid
 * ({@link SenderProcess#read}); otherwise the /proc items are left out, the label stays.
 *
 * Staleness rule: the /proc facts are read the first time a message of a (pid, uid) needs them
 * and kept in a tiny LRU of {@link #CACHED} entries per connection while that pid and uid keep
 * writing (and no further item is wanted), so a parent and its forked child writing in turn on
 * one socket do not read /proc per message; a process that execs or changes its comm or cgroup
 * under the same pid keeps its old facts until its entry is pushed out.
 * The {@code pidfd} item: a pidfd of the writer from {@link SenderPidfds} (one per process,
 * cached and bounded there), only on the facts of a routed message ({@link #stamp(int, boolean)}),
 * which then hold a reference until its sender and its queues let it go; like the /proc facts,
 * only for send-time creds (never for connect-time or mixed ones).
 *
 * Invariants: loop thread only (the reads are bounded reads of small procfs files); made only
 * once somebody wants a sender item; {@code lru[0..size)} most recent first, distinct (pid, uid).
 */
final class MetadataStamp {
    /** How many (pid, uid) entries a connection keeps. */
    static final int CACHED = 4;
    private static final Path PROC = Path.of("/proc");

    private final SocketConnection socket;
    private final Connection conn;
    private final Path procRoot;
    private final SenderProcess[] lru = new SenderProcess[CACHED];
    private int size;
    /** The label-only facts of the connection (for connect-time creds), made once when first wanted. */
    private SenderProcess labelOnly;
    /** /proc reads done (tests). */
    private int reads;
    /** AttachMetadata's pidfds of this sender, made when first wanted. */
    private SenderPidfds pidfds;
    /** The kernel for pidfds (tests), or null: the real one. */
    private final SenderPidfds.Kernel kernel;

    MetadataStamp(SocketConnection socket, Connection conn) {
        this(socket, conn, PROC);
    }

    /** As above, with /proc at {@code procRoot} (tests). */
    MetadataStamp(SocketConnection socket, Connection conn, Path procRoot) {
        this(socket, conn, procRoot, null);
    }

    /** As above, with pidfds from {@code kernel} (tests). */
    MetadataStamp(SocketConnection socket, Connection conn, Path procRoot, SenderPidfds.Kernel kernel) {
        this.socket = socket;
        this.conn = conn;
        this.procRoot = procRoot;
        this.kernel = kernel;
    }

    /** The pidfd cache, for tests (null until a pidfd was first wanted). */
    SenderPidfds pidfdCache() {
        return pidfds;
    }

    /**
     * The facts of the frame being handled now, for the items in {@code wanted}, its frame read
     * with one set of creds: for a monitor's copy of a driver call, never with a pidfd (only a
     * routed message holds one, see {@link #stamp(int, boolean)}).
     */
    MessageFacts stamp(int wanted) {
        return stamp(wanted & ~MessageFacts.PIDFD, false);
    }

    /**
     * The facts of the message being routed now, for the items in {@code wanted};
     * {@code mixedCreds}: the reads of its frame came with different credentials (another process
     * wrote part of it), so the read that completed it does not speak for the frame. With
     * {@code pidfd} wanted the facts hold a pidfd reference (the sender's hold, see
     * MessageFacts.setPidfd): the caller routes the message, then calls dropHandles.
     */
    MessageFacts stamp(int wanted, boolean mixedCreds) {
        MessageFacts f = stampCreds(wanted, mixedCreds);
        // The pidfd is a fact of the send-time pid, as the /proc items are: none for connect-time
        // or mixed creds (the connecting process need not be the writer).
        if ((wanted & MessageFacts.PIDFD) != 0 && f.credsAtSendTime()) {
            FdSet p = pidfds().take(f.pid(), f.uid());
            if (p != null) {
                f.setPidfd(p);
            }
        }
        return f;
    }

    private SenderPidfds pidfds() {
        if (pidfds == null) {
            pidfds = kernel != null ? new SenderPidfds(kernel)
                    : new SenderPidfds(SenderPidfds.kernelFor(socket::peerPidfd), SenderPidfds.Support.PROCESS);
        }
        return pidfds;
    }

    /** Whether this sender's pidfd cache holds anything (BusServer lists such sessions). */
    boolean hasCachedPidfds() {
        return pidfds != null && !pidfds.isEmpty();
    }

    /** Nobody wants pidfds any more: the cached ones go (messages still queued keep theirs). */
    void dropCachedPidfds() {
        if (pidfds != null) {
            pidfds.clear();
        }
    }

    /** The session closed: cached pidfds go (messages still queued keep theirs). */
    void close() {
        if (pidfds != null) {
            pidfds.close();
        }
    }

    private MessageFacts stampCreds(int wanted, boolean mixedCreds) {
        MessageFacts f = new MessageFacts();
        long pid = mixedCreds ? -1 : socket.readPid();
        int proc = wanted & SenderProcess.ITEMS;
        // pid 0: the bytes were queued before SO_PASSCRED was on (the kernel then reports pid 0
        // and the overflow uid/gid), so the connect-time facts stand in, marked as such.
        if (pid > 0) {
            long uid = socket.readUid();
            f.setCreds(pid, uid, socket.readGid(), true);
            if (proc != 0) {
                f.setProcess(process(pid, uid, proc));
            }
        } else {
            // No send-time creds for this frame: the connect-time facts, marked as such, and no
            // /proc facts (the connect-time pid need not be the writer, nor alive).
            Credentials c = conn.credentials();
            f.setCreds(c == null ? -1 : c.pid(), c == null ? -1 : c.uid(), c == null ? -1 : c.gid(), false);
            if ((proc & MessageFacts.SECLABEL) != 0) {
                if (labelOnly == null) {
                    labelOnly = SenderProcess.read(procRoot, -1, -1, MessageFacts.SECLABEL,
                            conn.peerDetails().securityLabel());
                }
                f.setProcess(labelOnly);
            }
        }
        return f;
    }

    /** The cached facts of (pid, uid) covering {@code items}, read and cached when missing. */
    SenderProcess process(long pid, long uid, int items) {
        int at = -1;
        for (int i = 0; i < size; i++) {
            SenderProcess p = lru[i];
            if (p.pid() == pid && p.uid() == uid) {
                at = i;
                break;
            }
        }
        SenderProcess p;
        if (at >= 0 && (lru[at].items() & items) == items) {
            p = lru[at];
        } else {
            int all = at >= 0 ? items | lru[at].items() : items;
            p = SenderProcess.read(procRoot, pid, uid, all, conn.peerDetails().securityLabel());
            reads++;
            if (at < 0) {
                at = size < CACHED ? size++ : CACHED - 1; // a new entry: the least recent one goes
            }
        }
        // Move to the front: entries before it shift back one.
        System.arraycopy(lru, 0, lru, 1, at);
        lru[0] = p;
        return p;
    }

    /** How many times /proc was read (tests). */
    int procReads() {
        return reads;
    }
}
