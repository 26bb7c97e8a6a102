package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.nio.ByteBuffer;

import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.core.bus.DisconnectReason;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A session's output: SASL replies, then the connection's receive pool, written to the socket
 * without blocking.
 *
 * Invariants: loop thread only; small messages are copied into {@code out} (many per send); a
 * message of at least the zero-copy threshold was spliced once into a direct buffer at admission
 * and is written to each receiver's socket straight from that shared buffer (through
 * {@code large}, a private read-only view), never copied per receiver. {@code large} is set
 * only while {@code out} is empty and is the pool's head message; that message stays in the
 * pool (charged) until its last byte was sent. A message with fds is always the first byte of
 * a sendmsg (with, for an opted-in receiver's rendered copy, the AttachMetadata pidfd behind its
 * own fds: {@code outPidfd}), and its FdSet reference ({@code outFds}) is held until that sendmsg succeeded (a
 * copied message's, from the scratch, only until the flush ends: the next one takes it again).
 *
 * Buffers follow use: {@code out} is a 64 KiB buffer lent by DirectBuffers only while bytes are
 * pending, given back when drained; messages copied into it leave the pool as they are copied.
 * When none can be lent (the bound is reached) a flush uses the loop's output scratch instead
 * and takes nothing out of the pool while copying: after each send it pops the messages whose
 * bytes all went and keeps the partial one's sent length in {@code headOffset}, so what the
 * socket did not take stays where it already is, in the pool, charged to its senders
 * (QueueLedger), and is copied again next time. A slow reader is thereby throttled (its socket
 * waits for EPOLLOUT, its pool fills and refuses), never closed for its unread output, and
 * holds no heap for it; never a direct allocation past the bound (the JDK's reservation path
 * runs System.gc() and sleeps), never a wait. Only SASL replies go through {@code outCarry}
 * (at most 64 KiB, charged to the peer's uid in {@link InputHeap}).
 *
 * {@code headOffset} is how much of the pool's head message is done with: copied into the lent
 * {@code out}, or sent from the scratch. Both agree whenever {@code out} is empty, the only
 * moment one mode can follow the other.
 */
final class OutputWriter {
    // Session log lines keep the logger name they had before the session was split.
    private static final Logger LOG = LoggerFactory.getLogger(ClientSession.class);
    private static final int INITIAL_BUFFER = DirectBuffers.IO_BUFFER;

    private static final String REFUSAL = "Disconnecting {}: authentication replies it does not read would hold {} bytes"
            + " of heap, past the budget of uid {} ({} bytes, uid holds {}) or of all uids ({} bytes, all hold {});"
            + " logged once a minute per uid";

    private final ClientSession session;
    private final BusServer server;
    private final SocketConnection socket;
    private final Connection conn;
    /**
     * SO_SNDBUF asked for the first time a large message (a zero-copy payload) does not fit:
     * the kernel's default (212992 bytes) takes a 1 MiB message in five sends, each waking the
     * reader. The kernel caps it at net.core.wmem_max; 0 keeps the default (TransportSettings).
     */
    private final int largeSendBuffer;
    /**
     * Output being sent (read mode): a lent I/O buffer while bytes wait for the socket, or the
     * loop's output scratch for the duration of one flush when none can be lent. Null when no
     * output is pending.
     */
    private ByteBuffer out;
    /** Bytes to send after {@code out}'s and before the pool's messages: SASL replies. */
    private byte[] outCarry;
    private int outCarryLen;
    /**
     * While {@code out} is the scratch: how many of its first bytes are {@code outCarry}'s, which
     * stay in the carry until sent. The pool's bytes after them stay in the pool until sent.
     */
    private int scratchCarry;
    /** What {@code outCarry}'s array is charged to the peer's uid (InputHeap). */
    private final HeapHold outputHeld;
    /** Set once this socket's send buffer was asked to grow (largeSendBuffer). */
    private boolean sendBufferRequested;
    /** Bytes of the pool's head message already copied into the lent {@code out}, or sent from the scratch. */
    private int headOffset;
    /** A view of the pool's head message being written straight from its shared direct payload, or null. */
    private ByteBuffer large;
    /** The fds to attach to the first byte of {@code out}, or null; this writer holds a reference. */
    private FdSet outFds;
    /** An AttachMetadata pidfd sent behind {@code outFds} (this writer holds a reference), or null. */
    private FdSet outPidfd;
    /**
     * The fds of {@code outFds}/{@code outPidfd} came across a hand-over with committed bytes
     * whose message left the pool: kept until their sendmsg, even by a flush from the scratch.
     */
    private boolean outFdsCarried;
    /** How many fds of {@code outFdScratch} go with the next sendmsg (0: none). */
    private int outFdCount;
    private int[] outFdScratch;
    /** The head message as this receiver gets it with its metadata field, while being copied; or null. */
    private byte[] rendered;
    /** The message {@code rendered} is a copy of (the pool's head while it is being sent). */
    private Message renderedFor;
    /** The pidfd {@code rendered} says it carries (the message's; the pool keeps it open), or null. */
    private FdSet renderedPidfd;
    /** A head sent without the field because its copy was too large for the budget, or null. */
    private Message rawHead;
    private MetadataRenderer renderer;
    /**
     * What the {@code rendered} copy is charged to the peer's uid (InputHeap), whatever its size:
     * ten thousand stalled opted-in readers would otherwise hold up to 64 KiB each, uncounted.
     */
    private final HeapHold renderedHeld;

    OutputWriter(ClientSession session, BusServer server, SocketConnection socket, Connection conn) {
        this.session = session;
        this.server = server;
        this.socket = socket;
        this.conn = conn;
        this.largeSendBuffer = server.transport().largeSendBuffer();
        this.outputHeld = new HeapHold(session, server.inputHeap(), REFUSAL, "output heap budget");
        this.renderedHeld = new HeapHold(session, server.inputHeap(), REFUSAL, "output heap budget");
    }

    /** SASL replies go out ahead of any message (there are none before auth completes). */
    void queueRaw(byte[] bytes) {
        int pending = outCarryLen + (out != null ? out.remaining() : 0);
        if (pending + bytes.length > INITIAL_BUFFER) {
            LOG.warn("Disconnecting {}: authentication output overflow", session);
            session.close(DisconnectReason.AUTH, "auth output overflow");
            return;
        }
        appendOutCarry(bytes, 0, bytes.length);
        holdOutputHeap();
        session.markDirty();
    }

    private void appendOutCarry(byte[] b, int off, int len) {
        if (outCarry == null || outCarry.length < outCarryLen + len) {
            byte[] bigger = new byte[Math.max(outCarryLen + len, 256)];
            if (outCarryLen > 0) {
                System.arraycopy(outCarry, 0, bigger, 0, outCarryLen);
            }
            outCarry = bigger;
        }
        System.arraycopy(b, off, outCarry, outCarryLen, len);
        outCarryLen += len;
    }

    /**
     * Copies queued small messages into the output buffer, or points {@code large} at a large
     * head message, and writes as much as the socket takes.
     */
    void flush() throws IOException {
        try {
            writeOut();
        } finally {
            releaseOutput();
        }
    }

    private void writeOut() throws IOException {
        while (!session.isClosed()) {
            if (large == null) {
                ensureOutput();
                fillOutput();
            }
            ByteBuffer src = large != null ? large : out;
            if (!src.hasRemaining()) {
                session.setWriteInterest(false);
                if (session.isClosing()) {
                    session.closeFlushed();
                }
                return;
            }
            int n;
            if (outFdCount > 0) {
                n = socket.writeWithFds(src, outFdScratch, outFdCount);
                if (n > 0) {
                    releaseOutFds(); // passed: the kernel holds its own copies now
                }
            } else {
                n = socket.write(src);
            }
            if (src == out && server.buffers().isScratch(out)) {
                settleScratch(n);
            }
            if (large != null && !large.hasRemaining()) {
                large = null; // all of it sent: only now does it leave the pool
                popHead();
                continue;
            }
            if (large != null && !sendBufferRequested && largeSendBuffer > 0) {
                // A large message did not fit: a bigger socket buffer takes the rest of it in
                // one send, so the reader wakes once per message, not once per 200 KiB.
                sendBufferRequested = true;
                if (socket.requestSendBuffer(largeSendBuffer)) {
                    continue;
                }
            }
            if (n == 0 || src.hasRemaining()) {
                session.setWriteInterest(true);
                return;
            }
        }
    }

    /**
     * Gives {@code out} an output buffer: a lent I/O buffer, or (none left to lend: see
     * DirectBuffers.takeIo) the loop's output scratch, for this flush only.
     */
    private void ensureOutput() {
        if (out == null) {
            ByteBuffer b = server.buffers().takeIo();
            out = b != null ? b : server.buffers().outputScratch();
            out.flip(); // empty, read mode
        }
    }

    /**
     * After {@code n} bytes of the scratch were sent: the carry's sent bytes leave it, the pool's
     * messages whose bytes all went are popped (only now do they stop being charged), and the
     * partial one keeps its sent length in {@code headOffset}.
     */
    private void settleScratch(int n) {
        int left = n;
        if (scratchCarry > 0 && left > 0) {
            int c = Math.min(left, scratchCarry);
            dropCarry(c);
            scratchCarry -= c;
            left -= c;
        }
        while (left > 0) {
            Message m = conn.pool().peek();
            int rest = (rendered != null ? rendered.length : m.size()) - headOffset;
            if (left < rest) {
                headOffset += left;
                return;
            }
            left -= rest;
            headOffset = 0;
            dropRendered(); // the head's rendered copy, if any (fillOutput copies only the head then)
            popHead();
        }
    }

    /** Removes the carry's first {@code n} bytes; an emptied big array goes (and its charge with it). */
    private void dropCarry(int n) {
        System.arraycopy(outCarry, n, outCarry, 0, outCarryLen - n);
        outCarryLen -= n;
        if (outCarryLen == 0 && outCarry.length > InputAssembler.CARRY_KEEP) {
            outCarry = null;
            holdOutputHeap();
        }
    }

    /**
     * After a flush: a drained lent buffer goes back; a lent one keeps its unsent bytes until the
     * socket takes them; the scratch is dropped whatever it still holds: those bytes are still in
     * the pool (or the carry) and are copied again by the next flush. An fd reference taken for
     * a copied message whose sendmsg did not happen goes too (the pool keeps its own; the next
     * fill takes it again); a large message's stays with {@code large}, which outlives the flush.
     */
    private void releaseOutput() {
        ByteBuffer b = out;
        if (b == null || session.isClosed()) {
            return;
        }
        if (server.buffers().isScratch(b)) {
            out = null;
            scratchCarry = 0;
            if (outFdCount > 0 && large == null && !outFdsCarried) {
                releaseOutFds();
            }
        } else if (!b.hasRemaining()) {
            out = null;
            server.buffers().giveIo(b);
        }
    }

    /**
     * Charges {@code outCarry}'s array (SASL replies not yet sent, at most about one buffer's
     * worth) to the peer's uid, as input held on the heap is: many authenticating peers that do
     * not read would otherwise hold 64 KiB each, uncounted. Past the budget the connection is
     * closed with one log line per uid per minute.
     */
    private void holdOutputHeap() {
        if (!session.isClosed()) {
            outputHeld.set(outCarry == null ? 0 : outCarry.length);
        }
    }

    private void fillOutput() {
        out.compact();
        boolean scratch = server.buffers().isScratch(out);
        assert !scratch || (out.position() == 0 && scratchCarry == 0) : "the scratch is filled only when empty";
        try {
            if (outCarryLen > 0) {
                // SASL replies go before any message.
                int n = Math.min(outCarryLen, out.remaining());
                out.put(outCarry, 0, n);
                boolean more;
                if (scratch) {
                    scratchCarry = n; // they leave the carry only once sent (settleScratch)
                    more = n < outCarryLen;
                } else {
                    dropCarry(n);
                    more = outCarryLen > 0;
                }
                if (more) {
                    return;
                }
            }
            // From the scratch nothing leaves the pool here: message i is read in place and popped
            // only once its bytes were sent (settleScratch). A lent buffer pops as it copies.
            int i = 0;
            int offset = headOffset;
            // With an attach set, {@code rendered} is the head's copy: from the scratch only the
            // head is copied, so settleScratch knows its length.
            boolean render = conn.attachedMetadata() != 0;
            while (out.hasRemaining()) {
                Message m = scratch ? conn.pool().peek(i) : conn.pool().peek();
                if (m == null || (scratch && render && i > 0)) {
                    break;
                }
                if (rendered != null && renderedFor != m) {
                    dropRendered(); // the set changed and the head went out raw meanwhile (not ours)
                }
                if (render && rendered == null && offset == 0 && rawHead != m) { // a head begun raw ends raw
                    FdSet pid = pidfdFor(m, scratch ? i : 0);
                    // null: too large, sent as is
                    byte[] copy = renderer().render(m, conn.attachedMetadata(), receiverUid(), pid != null);
                    // The copy may wait for a slow reader: charged as its other output heap is.
                    // Past the budget the message goes without the field: never a close for it.
                    if (copy != null && renderedHeld.trySet(copy.length)) {
                        rendered = copy;
                        renderedFor = m;
                        renderedPidfd = pid;
                    } else {
                        rawHead = m;
                    }
                }
                // A receiver with an attach set gets its own rendered heap copy (AttachMetadata);
                // a head going raw (no set, or its copy refused) may go zero-copy.
                boolean zeroCopy = offset == 0 && m.payload().isDirect() && rendered == null;
                if (zeroCopy && out.position() > 0) {
                    break; // send the small messages before it first
                }
                FdSet pidfd = rendered != null ? renderedPidfd : null;
                if (offset == 0 && (m.fds() != null || pidfd != null)) {
                    // Its fds must ride on its first byte: start a fresh sendmsg for it; the
                    // AttachMetadata pidfd of an opted-in copy goes behind the message's own.
                    if (out.position() > 0 || outFdCount > 0) {
                        break;
                    }
                    FdSet f = m.fds();
                    int count = (f == null ? 0 : f.count()) + (pidfd == null ? 0 : 1);
                    if (outFdScratch == null || outFdScratch.length < count) {
                        outFdScratch = new int[Math.max(count, 16)];
                    }
                    int k = 0;
                    if (f != null) {
                        for (; k < f.count(); k++) {
                            outFdScratch[k] = f.fd(k);
                        }
                        outFds = f.retain();
                    }
                    if (pidfd != null) {
                        outFdScratch[k] = pidfd.fd(0);
                        outPidfd = pidfd.retain();
                    }
                    outFdCount = count;
                }
                if (zeroCopy) {
                    large = m.payload().view(); // written from the shared payload by flush()
                    break;
                }
                if (rendered != null) {
                    int n = Math.min(rendered.length - offset, out.remaining());
                    out.put(rendered, offset, n);
                    offset += n;
                    if (offset < rendered.length || scratch) {
                        break; // the buffer is full, or (scratch) settleScratch pops it once sent
                    }
                    dropRendered();
                } else {
                    offset += m.payload().copyTo(offset, out);
                    if (offset < m.size()) {
                        break; // the buffer is full
                    }
                }
                offset = 0;
                if (scratch) {
                    i++;
                } else {
                    popHead();
                }
            }
            if (!scratch) {
                headOffset = offset;
            }
        } finally {
            if (out != null) {
                out.flip();
            }
        }
    }

    /** The fds of the message being sent are passed (or not needed any more): their references go. */
    private void releaseOutFds() {
        if (outFds != null) {
            outFds.release();
            outFds = null;
        }
        if (outPidfd != null) {
            outPidfd.release();
            outPidfd = null;
        }
        outFdCount = 0;
        outFdsCarried = false;
    }

    /**
     * The pidfd this receiver gets with {@code m}, the message {@code i} places behind the pool's
     * head (AttachMetadata {@code pidfd}), or null: the core's rule ({@link Connection#sendsPidfd}:
     * charged when queued, by {@link Connection#metadataFds}, and still wanted); room for one
     * more fd in the sendmsg follows (BusLimits.MAX_MESSAGE_UNIX_FDS), asserted.
     */
    private FdSet pidfdFor(Message m, int i) {
        if (!conn.sendsPidfd(i)) {
            return null;
        }
        // Charged only below max_message_unix_fds, which BusLimits keeps at most SCM_MAX_FD.
        assert m.unixFds() < LibC.SCM_MAX_FD : m.unixFds() + " fds and a pidfd do not fit one sendmsg";
        return m.facts().pidfd();
    }

    /** The head's rendered copy is done with (sent, or no longer the head's). */
    private void dropRendered() {
        if (rendered != null) {
            rendered = null;
            renderedFor = null;
            renderedPidfd = null;
            renderedHeld.trySet(0);
        }
    }

    /** The head leaves the pool: whatever was kept about it goes too. */
    private void popHead() {
        Message m = conn.pool().pop();
        if (m == rawHead) {
            rawHead = null;
        }
    }

    /** The receiver's uid, for who may see a sender's /proc facts (-1: unknown, sees none). */
    private long receiverUid() {
        return conn.credentials() == null ? -1 : conn.credentials().uid();
    }

    private MetadataRenderer renderer() {
        if (renderer == null) {
            renderer = new MetadataRenderer();
        }
        return renderer;
    }

    /** On close: the lent buffer goes back, held fds are released, the heap hold is dropped. */
    void release() {
        if (out != null && !server.buffers().isScratch(out)) {
            server.buffers().giveIo(out);
        }
        out = null;
        outCarry = null;
        outCarryLen = 0;
        scratchCarry = 0;
        releaseOutFds();
        large = null;
        rendered = null;
        renderedFor = null;
        renderedPidfd = null;
        rawHead = null;
        renderedHeld.release();
        outputHeld.release();
    }

    /** Hand-over: whether any output is committed but not yet sent (bytes, a part-sent head, fds). */
    boolean holdsUnsentOutput() {
        return (out != null && out.hasRemaining()) || outCarryLen > 0 || headOffset > 0 || large != null
                || outFds != null;
    }

    /**
     * Hand-over: why this output cannot be carried, or null. At a loop-step boundary {@code out}
     * is a lent buffer or null (a flush from the scratch ends by dropping it), so this names only
     * a capture taken inside a flush.
     */
    String uncarriedOutput() {
        if (out != null && server.buffers().isScratch(out)) {
            return "output in the loop's scratch buffer";
        }
        return null;
    }

    /**
     * Hand-over: the bytes committed and not yet sent, in the order they go out: the lent
     * buffer's, then the SASL replies still in {@code outCarry} (empty: none).
     */
    byte[] committedBytes() {
        int lent = out == null ? 0 : out.remaining();
        byte[] b = new byte[lent + outCarryLen];
        if (lent > 0) {
            out.duplicate().get(b, 0, lent);
        }
        if (outCarryLen > 0) {
            System.arraycopy(outCarry, 0, b, lent, outCarryLen);
        }
        return b;
    }

    /**
     * Hand-over: the fds that go with the first committed byte (a message copied into the lent
     * buffer whose sendmsg has not happened: they left the pool with it), or null. A large head
     * not begun holds its fds only as a copy of the pool's: the new writer takes them again.
     */
    FdSet committedFds() {
        return large == null ? outFds : null;
    }

    /** Hand-over: the AttachMetadata pidfd that goes behind {@link #committedFds}, or null. */
    FdSet committedPidfd() {
        return large == null ? outPidfd : null;
    }

    /**
     * Hand-over: bytes of the pool's head message already done with: among the committed bytes
     * or on the wire, including a large head part-sent from its shared payload (the new writer
     * copies the rest of that one: nothing of it is sent twice, and a copy of the tail is the
     * same bytes).
     */
    int headOffset() {
        return large != null ? conn.pool().peek().size() - large.remaining() : headOffset;
    }

    /**
     * Hand-over: the head's AttachMetadata copy once any of it is committed or sent (the new
     * writer must go on with these bytes), or empty: a copy none of which went is made afresh.
     */
    byte[] renderedHead() {
        return rendered == null || headOffset() == 0 ? new byte[0] : rendered.clone();
    }

    /**
     * Hand-over: lets go without closing what crosses: the fds of the committed bytes are the
     * new bus's now (the old process's references to them are simply dropped).
     */
    void detachForHandOver() {
        outFds = null;
        outPidfd = null;
        outFdCount = 0;
        release();
    }

    /**
     * Hand-over restore, before the first flush: {@code committed} goes out before anything in
     * the pool, with {@code fds} (and then {@code pidfd}; each a reference this writer now
     * holds, or null) on its first byte, and the pool's head continues at {@code head} bytes.
     * Into a lent buffer, or, none left to lend, into the carry that goes first (as SASL replies
     * do; at most one buffer's worth).
     */
    void restoreCommitted(byte[] committed, int head, byte[] renderedHead, FdSet fds, FdSet pidfd) {
        if (out != null || outCarryLen > 0 || headOffset != 0 || rendered != null || outFdCount > 0) {
            throw new IllegalStateException("output restored into a writer in use");
        }
        int headLength = renderedHead.length > 0 ? renderedHead.length
                : conn.pool().peek() == null ? 0 : conn.pool().peek().size();
        if ((head > 0 || renderedHead.length > 0) && (conn.pool().peek() == null || head >= headLength)) {
            throw new IllegalStateException("head offset " + head + " beyond the pool's head");
        }
        if ((fds != null || pidfd != null) && committed.length == 0) {
            throw new IllegalStateException("fds carried with no committed byte to ride on");
        }
        headOffset = head;
        if (renderedHead.length > 0) {
            rendered = renderedHead; // verbatim: its first bytes are already committed or sent
            renderedFor = conn.pool().peek();
            renderedHeld.trySet(rendered.length); // over the budget it is still sent: it was begun
        }
        if (fds != null || pidfd != null) {
            int count = (fds == null ? 0 : fds.count()) + (pidfd == null ? 0 : 1);
            outFdScratch = new int[Math.max(count, 16)];
            int k = 0;
            for (; fds != null && k < fds.count(); k++) {
                outFdScratch[k] = fds.fd(k);
            }
            if (pidfd != null) {
                outFdScratch[k] = pidfd.fd(0);
            }
            outFds = fds;
            outPidfd = pidfd;
            outFdCount = count;
            outFdsCarried = true;
        }
        if (committed.length == 0) {
            return;
        }
        ByteBuffer b = committed.length <= INITIAL_BUFFER ? server.buffers().takeIo() : null;
        if (b != null) {
            b.clear();
            b.put(committed);
            b.flip();
            out = b;
        } else {
            appendOutCarry(committed, 0, committed.length);
            holdOutputHeap();
        }
    }

    /** Buffer bytes held between events: a lent buffer, the carry and a rendered metadata copy. */
    long heldBytes() {
        long n = out != null && !server.buffers().isScratch(out) ? out.capacity() : 0;
        return n + (outCarry != null ? outCarry.length : 0) + (rendered != null ? rendered.length : 0);
    }
}
