package org.kdbusbridge.bridge.server;

import java.io.IOException;

import org.kdbusbridge.bridge.driver.DBusErrors;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.protocol.SaslServer;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.bridge.transport.SocketConnection;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.Delivery;
import org.kdbusbridge.core.bus.DisconnectReason;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.MessageFacts;
import org.kdbusbridge.core.policy.PolicyQuery;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client socket, the glue between its parts: {@link SaslPhase} (SASL, then Hello, within
 * auth_timeout), {@link InputAssembler} (bytes to whole frames, large ones read in place),
 * {@link PendingFds} (received fds until a message claims them), {@link InboundFrame} (a frame
 * as a core message or a driver call) and {@link OutputWriter} (the receive pool to the
 * socket). The session decides where a frame goes and owns the socket's epoll interest.
 *
 * Invariants: runs on the loop thread only; never blocks (reads and writes are non-blocking,
 * a full socket just arms WRITE interest); a protocol violation closes this session and no
 * other; nothing is read from the socket after close, and every fd and buffer the parts hold
 * is given back by close(); an idle session, authenticated or not, holds no I/O buffer.
 *
 * Unix fds (see PendingFds) pending longer than pending_fd_timeout disconnect the client.
 *
 * Input throttling (dbus-daemon's max_incoming_bytes / max_incoming_unix_fds): while the bytes
 * or fds of this client's messages still queued anywhere in the bus are at or over the limit,
 * READ interest is off and nothing is read; the core's drained notice turns it back on. A
 * client that hangs up while throttled is read to its end regardless (the kernel buffer bounds
 * it), so a HUP can never spin the loop.
 */
final class ClientSession implements EventLoop.IoHandler, ConnectionSink {
    private static final Logger LOG = LoggerFactory.getLogger(ClientSession.class);
    static final java.util.function.IntConsumer CLOSE_FD = fd -> org.kdbusbridge.bridge.transport.LibC.INSTANCE.close(fd);

    private final BusServer server;
    private final SocketConnection socket;
    private final Connection conn;
    private final SaslPhase sasl;
    /** Received fds not yet claimed by a complete message, and their timer. */
    private final PendingFds pending;
    private final InboundFrame frame;
    private final InputAssembler input;
    private final OutputWriter output;
    private boolean closed;
    /** Close once the queued output (e.g. a SASL REJECTED) is sent. */
    private boolean closing;
    private boolean dirty;
    private boolean writeArmed;
    /** Reading stopped: this client's messages queued in the bus are over max_incoming_*. */
    private boolean readPaused;
    /** The sender's side of AttachMetadata, made once somebody wants a sender item. */
    private MetadataStamp stamp;
    /** In BusServer's list of sessions whose pidfd cache is not empty. */
    private boolean pidfdsListed;

    ClientSession(BusServer server, SocketConnection socket, Connection conn, SaslServer sasl) {
        this.server = server;
        this.socket = socket;
        this.conn = conn;
        // Made once per connection (a method reference, not a lambda per arm).
        this.pending = new PendingFds(CLOSE_FD, this::pendingFdTimedOut);
        this.frame = new InboundFrame(server, conn, this::senderFacts);
        this.sasl = new SaslPhase(this, server, sasl, frame);
        this.input = new InputAssembler(this, server, socket, this.sasl, pending, frame);
        this.output = new OutputWriter(this, server, socket, conn);
        // No buffers here: they are taken when I/O happens, so an idle connection holds none.
    }

    Connection connection() { return conn; }
    OutputWriter output() { return output; }
    boolean isAuthenticated() { return sasl.isAuthenticated(); }
    long authenticatedUid() { return sasl.authenticatedUid(); }
    boolean isClosed() { return closed; }
    boolean isClosing() { return closing; }
    /** Whether input is throttled now (tests). */
    boolean isReadPaused() { return readPaused; }

    SocketConnection socket() { return socket; }
    /** Hand-over: read but unhandled input, or committed but unsent output (step 5 carries these). */
    boolean holdsPartialIo() { return input.holdsUnhandledInput() || output.holdsUnsentOutput(); }
    /** Hand-over: why this session's I/O state cannot be carried, or null (only a capture inside a burst or flush). */
    String uncarriedIo() {
        String in = input.uncarriedInput();
        return in != null ? in : output.uncarriedOutput();
    }
    /** Received fds not yet claimed by a message. */
    int pendingFdCount() { return pending.count(); }
    /** Hand-over: the fds received ahead of their frame, oldest first, and ms left of their timer. */
    int[] pendingFds() { return pending.waiting(); }
    long pendingRemainingMs() { return pending.remainingMs(); }
    /** Hand-over: the SASL exchange in progress (null once authenticated) and ms left of auth_timeout. */
    SaslServer.Progress saslProgress() { return sasl.progress(); }
    long authRemainingMs() { return sasl.authRemainingMs(); }
    /** Hand-over: the input read and not handled, and its frame's read credentials. */
    byte[] unhandledInput() { return input.unhandledBytes(); }
    InputAssembler.ReadCreds readCreds() { return input.readCreds(); }
    /** Whether SASL negotiated fd passing. */
    boolean unixFdNegotiated() { return sasl.unixFdNegotiated(); }

    /** Hand-over: a session that completed SASL (and maybe Hello) in the bus this one replaces; then {@link #resumeIo}. */
    void restoreAuthenticated(long uid, boolean unixFd) {
        sasl.restoreAuthenticated(uid, unixFd);
    }

    /**
     * Hand-over, before {@link #resumeIo}: a session that had not completed Hello keeps the
     * auth_timeout it had left ({@code remainingMs}, less the pause); the fds it had received
     * ahead of their frame wait again, with their pending_fd_timeout left
     * ({@link Long#MIN_VALUE}: none ran).
     */
    void restoreWaiting(long authRemainingMs, int[] pendingFds, long pendingRemainingMs) {
        if (authRemainingMs != Long.MIN_VALUE) {
            sasl.restoreTimer(server.loop(), authRemainingMs, server.limits().authTimeout);
        }
        pending.restore(pendingFds, server.loop(), pendingRemainingMs);
    }

    /**
     * Hand-over: starts reading the inherited socket (no auth timer: Hello is done), unless its
     * restored queued messages put it over max_incoming_*; carried output is written first, once
     * the socket is writable.
     */
    void resumeIo(EventLoop loop, byte[] carriedInput, InputAssembler.ReadCreds creds) {
        readPaused = conn.isIncomingOverLimit();
        // Carried output the socket did not take waits for EPOLLOUT, as it did in the old bus (R9):
        // a flush now would only refill the buffer earlier than the old bus would have.
        writeArmed = output.committedBytes().length > 0 || output.headOffset() > 0;
        loop.register(socket.fd(), (readPaused ? 0 : EventLoop.READ) | (writeArmed ? EventLoop.WRITE : 0), this);
        if (carriedInput.length > 0) {
            // Before the socket is read: the bytes the old bus had read go first, as a read would.
            server.enterIo();
            try {
                input.restore(carriedInput, creds);
            } finally {
                server.leaveIo();
            }
        }
        if (!closed && !writeArmed && !conn.pool().isEmpty()) {
            markDirty();
        }
    }

    /**
     * Hand-over: lets go of the socket without closing it (the new bus adopts it), after the
     * snapshot took its partial I/O: buffers go back, the fds that cross (pending, on the first
     * committed byte) stay open; afterwards the session is closed to every entry point, and the
     * core connection is left as it is.
     */
    void detachForHandOver() {
        if (closed) {
            return;
        }
        closed = true;
        sasl.stopTimer();
        server.loop().unregister(socket.fd()); // EPOLL_CTL_DEL: the fd stays open for the new loop
        pending.cancelTimer();
        input.release();
        output.detachForHandOver(); // the fds on its first committed byte cross, unclosed
        if (stamp != null) {
            stamp.close(); // its cached sender pidfds: a cache, the new session opens them again
        }
        socket.detachForHandOver();
    }

    void start(EventLoop loop, long authTimeoutMs) {
        loop.register(socket.fd(), EventLoop.READ, this);
        sasl.start(loop, authTimeoutMs);
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
                input.readAvailable((readyEvents & (EventLoop.HUP | EventLoop.ERROR)) != 0);
            }
        } catch (IOException e) {
            close(DisconnectReason.IO_ERROR, e.getMessage());
        } finally {
            server.leaveIo();
        }
    }

    /** A whole frame at {@code pos} of the input assembler's current buffer: validated, given its fds, routed. */
    void handleFrame(int pos, int len) throws ProtocolException {
        frame.wrap(pos, len);
        frameLength = len;
        long nfds = frame.header().unixFds();
        if (nfds == 0) {
            route(pos, null);
            return;
        }
        FdSet fds = pending.claim(nfds, server.limits().maxMessageUnixFds, sasl.unixFdNegotiated());
        try {
            route(pos, fds);
        } finally {
            fds.release(); // receive pools that took the message hold their own references
        }
    }

    private void route(int pos, FdSet fds) throws ProtocolException {
        MessageHeader header = frame.header();
        String dest = header.destination();
        boolean toDriver = Bus.DRIVER_NAME.equals(dest);
        if (toDriver || !conn.isActive()) {
            conn.counters().countIn(header.type(), frameLength); // routed messages are counted by the core
        }
        if (!conn.isActive()) {
            sasl.routeBeforeHello(pos, dest, toDriver, fds);
            return;
        }
        if (server.bus().isMonitor(conn)) {
            throw new ProtocolException("a monitor connection sent a message");
        }
        if (toDriver) {
            if (!conn.policy().allowsAllSends()) {
                PolicyQuery q = server.bus().policyQuery().type(header.type()).hasReplySerial(header.hasReplySerial())
                        .path(header.path()).iface(header.iface()).member(header.member()).error(header.errorName())
                        .fds(fds == null ? 0 : fds.count());
                if (!server.bus().checkSendToDriver(conn, q)) {
                    String text = server.bus().driverDenialText(conn, q);
                    // Monitors see it first, as in dbus-daemon; then the sender gets AccessDenied.
                    frame.showToMonitors(pos, dest, fds);
                    server.driver().emitter().error(conn, header.serial(), DBusErrors.ACCESS_DENIED, text);
                    return;
                }
            }
            server.driver().handle(frame.driverCall(pos, dest, fds));
            return;
        }
        // Read before toCore may overwrite the header: an unaddressed call's answer names it.
        String signature = dest == null && header.type() == Message.METHOD_CALL ? header.signature() : null;
        Message m = frame.toCore(pos, dest, fds, true);
        int wanted = server.bus().metadataWanted();
        if ((wanted & MessageFacts.FROM_SENDER) != 0) { // AttachMetadata: facts of the sender, now
            m.setFacts(metadataStamp().stamp(wanted, input.frameCredsMixed()));
            if (!pidfdsListed && (wanted & MessageFacts.PIDFD) != 0 && stamp.hasCachedPidfds()) {
                pidfdsListed = true; // once, until the bus clears it: not a set operation per message
                server.pidfdsCached(this);
            }
        }
        Delivery d;
        try {
            d = server.bus().send(conn, m);
        } finally {
            if (m.facts() != null) {
                m.facts().dropHandles(); // the queues that took it hold its pidfd (AttachMetadata) now
            }
        }
        if (d == Delivery.UNADDRESSED_CALL) {
            server.driver().answerUnaddressed(conn, m.serial(), m.iface(), m.member(), signature);
        } else if (d != Delivery.OK) {
            server.routingErrors().reply(conn, m, d);
        } else if (dest != null && (m.expectsReply() || m.type() == Message.METHOD_RETURN)) {
            server.loop().expectRelay(); // peer-to-peer call or reply: more is likely soon
        }
    }

    /** AttachMetadata's facts of this sender, now (also for monitor copies of its driver calls). */
    private MessageFacts senderFacts(int wanted) {
        return metadataStamp().stamp(wanted);
    }

    /**
     * Nobody on the bus wants pidfds any more (BusServer, which calls this only for the sessions
     * listed by {@link BusServer#pidfdsCached}): this sender's cached ones go.
     */
    void dropCachedPidfds() {
        pidfdsListed = false;
        if (stamp != null) {
            stamp.dropCachedPidfds();
        }
    }

    /** This sender's pidfds still open, cached or held by queued messages (tests; loop thread). */
    int openPidfds() {
        return stamp == null || stamp.pidfdCache() == null ? 0 : stamp.pidfdCache().live();
    }

    private MetadataStamp metadataStamp() {
        if (stamp == null) {
            stamp = new MetadataStamp(socket, conn);
        }
        return stamp;
    }

    void closeForProtocolViolation(ProtocolException e) {
        LOG.warn("Disconnecting {}: protocol violation: {}", this, e.getMessage());
        close(DisconnectReason.PROTOCOL_VIOLATION, "protocol violation");
    }

    private void pendingFdTimedOut() {
        if (!closed) {
            LOG.warn("Disconnecting {}: it sent fds and did not complete the message within "
                    + "pending_fd_timeout={} ms", this, server.limits().pendingFdTimeout);
            close(DisconnectReason.LIMITS, "pending fd timeout");
            server.flushDirty();
        }
    }

    // --- output and interest ---------------------------------------------------------------

    @Override
    public void onQueued(Connection connection) { markDirty(); }

    void markDirty() {
        if (!dirty && !closed) {
            dirty = true;
            server.markDirty(this);
        }
    }

    void clearDirty() { dirty = false; }

    /**
     * Writes what is queued, as much as the socket takes (OutputWriter); then, for a connection
     * that watches drops and missed some (one field read otherwise), the bus decides whether
     * its pool has room for the MessagesDropped notice now.
     */
    void flush() throws IOException {
        output.flush();
        if (conn.hasUnreportedDrops() && !closed) {
            server.driver().reportDrops(conn); // queues the notice: onQueued marks us dirty again
        }
    }

    /**
     * The flusher's write: skipped while the socket is known full (EPOLLOUT armed; the loop is
     * level-triggered, so that event still comes), so a stalled reader does not cost a copy of up
     * to 64 KiB into the output buffer per loop step only for the send to say EAGAIN.
     */
    void flushQueued() throws IOException {
        if (!writeArmed) {
            flush();
        }
    }

    void setWriteInterest(boolean on) {
        if (on != writeArmed && !closed) {
            writeArmed = on;
            updateInterest();
        }
    }

    void pauseReading(boolean on) {
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

    /** A first broadcast missed since the last notice: flush soon, so the notice is considered even if nothing else is queued. */
    @Override
    public void onDropped(Connection connection) { markDirty(); }

    /** The core says enough of this client's messages left the bus: read it again. */
    @Override
    public void onIncomingDrained(Connection connection) { pauseReading(false); }

    // --- close -----------------------------------------------------------------------------

    /** Sends what is queued (e.g. a SASL REJECTED), then closes, counted as {@code why}. */
    void closeAfterFlush(DisconnectReason why) {
        if (!closing) {
            closing = true;
            closingReason = why;
        }
        markDirty();
    }

    /** Why a close-after-flush was asked for (counted when it happens), null if none was. */
    private DisconnectReason closingReason;

    /** The close a close-after-flush asked for, now that the output is out. */
    void closeFlushed() {
        close(closingReason, null);
    }

    /**
     * End of stream: the peer hung up, unless the bus was already closing it (a rejected SASL
     * exchange, BYEBYE), when the close counts as that.
     */
    void closeAtEndOfStream() {
        close(closing ? closingReason : DisconnectReason.HANG_UP, null);
    }

    /** The length of the frame being handled (the driver-bound bytes the counters add). */
    private int frameLength;

    /** Closes now; {@code why} is what the bus counts, {@code reason} the debug log's detail (or null). */
    void close(DisconnectReason why, String reason) {
        if (closed) {
            return;
        }
        closed = true;
        server.bus().countDisconnect(why);
        sasl.stopTimer();
        if (reason != null) {
            LOG.debug("Closing {}: {}", this, reason);
        }
        server.loop().forgetBeforeClose(socket.fd());
        socket.close(); // fds still in the kernel's receive queue die with the socket
        pending.closeAll();
        pending.cancelTimer();
        // Nothing touches a closed session's buffers again (every entry point checks closed).
        input.release();
        output.release();
        if (stamp != null) {
            stamp.close(); // the pidfds it cached; queued messages keep theirs
        }
        server.onClosed(this);
    }

    /** Buffer bytes this session holds between events: borrowed/lent buffers and carry arrays (loop thread). */
    long heldBufferBytes() { return input.heldBytes() + output.heldBytes(); }

    /** Input bytes kept between bursts (the start of a partial frame), loop thread. */
    int carriedInputBytes() { return input.carriedBytes(); }

    /** The uid input and output are charged to: the peer's (SO_PEERCRED), -1 if unknown. */
    long peerUid() { return conn.credentials() == null ? -1 : conn.credentials().uid(); }

    @Override
    public String toString() {
        String name = conn.uniqueName();
        return (name != null ? name : "fd " + socket.fd()) + " (uid " + socket.peer().uid() + ", pid " + socket.peer().pid() + ")";
    }
}
