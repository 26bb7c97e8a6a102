package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.nio.ByteBuffer;

import org.kdbusbridge.core.bus.DisconnectReason;
import org.kdbusbridge.bridge.protocol.MessageFraming;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.protocol.SaslServer;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.MessageFacts;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A session's input: reads the socket in bursts, feeds SASL until it authenticated, then cuts
 * the bytes into frames and hands each whole one to {@link ClientSession#handleFrame}.
 *
 * Invariants: loop thread only; {@code in} never holds more than one maximum-size message plus
 * one read; at most one of {@code largeIn} and {@code heapFrame} is set, and neither is read
 * past its frame's end, so the next message stays in the socket; {@code inputHeld} is what the
 * carry, the heap frame and the SASL line hold against the peer's uid in {@link InputHeap};
 * received fds are queued in {@link PendingFds} and those that no partial message can claim
 * are closed.
 *
 * Buffers follow use: input is read into the loop's one 64 KiB input scratch for a burst; a
 * partial frame left at its end is copied out into {@code carry} (right-sized, below 64 KiB)
 * and back before the next burst, so the scratch serves the next socket and slow writers pin
 * no 64 KiB each. SASL needs no buffer of its own (SaslServer keeps the partial line).
 *
 * Large input: a frame of at least the zero-copy threshold (and at most LARGE_IN_PLACE_MAX)
 * bytes that has not fully arrived is moved, with what has, into a pooled direct buffer behind
 * LARGE_HEADROOM free bytes, and the rest is read straight there ({@code largeIn}); a larger
 * frame (up to the 128 MiB maximum) is moved there once half of it has arrived, so a frame needs
 * one buffer of its size, not a second one for a spliced copy. Its header
 * is then rewritten into the headroom with SENDER spliced in and the buffer becomes the payload
 * (InboundFrame.toCore): the body is copied by the kernel once and never by us. Frames in
 * flight this way hold a bus-wide reservation (BusServer.LARGE_FRAMES_RESERVE) of what had not
 * arrived when they moved (the whole of a small frame, at most half of a larger one); past it,
 * frames take the grow-as-data-arrives path: the buffer doubles only once it is full, and a
 * partial frame already at its start is never copied again (compact() after every read made a
 * 100 MiB frame quadratic).
 *
 * Direct-memory budget: when DirectBuffers refuses a buffer, a large frame is read through
 * {@code in} into a heap array that grows as data arrives ({@code heapFrame}). A heap fallback
 * rather than pausing READ: the budget may be held for a long time by payloads queued at slow
 * receivers, or be smaller than the frame, and a paused sender could then wait forever.
 */
final class InputAssembler implements SocketConnection.FdSink {
    // Session log lines keep the logger name they had before the session was split.
    private static final Logger LOG = LoggerFactory.getLogger(ClientSession.class);
    private static final int INITIAL_BUFFER = DirectBuffers.IO_BUFFER;
    /** A carry array at most this big is kept for reuse once emptied; a bigger one is dropped. */
    static final int CARRY_KEEP = 1024;
    private static final int MAX_READS_PER_WAKEUP = 16;
    /** Bytes left free before a large frame read in place, for its rewritten header (see above). */
    static final int LARGE_HEADROOM = 512;
    /** Large frames up to this size are read straight into their payload buffer. */
    static final int LARGE_IN_PLACE_MAX = 16 * 1024 * 1024;

    private static final String REFUSAL = "Disconnecting {}: its input would hold {} bytes of heap, past the input"
            + " budget of uid {} ({} bytes, uid holds {}) or of all uids ({} bytes, all hold {}); logged once a minute per uid";

    /** Frames at least this long are read in place (TransportSettings.zeroCopyThreshold). */
    private final int zeroCopyThreshold;
    private final ClientSession session;
    /** Until it authenticated, the input is SASL lines. */
    private final SaslPhase sasl;
    /** Where received fds wait for the frame that claims them. */
    private final PendingFds pending;
    /** The current frame's buffer and header, for session.handleFrame. */
    private final InboundFrame frame;
    private final BusServer server;
    private final SocketConnection socket;
    private final Connection conn;
    /**
     * The input buffer (write mode): during a read burst the loop's shared input scratch, or a
     * larger buffer borrowed while a big (not zero-copy) frame arrives. Null between bursts
     * unless it is such a borrowed buffer: an idle session holds no input buffer at all.
     */
    private ByteBuffer in;
    /**
     * Input kept between bursts: the start of a partial frame (or, right after SASL, pipelined
     * bytes) copied out of the scratch, {@code carryLen} bytes.
     */
    private byte[] carry;
    private int carryLen;
    /** A read burst is running: {@code in} is in use, and only endBurst may give it back. */
    private boolean inBurst;
    /**
     * A large frame being read straight into the buffer that becomes its payload: the frame sits
     * at [LARGE_HEADROOM, limit), position = how far it has arrived. Null when none is.
     */
    private ByteBuffer largeIn;
    /** What {@code largeIn} holds of the bus's LARGE_FRAMES_RESERVE (its frame's bytes not yet arrived when it began). */
    private long largeReserved;
    /**
     * A large frame being read on the heap because no direct buffer could be had: its
     * {@code heapFrameLen} bytes, {@code heapArrived} of them so far (the array grows as they
     * arrive). Read through {@code in}, never past the frame's end. Null when none is.
     */
    private byte[] heapFrame;
    private int heapFrameLen;
    private int heapArrived;
    /** The carry array, a heap frame's full length and, during SASL, the line buffer (InputHeap). */
    private final HeapHold inputHeld;
    private boolean fdOverflow;
    /**
     * The credentials of the read that brought the first byte of the unfinished frame buffered
     * now (valid while SO_PASSCRED is on; -2: unknown, matches no read), whether a later read of
     * it had others, whether the current read continues it, and, for the frame being handled,
     * whether its reads differed. See {@link #noteReadCreds}.
     */
    private long firstPid = -2;
    private long firstUid = -2;
    private long firstGid = -2;
    private boolean partialMixed;
    private boolean frameContinues;
    private boolean frameCredsMixed;

    InputAssembler(ClientSession session, BusServer server, SocketConnection socket, SaslPhase sasl, PendingFds pending,
            InboundFrame frame) {
        this.zeroCopyThreshold = server.transport().zeroCopyThreshold();
        this.session = session;
        this.conn = session.connection();
        this.sasl = sasl;
        this.pending = pending;
        this.frame = frame;
        this.server = server;
        this.socket = socket;
        this.inputHeld = new HeapHold(session, server.inputHeap(), REFUSAL, "input heap budget");
    }

    void readAvailable(boolean hangup) throws IOException {
        inBurst = true;
        try {
            readBurst(hangup);
        } finally {
            inBurst = false;
            endBurst();
        }
    }

    private void readBurst(boolean hangup) throws IOException {
        for (int i = 0; i < MAX_READS_PER_WAKEUP && !session.isClosed() && !session.isClosing(); i++) {
            if (!hangup && sasl.isAuthenticated() && conn.isIncomingOverLimit()) {
                session.pauseReading(true);
                return;
            }
            if (largeIn == null && in == null) {
                beginBurst();
            }
            ByteBuffer target = largeIn != null ? largeIn : in;
            if (heapFrame != null) {
                in.limit(Math.min(in.capacity(), in.position() + heapFrameLen - heapArrived)); // never past the frame
            }
            if (!target.hasRemaining()) {
                // Buffer full of one partial message: it was grown to fit in process().
                return;
            }
            int room = target.remaining();
            // AttachMetadata: the kernel's per-write credentials only while somebody wants them.
            boolean passCred = (server.bus().metadataWanted() & MessageFacts.FROM_SENDER) != 0;
            if (passCred != socket.passesCredentials()) {
                socket.passCredentials(passCred);
                firstPid = -2; // bytes buffered before came under the other setting: no match
            }
            // Bytes of an unfinished frame are buffered: this read continues that frame.
            boolean continues = passCred && (largeIn != null || heapFrame != null || target.position() > 0);
            int n = socket.readWithFds(target, this);
            if (passCred && n > 0) {
                noteReadCreds(continues);
            }
            if (fdOverflow) {
                LOG.warn("Disconnecting {}: more than max_incoming_unix_fds={} fds pending", session,
                        server.limits().maxIncomingUnixFds);
                session.close(DisconnectReason.LIMITS, "too many pending fds");
                return;
            }
            if (n < 0) {
                session.closeAtEndOfStream();
                return;
            }
            if (n == 0) {
                return;
            }
            if (!took(target)) {
                return;
            }
            if (passCred && !frameContinues) {
                // A partial frame left now began in this read (the earlier one, if any, completed).
                firstPid = socket.readPid();
                firstUid = socket.readUid();
                firstGid = socket.readGid();
                partialMixed = false;
            }
            if (n < room && !hangup) {
                // A short read drained the socket: the (level-triggered) loop reports it again
                // when more arrives, so a read that would only say EAGAIN is saved.
                return;
            }
        }
    }

    /**
     * After a read put bytes into {@code target}: a large frame read in place or a heap frame
     * advances (and is handled once whole), else whole frames are cut and handled. False when
     * the connection was closed for it.
     */
    private boolean took(ByteBuffer target) {
        if (target == largeIn) {
            if (!largeIn.hasRemaining()) {
                finishLargeFrame();
            }
        } else if (heapFrame != null) {
            in.flip();
            try {
                appendHeapFrame();
            } catch (OutOfMemoryError e) {
                closeForOutOfMemory(); // the heap could not take the frame: this connection ends
                return false;
            }
            in.clear();
            if (heapArrived == heapFrameLen) {
                finishHeapFrame();
            }
        } else {
            process();
        }
        return true;
    }

    /**
     * Frame credentials across reads (SO_PASSCRED on): a frame is stamped with the credentials
     * of the read that completed it, which speak for the whole frame only if every read of it
     * had the same ones; a writer could send most of a frame and let another process sharing
     * the socket send the last byte. So the first read of a frame records its credentials, each
     * later read of the same frame compares (one compare per read), and a frame whose reads
     * differed is {@link #frameCredsMixed}: it gets the connect-time ones, marked not-at-send.
     */
    private void noteReadCreds(boolean continues) {
        frameContinues = continues;
        if (continues && (socket.readPid() != firstPid || socket.readUid() != firstUid
                || socket.readGid() != firstGid)) {
            partialMixed = true;
        }
    }

    /** Called right before a frame is handled: whether its reads had different credentials. */
    private void beginFrameCreds() {
        frameCredsMixed = frameContinues && partialMixed;
        frameContinues = false; // the next frame of this read began in it
    }

    /** Whether the frame being handled now was read with different credentials (see {@link #noteReadCreds}). */
    boolean frameCredsMixed() {
        return frameCredsMixed;
    }

    /** Consumes whatever complete units (SASL lines, messages) the input holds. */
    private void process() {
        in.flip();
        try {
            if (!sasl.isAuthenticated()) {
                SaslServer.Result r = sasl.feed(in);
                if (!holdInputHeap(carryBytes(), heapFrameBytes(), sasl.heldBytesAfter(r)) || !sasl.settle(r)) {
                    in.clear();
                    return;
                }
            }
            while (sasl.isAuthenticated() && !session.isClosed() && !session.isClosing()) {
                int pos = in.position();
                long len = MessageFraming.frameLength(in, pos, in.remaining());
                if (len < 0) {
                    break;
                }
                if (len > server.limits().maxMessageSize) {
                    throw new ProtocolException("message of " + len + " bytes exceeds max_message_size="
                            + server.limits().maxMessageSize);
                }
                if (in.remaining() < len) {
                    // In place: up to LARGE_IN_PLACE_MAX at once, reserving the whole frame; a
                    // larger one once half of it has arrived, reserving the half still missing.
                    long missing = len - in.remaining();
                    long reserve = len <= LARGE_IN_PLACE_MAX ? len : missing <= in.remaining() ? missing : -1;
                    if (len >= zeroCopyThreshold && reserve >= 0 && server.reserveLargeFrame(reserve)) {
                        if (startLargeFrame((int) len)) {
                            largeReserved = reserve;
                            break; // the rest is read straight into its payload buffer
                        }
                        server.releaseLargeFrame(reserve); // no direct buffer within the budget
                    }
                    if (pos + len > in.capacity()) {
                        if (pos == 0 && in.limit() < in.capacity()) {
                            break; // room left: the buffer grows once it is full, so only as data arrives
                        }
                        if (grow((int) len)) {
                            return; // grow() left the buffer in write mode
                        }
                        if (!startHeapFrame((int) len)) { // no direct buffer within the budget
                            return; // nor heap within the uid's or the bus's input budget: closed
                        }
                        break;
                    }
                    break;
                }
                frame.set(in, false);
                beginFrameCreds();
                session.handleFrame(pos, (int) len);
                in.position(pos + (int) len);
            }
        } catch (ProtocolException e) {
            session.closeForProtocolViolation(e);
            return;
        } catch (OutOfMemoryError e) {
            closeForOutOfMemory();
            return;
        }
        if (largeIn == null && heapFrame == null && !in.hasRemaining() && pending.count() > 0) {
            // No partial message left, and fds only come with a message's first byte: these
            // belong to no message (more fds than UNIX_FDS claimed, or sent during SASL).
            pending.closeAll();
        }
        if (in.position() > 0) {
            in.compact();
        } else {
            // The partial frame is at the start already: compact() would copy all of it again
            // after every read, quadratic in a large frame's size (100 MiB: seconds).
            in.position(in.limit()).limit(in.capacity());
        }
        shrinkIfIdle();
        armPendingFdTimer();
    }

    @Override
    public void acceptFd(int fd) {
        if (session.isClosed()) {
            ClientSession.CLOSE_FD.accept(fd);
            return;
        }
        if (!pending.accept(fd, server.limits().maxIncomingUnixFds)) {
            fdOverflow = true;
        }
    }

    private void armPendingFdTimer() {
        pending.armTimer(server.loop(), server.limits().pendingFdTimeout, session.isClosed());
    }

    /**
     * Makes room for a message of {@code needed} bytes. The buffer doubles only as data
     * actually arrives, so a client that merely claims a huge length costs nothing.
     */
    private boolean grow(int needed) {
        if (in.position() > 0 && needed <= in.capacity()) {
            in.compact(); // room appears by moving the partial frame to the front
            return true;
        }
        int capacity = (int) Math.min(needed, Math.max((long) in.capacity() * 2, INITIAL_BUFFER));
        if (capacity <= in.remaining()) {
            in.compact();
            return true;
        }
        ByteBuffer bigger = server.buffers().take(capacity);
        if (bigger == null) {
            return false; // past the budget: in is untouched, still in read mode
        }
        bigger.put(in);
        if (!server.buffers().isScratch(in)) {
            server.buffers().give(in);
        }
        in = bigger;
        return true;
    }

    /**
     * Moves the start of a large frame (all of {@code in}'s unread bytes) into a heap array;
     * the rest is read through {@code in} and appended (readBurst). Called with {@code in} in
     * read mode at the frame's first byte.
     */
    private boolean startHeapFrame(int len) {
        if (!holdInputHeap(carryBytes(), len, 0)) {
            return false;
        }
        heapFrameLen = len;
        heapArrived = 0;
        heapFrame = new byte[Math.min(len, Math.max(in.remaining(), INITIAL_BUFFER))];
        appendHeapFrame();
        return true;
    }

    /** Appends {@code in}'s unread bytes (all of this frame's) to the heap frame, growing it as they arrive. */
    private void appendHeapFrame() {
        int n = in.remaining();
        if (heapArrived + n > heapFrame.length) {
            int capacity = (int) Math.min(heapFrameLen, Math.max(2L * heapFrame.length, heapArrived + (long) n));
            heapFrame = java.util.Arrays.copyOf(heapFrame, capacity);
        }
        in.get(heapFrame, heapArrived, n);
        heapArrived += n;
    }

    /** The heap frame has fully arrived: handle it (its payload is a heap copy, see InboundFrame.toCore). */
    private void finishHeapFrame() {
        ByteBuffer whole = ByteBuffer.wrap(heapFrame, 0, heapFrameLen);
        int len = heapFrameLen;
        heapFrame = null;
        heapFrameLen = 0;
        heapArrived = 0;
        holdInputHeap(carryBytes(), 0, 0); // a shrink: always allowed
        frame.set(whole, true);
        try {
            handleWholeFrame(0, len);
        } finally {
            frame.set(in, false);
        }
        afterWholeFrame();
    }

    /**
     * Moves the start of a large frame (all of {@code in}'s unread bytes) into a payload buffer
     * and reads the rest there. Called with {@code in} in read mode at the frame's first byte.
     */
    private boolean startLargeFrame(int len) {
        ByteBuffer p = server.buffers().take(LARGE_HEADROOM + len);
        if (p == null) {
            return false; // past the budget: in is untouched
        }
        p.position(LARGE_HEADROOM);
        p.put(in); // every unread byte belongs to this (incomplete) frame
        largeIn = p;
        return true;
    }

    /** The large frame has fully arrived: handle it from its own buffer. */
    private void finishLargeFrame() {
        ByteBuffer p = largeIn;
        largeIn = null;
        int len = p.limit() - LARGE_HEADROOM;
        server.releaseLargeFrame(largeReserved);
        largeReserved = 0;
        frame.set(p, true);
        try {
            handleWholeFrame(LARGE_HEADROOM, len);
        } finally {
            // Not adopted (an error, a driver call): left to the GC, since a driver call or
            // an error reply may still hold views of it; the budget counts it until collected.
            // Adopted: its payload gives it back.
            boolean adopted = frame.adopted();
            frame.set(in, false);
            if (!adopted) {
                server.buffers().abandon(p);
            }
        }
        afterWholeFrame();
    }

    /** As process(): nothing buffered, and fds come with a message's first byte, so pending ones are orphans. */
    private void afterWholeFrame() {
        if (!session.isClosed() && inputEmpty() && pending.count() > 0) {
            pending.closeAll();
        }
        armPendingFdTimer();
    }

    /** A frame assembled outside the input buffer: an error ends this connection only. */
    private void handleWholeFrame(int pos, int len) {
        beginFrameCreds();
        try {
            session.handleFrame(pos, len);
        } catch (ProtocolException e) {
            session.closeForProtocolViolation(e);
        } catch (OutOfMemoryError e) {
            closeForOutOfMemory();
        }
    }

    /** Returns to the shared scratch once a large message has gone through. */
    private void shrinkIfIdle() {
        if (in != null && in.position() == 0 && !server.buffers().isScratch(in)) {
            server.buffers().give(in);
            in = server.buffers().inputScratch();
        }
    }

    /** Starts reading into the loop's input scratch, behind the partial frame kept from the last burst. */
    private void beginBurst() {
        in = server.buffers().inputScratch();
        if (carryLen > 0) {
            in.put(carry, 0, carryLen);
            carryLen = 0;
        }
    }

    /**
     * Ends a read burst: what is left of a partial frame in the scratch is copied out (so the
     * scratch serves the next socket); a borrowed buffer stays only while it holds a partial frame.
     */
    private void endBurst() {
        ByteBuffer b = in;
        if (b == null) {
            return;
        }
        in = null;
        if (session.isClosed()) {
            if (!server.buffers().isScratch(b)) {
                server.buffers().give(b); // release() left it to us: the burst was still using it
            }
            return;
        }
        if (!server.buffers().isScratch(b)) {
            if (b.position() > 0) {
                in = b; // a big partial frame: its bytes stay where they are
            } else {
                server.buffers().give(b);
            }
            return;
        }
        int n = b.position();
        if (n == 0 && carry != null && carry.length > CARRY_KEEP) {
            carry = null; // no partial frame left: a big carry is not kept while idle
            holdInputHeap(0, heapFrameBytes(), 0); // a shrink: always allowed
        }
        if (n > 0) {
            if (carry == null || carry.length < n) {
                int size = Math.max(n, 256);
                if (!holdInputHeap(size, heapFrameBytes(), sasl.lineBytes())) {
                    return; // closed: the partial frame is dropped with the connection
                }
                carry = new byte[size];
            }
            b.flip();
            b.get(carry, 0, n);
            carryLen = n;
        }
    }

    /** Whether no input bytes are buffered (large frames read in place aside). */
    private boolean inputEmpty() {
        return in == null ? carryLen == 0 : in.position() == 0;
    }

    private int carryBytes() {
        return carry == null ? 0 : carry.length;
    }

    private int heapFrameBytes() {
        return heapFrame == null ? 0 : heapFrameLen;
    }

    /** Sets the input's heap hold (carry, heap frame, SASL line); false when refused (then closed). */
    private boolean holdInputHeap(long carryBytes, long frameBytes, long saslBytes) {
        return inputHeld.set(carryBytes + frameBytes + saslBytes);
    }

    /** One oversized client must not take the bus down with it. */
    private void closeForOutOfMemory() {
        LOG.error("Disconnecting {}: out of memory while receiving", session);
        session.close(DisconnectReason.LIMITS, "out of memory");
    }

    /** On close: buffers go back and the heap hold is dropped. */
    void release() {
        if (!inBurst) {
            // Mid-burst (closed from inside its own frame handling) process() may still touch
            // the buffer: endBurst gives it back. The scratch is never ours: another burst may use it.
            if (in != null && !server.buffers().isScratch(in)) {
                server.buffers().give(in);
            }
            in = null;
        }
        carry = null;
        carryLen = 0;
        if (largeIn != null) {
            server.releaseLargeFrame(largeReserved);
            largeReserved = 0;
            server.buffers().abandon(largeIn); // half a frame: left to the GC, counted until collected
            largeIn = null;
        }
        heapFrame = null;
        inputHeld.release();
    }

    /** Buffer bytes held between events: a borrowed buffer, the carry and a heap frame. */
    long heldBytes() {
        long n = in != null && !server.buffers().isScratch(in) ? in.capacity() : 0;
        n += carry != null ? carry.length : 0;
        n += heapFrame != null ? heapFrame.length : 0;
        return n;
    }

    /**
     * Hand-over: the per-read credential state of the unfinished frame (see {@link #noteReadCreds}):
     * the first read's pid, uid and gid (-2: unknown), whether a later read differed, and whether
     * the last read continued a frame begun before it.
     */
    record ReadCreds(long firstPid, long firstUid, long firstGid, boolean partialMixed, boolean frameContinues) {
    }

    ReadCreds readCreds() {
        return new ReadCreds(firstPid, firstUid, firstGid, partialMixed, frameContinues);
    }

    /**
     * Hand-over: why the input cannot be carried as one run of bytes, or null. Between bursts an
     * unfinished frame lives in exactly one place (the carry, a borrowed buffer, a large frame
     * read in place or a heap frame), and nothing after it is read.
     */
    String uncarriedInput() {
        int places = (carryLen > 0 ? 1 : 0) + (in != null && in.position() > 0 ? 1 : 0) + (largeIn != null ? 1 : 0)
                + (heapFrame != null ? 1 : 0);
        if (inBurst || places > 1 || in != null && server.buffers().isScratch(in)) {
            return "input in " + places + " places at once (mid-burst: " + inBurst + ")";
        }
        return null;
    }

    /**
     * Hand-over: the bytes read and not yet handled, as the client wrote them (the start of one
     * frame: its header may be cut anywhere; empty: none). Read from the one place they are in
     * ({@link #uncarriedInput}); changes nothing.
     */
    byte[] unhandledBytes() {
        if (largeIn != null) {
            byte[] b = new byte[largeIn.position() - LARGE_HEADROOM];
            largeIn.duplicate().position(LARGE_HEADROOM).get(b);
            return b;
        }
        if (heapFrame != null) {
            return java.util.Arrays.copyOf(heapFrame, heapArrived);
        }
        if (in != null && in.position() > 0) {
            byte[] b = new byte[in.position()];
            in.duplicate().flip().get(b);
            return b;
        }
        return java.util.Arrays.copyOf(carry == null ? new byte[0] : carry, carryLen);
    }

    /**
     * Hand-over restore: {@code bytes} ({@link #unhandledBytes} of the bus this one replaces) go
     * through this assembler as if a read had just returned them, before the socket is read, so
     * they end up where this bus keeps such a frame (the carry, a large frame's own buffer, the
     * heap) under this bus's budgets; then the frame's read credentials are put back, so a frame
     * whose later reads come from another process is still marked mixed. The received fds it
     * claims are restored first ({@link PendingFds#restore}).
     */
    void restore(byte[] bytes, ReadCreds creds) {
        inBurst = true;
        try {
            int at = 0;
            while (at < bytes.length && !session.isClosed()) {
                if (largeIn == null && in == null) {
                    beginBurst();
                }
                ByteBuffer target = largeIn != null ? largeIn : in;
                if (heapFrame != null) {
                    in.limit(Math.min(in.capacity(), in.position() + heapFrameLen - heapArrived));
                }
                int n = Math.min(target.remaining(), bytes.length - at);
                if (n <= 0) {
                    throw new IllegalStateException("carried input does not fit its frame: " + (bytes.length - at)
                            + " bytes left");
                }
                target.put(bytes, at, n);
                at += n;
                if (!took(target)) {
                    return;
                }
            }
        } finally {
            inBurst = false;
            endBurst();
        }
        firstPid = creds.firstPid();
        firstUid = creds.firstUid();
        firstGid = creds.firstGid();
        partialMixed = creds.partialMixed();
        frameContinues = creds.frameContinues();
    }

    /** Hand-over: whether any input was read but not yet handled (a carry, a partial large or heap frame). */
    boolean holdsUnhandledInput() {
        return carriedBytes() > 0 || carryLen > 0 || largeIn != null || heapFrame != null;
    }

    /** Input bytes kept between bursts (the start of a partial frame). */
    int carriedBytes() {
        return in != null && !server.buffers().isScratch(in) ? in.position() : carryLen;
    }
}
