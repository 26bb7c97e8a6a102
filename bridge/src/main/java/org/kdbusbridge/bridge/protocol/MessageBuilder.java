// Invariants: stateless apart from per-thread scratch writers (never escape a call, never pin a
// message array after it); every message is one exact-size array, allocated once; produces
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

    /**
     * A body written on demand, twice: once into a counting writer to size the message, then into
     * the message array itself. It must write the same values both times, and must not itself
     * build a message (the per-thread writers are in use).
     */
    @FunctionalInterface
    public interface Body {
        void writeTo(BodyWriter w);
    }

    /** Per-thread writers: the header (always small), the body sizer and the final-array writer. */
    private static final class Scratch {
        final BodyWriter header = new BodyWriter(512);
        final BodyWriter counter = BodyWriter.counting();
        final BodyWriter target = BodyWriter.over(EMPTY, 0);
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

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
        BodyWriter h = header(SCRATCH.get().header, type, flags, serial, path, iface, member, errorName, replySerial,
                destination, sender, signature, unixFds);
        byte[] out = allocate(h, body.length);
        System.arraycopy(body, 0, out, h.size(), body.length);
        return out;
    }

    /**
     * {@link #encode} with a body written straight into the message: it is sized first (a
     * counting pass), so a large reply (ListNames of 100k names) costs one array of its exact
     * size and no intermediate copies. A null body is an empty one.
     */
    public static byte[] encode(int type, int flags, long serial, String path, String iface, String member,
                                String errorName, long replySerial, String destination, String sender,
                                String signature, Body body, int unixFds) {
        if (body == null) {
            return encode(type, flags, serial, path, iface, member, errorName, replySerial, destination, sender,
                    signature, EMPTY, unixFds);
        }
        Scratch sc = SCRATCH.get();
        int length = sized(sc, body);
        if (length > 0 && (signature == null || signature.isEmpty())) {
            throw new IllegalArgumentException("body without signature");
        }
        BodyWriter h = header(sc.header, type, flags, serial, path, iface, member, errorName, replySerial,
                destination, sender, signature, unixFds);
        byte[] out = allocate(h, length);
        BodyWriter w = sc.target.retarget(out, h.size());
        try {
            body.writeTo(w);
            w.checkClosed();
            if (w.size() != out.length) throw new IllegalStateException("body wrote other bytes than it sized");
        } finally {
            w.release();
        }
        return out;
    }

    /**
     * {@link #encode} for the commonest bus body, one string (signature "s": errors,
     * NameAcquired/NameLost, GetNameOwner): sized and written without any object but the message.
     */
    public static byte[] encodeString(int type, int flags, long serial, String path, String iface, String member,
                                      String errorName, long replySerial, String destination, String sender,
                                      String value) {
        Scratch sc = SCRATCH.get();
        BodyWriter counter = sc.counter;
        counter.reset();
        counter.writeString(value);
        BodyWriter h = header(sc.header, type, flags, serial, path, iface, member, errorName, replySerial,
                destination, sender, "s", 0);
        byte[] out = allocate(h, counter.size());
        BodyWriter w = sc.target.retarget(out, h.size());
        try {
            w.writeString(value);
        } finally {
            w.release();
        }
        return out;
    }

    /**
     * A body that can also write itself into a direct buffer, so a large bus reply never
     * touches the heap: a 2.4 MB ListNames array lands in a small old generation and costs a
     * full GC per call (issue 14).
     */
    public interface DirectBody extends Body {
        /**
         * Writes the same bytes as {@link #writeTo(BodyWriter)} at {@code dst}'s position
         * (8-aligned relative to the message start, little-endian order), filling exactly
         * {@code length} bytes, the size the counting pass gave.
         */
        void writeTo(java.nio.ByteBuffer dst, int length);
    }

    /**
     * {@link #encode(int, int, long, String, String, String, String, long, String, String, String, Body, int)}
     * into a direct buffer from {@code take} (position 0, limit the message's length) when the
     * message is at least {@code minSize} bytes; null when it is smaller or {@code take} gives
     * null (out of budget: the caller encodes on the heap instead).
     */
    public static java.nio.ByteBuffer encodeDirect(int type, int flags, long serial, String path, String iface,
                                                   String member, String errorName, long replySerial,
                                                   String destination, String sender, String signature,
                                                   DirectBody body, int minSize,
                                                   java.util.function.IntFunction<java.nio.ByteBuffer> take) {
        Scratch sc = SCRATCH.get();
        int length = sized(sc, body);
        BodyWriter h = header(sc.header, type, flags, serial, path, iface, member, errorName, replySerial,
                destination, sender, signature, 0);
        long total = (long) h.size() + length;
        if (total < minSize) return null;
        if (total > WireFormat.MAX_MESSAGE_SIZE) throw new IllegalArgumentException("message exceeds maximum size");
        java.nio.ByteBuffer out = take.apply((int) total);
        if (out == null) return null;
        java.nio.ByteBuffer w = out.duplicate().order(java.nio.ByteOrder.LITTLE_ENDIAN);
        w.clear();
        h.copyTo(w);
        w.putInt(4, length);
        body.writeTo(w, length);
        if (w.position() != total) throw new IllegalStateException("body wrote other bytes than it sized");
        out.position(0).limit((int) total);
        return out;
    }

    /** The encoded length of {@code body} (the counting pass). */
    private static int sized(Scratch sc, Body body) {
        BodyWriter counter = sc.counter;
        counter.reset();
        body.writeTo(counter);
        counter.checkClosed();
        return counter.size();
    }

    /** An 'as' body over a list (ListNames and the like, SetEnvironment). */
    public static final class StringArray implements DirectBody {
        private final java.util.List<String> values;

        public StringArray(java.util.List<String> values) {
            this.values = values;
        }

        @Override
        public void writeTo(BodyWriter w) {
            w.beginArray('s');
            for (int i = 0, n = values.size(); i < n; i++) {
                w.writeString(values.get(i));
            }
            w.endArray();
        }

        @Override
        public void writeTo(java.nio.ByteBuffer dst, int length) {
            // The length word is at an 8-aligned offset and strings align to 4: no padding
            // before the first element, so the array's content is the rest of the body.
            dst.putInt(length - 4);
            for (int i = 0, n = values.size(); i < n; i++) {
                while ((dst.position() & 3) != 0) dst.put((byte) 0);
                String v = values.get(i);
                int len = v.length();
                boolean ascii = true;
                for (int k = 0; k < len && ascii; k++) ascii = v.charAt(k) < 0x80;
                if (ascii) {
                    dst.putInt(len);
                    for (int k = 0; k < len; k++) dst.put((byte) v.charAt(k));
                } else {
                    byte[] b = v.getBytes(java.nio.charset.StandardCharsets.UTF_8);
                    dst.putInt(b.length);
                    dst.put(b);
                }
                dst.put((byte) 0);
            }
        }
    }

    /** The header (fields, then padding to 8) in {@code w}, its body length still 0. */
    private static BodyWriter header(BodyWriter w, int type, int flags, long serial, String path, String iface,
                                     String member, String errorName, long replySerial, String destination,
                                     String sender, String signature, int unixFds) {
        w.reset();
        w.writeByte(WireFormat.LITTLE_ENDIAN).writeByte(type).writeByte(flags).writeByte(WireFormat.PROTOCOL_VERSION);
        w.writeUint32(0).writeUint32(serial);
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
        return w;
    }

    /** The message's one array: the header copied in, the body length set, the body still zero. */
    private static byte[] allocate(BodyWriter header, int bodyLength) {
        long total = (long) header.size() + bodyLength;
        if (total > WireFormat.MAX_MESSAGE_SIZE) throw new IllegalArgumentException("message exceeds maximum size");
        byte[] out = new byte[(int) total];
        header.copyTo(out, 0);
        out[4] = (byte) bodyLength;
        out[5] = (byte) (bodyLength >>> 8);
        out[6] = (byte) (bodyLength >>> 16);
        out[7] = (byte) (bodyLength >>> 24);
        return out;
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
        if (message == null) {
            return build(WireFormat.ERROR, 0, serial, null, null, null, errorName,
                    replySerial, destination, sender, null, null);
        }
        return encodeString(WireFormat.ERROR, 0, serial, null, null, null, errorName, replySerial & 0xFFFFFFFFL,
                destination, sender, message);
    }

    public static byte[] signal(long serial, String path, String iface, String member, String destination,
                                String sender, String signature, byte[] body) {
        return build(WireFormat.SIGNAL, 0, serial, path, iface, member, null, null,
                destination, sender, signature, body);
    }
}
