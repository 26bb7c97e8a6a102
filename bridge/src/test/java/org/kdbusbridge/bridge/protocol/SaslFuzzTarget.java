// The property every fuzzer of SaslServer checks, for one input byte stream:
//  * feed() never throws, whatever the bytes and however they are split into reads;
//  * the outcome and the reply bytes do not depend on how the input was split;
//  * terminal states stick; nothing past "BEGIN\r\n" is consumed; the exchange is bounded;
//  * every reply is a CRLF-terminated ASCII line starting with a SASL server command;
//  * EXTERNAL never authenticates as anyone but the peer's SO_PEERCRED uid.
package org.kdbusbridge.bridge.protocol;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Random;

final class SaslFuzzTarget {
    static final long PEER_UID = 1000;
    static final String GUID = "0123456789abcdef0123456789abcdef";

    record Run(SaslServer.Result result, byte[] output, int consumed, long uid, boolean anonymous, boolean fds) {}

    /** Feeds {@code in} in chunks cut by {@code cuts} (null: one chunk). */
    static Run feed(byte[] in, Random cuts, boolean allowAnonymous) {
        SaslServer s = new SaslServer(true, allowAnonymous, PEER_UID, uid -> uid == PEER_UID, GUID, true);
        ByteBuffer b = ByteBuffer.wrap(in);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        SaslServer.Result res = SaslServer.Result.CONTINUE;
        int consumed = 0;
        try {
            while (b.hasRemaining()) {
                int n = cuts == null ? b.remaining() : 1 + cuts.nextInt(Math.min(b.remaining(), 40));
                ByteBuffer chunk = ByteBuffer.wrap(in, b.position(), n).slice();
                SaslServer.Result prev = res;
                res = s.feed(chunk);
                consumed += chunk.position();
                out.writeBytes(s.takeOutput());
                if (prev != SaslServer.Result.CONTINUE) {
                    check(res == prev && chunk.position() == 0, "terminal state " + prev + " changed or consumed input");
                }
                if (res != SaslServer.Result.CONTINUE) {
                    break; // the session stops feeding here
                }
                check(!chunk.hasRemaining(), "CONTINUE with unconsumed input");
                b.position(b.position() + n);
            }
        } catch (RuntimeException e) {
            throw new AssertionError("SaslServer threw " + e + " for input " + FrameFuzzTarget.hex(in), e);
        }
        check(consumed <= SaslServer.MAX_TOTAL_BYTES + 1, "consumed " + consumed + " bytes");
        if (res == SaslServer.Result.AUTHENTICATED) {
            String head = new String(in, 0, consumed, StandardCharsets.ISO_8859_1);
            // The last line consumed is BEGIN (arguments after a space are ignored, as by dbus-daemon).
            int start = head.lastIndexOf("\r\n", head.length() - 3) + 2;
            String last = head.substring(Math.max(start, 0));
            if (start == 1) last = head.substring(1); // the first line follows the NUL byte
            check(head.endsWith("\r\n") && (last.equals("BEGIN\r\n") || last.startsWith("BEGIN ")),
                    "authenticated, but the last line consumed is not BEGIN: '" + last + "'");
            check(s.isAnonymous() ? s.authenticatedUid() == -1 : s.authenticatedUid() == PEER_UID,
                    "authenticated as uid " + s.authenticatedUid());
            check(allowAnonymous || !s.isAnonymous(), "ANONYMOUS accepted while disabled");
        } else {
            check(!s.isAuthenticated(), "isAuthenticated without AUTHENTICATED");
        }
        if (res == SaslServer.Result.REJECT_DISCONNECT) check(s.disconnectReason() != null, "no disconnect reason");
        byte[] o = out.toByteArray();
        checkReplies(o);
        return new Run(res, o, consumed, s.authenticatedUid(), s.isAnonymous(), s.unixFdNegotiated());
    }

    private static void checkReplies(byte[] o) {
        String all = new String(o, StandardCharsets.ISO_8859_1);
        if (all.isEmpty()) return;
        check(all.endsWith("\r\n"), "reply not CRLF-terminated");
        for (String line : all.substring(0, all.length() - 2).split("\r\n", -1)) {
            for (int i = 0; i < line.length(); i++) check(line.charAt(i) >= 0x20 && line.charAt(i) < 0x7f, "non-ASCII reply");
            check(line.startsWith("OK " + GUID) || line.startsWith("REJECTED") || line.equals("DATA")
                    || line.startsWith("ERROR") || line.equals("AGREE_UNIX_FD"), "unexpected reply '" + line + "'");
        }
    }

