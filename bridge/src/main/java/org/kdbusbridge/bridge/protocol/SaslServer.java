// Invariants: no I/O, single-threaded, one instance per connection. Input is consumed strictly in
// order and never past the "BEGIN\r\n" line, so bytes pipelined after it stay in the caller's
// buffer. Once AUTHENTICATED or REJECT_DISCONNECT is reached the state never changes again.
// Lines are ASCII, "\r\n"-terminated, at most MAX_LINE bytes; the whole exchange is bounded by
// MAX_TOTAL_BYTES and MAX_FAILURES rejections.
package org.kdbusbridge.bridge.protocol;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.function.LongPredicate;

/** Server side of the D-Bus SASL handshake (EXTERNAL and ANONYMOUS) as a line state machine. */
public final class SaslServer {
    public static final int MAX_LINE = 16 * 1024;
    public static final int MAX_TOTAL_BYTES = 64 * 1024;
    /** dbus-daemon also gives up after a handful of rejections. */
    public static final int MAX_FAILURES = 6;

    public enum Result { CONTINUE, AUTHENTICATED, REJECT_DISCONNECT }

    /**
     * @param peerUid    uid from SO_PEERCRED, or -1 if unknown (EXTERNAL then always fails)
     * @param uidAllowed policy check on the authenticated uid (e.g. user="..." in bus config)
     * @param serverGuid 32 lowercase/uppercase hex characters
     */
    public record Config(boolean allowExternal, boolean allowAnonymous, long peerUid, LongPredicate uidAllowed,
                         String serverGuid, boolean unixFdSupported) {
        public Config {
            if (!isHexGuid(serverGuid)) {
                throw new IllegalArgumentException("server GUID must be 32 hex characters");
            }
            if (uidAllowed == null) uidAllowed = uid -> true;
        }
    }

