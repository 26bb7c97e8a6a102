package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.nio.ByteBuffer;

import org.kdbusbridge.bridge.driver.DBusErrors;
import org.kdbusbridge.bridge.driver.DriverCall;
import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.MessageFraming;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.MessageWriter;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.protocol.SaslServer;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.Delivery;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client socket: SASL, then frames in, validated messages to the driver or the core, and
 * the connection's receive pool drained back out.
 *
 * Invariants: runs on the loop thread only; never blocks (reads and writes are non-blocking,
 * a full socket just arms WRITE interest); a protocol violation closes this session and no
 * other; nothing is read from the socket after close; the input buffer never holds more than
 * one maximum-size message plus one read.
 *
 * Unix fds: the socket is always read with recvmsg, so SCM_RIGHTS fds are never silently
 * dropped; received fds wait in {@link PendingFds} (FIFO, bounded by max_incoming_unix_fds) and
 * a complete message takes as many as its UNIX_FDS field says, which must all have arrived (fds
 * come with a message's first byte), else the client is disconnected. Fds still pending when
 * the input holds no partial message belong to nothing and are closed; fds pending longer than
 * pending_fd_timeout disconnect the client. On the way out a message with fds is always the
 * first byte of a sendmsg, and its FdSet reference is held until that sendmsg succeeded.
 * Every fd this session owns is closed on close().
 *
 * Large input: a frame of at least {@link #zeroCopyThreshold} (and at most LARGE_IN_PLACE_MAX)
 * bytes that has not fully arrived is moved, with what has, into a pooled direct buffer behind
 * LARGE_HEADROOM free bytes, and the rest is read straight there ({@code largeIn}; never past
 * the frame's end, so the next message stays in the socket). Its header is then rewritten into
 * the headroom with SENDER spliced in and the buffer becomes the payload: the body is copied
 * by the kernel once and never by us. Frames in flight this way hold a bus-wide reservation
 * (BusServer.LARGE_FRAMES_RESERVE); past it, frames take the grow-as-data-arrives path.
 *
 * Direct-memory budget: when DirectBuffers refuses a buffer (its budget, kept below the JVM's
 * direct-memory limit, is spent), a large frame is read through the loop's input buffer into a
 * heap array that grows as data arrives ({@code heapFrame}), and a large payload is spliced
 * into a heap array; such a message is copied into each receiver's output buffer like a small
 * one. A heap fallback rather than pausing READ: the budget may be held for a long time by
 * payloads queued at slow receivers, or be smaller than the frame, and a paused sender could
 * then wait forever; the heap is bounded as before by max_message_size, the in-flight
 * reservation and the receivers' pools.
 *
 * Output: small messages are copied into {@code out} (many per send); a message of at least
 * {@link #zeroCopyThreshold} bytes is spliced once into a direct buffer at admission (or was
 * read into one, above) and written to each receiver's socket straight from that shared buffer
 * (through {@code large}, a private read-only view), never copied per receiver. {@code large} is set only while
 * {@code out} is empty and is the pool's head message; that message stays in the pool (charged)
 * until its last byte was sent.
 *
 * Buffers follow use: an idle session, authenticated or not, holds no I/O buffer. Input is
 * read into the loop's one 64 KiB input buffer for a read burst; what is left of a partial
 * frame at its end is copied out into {@code carry} (a right-sized heap array: below 64 KiB,
 * since bigger frames are read in place or into a buffer borrowed while they arrive) and
 * copied back before the next burst, so the shared buffer is free for the next socket. The
 * copy is at most one partial frame per burst of up to 16 reads; keeping a pooled buffer per
 * partial connection instead would let slow writers pin 64 KiB each. SASL needs no buffer of
 * its own (SaslServer keeps the partial line) and bytes after BEGIN are framed from the same
 * buffer. Output takes a 64 KiB buffer from DirectBuffers only while bytes are pending and
 * gives it back when drained; when none can be lent (the bound is reached) this flush uses the
 * loop's output fallback buffer and copies what the socket did not take into {@code outCarry}
 * on the heap: never a direct allocation past the bound (the JDK's reservation path runs
 * System.gc() and sleeps), never a wait.
 *
 * Input throttling (dbus-daemon's max_incoming_bytes / max_incoming_unix_fds): while the bytes
 * or fds of this client's messages still queued anywhere in the bus are at or over the limit,
 * READ interest is off and nothing is read; the core's drained notice turns it back on. A
 * client that hangs up while throttled is read to its end regardless (the kernel buffer bounds
 * it), so a HUP can never spin the loop.
 */
final class ClientSession implements EventLoop.IoHandler, ConnectionSink, SocketConnection.FdSink {
    private static final Logger LOG = LoggerFactory.getLogger(ClientSession.class);
    private static final int INITIAL_BUFFER = DirectBuffers.IO_BUFFER;
    /** A carry array at most this big is kept for reuse once emptied; a bigger one is dropped. */
    static final int CARRY_KEEP = 1024;
    private static final int MAX_READS_PER_WAKEUP = 16;
    /** The size from which the zero-copy path pays off (measured: docs/performance.md). */
    static final int ZERO_COPY_SIZE = 64 * 1024;
    /**
     * Messages at least this large are held in a direct buffer and written without a per-receiver
     * copy; the buffer is freed when the last queue lets the message go (SealedPayload.free).
     * {@code -Dkdbus.zeroCopyThreshold=N} changes it (a huge value turns the path off).
     */
    static volatile int zeroCopyThreshold = Integer.getInteger("kdbus.zeroCopyThreshold", ZERO_COPY_SIZE);
    private static final java.util.function.IntConsumer CLOSE_FD = fd -> org.kdbusbridge.bridge.transport.LibC.INSTANCE.close(fd);
    /** Bytes left free before a large frame read in place, for its rewritten header (see below). */
    static final int LARGE_HEADROOM = 512;
    /** Large frames up to this size are read straight into their payload buffer. */
    static final int LARGE_IN_PLACE_MAX = 16 * 1024 * 1024;

    private final BusServer server;
    private final SocketConnection socket;
    private final Connection conn;
    private final SaslServer sasl;
    private final MessageHeader header = new MessageHeader();
    /**
     * The input buffer (write mode): during a read burst the loop's shared input scratch, or a
     * larger buffer borrowed while a big (not zero-copy) frame arrives. Null between bursts
     * unless it is such a borrowed buffer: an idle session holds no input buffer at all.
     */
    private ByteBuffer in;
    /**
     * Input kept between bursts: the start of a partial frame (or, right after SASL, pipelined
     * bytes) copied out of the scratch, {@code carryLen} bytes. Right-sized to what is left
     * (a frame under 64 KiB; bigger ones are read in place or into a borrowed buffer).
     */
    private byte[] carry;
    private int carryLen;
    /** A read burst is running: {@code in} is in use, and only endBurst may give it back. */
    private boolean inBurst;
    /**
     * Output being sent (read mode): a lent I/O buffer while bytes wait for the socket, or the
     * loop's output scratch for the duration of one flush when none can be lent. Null when no
     * output is pending.
     */
    private ByteBuffer out;
    /**
     * Bytes to send after {@code out}'s and before the pool's messages: SASL replies, or what a
     * flush from the scratch left unsent.
     */
    private byte[] outCarry;
    private int outCarryLen;
    private boolean authenticated;
    private boolean closed;
    private boolean writeArmed;
    /** Set once this socket's send buffer was asked to grow (LARGE_SEND_BUFFER). */
    private boolean sendBufferRequested;

    /**
     * SO_SNDBUF asked for a connection the first time a large message (a zero-copy payload,
     * 64 KiB and up) does not fit into its socket: the kernel's default (212992 bytes)
     * takes a 1 MiB message in five sends, each waking the reader. The kernel caps the
     * request at net.core.wmem_max; only connections that receive large messages pay for it.
     * -Dkdbus.largeSendBuffer=BYTES, 0 keeps the kernel's default (docs/performance.md).
     */
    static final int LARGE_SEND_BUFFER = Integer.getInteger("kdbus.largeSendBuffer", 1 << 20);
    /** Reading stopped: this client's messages queued in the bus are over max_incoming_*. */
    private boolean readPaused;
    private boolean dirty;
    /** Bytes of the pool's head message already copied into {@code out}. */
    private int headOffset;
    /** A view of the pool's head message being written straight from its shared direct payload, or null. */
    private ByteBuffer large;
    /**
     * A large frame being read straight into the buffer that becomes its payload: the frame sits
     * at [LARGE_HEADROOM, limit), position = how far it has arrived. Null when none is.
     * Reading it there spares the copy from the input buffer into the payload; the headroom
     * takes the header with SENDER spliced in, so the body never moves.
     */
    private ByteBuffer largeIn;
    /**
     * A large frame being read on the heap because no direct buffer could be had: its
     * {@code heapFrameLen} bytes, {@code heapArrived} of them so far (the array grows as they
     * arrive). Read through {@code in}, never past the frame's end. Null when none is.
     */
    private byte[] heapFrame;
    private int heapFrameLen;
    /**
     * What this session holds against the bus's {@link InputHeap} for its peer's uid: its carry
     * array, a heap frame's full length (charged before the array grows to it) and, during SASL,
     * the line buffer. Given back on close.
     */
    private long inputHeld;
    /** What {@code outCarry}'s array is charged to the peer's uid in the same ledger (InputHeap). */
    private long outputHeld;
    private int heapArrived;
    /** The buffer the frame being handled is in: {@code in}, {@code largeIn}'s buffer, or a heap frame's. */
    private ByteBuffer frameBuf;
    /** Set by toCore when the frame's own (direct) buffer became the payload. */
    private boolean frameAdopted;
    private EventLoop.Timer authTimer;
    /** Received fds not yet claimed by a complete message, and their timer. */
    private final PendingFds pending;
    private boolean fdOverflow;
    /** The fds to attach to the first byte of {@code out}, or null; this session holds a reference. */
    private FdSet outFds;
    private int[] outFdScratch;

    ClientSession(BusServer server, SocketConnection socket, Connection conn, SaslServer sasl) {
        this.server = server;
        this.pending = new PendingFds(() -> server.limits().maxIncomingUnixFds, CLOSE_FD);
        this.socket = socket;
        this.conn = conn;
        this.sasl = sasl;
        // No buffers here: input and output buffers are taken when I/O happens (beginBurst,
        // ensureOutput), so a connection that is idle or still authenticating holds none.
    }

    Connection connection() {
        return conn;
    }

    boolean isAuthenticated() {
        return authenticated;
    }

    long authenticatedUid() {
        return sasl.authenticatedUid();
    }

    /** Hello succeeded: the connection is complete, and auth_timeout no longer applies. */
    private void helloCompleted() {
        if (authTimer != null) {
            authTimer.cancel();
            authTimer = null;
        }
    }

    void start(EventLoop loop, long authTimeoutMs) {
        loop.register(socket.fd(), EventLoop.READ, this);
        authTimer = loop.schedule(authTimeoutMs, new AuthExpiry(authTimeoutMs));
    }

    // Per-connection and per-call callbacks are inner classes, not lambdas: under C1 (what we
    // ship) a capturing lambda allocates through a slow runtime call each time it is evaluated.

    /**
     * Closes the connection if it has not completed Hello when the auth timer fires: as in
     * dbus-daemon, auth_timeout (from connect) bounds the whole incomplete phase, so a client
     * whose Hello a connection limit refused cannot hold its socket longer.
     */
    private final class AuthExpiry implements Runnable {
        private final long timeoutMs;

        AuthExpiry(long timeoutMs) {
            this.timeoutMs = timeoutMs;
        }

        @Override
        public void run() {
            if (conn.uniqueName() == null && !closed) {
                LOG.info("Connection {} has not {} within auth_timeout={} ms, closing", ClientSession.this,
                        authenticated ? "completed Hello" : "authenticated", timeoutMs);
                close("auth timeout");
            }
        }
    }

    @Override
    public void onReady(int fd, int readyEvents) {
        if (closed) {
            return;
        }
        server.enterIo();
        try {
            if ((readyEvents & EventLoop.WRITE) != 0) {
                flush();
            }
            if (!closed && (readyEvents & (EventLoop.READ | EventLoop.HUP | EventLoop.ERROR)) != 0) {
                readAvailable((readyEvents & (EventLoop.HUP | EventLoop.ERROR)) != 0);
            }
        } catch (IOException e) {
            close(e.getMessage());
        } finally {
            server.leaveIo();
        }
    }

    private void readAvailable(boolean hangup) throws IOException {
        inBurst = true;
        try {
            readBurst(hangup);
        } finally {
            inBurst = false;
            endBurst();
        }
    }

    private void readBurst(boolean hangup) throws IOException {
        for (int i = 0; i < MAX_READS_PER_WAKEUP && !closed && !closing; i++) {
            if (!hangup && authenticated && conn.isIncomingOverLimit()) {
                pauseReading(true);
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
            int n = socket.readWithFds(target, this);
            if (fdOverflow) {
                LOG.warn("Disconnecting {}: more than max_incoming_unix_fds={} fds pending", this,
                        server.limits().maxIncomingUnixFds);
                close("too many pending fds");
                return;
            }
            if (n < 0) {
                close(null);
                return;
            }
            if (n == 0) {
                return;
            }
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
                    return;
                }
                in.clear();
                if (heapArrived == heapFrameLen) {
                    finishHeapFrame();
                }
            } else {
                process();
            }
            if (n < room && !hangup) {
                // A short read drained the socket: the (level-triggered) loop reports it again
                // when more arrives, so a read that would only say EAGAIN is saved.
                return;
            }
        }
    }

    /** Consumes whatever complete units (SASL lines, messages) the input holds. */
    private void process() {
        in.flip();
        try {
            if (!authenticated) {
                SaslServer.Result r = sasl.feed(in);
                if (sasl.hasOutput()) {
                    queueRaw(sasl.takeOutput());
                }
                if (!holdInputHeap(carryBytes(), heapFrameBytes(), r == SaslServer.Result.CONTINUE ? sasl.heldBytes() : 0)) {
                    in.clear();
                    return;
                }
                if (r == SaslServer.Result.REJECT_DISCONNECT) {
                    LOG.info("Connection {} rejected during authentication: {}", this, sasl.disconnectReason());
                    in.clear();
                    closeAfterFlush();
                    return;
                }
                if (r == SaslServer.Result.AUTHENTICATED) {
                    authenticated = true;
                    conn.setAcceptsUnixFds(sasl.unixFdNegotiated());
                    // The auth timer keeps running: it is cancelled by a successful Hello.
                    server.onAuthenticated(this, sasl.authenticatedUid());
                }
            }
            while (authenticated && !closed && !closing) {
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
                    if (len >= zeroCopyThreshold && len <= LARGE_IN_PLACE_MAX && server.reserveLargeFrame(len)) {
                        if (startLargeFrame((int) len)) {
                            break; // the rest is read straight into its payload buffer
                        }
                        server.releaseLargeFrame(len); // no direct buffer within the budget
                    }
                    if (pos + len > in.capacity()) {
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
                frameBuf = in;
                handleFrame(pos, (int) len);
                in.position(pos + (int) len);
            }
        } catch (ProtocolException e) {
            closeForProtocolViolation(e);
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
        in.compact();
        shrinkIfIdle();
        armPendingFdTimer();
    }

    // --- received fds -----------------------------------------------------------------------

    @Override
    public void acceptFd(int fd) {
        if (closed) {
            CLOSE_FD.accept(fd);
            return;
        }
        if (!pending.accept(fd)) {
            fdOverflow = true;
        }
    }

    /** Created once: arming the timer allocates nothing per read. */
    private final Runnable pendingFdTimeout = this::pendingFdTimedOut;

    private void pendingFdTimedOut() {
        if (!closed) {
            LOG.warn("Disconnecting {}: it sent fds and did not complete the message within "
                    + "pending_fd_timeout={} ms", this, server.limits().pendingFdTimeout);
            close("pending fd timeout");
            server.flushDirty();
        }
    }

    private void armPendingFdTimer() {
        pending.armTimer(server.loop(), server.limits().pendingFdTimeout, closed, pendingFdTimeout);
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

    /** The heap frame has fully arrived: handle it (its payload is a heap copy, see toCore). */
    private void finishHeapFrame() {
        ByteBuffer whole = ByteBuffer.wrap(heapFrame, 0, heapFrameLen);
        int len = heapFrameLen;
        heapFrame = null;
        heapFrameLen = 0;
        heapArrived = 0;
        holdInputHeap(carryBytes(), 0, 0); // a shrink: always allowed
        frameBuf = whole;
        try {
            handleWholeFrame(0, len);
        } finally {
            frameBuf = in;
        }
        if (!closed && inputEmpty() && pending.count() > 0) {
            pending.closeAll(); // as process(): nothing buffered, and fds come with a message's first byte
        }
        armPendingFdTimer();
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
        if (closed) {
            if (!server.buffers().isScratch(b)) {
                server.buffers().give(b); // close() left it to us: the burst was still using it
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
                if (!holdInputHeap(size, heapFrameBytes(), authenticated ? 0 : sasl.heldBytes())) {
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

    /** A frame assembled outside the input buffer: an error ends this connection only. */
    private void handleWholeFrame(int pos, int len) {
        try {
            handleFrame(pos, len);
        } catch (ProtocolException e) {
            closeForProtocolViolation(e);
        } catch (OutOfMemoryError e) {
            closeForOutOfMemory();
        }
    }

    private void handleFrame(int pos, int len) throws ProtocolException {
        header.wrap(frameBuf, pos, len);
        header.validateBody();
        long nfds = header.unixFds();
        if (nfds == 0) {
            route(pos, null);
            return;
        }
        if (nfds > server.limits().maxMessageUnixFds) {
            throw new ProtocolException("message claims " + nfds + " unix fds, more than max_message_unix_fds="
                    + server.limits().maxMessageUnixFds);
        }
        if (!sasl.unixFdNegotiated()) {
            throw new ProtocolException("message carries unix fds but the client did not negotiate them");
        }
        if (nfds > pending.count()) {
            throw new ProtocolException("message claims " + nfds + " unix fds but " + pending.count() + " arrived");
        }
        FdSet fds = pending.take((int) nfds);
        try {
            route(pos, fds);
        } finally {
            fds.release(); // receive pools that took the message hold their own references
        }
    }

    private void route(int pos, FdSet fds) throws ProtocolException {
        String dest = header.destination();
        boolean toDriver = Bus.DRIVER_NAME.equals(dest);
        if (!conn.isActive()) {
            // As libdbus's dbus_message_is_method_call: a missing interface matches any.
            String iface = header.iface();
            if (dest == null && header.type() != Message.SIGNAL) {
                // dbus-daemon handles these below its routing, Hello or not: a call is
                // answered as the peer, a reply or error dropped; neither breaks the Hello rule.
                showToMonitors(pos, null, fds);
                if (header.type() == Message.METHOD_CALL) {
                    server.driver().answerUnaddressed(conn, header.serial(), iface, header.member(), header.signature());
                }
                return;
            }
            if (toDriver && header.type() == Message.METHOD_CALL && "Hello".equals(header.member())
                    && (iface == null || Bus.DRIVER_NAME.equals(iface))) {
                server.driver().handle(driverCall(pos, dest, fds));
                if (conn.isActive()) {
                    helloCompleted();
                }
            } else if (toDriver) {
                showToMonitors(pos, dest, fds); // dbus-daemon shows it, from :not.active.yet
                server.driver().emitter().error(conn, header.serial(), DBusErrors.ACCESS_DENIED,
                        "Client tried to send a message other than Hello without being registered");
            } else {
                showToMonitors(pos, dest, fds); // monitors see it before the disconnect, as in dbus-daemon
                throw new ProtocolException("Client tried to send a message other than Hello without being registered");
            }
            return;
        }
        if (server.bus().isMonitor(conn)) {
            throw new ProtocolException("a monitor connection sent a message");
        }
        if (toDriver) {
            if (!conn.policy().allowsAllSends()) {
                org.kdbusbridge.core.policy.PolicyQuery q = server.bus().policyQuery()
                        .type(header.type()).hasReplySerial(header.hasReplySerial()).path(header.path())
                        .iface(header.iface()).member(header.member()).error(header.errorName())
                        .fds(fds == null ? 0 : fds.count());
                if (!server.bus().checkSendToDriver(conn, q)) {
                    String text = server.bus().driverDenialText(conn, q);
                    // Monitors see it first, as in dbus-daemon; then the sender gets AccessDenied.
                    showToMonitors(pos, dest, fds);
                    server.driver().emitter().error(conn, header.serial(), DBusErrors.ACCESS_DENIED, text);
                    return;
                }
            }
            server.driver().handle(driverCall(pos, dest, fds));
            return;
        }
        // Read before toCore may overwrite the header: an unaddressed call's answer names it.
        String signature = dest == null && header.type() == Message.METHOD_CALL ? header.signature() : null;
        Message m = toCore(pos, dest, fds, true);
        Delivery d = server.bus().send(conn, m);
        if (d == Delivery.UNADDRESSED_CALL) {
            server.driver().answerUnaddressed(conn, m.serial(), m.iface(), m.member(), signature);
        } else if (d != Delivery.OK) {
            routingError(m, d);
        } else if (dest != null && (m.expectsReply() || m.type() == Message.METHOD_RETURN)) {
            server.loop().expectRelay(); // peer-to-peer call or reply: more is likely soon
        }
    }

    /**
     * The sealed, SENDER-stamped copy of the frame at {@code pos} that the core routes. A large
     * frame read in place becomes its own payload ({@code adopt}: not for driver captures, whose
     * call still reads the frame): its header is rewritten in the headroom, the body stays.
     */
    private Message toCore(int pos, String dest, FdSet fds, boolean adopt) throws ProtocolException {
        // Everything the header says is read before an in-place splice overwrites it.
        int type = header.type();
        int flags = header.flags();
        long serial = header.serial();
        long replySerial = header.hasReplySerial() ? header.replySerial() : Message.NO_REPLY_SERIAL;
        String path = header.path();
        String iface = header.iface();
        String member = header.member();
        String errorName = header.errorName();
        String signature = header.signature();
        // dbus-daemon's placeholder, so monitors never see a sender-less (or forged) message.
        String sender = conn.uniqueName() != null ? conn.uniqueName() : Bus.NOT_ACTIVE_YET;
        SealedPayload payload;
        ByteBuffer direct;
        if (adopt && frameBuf != in && frameBuf.isDirect()) { // route() calls this once per frame
            ByteBuffer whole = frameBuf;
            int start = MessageWriter.spliceSenderInPlace(whole, pos, header, sender);
            ByteBuffer view = whole.duplicate();
            view.limit(pos + header.length()).position(start);
            DirectBuffers pool = server.buffers();
            payload = new SealedPayload(view, unused -> pool.give(whole));
            frameAdopted = true;
        } else if (header.length() >= zeroCopyThreshold
                && (direct = server.buffers().take(MessageWriter.splicedLength(frameBuf, pos, header, sender))) != null) {
            payload = new SealedPayload(MessageWriter.spliceSenderDirect(frameBuf, pos, header, sender, n -> direct),
                    server.payloadRecycler());
        } else {
            // Small, or no direct buffer within the budget: a heap copy, written like a small message.
            payload = new SealedPayload(MessageWriter.spliceSender(frameBuf, pos, header, sender));
        }
        return new Message(type, flags, serial, replySerial, dest, path, iface, member, errorName, payload,
                new PayloadArgs(payload, signature), fds);
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

    private void closeForProtocolViolation(ProtocolException e) {
        LOG.warn("Disconnecting {}: protocol violation: {}", this, e.getMessage());
        close("protocol violation");
    }

    private int carryBytes() {
        return carry == null ? 0 : carry.length;
    }

    private int heapFrameBytes() {
        return heapFrame == null ? 0 : heapFrameLen;
    }

    /** The uid input is charged to: the peer's (SO_PEERCRED), -1 if unknown. */
    private long peerUid() {
        return conn.credentials() == null ? -1 : conn.credentials().uid();
    }

    /**
     * Sets this session's input hold to {@code carryBytes + frameBytes + saslBytes}. Past the
     * uid's or the bus's budget (growth only), the connection is closed with one log line per uid
     * per minute and false returned: the heap keeps room for everyone else.
     */
    private boolean holdInputHeap(long carryBytes, long frameBytes, long saslBytes) {
        long want = carryBytes + frameBytes + saslBytes;
        if (want == inputHeld) {
            return true;
        }
        InputHeap heap = server.inputHeap();
        long uid = peerUid();
        if (heap.resize(uid, inputHeld, want)) {
            inputHeld = want;
            return true;
        }
        if (heap.shouldLog(uid, System.nanoTime() / 1_000_000)) {
            LOG.warn("Disconnecting {}: its input would hold {} bytes of heap, past the input budget of uid {} ({}"
                    + " bytes, uid holds {}) or of all uids ({} bytes, all hold {}); logged once a minute per uid",
                    this, want, uid, heap.perUserBytes(), heap.used(uid), heap.busBytes(), heap.total());
        }
        close("input heap budget");
        return false;
    }

    /** One oversized client must not take the bus down with it. */
    private void closeForOutOfMemory() {
        LOG.error("Disconnecting {}: out of memory while receiving", this);
        close("out of memory");
    }

    /** The large frame has fully arrived: handle it from its own buffer. */
    private void finishLargeFrame() {
        ByteBuffer p = largeIn;
        largeIn = null;
        int len = p.limit() - LARGE_HEADROOM;
        server.releaseLargeFrame(len);
        frameBuf = p;
        frameAdopted = false;
        try {
            handleWholeFrame(LARGE_HEADROOM, len);
        } finally {
            // Not adopted (an error, a driver call): left to the GC, since a driver call or
            // an error reply may still hold views of it; the budget counts it until collected.
            // Adopted: its payload gives it back.
            frameBuf = in;
            if (!frameAdopted) {
                server.buffers().abandon(p);
            }
            frameAdopted = false;
        }
        if (!closed && inputEmpty() && pending.count() > 0) {
            pending.closeAll(); // as process(): nothing buffered, and fds come with a message's first byte
        }
        armPendingFdTimer();
    }

    private void routingError(Message m, Delivery d) {
        String dest = m.destination();
        switch (d) {
            case SERVICE_UNKNOWN -> sendError(m, DBusErrors.SERVICE_UNKNOWN,
                    "The name " + dest + " was not provided by any .service files");
            case NAME_HAS_NO_OWNER -> sendError(m, DBusErrors.NAME_HAS_NO_OWNER, "Name \"" + dest + "\" does not exist");
            case RECIPIENT_FULL -> {
                server.queueFullLog().accept("Message to " + dest + " from " + conn
                        + " dropped: the recipient's queue is full (max_outgoing_bytes)");
                sendError(m, DBusErrors.LIMITS_EXCEEDED, "The destination service \"" + dest + "\" has a full message queue");
            }
            // The same answer; the core logged the uid's refusal once a minute, so no line per message.
            case QUEUE_QUOTA -> sendError(m, DBusErrors.LIMITS_EXCEEDED,
                    "The destination service \"" + dest + "\" has a full message queue");
            case TOO_MANY_REPLIES -> sendError(m, DBusErrors.LIMITS_EXCEEDED,
                    "The maximum number of pending replies per connection has been reached (max_replies_per_connection="
                            + server.limits().maxRepliesPerConnection + ")");
            // dbus-daemon answers even a call sent with NO_REPLY_EXPECTED (bus_dispatch's error path).
            case ACCESS_DENIED -> sendError(m, DBusErrors.ACCESS_DENIED, server.bus().denialText(m));
            case DUPLICATE_SERIAL -> sendError(m, DBusErrors.ACCESS_DENIED,
                    "Message has the same reply serial as a currently-outstanding existing method call");
            // dbus-daemon's text, missing space included (bus/dispatch.c).
            case FDS_NOT_SUPPORTED -> sendError(m, DBusErrors.NOT_SUPPORTED, DBusErrors.FDS_NOT_SUPPORTED_TEXT);
            case UNSEALED_MEMFD -> sendError(m, DBusErrors.UNSEALED_PAYLOAD, "The recipient " + dest
                    + " accepts memfds only with F_SEAL_WRITE, F_SEAL_SHRINK and F_SEAL_GROW set");
            case TOO_MANY_ACTIVATIONS -> sendError(m, DBusErrors.LIMITS_EXCEEDED,
                    org.kdbusbridge.bridge.driver.Driver.tooManyActivations(dest, server.limits().maxPendingServiceStarts));
            default -> { }
        }
    }

    private void sendError(Message m, String name, String text) {
        server.driver().emitter().error(conn, m.serial(), name, text);
    }

    /** Shows the frame at {@code pos} to monitors, building nothing when there are none. */
    private void showToMonitors(int pos, String dest, FdSet fds) {
        if (server.bus().hasMonitors()) {
            new DriverCapture(pos, dest, fds).run();
        }
    }

    /** The frame at {@code pos} as a driver call; its capture hook shows it to monitors. */
    private DriverCall driverCall(int pos, String dest, FdSet fds) {
        return new DriverCall(conn, header.type(), header.flags(), header.serial(), header.path(), header.iface(),
                header.member(), header.signature(), BodyReader.of(header), new DriverCapture(pos, dest, fds));
    }

    /** Shows a driver call's frame to monitors (run by the driver, while the frame is current). */
    private final class DriverCapture implements Runnable {
        private final int pos;
        private final String dest;
        private final FdSet fds;

        DriverCapture(int pos, String dest, FdSet fds) {
            this.pos = pos;
            this.dest = dest;
            this.fds = fds;
        }

        @Override
        public void run() {
            if (server.bus().hasMonitors()) {
                try {
                    server.bus().admitToDriver(conn, toCore(pos, dest, fds, false));
                } catch (ProtocolException e) {
                    LOG.debug("Not captured: {}", e.getMessage());
                }
            }
        }
    }

    // --- output ---------------------------------------------------------------------------

    /** SASL replies go out ahead of any message (there are none before auth completes). */
    private void queueRaw(byte[] bytes) {
        int pending = outCarryLen + (out != null ? out.remaining() : 0);
        if (pending + bytes.length > INITIAL_BUFFER) {
            LOG.warn("Disconnecting {}: authentication output overflow", this);
            close("auth output overflow");
            return;
        }
        appendOutCarry(bytes, 0, bytes.length);
        holdOutputHeap();
        markDirty();
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

    @Override
    public void onQueued(Connection connection) {
        markDirty();
    }

    private void markDirty() {
        if (!dirty && !closed) {
            dirty = true;
            server.markDirty(this);
        }
    }

    void clearDirty() {
        dirty = false;
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
        while (!closed) {
            if (large == null) {
                ensureOutput();
                fillOutput();
            }
            ByteBuffer src = large != null ? large : out;
            if (!src.hasRemaining()) {
                setWriteInterest(false);
                if (closing) {
                    close(null);
                }
                return;
            }
            int n;
            if (outFds != null) {
                n = socket.writeWithFds(src, outFdScratch, outFds.count());
                if (n > 0) {
                    outFds.release(); // passed: the kernel holds its own copies now
                    outFds = null;
                }
            } else {
                n = socket.write(src);
            }
            if (large != null && !large.hasRemaining()) {
                large = null; // all of it sent: only now does it leave the pool
                conn.pool().pop();
                continue;
            }
            if (large != null && !sendBufferRequested && LARGE_SEND_BUFFER > 0) {
                // A large message did not fit: a bigger socket buffer takes the rest of it in
                // one send, so the reader wakes once per message, not once per 200 KiB.
                sendBufferRequested = true;
                if (socket.requestSendBuffer(LARGE_SEND_BUFFER)) {
                    continue;
                }
            }
            if (n == 0 || src.hasRemaining()) {
                setWriteInterest(true);
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
     * After a flush: a drained buffer goes back; a lent one keeps its unsent bytes until the
     * socket takes them; the scratch's unsent bytes are copied out ahead of {@code outCarry}.
     */
    private void releaseOutput() {
        ByteBuffer b = out;
        if (b == null || closed) {
            return;
        }
        boolean scratch = server.buffers().isScratch(b);
        if (!b.hasRemaining()) {
            out = null;
            if (!scratch) {
                server.buffers().giveIo(b);
            }
        } else if (scratch) {
            out = null;
            int n = b.remaining();
            int total = n + outCarryLen;
            // The unsent bytes go before the carry; its array is reused when it is big enough.
            byte[] merged = outCarry != null && outCarry.length >= total ? outCarry : new byte[total];
            if (outCarryLen > 0) {
                System.arraycopy(outCarry, 0, merged, n, outCarryLen); // overlap-safe
            }
            b.get(merged, 0, n);
            outCarry = merged;
            outCarryLen = total;
            holdOutputHeap();
        }
    }

    /**
     * Charges {@code outCarry}'s array (output the socket did not take while no output buffer
     * could be lent, at most about one buffer's worth) to the peer's uid, as input held on the
     * heap is: a thousand slow readers would otherwise hold 64 KiB each, uncounted. Past the
     * budget the connection is closed with one log line per uid per minute.
     */
    private void holdOutputHeap() {
        long want = outCarry == null ? 0 : outCarry.length;
        if (want == outputHeld || closed) {
            return;
        }
        InputHeap heap = server.inputHeap();
        long uid = peerUid();
        if (heap.resize(uid, outputHeld, want)) {
            outputHeld = want;
            return;
        }
        if (heap.shouldLog(uid, System.nanoTime() / 1_000_000)) {
            LOG.warn("Disconnecting {}: output it does not read would hold {} bytes of heap, past the budget of uid {} ({}"
                    + " bytes, uid holds {}) or of all uids ({} bytes, all hold {}); logged once a minute per uid",
                    this, want, uid, heap.perUserBytes(), heap.used(uid), heap.busBytes(), heap.total());
        }
        close("output heap budget");
    }

    private void fillOutput() {
        out.compact();
        try {
            if (outCarryLen > 0) {
                // Bytes already taken from the pool (or SASL replies) go before any new message.
                int n = Math.min(outCarryLen, out.remaining());
                out.put(outCarry, 0, n);
                System.arraycopy(outCarry, n, outCarry, 0, outCarryLen - n);
                outCarryLen -= n;
                if (outCarryLen > 0) {
                    return;
                }
                if (outCarry.length > CARRY_KEEP) {
                    outCarry = null;
                    holdOutputHeap();
                }
            }
            while (out.hasRemaining()) {
                Message m = conn.pool().peek();
                if (m == null) {
                    break;
                }
                boolean zeroCopy = headOffset == 0 && m.payload().isDirect();
                if (zeroCopy && out.position() > 0) {
                    break; // send the small messages before it first
                }
                if (headOffset == 0 && m.fds() != null) {
                    // Its fds must ride on its first byte: start a fresh sendmsg for it.
                    if (out.position() > 0 || outFds != null) {
                        break;
                    }
                    FdSet f = m.fds();
                    if (outFdScratch == null || outFdScratch.length < f.count()) {
                        outFdScratch = new int[Math.max(f.count(), 16)];
                    }
                    for (int i = 0; i < f.count(); i++) {
                        outFdScratch[i] = f.fd(i);
                    }
                    outFds = f.retain();
                }
                if (zeroCopy) {
                    large = m.payload().view(); // written from the shared payload by flush()
                    break;
                }
                headOffset += m.payload().copyTo(headOffset, out);
                if (headOffset < m.size()) {
                    break;
                }
                headOffset = 0;
                conn.pool().pop();
            }
        } finally {
            out.flip();
        }
    }

    private void setWriteInterest(boolean on) {
        if (on != writeArmed && !closed) {
            writeArmed = on;
            updateInterest();
        }
    }

    private void pauseReading(boolean on) {
        if (on != readPaused && !closed) {
            readPaused = on;
            if (on) {
                LOG.debug("{} over max_incoming_bytes/unix_fds ({} bytes, {} fds queued): not reading", this,
                        conn.incomingBytes(), conn.incomingFds());
            }
            updateInterest();
        }
    }

    private void updateInterest() {
        server.loop().modify(socket.fd(), (readPaused ? 0 : EventLoop.READ) | (writeArmed ? EventLoop.WRITE : 0));
    }

    /** The core says enough of this client's messages left the bus: read it again. */
    @Override
    public void onIncomingDrained(Connection connection) {
        pauseReading(false);
    }

    /** Whether input is throttled now (tests). */
    boolean isReadPaused() {
        return readPaused;
    }

    private boolean closing;

    /** Sends what is queued (e.g. a SASL REJECTED), then closes. */
    void closeAfterFlush() {
        closing = true;
        markDirty();
    }

    void close(String reason) {
        if (closed) {
            return;
        }
        closed = true;
        if (authTimer != null) {
            authTimer.cancel();
        }
        if (reason != null) {
            LOG.debug("Closing {}: {}", this, reason);
        }
        server.loop().forgetBeforeClose(socket.fd());
        socket.close(); // fds still in the kernel's receive queue die with the socket
        pending.closeAll();
        // Nothing touches a closed session's buffers again (every entry point checks closed).
        if (!inBurst) {
            // Mid-burst (closed from inside its own frame handling) process() may still touch
            // the buffer: endBurst gives it back. The scratch is never ours to reset here:
            // another session's burst may be using it.
            if (in != null && !server.buffers().isScratch(in)) {
                server.buffers().give(in);
            }
            in = null;
        }
        carry = null;
        carryLen = 0;
        if (out != null && !server.buffers().isScratch(out)) {
            server.buffers().giveIo(out);
        }
        out = null;
        outCarry = null;
        outCarryLen = 0;
        pending.cancelTimer();
        if (outFds != null) {
            outFds.release();
            outFds = null;
        }
        large = null;
        if (largeIn != null) {
            server.releaseLargeFrame(largeIn.limit() - LARGE_HEADROOM);
            server.buffers().abandon(largeIn); // half a frame: left to the GC, counted until collected
            largeIn = null;
        }
        heapFrame = null;
        if (inputHeld != 0) {
            server.inputHeap().resize(peerUid(), inputHeld, 0);
            inputHeld = 0;
        }
        if (outputHeld != 0) {
            server.inputHeap().resize(peerUid(), outputHeld, 0);
            outputHeld = 0;
        }
        server.onClosed(this);
    }

    boolean isClosed() {
        return closed;
    }

    /** Buffer bytes this session holds between events: borrowed/lent buffers and carry arrays (loop thread). */
    long heldBufferBytes() {
        long n = 0;
        if (in != null && !server.buffers().isScratch(in)) {
            n += in.capacity();
        }
        if (out != null && !server.buffers().isScratch(out)) {
            n += out.capacity();
        }
        n += carry != null ? carry.length : 0;
        n += heapFrame != null ? heapFrame.length : 0;
        n += outCarry != null ? outCarry.length : 0;
        return n;
    }

    /** Input bytes kept between bursts (the start of a partial frame), loop thread. */
    int carriedInputBytes() {
        return in != null && !server.buffers().isScratch(in) ? in.position() : carryLen;
    }

    @Override
    public String toString() {
        String name = conn.uniqueName();
        return (name != null ? name : "fd " + socket.fd()) + " (uid " + socket.peer().uid() + ", pid " + socket.peer().pid() + ")";
    }
}
