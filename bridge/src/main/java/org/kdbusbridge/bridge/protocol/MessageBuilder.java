// Invariants: stateless apart from a per-thread scratch writer (never escapes a call); produces
// complete little-endian, protocol-version-1 messages whose header fields appear in code order,
// each only if non-null; the caller is trusted for name syntax (bus-originated), but the result
// of valid inputs passes MessageHeader.wrap + validateBody.
package org.kdbusbridge.bridge.protocol;

/** Builds complete bus-originated messages. */
public final class MessageBuilder {
    private MessageBuilder() {}

    public static final String BUS_NAME = "org.freedesktop.DBus";
    public static final String BUS_PATH = "/org/freedesktop/DBus";
    public static final String BUS_INTERFACE = "org.freedesktop.DBus";

    private static final byte[] EMPTY = new byte[0];

    /** Messages up to this body size are assembled in a per-thread writer, then copied out once. */
    private static final int SCRATCH_LIMIT = 4096;
    private static final ThreadLocal<BodyWriter> SCRATCH = ThreadLocal.withInitial(() -> new BodyWriter(512));

    /**
     * Builds a message. Null arguments omit their field; a null or empty body with a null
     * signature gives an empty body.
     */
    public static byte[] build(int type, int flags, long serial, String path, String iface, String member,
                               String errorName, Long replySerial, String destination, String sender,
                               String signature, byte[] body) {
        // The field holds the low 32 bits, so a masked value is never the "absent" sentinel.
        return encode(type, flags, serial, path, iface, member, errorName,
                replySerial == null ? NO_REPLY_SERIAL : replySerial.longValue() & 0xFFFFFFFFL,
                destination, sender, signature, body);
    }

    /** For {@link #encode}: no REPLY_SERIAL field. */
    public static final long NO_REPLY_SERIAL = -1;

    /**
     * {@link #build} without boxing the reply serial (the driver answers every call with one of
     * these; C1 does not scalar-replace a Long): below 0 ({@link #NO_REPLY_SERIAL}) omits the
     * field, else its low 32 bits are written.
     */
    public static byte[] encode(int type, int flags, long serial, String path, String iface, String member,
                                String errorName, long replySerial, String destination, String sender,
                                String signature, byte[] body) {
        return encode(type, flags, serial, path, iface, member, errorName, replySerial, destination, sender,
                signature, body, 0);
    }

    /** {@link #encode} for a message that carries {@code unixFds} fds (a UNIX_FDS field if above 0). */
    public static byte[] encode(int type, int flags, long serial, String path, String iface, String member,
                                String errorName, long replySerial, String destination, String sender,
                                String signature, byte[] body, int unixFds) {
        if (body == null) body = EMPTY;
        if (body.length > 0 && (signature == null || signature.isEmpty())) {
            throw new IllegalArgumentException("body without signature");
        }
        BodyWriter w = body.length < SCRATCH_LIMIT ? SCRATCH.get() : new BodyWriter(128 + body.length);
        w.reset();
        w.writeByte(WireFormat.LITTLE_ENDIAN).writeByte(type).writeByte(flags).writeByte(WireFormat.PROTOCOL_VERSION);
        w.writeUint32(body.length).writeUint32(serial);
        w.beginArray('(');
        stringField(w, WireFormat.PATH, "o", path);
        stringField(w, WireFormat.INTERFACE, "s", iface);
        stringField(w, WireFormat.MEMBER, "s", member);
        stringField(w, WireFormat.ERROR_NAME, "s", errorName);
        if (replySerial >= 0) {
            w.beginStruct().writeByte(WireFormat.REPLY_SERIAL).writeVariant("u").writeUint32(replySerial).endStruct();
        }
        stringField(w, WireFormat.DESTINATION, "s", destination);
        stringField(w, WireFormat.SENDER, "s", sender);
        if (signature != null && !signature.isEmpty()) {
            w.beginStruct().writeByte(WireFormat.SIGNATURE).writeVariant("g").writeSignature(signature).endStruct();
        }
        if (unixFds > 0) {
            w.beginStruct().writeByte(WireFormat.UNIX_FDS).writeVariant("u").writeUint32(unixFds).endStruct();
        }
        w.endArray();
        w.padTo(8);
        w.writeRaw(body);
        if (w.size() > WireFormat.MAX_MESSAGE_SIZE) throw new IllegalArgumentException("message exceeds maximum size");
        return w.toByteArray();
    }

    private static void stringField(BodyWriter w, int code, String sig, String value) {
        if (value == null) return;
        w.beginStruct().writeByte(code).writeVariant(sig);
        w.writeString(value);
        w.endStruct();
    }

    public static byte[] methodCall(long serial, int flags, String destination, String path, String iface,
                                    String member, String sender, String signature, byte[] body) {
        return build(WireFormat.METHOD_CALL, flags, serial, path, iface, member, null, null, destination, sender, signature, body);
    }

    public static byte[] methodReturn(long serial, long replySerial, String destination, String sender,
                                      String signature, byte[] body) {
        return build(WireFormat.METHOD_RETURN, 0, serial, null, null, null, null,
                replySerial, destination, sender, signature, body);
    }

    /** An ERROR reply whose body is a single string holding message (as dbus-daemon sends). */
    public static byte[] error(long serial, long replySerial, String destination, String sender,
                               String errorName, String message) {
        byte[] body = message == null ? null : new BodyWriter().writeString(message).toByteArray();
        return build(WireFormat.ERROR, 0, serial, null, null, null, errorName,
                replySerial, destination, sender, message == null ? null : "s", body);
    }

    public static byte[] signal(long serial, String path, String iface, String member, String destination,
                                String sender, String signature, byte[] body) {
        return build(WireFormat.SIGNAL, 0, serial, path, iface, member, null, null,
                destination, sender, signature, body);
    }
}