    /** Runs the input whole and in random pieces; both must agree. */
    static Run check(byte[] in, Random r) {
        boolean anon = r.nextBoolean();
        Run whole = feed(in, null, anon);
        Run split = feed(in, new Random(r.nextLong()), anon);
        check(whole.result() == split.result() && whole.consumed() == split.consumed()
                        && java.util.Arrays.equals(whole.output(), split.output()) && whole.uid() == split.uid(),
                "outcome depends on how the input was split: " + whole + " vs " + split + " for " + FrameFuzzTarget.hex(in));
        return whole;
    }

    private static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    // ---- input generation ----

    private static final String[] LINES = {
            "AUTH EXTERNAL " + Wire.hex(Long.toString(PEER_UID)), "AUTH EXTERNAL " + Wire.hex("0"), "AUTH EXTERNAL",
            "AUTH EXTERNAL " + Wire.hex("4294967296"), "AUTH EXTERNAL " + Wire.hex("01000"), "AUTH EXTERNAL zz",
            "AUTH EXTERNAL 3", "AUTH ANONYMOUS", "AUTH ANONYMOUS " + Wire.hex("trace"), "AUTH ANONYMOUS c0", "AUTH",
            "AUTH DBUS_COOKIE_SHA1 " + Wire.hex("me"), "AUTH  EXTERNAL", "DATA", "DATA " + Wire.hex(Long.toString(PEER_UID)),
            "DATA " + Wire.hex("1001"), "DATA xyz", "BEGIN", "CANCEL", "ERROR", "ERROR \"x\"", "NEGOTIATE_UNIX_FD", "OK",
            "REJECTED", "AGREE_UNIX_FD", "", " ", "begin", "BEGIN ", "BEGINX"};

    /** A plausible client transcript with line- and byte-level mutations. */
    static byte[] next(Random r) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        if (r.nextInt(20) != 0) b.write(0);
        int lines = 1 + r.nextInt(8);
        for (int i = 0; i < lines; i++) {
            // Biased towards a successful exchange so the states after OK are reached too.
            String l = i == 0 && r.nextInt(3) == 0 ? LINES[0] : r.nextInt(4) == 0 ? "BEGIN" : LINES[r.nextInt(LINES.length)];
            byte[] lb = l.getBytes(StandardCharsets.US_ASCII);
            b.writeBytes(lb);
            switch (r.nextInt(12)) {
                case 0 -> b.write('\n'); // bare LF
                case 1 -> b.write('\r'); // bare CR
                case 2 -> { }             // no terminator: glued to the next line
                default -> b.writeBytes(new byte[] {'\r', '\n'});
            }
        }
        if (r.nextInt(4) == 0) { // pipelined message bytes after BEGIN
            for (int i = 0; i < 1 + r.nextInt(32); i++) b.write(r.nextInt(256));
        }
        byte[] a = b.toByteArray();
        int muts = r.nextInt(3);
        for (int k = 0; k < muts && a.length > 0; k++) {
            switch (r.nextInt(5)) {
                case 0 -> a[r.nextInt(a.length)] ^= (byte) (1 << r.nextInt(8));
                case 1 -> a[r.nextInt(a.length)] = (byte) new int[] {0, '\r', '\n', ' ', 0x80, 0xff, 'A'}[r.nextInt(7)];
                case 2 -> a = java.util.Arrays.copyOf(a, r.nextInt(a.length + 1));
                case 3 -> { // a very long line (limits)
                    int n = r.nextBoolean() ? SaslServer.MAX_LINE - 2 + r.nextInt(5) : SaslServer.MAX_TOTAL_BYTES + r.nextInt(3);
                    byte[] big = new byte[a.length + n];
                    System.arraycopy(a, 0, big, 0, a.length);
                    java.util.Arrays.fill(big, a.length, big.length, (byte) (r.nextBoolean() ? 'A' : '\n'));
                    a = big;
                }
                default -> { // repeat a prefix many times (many failures / many lines)
                    int n = Math.min(a.length, 64);
                    ByteArrayOutputStream rep = new ByteArrayOutputStream();
                    rep.writeBytes(a);
                    for (int i = 0; i < 20; i++) rep.write(a, 1, Math.max(0, n - 1));
                    a = rep.toByteArray();
                }
            }
        }
        return a;
    }
}
