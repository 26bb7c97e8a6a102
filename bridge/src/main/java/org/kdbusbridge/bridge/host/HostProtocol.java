package org.kdbusbridge.bridge.host;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The front/host wire format (bridge/src/main/c/kdbus_front.c writes and reads the same). All
 * integers are little-endian u32; a string is its length then its bytes (no NUL).
 *
 * <pre>
 * request  (front to host, with fds 0, 1, 2 as SCM_RIGHTS on its first bytes):
 *   "KBH1" u32:bodyLength body
 *   body = string:mntNamespace string:netNamespace u32:argc string* string:cwd u32:envc string*
 * replies  (host to front): u8:type u32:length payload
 *   'A' the bus is up: payload = its address
 *   'E' the start failed: payload = u32 exit status (the text went to the front's stderr)
 *   'N' not hostable: payload = the reason; the front runs the bus in a JVM of its own
 *   'S' the bus stopped: payload = u32 exit status
 * commands (front to host, after 'A'): one byte each, 'T' SIGTERM, 'I' SIGINT, 'H' SIGHUP.
 *   EOF (the front died) stops the bus.
 * </pre>
 */
public final class HostProtocol {
    public static final int MAGIC = 0x3148424b; // "KBH1" read little-endian
    /** A request larger than this is refused (argv and environment; ARG_MAX is 2 MiB). */
    public static final int MAX_BODY = 4 << 20;
    /** At most this many argv or environment entries. */
    public static final int MAX_STRINGS = 1 << 16;
    public static final byte ADDRESS = 'A';
    public static final byte FAILED = 'E';
    public static final byte NOT_HOSTABLE = 'N';
    public static final byte STOPPED = 'S';
    public static final byte TERM = 'T';
    public static final byte INT = 'I';
    public static final byte HUP = 'H';

    private HostProtocol() {
    }

    /** One front's request. */
    public record Request(String mntNamespace, String netNamespace, List<String> argv, String cwd, List<String> env) {
        public Request {
            argv = List.copyOf(argv);
            env = List.copyOf(env);
        }

        /** The environment as a map; entries without '=' are dropped, the first of a name wins (getenv's rule). */
        public java.util.Map<String, String> environment() {
            java.util.Map<String, String> m = new java.util.LinkedHashMap<>();
            for (String e : env) {
                int eq = e.indexOf('=');
                if (eq > 0) {
                    m.putIfAbsent(e.substring(0, eq), e.substring(eq + 1));
                }
            }
            return m;
        }
    }

    /** Thrown for bytes that are not a well-formed request. */
    public static final class MalformedException extends Exception {
        public MalformedException(String message) {
            super(message);
        }
    }

    /** The whole request as the front sends it (header included). */
    public static byte[] encode(Request r) {
        ByteBuffer b = ByteBuffer.allocate(MAX_BODY + 8).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(MAGIC).putInt(0);
        put(b, r.mntNamespace());
        put(b, r.netNamespace());
        b.putInt(r.argv().size());
        r.argv().forEach(s -> put(b, s));
        put(b, r.cwd());
        b.putInt(r.env().size());
        r.env().forEach(s -> put(b, s));
        b.putInt(4, b.position() - 8);
        byte[] out = new byte[b.position()];
        b.flip().get(out);
        return out;
    }

    private static void put(ByteBuffer b, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        b.putInt(bytes.length).put(bytes);
    }

    /** The body length the 8-byte header announces. */
    public static int bodyLength(ByteBuffer header) throws MalformedException {
        ByteBuffer h = header.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (h.remaining() < 8 || h.getInt() != MAGIC) {
            throw new MalformedException("not a kdbus-bridge front request");
        }
        int n = h.getInt();
        if (n < 0 || n > MAX_BODY) {
            throw new MalformedException("request of " + (n & 0xffffffffL) + " bytes");
        }
        return n;
    }

    /** Decodes a body (after the header). */
    public static Request decode(ByteBuffer body) throws MalformedException {
        ByteBuffer b = body.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        try {
            String mnt = string(b);
            String net = string(b);
            List<String> argv = strings(b);
            String cwd = string(b);
            List<String> env = strings(b);
            if (b.hasRemaining()) {
                throw new MalformedException(b.remaining() + " bytes after the request");
            }
            return new Request(mnt, net, argv, cwd, env);
        } catch (java.nio.BufferUnderflowException e) {
            throw new MalformedException("request cut short");
        }
    }

    private static List<String> strings(ByteBuffer b) throws MalformedException {
        int n = b.getInt();
        if (n < 0 || n > MAX_STRINGS) {
            throw new MalformedException("list of " + (n & 0xffffffffL) + " strings");
        }
        List<String> out = new ArrayList<>(Math.min(n, 256));
        for (int i = 0; i < n; i++) {
            out.add(string(b));
        }
        return out;
    }

    private static String string(ByteBuffer b) throws MalformedException {
        int n = b.getInt();
        if (n < 0 || n > b.remaining()) {
            throw new MalformedException("string of " + (n & 0xffffffffL) + " bytes");
        }
        byte[] bytes = new byte[n];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** A reply: type, length, payload. */
    public static byte[] reply(byte type, byte[] payload) {
        ByteBuffer b = ByteBuffer.allocate(5 + payload.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(type).putInt(payload.length).put(payload);
        return b.array();
    }

    public static byte[] reply(byte type, String text) {
        return reply(type, text.getBytes(StandardCharsets.UTF_8));
    }

    public static byte[] reply(byte type, int status) {
        return reply(type, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(status).array());
    }
}
