package org.kdbusbridge.bridge.server;

import java.nio.ByteBuffer;

import org.kdbusbridge.bridge.driver.DriverCall;
import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.MessageWriter;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.MessageFacts;
import org.kdbusbridge.core.message.SealedPayload;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The frame a session is handling: its buffer and parsed header (one reused {@link MessageHeader}),
 * and what it becomes: the sealed, SENDER-stamped core {@link Message}, a {@link DriverCall}, or
 * a copy shown to monitors.
 *
 * Invariants: loop thread only; valid from {@link #wrap} until the input assembler moves to the
 * next frame; only a frame in its own direct buffer (read in place) may be adopted as its
 * payload, and then at most once.
 */
final class InboundFrame {
    // Session log lines keep the logger name they had before the session was split.
    private static final Logger LOG = LoggerFactory.getLogger(ClientSession.class);

    private final BusServer server;
    private final Connection conn;
    private final MessageHeader header = new MessageHeader();
    /** The session's AttachMetadata sender facts, for the copies monitors see of its driver calls. */
    private final SenderFacts senderFacts;

    /** The sender's facts as of the frame being handled (MetadataStamp). */
    interface SenderFacts {
        MessageFacts stamp(int wanted);
    }

    InboundFrame(BusServer server, Connection conn, SenderFacts senderFacts) {
        this.server = server;
        this.conn = conn;
        this.senderFacts = senderFacts;
    }

    /** The buffer the frame is in: the input buffer, a large frame's own buffer, or a heap frame's. */
    private ByteBuffer buf;
    /** Whether {@code buf} holds this frame alone (not the input buffer). */
    private boolean ownBuffer;
    /** Set by toCore when the frame's own (direct) buffer became the payload. */
    private boolean adopted;

    /** The next frames are in {@code b}; {@code own}: b holds one frame alone, so it may become its payload. */
    void set(ByteBuffer b, boolean own) {
        buf = b;
        ownBuffer = own;
        adopted = false;
    }

    boolean adopted() {
        return adopted;
    }

    MessageHeader header() {
        return header;
    }

    /** Parses the frame of {@code len} bytes at {@code pos} and checks its body. */
    void wrap(int pos, int len) throws ProtocolException {
        header.wrap(buf, pos, len);
        header.validateBody();
    }

    /**
     * The sealed, SENDER-stamped copy of the frame at {@code pos} that the core routes. A large
     * frame read in place becomes its own payload ({@code adopt}: not for driver captures, whose
     * call still reads the frame): its header is rewritten in the headroom, the body stays.
     */
    Message toCore(int pos, String dest, FdSet fds, boolean adopt) throws ProtocolException {
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
        if (adopt && ownBuffer && buf.isDirect()) { // route() calls this once per frame
            ByteBuffer whole = buf;
            int start = MessageWriter.spliceSenderInPlace(whole, pos, header, sender);
            ByteBuffer view = whole.duplicate();
            view.limit(pos + header.length()).position(start);
            DirectBuffers pool = server.buffers();
            payload = new SealedPayload(view, unused -> pool.give(whole));
            adopted = true;
        } else if (header.length() >= server.transport().zeroCopyThreshold()
                && (direct = server.buffers().take(MessageWriter.splicedLength(buf, pos, header, sender))) != null) {
            payload = new SealedPayload(MessageWriter.spliceSenderDirect(buf, pos, header, sender, n -> direct),
                    server.payloadRecycler());
        } else {
            // Small, or no direct buffer within the budget: a heap copy, written like a small message.
            payload = new SealedPayload(MessageWriter.spliceSender(buf, pos, header, sender));
        }
        Message m = new Message(type, flags, serial, replySerial, dest, path, iface, member, errorName, payload,
                new PayloadArgs(payload, signature), fds);
        m.setReceivedLength(header.length()); // before the SENDER splice: what the client sent
        return m;
    }

    /** Shows the frame at {@code pos} to monitors, building nothing when there are none. */
    void showToMonitors(int pos, String dest, FdSet fds) {
        if (server.bus().hasMonitors()) {
            capture(pos, dest, fds);
        }
    }

    /** The frame at {@code pos} as a driver call; its capture hook shows it to monitors. */
    DriverCall driverCall(int pos, String dest, FdSet fds) {
        return new DriverCall(conn, header.type(), header.flags(), header.serial(), header.path(), header.iface(),
                header.member(), header.signature(), BodyReader.of(header), new DriverCapture(this, pos, dest, fds),
                fds);
    }

    // Per-call callbacks are inner classes, not lambdas: under C1 (what we ship) a capturing
    // lambda allocates through a slow runtime call each time it is evaluated.

    /** Shows a driver call's frame to monitors (run by the driver, while the frame is current). */
    private record DriverCapture(InboundFrame frame, int pos, String dest, FdSet fds) implements Runnable {
        @Override
        public void run() {
            frame.capture(pos, dest, fds);
        }
    }

    private void capture(int pos, String dest, FdSet fds) {
        if (server.bus().hasMonitors()) {
            try {
                Message m = toCore(pos, dest, fds, false);
                int wanted = server.bus().metadataWanted();
                if ((wanted & MessageFacts.FROM_SENDER) != 0) { // a monitor wants the sender's creds on it too
                    m.setFacts(senderFacts.stamp(wanted));
                }
                server.bus().admitToDriver(conn, m);
            } catch (ProtocolException e) {
                LOG.debug("Not captured: {}", e.getMessage());
            }
        }
    }
}