    /** 32 hex digits; a loop, not a regex: a Config is made per connection. */
    static boolean isHexGuid(String s) {
        if (s == null || s.length() != 32) {
            return false;
        }
        for (int i = 0; i < 32; i++) {
            char c = s.charAt(i);
            if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')) {
                return false;
            }
        }
        return true;
    }

    private enum State { WAIT_NUL, WAIT_AUTH, WAIT_DATA, WAIT_BEGIN, AUTHENTICATED, DISCONNECTED }

    private static final int MECH_EXTERNAL = 1;
    private static final int MECH_ANONYMOUS = 2;

    private final Config cfg;
    private static final byte[] NO_LINE = new byte[0];
    /** Grows up to MAX_LINE + 1: real clients send lines of a few dozen bytes. Dropped after the exchange. */
    private byte[] line = new byte[128];
    private int lineLen;
    private int totalBytes;
    private int failures;
    private State state = State.WAIT_NUL;
    private int mechanism;
    private long authUid = -1;
    private boolean anonymous;
    private boolean unixFd;
    private String disconnectReason;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream(128);

    public SaslServer(Config cfg) {
        this.cfg = cfg;
    }

    public SaslServer(boolean allowExternal, boolean allowAnonymous, long peerUid, LongPredicate uidAllowed,
                      String serverGuid, boolean unixFdSupported) {
        this(new Config(allowExternal, allowAnonymous, peerUid, uidAllowed, serverGuid, unixFdSupported));
    }

    /**
     * Consumes input bytes (from position to limit), queues responses for {@link #takeOutput()}.
     * On AUTHENTICATED, in.position() is the first byte after "BEGIN\r\n". Output queued before a
     * REJECT_DISCONNECT (e.g. the final REJECTED) may still be flushed by the caller.
     */
    public Result feed(ByteBuffer in) {
        while (state != State.AUTHENTICATED && state != State.DISCONNECTED && in.hasRemaining()) {
            byte c = in.get();
            if (++totalBytes > MAX_TOTAL_BYTES) {
                disconnect("authentication exchange exceeds " + MAX_TOTAL_BYTES + " bytes");
                break;
            }
            if (state == State.WAIT_NUL) {
                if (c != 0) {
                    disconnect("first byte of the connection is not NUL");
                    break;
                }
                state = State.WAIT_AUTH;
                continue;
            }
            if (c == '\n' && lineLen > 0 && line[lineLen - 1] == '\r') {
                String l = lineString(lineLen - 1);
                lineLen = 0;
                if (l != null) handleLine(l);
                continue;
            }
            if (lineLen >= MAX_LINE) {
                disconnect("authentication line longer than " + MAX_LINE + " bytes");
                break;
            }
            if (lineLen == line.length) {
                line = java.util.Arrays.copyOf(line, Math.min(MAX_LINE + 1, line.length * 4));
            }
            line[lineLen++] = c;
        }
        return result();
    }

    /** Heap this exchange holds between calls: the partial line's buffer and the queued replies. */
    public int heldBytes() {
        return line.length + out.size();
    }

    /** Convenience for byte arrays; bytes after BEGIN are not reported (use the ByteBuffer form when pipelining). */
    public Result feed(byte[] in) {
        return feed(ByteBuffer.wrap(in));
    }

    private Result result() {
        switch (state) {
            case AUTHENTICATED: return Result.AUTHENTICATED;
            case DISCONNECTED: return Result.REJECT_DISCONNECT;
            default: return Result.CONTINUE;
        }
    }

    private String lineString(int len) {
        for (int i = 0; i < len; i++) {
            int b = line[i];
            if (b <= 0) { // NUL or non-ASCII (negative as signed byte)
                disconnect("authentication line is not ASCII");
                return null;
            }
        }
        return new String(line, 0, len, StandardCharsets.US_ASCII);
    }

    private void handleLine(String l) {
        int sp = l.indexOf(' ');
        String cmd = sp < 0 ? l : l.substring(0, sp);
        String arg = sp < 0 ? null : l.substring(sp + 1);
        switch (cmd) {
            case "AUTH": onAuth(arg); break;
            case "DATA": onData(arg); break;
            case "CANCEL": case "ERROR": rejected(); break;
            case "BEGIN": onBegin(); break;
            case "NEGOTIATE_UNIX_FD": onNegotiateUnixFd(); break;
            default: send("ERROR \"Unknown command\""); break;
        }
    }

    private void onAuth(String arg) {
        if (state != State.WAIT_AUTH) {
            send("ERROR \"AUTH not expected in this state\"");
            return;
        }
        if (arg == null || arg.isEmpty()) {
            rejected(); // lists the mechanisms
            return;
        }
        int sp = arg.indexOf(' ');
        String mech = sp < 0 ? arg : arg.substring(0, sp);
        String initial = sp < 0 ? null : arg.substring(sp + 1);
        if (mech.equals("EXTERNAL") && cfg.allowExternal()) {
            mechanism = MECH_EXTERNAL;
        } else if (mech.equals("ANONYMOUS") && cfg.allowAnonymous()) {
            mechanism = MECH_ANONYMOUS;
        } else {
            rejected();
            return;
        }
        if (initial == null || initial.isEmpty()) {
            state = State.WAIT_DATA;
            send("DATA");
        } else {
            respond(initial);
        }
    }

    private void onData(String arg) {
        if (state != State.WAIT_DATA) {
            send("ERROR \"DATA not expected in this state\"");
            return;
        }
        respond(arg == null ? "" : arg);
    }

    /** Decides a mechanism's response (hex-encoded); empty EXTERNAL data means "whoever I am". */
    private void respond(String hex) {
        byte[] decoded = hexDecode(hex);
        if (decoded == null) {
            rejected();
            return;
        }
        if (mechanism == MECH_ANONYMOUS) {
            // The trace is informational only, but must be text.
            if (!Bytes.isValidUtf8NoNul(ByteBuffer.wrap(decoded), 0, decoded.length)) {
                rejected();
                return;
            }
            ok(-1, true);
            return;
        }
        long uid;
        if (decoded.length == 0) {
            uid = cfg.peerUid();
        } else {
            uid = parseUid(decoded);
            if (uid < 0 || uid != cfg.peerUid()) {
                rejected();
                return;
            }
        }
        if (uid < 0 || !cfg.uidAllowed().test(uid)) {
            rejected();
            return;
        }
        ok(uid, false);
    }

    private void ok(long uid, boolean anon) {
        authUid = uid;
        anonymous = anon;
        state = State.WAIT_BEGIN;
        send("OK " + cfg.serverGuid());
    }

    private void onBegin() {
        if (state == State.WAIT_BEGIN) {
            state = State.AUTHENTICATED;
            line = NO_LINE; // no more lines: an authenticated connection keeps no line buffer
        } else {
            disconnect("BEGIN before successful authentication");
        }
    }

    private void onNegotiateUnixFd() {
        if (state != State.WAIT_BEGIN) {
            send("ERROR \"NEGOTIATE_UNIX_FD only valid after authentication\"");
        } else if (cfg.unixFdSupported()) {
            unixFd = true;
            send("AGREE_UNIX_FD");
        } else {
            send("ERROR \"Unix fd passing not supported on this transport\"");
        }
    }

    private void rejected() {
        state = State.WAIT_AUTH;
        mechanism = 0;
        authUid = -1;
        StringBuilder sb = new StringBuilder("REJECTED");
        if (cfg.allowExternal()) sb.append(" EXTERNAL");
        if (cfg.allowAnonymous()) sb.append(" ANONYMOUS");
        send(sb.toString());
        if (++failures >= MAX_FAILURES) disconnect("too many failed authentication attempts");
    }

    private void send(String s) {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        out.write(b, 0, b.length);
        out.write('\r');
        out.write('\n');
    }

    private void disconnect(String reason) {
        state = State.DISCONNECTED;
        line = NO_LINE;
        disconnectReason = reason;
    }

    private static byte[] hexDecode(String hex) {
        if ((hex.length() & 1) != 0) return null;
        byte[] r = new byte[hex.length() / 2];
        for (int i = 0; i < r.length; i++) {
            int hi = Character.digit(hex.charAt(2 * i), 16);
            int lo = Character.digit(hex.charAt(2 * i + 1), 16);
            if (hi < 0 || lo < 0) return null;
            r[i] = (byte) ((hi << 4) | lo);
        }
        return r;
    }

    /** Parses ASCII decimal digits (the EXTERNAL identity); -1 if not a plausible uid. */
    private static long parseUid(byte[] d) {
        if (d.length == 0 || d.length > 10) return -1; // uid_t is 32-bit
        long v = 0;
        for (byte b : d) {
            if (b < '0' || b > '9') return -1;
            v = v * 10 + (b - '0');
        }
        return v > 0xffffffffL ? -1 : v;
    }

    /**
     * An exchange in progress as values (hand-over, docs/handover.md section 2): the state by
     * name, the partial line, the byte and rejection counts, the chosen mechanism, the uid an
     * accepted response gave, ANONYMOUS, fd passing agreed, and the server guid its OK names.
     * Replies already made are the caller's (taken by {@link #takeOutput}), never in here.
     */
    public record Progress(String state, byte[] line, int totalBytes, int failures, int mechanism, long authUid,
            boolean anonymous, boolean unixFd, String serverGuid) {
    }

    /** This exchange as {@link Progress}; only while it is neither done nor refused, with no reply untaken. */
    public Progress progress() {
        if (state == State.AUTHENTICATED || state == State.DISCONNECTED || out.size() > 0) {
            throw new IllegalStateException("SASL progress is taken only mid-exchange, its replies taken: " + state);
        }
        return new Progress(state.name(), java.util.Arrays.copyOf(line, lineLen), totalBytes, failures, mechanism,
                authUid, anonymous, unixFd, cfg.serverGuid());
    }

    /** An exchange that goes on from {@code p} (taken by {@link #progress} in the bus this one replaces). */
    public static SaslServer resume(Config cfg, Progress p) {
        State st = State.valueOf(p.state());
        if (st == State.AUTHENTICATED || st == State.DISCONNECTED || p.line().length > MAX_LINE
                || p.totalBytes() < 0 || p.totalBytes() > MAX_TOTAL_BYTES || p.failures() < 0
                || p.failures() >= MAX_FAILURES) {
            throw new IllegalArgumentException("SASL progress cannot go on: " + p.state() + ", line "
                    + p.line().length + ", " + p.totalBytes() + " bytes, " + p.failures() + " failures");
        }
        SaslServer s = new SaslServer(cfg);
        s.state = st;
        s.line = java.util.Arrays.copyOf(p.line(), Math.max(128, p.line().length));
        s.lineLen = p.line().length;
        s.totalBytes = p.totalBytes();
        s.failures = p.failures();
        s.mechanism = p.mechanism();
        s.authUid = p.authUid();
        s.anonymous = p.anonymous();
        s.unixFd = p.unixFd();
        return s;
    }

    /** The guid this exchange's OK names. */
    public String serverGuid() {
        return cfg.serverGuid();
    }

    /** Pending response bytes (possibly empty); clears the queue. */
    public byte[] takeOutput() {
        byte[] r = out.toByteArray();
        out.reset();
        return r;
    }

    public boolean hasOutput() {
        return out.size() > 0;
    }

    /** The authenticated uid, or -1 (ANONYMOUS or not yet authenticated). */
    public long authenticatedUid() {
        return authUid;
    }

    public boolean isAnonymous() {
        return anonymous;
    }

    public boolean unixFdNegotiated() {
        return unixFd;
    }

    public boolean isAuthenticated() {
        return state == State.AUTHENTICATED;
    }

    /** Why the peer must be disconnected, or null. */
    public String disconnectReason() {
        return disconnectReason;
    }
}
