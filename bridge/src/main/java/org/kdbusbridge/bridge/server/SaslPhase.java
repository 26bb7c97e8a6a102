package org.kdbusbridge.bridge.server;

import java.nio.ByteBuffer;

import org.kdbusbridge.core.bus.DisconnectReason;
import org.kdbusbridge.bridge.driver.RoutingErrors;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.protocol.SaslServer;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A session's way to a complete connection: the SASL exchange, then Hello, both bounded by
 * auth_timeout from connect (as in dbus-daemon, so a client whose Hello a connection limit
 * refused cannot hold its socket longer).
 *
 * Invariants: loop thread only; {@code authenticated} is set once, when SaslServer says so, and
 * never cleared; the auth timer runs from {@link #start} until Hello succeeded or the session closed.
 */
final class SaslPhase {
    // Session log lines keep the logger name they had before the session was split.
    private static final Logger LOG = LoggerFactory.getLogger(ClientSession.class);

    private final ClientSession session;
    private final BusServer server;
    /** Dropped once authenticated (its line and reply buffers are ~0.4 KiB an idle peer would keep). */
    private SaslServer sasl;
    private long uid = -1;
    private boolean unixFd;
    private final InboundFrame frame;
    private boolean authenticated;
    private EventLoop.Timer authTimer;

    SaslPhase(ClientSession session, BusServer server, SaslServer sasl, InboundFrame frame) {
        this.session = session;
        this.frame = frame;
        this.server = server;
        this.sasl = sasl;
    }

    void start(EventLoop loop, long authTimeoutMs) {
        authTimer = loop.schedule(authTimeoutMs, new AuthExpiry(authTimeoutMs));
    }

    /** Hand-over: the session was authenticated (and said Hello) in the bus this one replaces. */
    void restoreAuthenticated(long uid, boolean unixFd) {
        if (authenticated || authTimer != null) {
            throw new IllegalStateException("restore a new session only");
        }
        authenticated = true;
        this.uid = uid;
        this.unixFd = unixFd;
        this.sasl = null;
    }

    /**
     * Hand-over: the auth timer of a connection that had not completed Hello in the bus this one
     * replaces, going on from the {@code remainingMs} it had left (less the pause; 0 or less: due
     * at once), so a hand-over never extends auth_timeout.
     */
    void restoreTimer(EventLoop loop, long remainingMs, long authTimeoutMs) {
        if (authTimer != null) {
            throw new IllegalStateException("auth timer restored twice");
        }
        authTimer = loop.schedule(Math.max(0, remainingMs), new AuthExpiry(authTimeoutMs));
    }

    /** Hand-over: the SASL exchange in progress, or null once authenticated. */
    SaslServer.Progress progress() {
        return authenticated ? null : sasl.progress();
    }

    /** Hand-over: ms left of auth_timeout, or {@link Long#MIN_VALUE} when no timer runs (Hello done). */
    long authRemainingMs() {
        return authTimer == null ? Long.MIN_VALUE : authTimer.remainingMillis();
    }

    boolean isAuthenticated() {
        return authenticated;
    }

    long authenticatedUid() {
        return uid;
    }

    boolean unixFdNegotiated() {
        return unixFd;
    }

    /** Feeds SASL lines from {@code in}; its replies are queued ahead of any message. */
    SaslServer.Result feed(ByteBuffer in) {
        SaslServer.Result r = sasl.feed(in);
        if (sasl.hasOutput()) {
            session.output().queueRaw(sasl.takeOutput());
        }
        return r;
    }

    /** The partial line SASL keeps after {@code r} (charged to the peer's input budget). */
    long heldBytesAfter(SaslServer.Result r) {
        return r == SaslServer.Result.CONTINUE ? sasl.heldBytes() : 0;
    }

    /** The partial line SASL keeps now (0 once authenticated). */
    long lineBytes() {
        return authenticated ? 0 : sasl.heldBytes();
    }

    /** Acts on {@code r}; false when the client was rejected (its REJECTED goes out, then the socket closes). */
    boolean settle(SaslServer.Result r) {
        if (r == SaslServer.Result.REJECT_DISCONNECT) {
            LOG.info("Connection {} rejected during authentication: {}", session, sasl.disconnectReason());
            session.closeAfterFlush(DisconnectReason.AUTH);
            return false;
        }
        if (r == SaslServer.Result.AUTHENTICATED) {
            authenticated = true;
            uid = sasl.authenticatedUid();
            unixFd = sasl.unixFdNegotiated();
            sasl = null; // its replies were taken by feed(); nothing reads it any more
            session.connection().setAcceptsUnixFds(unixFd);
            // The auth timer keeps running: it is cancelled by a successful Hello.
            server.onAuthenticated(session, uid);
        }
        return true;
    }

    /**
     * Routes a frame from a client that has not completed Hello: only Hello, or an unaddressed
     * call, reply or error, is allowed; anything else is refused and, unless sent to the driver,
     * ends the connection (as in dbus-daemon).
     */
    void routeBeforeHello(int pos, String dest, boolean toDriver, FdSet fds) throws ProtocolException {
        MessageHeader header = frame.header();
        // As libdbus's dbus_message_is_method_call: a missing interface matches any.
        String iface = header.iface();
        if (dest == null && header.type() != Message.SIGNAL) {
            // dbus-daemon handles these below its routing, Hello or not: a call is
            // answered as the peer, a reply or error dropped; neither breaks the Hello rule.
            frame.showToMonitors(pos, null, fds);
            if (header.type() == Message.METHOD_CALL) {
                server.driver().answerUnaddressed(session.connection(), header.serial(), iface, header.member(), header.signature());
            }
            return;
        }
        if (toDriver && header.type() == Message.METHOD_CALL && "Hello".equals(header.member())
                && (iface == null || Bus.DRIVER_NAME.equals(iface))) {
            server.driver().handle(frame.driverCall(pos, dest, fds));
            if (session.connection().isActive()) {
                stopTimer(); // Hello succeeded: the connection is complete
            }
        } else if (toDriver) {
            frame.showToMonitors(pos, dest, fds); // dbus-daemon shows it, from :not.active.yet
            server.routingErrors().notRegistered(session.connection(), header.serial());
        } else {
            frame.showToMonitors(pos, dest, fds); // monitors see it before the disconnect, as in dbus-daemon
            throw new ProtocolException(RoutingErrors.NOT_REGISTERED);
        }
    }

    /** Hello succeeded (or the session closed): auth_timeout no longer applies. */
    void stopTimer() {
        if (authTimer != null) {
            authTimer.cancel();
            authTimer = null;
        }
    }

    // A per-connection callback is an inner class, not a lambda: under C1 (what we ship) a
    // capturing lambda allocates through a slow runtime call each time it is evaluated.

    /** Closes the connection if it has not completed Hello when the auth timer fires. */
    private final class AuthExpiry implements Runnable {
        private final long timeoutMs;

        AuthExpiry(long timeoutMs) {
            this.timeoutMs = timeoutMs;
        }

        @Override
        public void run() {
            if (session.connection().uniqueName() == null && !session.isClosed()) {
                LOG.info("Connection {} has not {} within auth_timeout={} ms, closing", session,
                        authenticated ? "completed Hello" : "authenticated", timeoutMs);
                session.close(DisconnectReason.AUTH, "auth timeout");
            }
        }
    }
}
