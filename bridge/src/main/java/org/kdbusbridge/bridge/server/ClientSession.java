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
 */
final class ClientSession implements EventLoop.IoHandler, ConnectionSink {
    private static final Logger LOG = LoggerFactory.getLogger(ClientSession.class);
    private static final int INITIAL_BUFFER = 64 * 1024;
    private static final int MAX_READS_PER_WAKEUP = 16;

    private final BusServer server;
    private final SocketConnection socket;
    private final Connection conn;
    private final SaslServer sasl;
    private final MessageHeader header = new MessageHeader();
    private ByteBuffer in = ByteBuffer.allocateDirect(INITIAL_BUFFER);
    private final ByteBuffer out = ByteBuffer.allocateDirect(INITIAL_BUFFER);
    private boolean authenticated;
    /** Counted in the bus's completed-connection totals. */
    boolean completeCounted;
    private boolean closed;
    private boolean writeArmed;
    private boolean dirty;
    /** Bytes of the pool's head message already copied into {@code out}. */
    private int headOffset;
    private EventLoop.Timer authTimer;

    ClientSession(BusServer server, SocketConnection socket, Connection conn, SaslServer sasl) {
        this.server = server;
        this.socket = socket;
        this.conn = conn;
        this.sasl = sasl;
        out.flip(); // empty, read mode
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

    void start(EventLoop loop, long authTimeoutMs) {
        loop.register(socket.fd(), EventLoop.READ, this);
        authTimer = loop.schedule(authTimeoutMs, () -> {
            if (!authenticated && !closed) {
                LOG.info("Connection {} did not authenticate within {} ms, closing", this, authTimeoutMs);
                close("auth timeout");
            }
        });
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
                readAvailable();
            }
        } catch (IOException e) {
            close(e.getMessage());
        } finally {
            server.leaveIo();
        }
    }

    private void readAvailable() throws IOException {
        for (int i = 0; i < MAX_READS_PER_WAKEUP && !closed && !closing; i++) {
            if (!in.hasRemaining()) {
                // Buffer full of one partial message: it was grown to fit in process().
                return;
            }
            int n = socket.read(in);
            if (n < 0) {
                close(null);
                return;
            }
            if (n == 0) {
                return;
            }
            process();
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
                if (r == SaslServer.Result.REJECT_DISCONNECT) {
                    LOG.info("Connection {} rejected during authentication: {}", this, sasl.disconnectReason());
                    in.clear();
                    closeAfterFlush();
                    return;
                }
                if (r == SaslServer.Result.AUTHENTICATED) {
                    authenticated = true;
                    if (authTimer != null) {
                        authTimer.cancel();
                    }
                    if (!server.onAuthenticated(this, sasl.authenticatedUid())) {
                        in.clear();
                        closeAfterFlush();
                        return;
                    }
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
                    if (pos + len > in.capacity()) {
                        grow((int) len);
                        return; // grow() left the buffer in write mode
                    }
                    break;
                }
                handleFrame(pos, (int) len);
                in.position(pos + (int) len);
            }
        } catch (ProtocolException e) {
            LOG.warn("Disconnecting {}: protocol violation: {}", this, e.getMessage());
            close("protocol violation");
            return;
        } catch (OutOfMemoryError e) {
            // One oversized client must not take the bus down with it.
            LOG.error("Disconnecting {}: out of memory while receiving", this);
            close("out of memory");
            return;
        }
        in.compact();
        shrinkIfIdle();
    }

    /**
     * Makes room for a message of {@code needed} bytes. The buffer doubles only as data
     * actually arrives, so a client that merely claims a huge length costs nothing.
     */
    private void grow(int needed) {
        if (in.position() > 0 && needed <= in.capacity()) {
            in.compact(); // room appears by moving the partial frame to the front
            return;
        }
        int capacity = (int) Math.min(needed, Math.max((long) in.capacity() * 2, INITIAL_BUFFER));
        if (capacity <= in.remaining()) {
            in.compact();
            return;
        }
        ByteBuffer bigger = ByteBuffer.allocateDirect(capacity);
        bigger.put(in);
        in = bigger;
    }

    /** Returns to the small buffer once a large message has gone through. */
    private void shrinkIfIdle() {
        if (in.capacity() > INITIAL_BUFFER && in.position() == 0) {
            in = ByteBuffer.allocateDirect(INITIAL_BUFFER);
        }
    }

    private void handleFrame(int pos, int len) throws ProtocolException {
        header.wrap(in, pos, len);
        header.validateBody();
        String dest = header.destination();
        boolean toDriver = Bus.DRIVER_NAME.equals(dest);
        if (!conn.isActive()) {
            // As libdbus's dbus_message_is_method_call: a missing interface matches any.
            String iface = header.iface();
            if (toDriver && header.type() == Message.METHOD_CALL && "Hello".equals(header.member())
                    && (iface == null || Bus.DRIVER_NAME.equals(iface))) {
                server.driver().handle(driverCall(pos, dest));
            } else if (toDriver) {
                server.driver().emitter().error(conn, header.serial(), DBusErrors.ACCESS_DENIED,
                        "Client tried to send a message other than Hello without being registered");
            } else {
                throw new ProtocolException("Client tried to send a message other than Hello without being registered");
            }
            return;
        }
        if (server.bus().isMonitor(conn)) {
            throw new ProtocolException("a monitor connection sent a message");
        }
        if (toDriver) {
            server.driver().handle(driverCall(pos, dest));
            return;
        }
        Message m = toCore(pos, dest);
        Delivery d = server.bus().send(conn, m);
        if (d != Delivery.OK) {
            routingError(m, d);
        }
    }

    /** The sealed, SENDER-stamped copy of the frame at {@code pos} that the core routes. */
    private Message toCore(int pos, String dest) throws ProtocolException {
        byte[] bytes = MessageWriter.spliceSender(in, pos, header, conn.uniqueName());
        SealedPayload payload = new SealedPayload(bytes);
        return new Message(header.type(), header.flags(), header.serial(),
                header.hasReplySerial() ? header.replySerial() : Message.NO_REPLY_SERIAL, dest, header.path(),
                header.iface(), header.member(), header.errorName(), payload, new PayloadArgs(payload, header.signature()));
    }

    private void routingError(Message m, Delivery d) {
        String dest = m.destination();
        switch (d) {
            case SERVICE_UNKNOWN -> sendError(m, DBusErrors.SERVICE_UNKNOWN,
                    "The name " + dest + " was not provided by any .service files");
            case NAME_HAS_NO_OWNER -> sendError(m, DBusErrors.NAME_HAS_NO_OWNER, "Name \"" + dest + "\" does not exist");
            case RECIPIENT_FULL -> {
                LOG.warn("Message to {} from {} dropped: the recipient's queue is full (max_outgoing_bytes)", dest, conn);
                sendError(m, DBusErrors.LIMITS_EXCEEDED, "The destination service \"" + dest + "\" has a full message queue");
            }
            case TOO_MANY_REPLIES -> sendError(m, DBusErrors.LIMITS_EXCEEDED,
                    "The maximum number of pending replies per connection has been reached (max_replies_per_connection="
                            + server.limits().maxRepliesPerConnection + ")");
            case DUPLICATE_SERIAL -> sendError(m, DBusErrors.ACCESS_DENIED,
                    "Message has the same reply serial as a currently-outstanding existing method call");
            default -> { }
        }
    }

    private void sendError(Message m, String name, String text) {
        server.driver().emitter().error(conn, m.serial(), name, text);
    }

    /** The frame at {@code pos} as a driver call; its capture hook shows it to monitors. */
    private DriverCall driverCall(int pos, String dest) {
        Runnable capture = () -> {
            if (server.bus().hasMonitors() && conn.uniqueName() != null) {
                try {
                    server.bus().admitToDriver(conn, toCore(pos, dest));
                } catch (ProtocolException e) {
                    LOG.debug("Not captured: {}", e.getMessage());
                }
            }
        };
        return new DriverCall(conn, header.type(), header.flags(), header.serial(), header.path(), header.iface(),
                header.member(), header.signature(), BodyReader.of(header), capture);
    }

    // --- output ---------------------------------------------------------------------------

    /** SASL replies go out ahead of any message (there are none before auth completes). */
    private void queueRaw(byte[] bytes) {
        out.compact();
        if (out.remaining() < bytes.length) {
            LOG.warn("Disconnecting {}: authentication output overflow", this);
            out.flip();
            close("auth output overflow");
            return;
        }
        out.put(bytes);
        out.flip();
        markDirty();
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

    /** Copies queued messages into the output buffer and writes as much as the socket takes. */
    void flush() throws IOException {
        while (!closed) {
            fillOutput();
            if (!out.hasRemaining()) {
                setWriteInterest(false);
                if (closing) {
                    close(null);
                }
                return;
            }
            int n = socket.write(out);
            if (n == 0 || out.hasRemaining()) {
                setWriteInterest(true);
                return;
            }
        }
    }

    private void fillOutput() {
        out.compact();
        try {
            while (out.hasRemaining()) {
                Message m = conn.pool().peek();
                if (m == null) {
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
            server.loop().modify(socket.fd(), on ? EventLoop.READ | EventLoop.WRITE : EventLoop.READ);
        }
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
        server.loop().unregister(socket.fd());
        socket.close();
        server.onClosed(this);
    }

    boolean isClosed() {
        return closed;
    }

    @Override
    public String toString() {
        String name = conn.uniqueName();
        return (name != null ? name : "fd " + socket.fd()) + " (uid " + socket.peer().uid() + ", pid " + socket.peer().pid() + ")";
    }
}
