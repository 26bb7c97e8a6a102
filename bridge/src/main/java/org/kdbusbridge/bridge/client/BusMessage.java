// Invariants: immutable once decoded; raw() is the exact wire bytes the message was decoded from
// (never modified); every accessor reflects a header that passed MessageHeader's full
// validation; body() is the decoded body (BodyReader.readValue per argument), or null when the
// body could not be decoded (bodyError() then says why). Never throws for a well-framed message
// with a bad body: transcripts keep what they saw. metadata() is decoded from raw() on first use
// (a benign race: every thread computes the same value).
package org.kdbusbridge.bridge.client;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.kdbusbridge.bridge.metadata.MessageMetadata;
import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.protocol.WireFormat;

/** One D-Bus message from a transcript (a monitor's stream or a capture file), decoded. */
public final class BusMessage {
    public static final String DRIVER = "org.freedesktop.DBus";

    private final byte[] raw;
    private final int type;
    private final int flags;
    private final long serial;
    private final long replySerial;
    private final String sender;
    private final String destination;
    private final String path;
    private final String iface;
    private final String member;
    private final String errorName;
    private final String signature;
    private final long unixFds;
    private final List<Object> body;
    private final String bodyError;
    /** AttachMetadata's field, decoded on first use (null = not yet). */
    private volatile Optional<MessageMetadata> metadata;

    private BusMessage(byte[] raw, MessageHeader h) {
        this.raw = raw;
        this.type = h.type();
        this.flags = h.flags();
        this.serial = h.serial();
        this.replySerial = h.replySerial();
        this.sender = h.sender();
        this.destination = h.destination();
        this.path = h.path();
        this.iface = h.iface();
        this.member = h.member();
        this.errorName = h.errorName();
        this.signature = h.signature() == null ? "" : h.signature();
        this.unixFds = h.unixFds();
        List<Object> args = new ArrayList<>();
        String err = null;
        try {
            BodyReader r = BodyReader.of(h);
            while (r.hasNext()) {
                args.add(r.readValue());
            }
        } catch (ProtocolException | RuntimeException e) {
            err = String.valueOf(e.getMessage());
            args = null;
        }
        this.body = args == null ? null : Collections.unmodifiableList(args);
        this.bodyError = err;
    }

    /** Decodes one whole message; throws if its header is not a valid D-Bus header. */
    public static BusMessage decode(byte[] raw) throws ProtocolException {
        MessageHeader h = new MessageHeader();
        h.wrap(ByteBuffer.wrap(raw), 0, raw.length);
        return new BusMessage(raw, h);
    }

    public byte[] raw() { return raw.clone(); }
    public int type() { return type; }
    public int flags() { return flags; }
    public long serial() { return serial; }
    /** 0 when absent. */
    public long replySerial() { return replySerial; }
    public String sender() { return sender; }
    public String destination() { return destination; }
    public String path() { return path; }
    public String iface() { return iface; }
    public String member() { return member; }
    public String errorName() { return errorName; }
    /** "" when the message has no body. */
    public String signature() { return signature; }
    public long unixFds() { return unixFds; }
    /** The decoded top-level arguments, or null if the body did not decode. */
    public List<Object> body() { return body; }
    public String bodyError() { return bodyError; }

    /**
     * The facts the bus attached to this message for a receiver that called AttachMetadata
     * (header field 107, docs/extensions.md); empty when the message carries none (or, never
     * from our bus, a field 107 of another type).
     */
    public Optional<MessageMetadata> metadata() {
        Optional<MessageMetadata> m = metadata;
        if (m == null) {
            try {
                m = MessageMetadata.parse(raw);
            } catch (IllegalArgumentException e) {
                m = Optional.empty(); // decode() validated the header: only a foreign field 107 gets here
            }
            metadata = m;
        }
        return m;
    }

    public boolean isCall() { return type == WireFormat.METHOD_CALL; }
    public boolean isReturn() { return type == WireFormat.METHOD_RETURN; }
    public boolean isError() { return type == WireFormat.ERROR; }
    public boolean isSignal() { return type == WireFormat.SIGNAL; }
    public boolean isReply() { return isReturn() || isError(); }
    public boolean fromDriver() { return DRIVER.equals(sender); }
    public boolean toDriver() { return DRIVER.equals(destination); }

    /** The i-th argument if it is a string (s, o, g), else null. */
    public String stringArg(int i) {
        if (body == null || i >= body.size()) return null;
        return body.get(i) instanceof String s ? s : null;
    }

    /** "iface.member" (or just member without an interface). */
    public String qualifiedMember() {
        return iface == null ? member : iface + "." + member;
    }

    public static String typeName(int type) {
        return switch (type) {
            case WireFormat.METHOD_CALL -> "call";
            case WireFormat.METHOD_RETURN -> "return";
            case WireFormat.ERROR -> "error";
            case WireFormat.SIGNAL -> "signal";
            default -> "type" + type;
        };
    }

    /** A compact rendering of a decoded value (strings quoted, arrays in [], structs in ()). */
    public static String render(Object v) {
        StringBuilder sb = new StringBuilder();
        render(v, sb);
        return sb.toString();
    }

    private static void render(Object v, StringBuilder sb) {
        if (v instanceof String s) {
            sb.append('"').append(s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")).append('"');
        } else if (v instanceof byte[] b) {
            sb.append("bytes[");
            for (int i = 0; i < b.length; i++) {
                if (i > 0) sb.append(' ');
                sb.append(b[i] & 0xff);
            }
            sb.append(']');
        } else if (v instanceof List<?> l) {
            sb.append('[');
            for (int i = 0; i < l.size(); i++) {
                if (i > 0) sb.append(", ");
                render(l.get(i), sb);
            }
            sb.append(']');
        } else if (v instanceof Map<?, ?> m) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!first) sb.append(", ");
                first = false;
                render(e.getKey(), sb);
                sb.append(": ");
                render(e.getValue(), sb);
            }
            sb.append('}');
        } else if (v instanceof Object[] a) {
            sb.append('(');
            for (int i = 0; i < a.length; i++) {
                if (i > 0) sb.append(", ");
                render(a[i], sb);
            }
            sb.append(')');
        } else {
            sb.append(v);
        }
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(typeName(type)).append(" serial=").append(serial);
        if (replySerial != 0) sb.append(" reply_serial=").append(replySerial);
        if (sender != null) sb.append(" sender=").append(sender);
        if (destination != null) sb.append(" dest=").append(destination);
        if (path != null) sb.append(" path=").append(path);
        if (member != null) sb.append(" member=").append(qualifiedMember());
        if (errorName != null) sb.append(" error=").append(errorName);
        if (body != null && !body.isEmpty()) sb.append(" body=").append(render(body));
        return sb.toString();
    }
}
