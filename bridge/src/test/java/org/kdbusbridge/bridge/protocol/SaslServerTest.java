// Tests SASL flows of libdbus, GDBus and sd-bus, failures, split input and disconnect rules.
package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.*;
import static org.kdbusbridge.bridge.protocol.SaslServer.Result.*;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class SaslServerTest {
    static final String GUID = "0123456789abcdef0123456789abcdef";
    static final long UID = 1000;
    static final String HEX_UID = Wire.hex("1000"); // "31303030"

    static SaslServer server(boolean anon, boolean fds) {
        return new SaslServer(true, anon, UID, uid -> uid == UID, GUID, fds);
    }

    static ByteBuffer in(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.ISO_8859_1));
    }

    static String out(SaslServer s) {
        return new String(s.takeOutput(), StandardCharsets.US_ASCII);
    }

    /**
     * Hand-over: an exchange taken as Progress at every byte and resumed in a new server answers
     * exactly as the uninterrupted one (replies, result, uid, fd passing, where BEGIN ends).
     */
    @Test
    void progressResumedAtAnyByteAnswersAsTheUninterruptedExchange() {
        String all = "\0AUTH\r\nAUTH EXTERNAL " + HEX_UID + "\r\nFOO\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\nrest";
        SaslServer whole = server(false, true);
        ByteBuffer wb = in(all);
        assertEquals(AUTHENTICATED, whole.feed(wb));
        String expected = out(whole);
        int restAt = wb.position();
        int end = all.indexOf("BEGIN") + "BEGIN\r\n".length() - 1; // up to the last byte before authentication
        for (int cut = 0; cut < end; cut++) {
            SaslServer first = server(false, true);
            assertEquals(CONTINUE, first.feed(in(all.substring(0, cut))));
            String before = out(first);
            SaslServer.Progress p = first.progress();
            assertEquals(GUID, p.serverGuid());
            SaslServer second = SaslServer.resume(new SaslServer.Config(true, false, UID, uid -> uid == UID, GUID, true), p);
            ByteBuffer rest = in(all.substring(cut));
            assertEquals(AUTHENTICATED, second.feed(rest), "cut at " + cut);
            assertEquals(expected, before + out(second), "cut at " + cut);
            assertEquals(restAt - cut, rest.position(), "BEGIN ends where it did, cut at " + cut);
            assertEquals(UID, second.authenticatedUid());
            assertTrue(second.unixFdNegotiated());
        }
        assertThrows(IllegalStateException.class, whole::progress, "no progress once authenticated");
        SaslServer.Progress bad = new SaslServer.Progress("WAIT_AUTH", new byte[0], 0, SaslServer.MAX_FAILURES, 0, -1,
                false, false, GUID);
        assertThrows(IllegalArgumentException.class, () -> SaslServer.resume(new SaslServer.Config(true, false, UID,
                null, GUID, true), bad), "an exchange that must already have ended");
    }

    @Test
    void libdbusFlow() {
        SaslServer s = server(false, true);
        assertEquals(CONTINUE, s.feed(in("\0AUTH\r\n")));
        assertEquals("REJECTED EXTERNAL\r\n", out(s));
        assertEquals(CONTINUE, s.feed(in("AUTH EXTERNAL " + HEX_UID + "\r\n")));
        assertEquals("OK " + GUID + "\r\n", out(s));
        assertEquals(CONTINUE, s.feed(in("NEGOTIATE_UNIX_FD\r\n")));
        assertEquals("AGREE_UNIX_FD\r\n", out(s));
        ByteBuffer b = in("BEGIN\r\n");
        assertEquals(AUTHENTICATED, s.feed(b));
        assertFalse(b.hasRemaining());
        assertEquals(UID, s.authenticatedUid());
        assertTrue(s.unixFdNegotiated());
        assertFalse(s.isAnonymous());
        assertEquals("", out(s));
    }

    @Test
    void gdbusFlowWithoutFds() {
        SaslServer s = server(false, true);
        assertEquals(CONTINUE, s.feed(in("\0AUTH EXTERNAL " + HEX_UID + "\r\n")));
        assertEquals("OK " + GUID + "\r\n", out(s));
        assertEquals(AUTHENTICATED, s.feed(in("BEGIN\r\n")));
        assertFalse(s.unixFdNegotiated());
    }

    @Test
    void sdBusPipelinedKeepsMessageBytes() {
        byte[] hello = MessageBuilder.build(WireFormat.METHOD_CALL, 0, 1, "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "Hello", null, null, "org.freedesktop.DBus", null, null, null);
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        bos.writeBytes(("\0AUTH EXTERNAL " + HEX_UID + "\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n").getBytes(StandardCharsets.US_ASCII));
        bos.writeBytes(hello);
        ByteBuffer b = ByteBuffer.wrap(bos.toByteArray());
        SaslServer s = server(false, true);
        assertEquals(AUTHENTICATED, s.feed(b));
        assertEquals("OK " + GUID + "\r\nAGREE_UNIX_FD\r\n", out(s));
        assertEquals(hello.length, b.remaining());
        byte[] rest = new byte[b.remaining()];
        b.get(rest);
        assertArrayEquals(hello, rest);
        // Further feeds consume nothing.
        ByteBuffer more = in("xyz");
        assertEquals(AUTHENTICATED, s.feed(more));
        assertEquals(3, more.remaining());
    }

    @Test
    void splitAtEveryByteBoundary() {
        String script = "\0AUTH\r\nAUTH EXTERNAL\r\nDATA " + HEX_UID + "\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\nTAIL";
        SaslServer whole = server(false, true);
        ByteBuffer wb = in(script);
        assertEquals(AUTHENTICATED, whole.feed(wb));
        String expected = out(whole);
        assertEquals("REJECTED EXTERNAL\r\nDATA\r\nOK " + GUID + "\r\nAGREE_UNIX_FD\r\n", expected);
        byte[] all = script.getBytes(StandardCharsets.ISO_8859_1);
        SaslServer s = server(false, true);
        StringBuilder got = new StringBuilder();
        SaslServer.Result r = CONTINUE;
        int i = 0;
        for (; i < all.length && r == CONTINUE; i++) {
            r = s.feed(ByteBuffer.wrap(all, i, 1));
            got.append(out(s));
        }
        assertEquals(AUTHENTICATED, r);
        assertEquals(expected, got.toString());
        assertEquals("TAIL".length(), all.length - i);
    }

    @Test
    void externalWithoutInitialResponseEmptyData() {
        SaslServer s = server(false, false);
        s.feed(in("\0AUTH EXTERNAL\r\n"));
        assertEquals("DATA\r\n", out(s));
        s.feed(in("DATA\r\n"));
        assertEquals("OK " + GUID + "\r\n", out(s));
        assertEquals(UID, s.authenticatedUid());
    }

    @Test
    void wrongUidRejectedThenDisconnectAfterTooManyFailures() {
        SaslServer s = server(false, false);
        assertEquals(CONTINUE, s.feed(in("\0AUTH EXTERNAL " + Wire.hex("0") + "\r\n")));
        assertEquals("REJECTED EXTERNAL\r\n", out(s));
        assertEquals(-1, s.authenticatedUid());
        assertEquals(CONTINUE, s.feed(in("AUTH EXTERNAL zz\r\n"))); // not hex
        assertEquals("REJECTED EXTERNAL\r\n", out(s));
        SaslServer.Result r = CONTINUE;
        int n = 2;
        while (r == CONTINUE) {
            r = s.feed(in("AUTH EXTERNAL " + Wire.hex("1001") + "\r\n"));
            n++;
            assertTrue(n <= SaslServer.MAX_FAILURES);
        }
        assertEquals(REJECT_DISCONNECT, r);
        assertEquals(SaslServer.MAX_FAILURES, n);
        assertNotNull(s.disconnectReason());
        assertEquals(REJECT_DISCONNECT, s.feed(in("AUTH EXTERNAL " + HEX_UID + "\r\n")));
    }

    @Test
    void uidPolicyRejects() {
        SaslServer s = new SaslServer(true, false, UID, uid -> false, GUID, true);
        s.feed(in("\0AUTH EXTERNAL " + HEX_UID + "\r\n"));
        assertEquals("REJECTED EXTERNAL\r\n", out(s));
    }

    @Test
    void garbageFirstByteDisconnects() {
        SaslServer s = server(false, false);
        assertEquals(REJECT_DISCONNECT, s.feed(in("AUTH EXTERNAL " + HEX_UID + "\r\n")));
        assertEquals("", out(s));
        assertTrue(s.disconnectReason().contains("NUL"));
    }

    @Test
    void negotiateUnixFdUnsupportedOrTooEarly() {
        SaslServer s = server(false, false);
        s.feed(in("\0NEGOTIATE_UNIX_FD\r\n"));
        assertTrue(out(s).startsWith("ERROR"));
        s.feed(in("AUTH EXTERNAL " + HEX_UID + "\r\nNEGOTIATE_UNIX_FD\r\n"));
        String o = out(s);
        assertTrue(o.startsWith("OK " + GUID + "\r\nERROR "), o);
        assertEquals(AUTHENTICATED, s.feed(in("BEGIN\r\n")));
        assertFalse(s.unixFdNegotiated());
    }

    @Test
    void anonymousEnabledAndDisabled() {
        SaslServer on = server(true, false);
        on.feed(in("\0AUTH\r\n"));
        assertEquals("REJECTED EXTERNAL ANONYMOUS\r\n", out(on));
        on.feed(in("AUTH ANONYMOUS " + Wire.hex("trace") + "\r\n"));
        assertEquals("OK " + GUID + "\r\n", out(on));
        assertEquals(AUTHENTICATED, on.feed(in("BEGIN\r\n")));
        assertTrue(on.isAnonymous());
        assertEquals(-1, on.authenticatedUid());

        SaslServer off = server(false, false);
        off.feed(in("\0AUTH ANONYMOUS " + Wire.hex("trace") + "\r\n"));
        assertEquals("REJECTED EXTERNAL\r\n", out(off));
        assertEquals(REJECT_DISCONNECT, off.feed(in("BEGIN\r\n")));
    }

    @Test
    void externalDisabledOnlyListsAnonymous() {
        SaslServer s = new SaslServer(false, true, UID, null, GUID, false);
        s.feed(in("\0AUTH EXTERNAL " + HEX_UID + "\r\n"));
        assertEquals("REJECTED ANONYMOUS\r\n", out(s));
    }

    @Test
    void cancelErrorUnknownAndBeginTooEarly() {
        SaslServer s = server(false, false);
        s.feed(in("\0FOO\r\n"));
        assertEquals("ERROR \"Unknown command\"\r\n", out(s));
        s.feed(in("AUTH EXTERNAL " + HEX_UID + "\r\nCANCEL\r\n"));
        assertEquals("OK " + GUID + "\r\nREJECTED EXTERNAL\r\n", out(s));
        s.feed(in("AUTH EXTERNAL\r\nERROR \"client gave up\"\r\n"));
        assertEquals("DATA\r\nREJECTED EXTERNAL\r\n", out(s));
        s.feed(in("DATA 31\r\n"));
        assertTrue(out(s).startsWith("ERROR"));
        assertEquals(REJECT_DISCONNECT, s.feed(in("BEGIN\r\n")));
        assertTrue(s.disconnectReason().contains("BEGIN"));
    }

    @Test
    void overlongLineAndNonAsciiDisconnect() {
        SaslServer s = server(false, false);
        String big = "\0AUTH " + "A".repeat(SaslServer.MAX_LINE + 10);
        assertEquals(REJECT_DISCONNECT, s.feed(in(big)));
        assertTrue(s.disconnectReason().contains("longer"));
        SaslServer t = server(false, false);
        assertEquals(REJECT_DISCONNECT, t.feed(in("\0AUTH \u00e9\r\n")));
        SaslServer u = server(false, false);
        assertEquals(REJECT_DISCONNECT, u.feed(in("\0AUTH\0\r\n")));
    }

    @Test
    void totalBytesCapped() {
        SaslServer s = server(false, false);
        s.feed(in("\0"));
        SaslServer.Result r = CONTINUE;
        String junk = "X".repeat(1000) + "\r\n";
        for (int i = 0; i < 100 && r == CONTINUE; i++) r = s.feed(in(junk));
        assertEquals(REJECT_DISCONNECT, r);
        assertTrue(s.disconnectReason().contains("exceeds"));
    }

    @Test
    void badGuidRejected() {
        assertThrows(IllegalArgumentException.class, () -> new SaslServer(true, false, 0, null, "xyz", false));
    }

    @Test
    void linesLongerThanTheInitialBufferStillParse() {
        // The line buffer starts small and grows; a long (but legal) line must survive the growth.
        SaslServer s = server(false, false);
        String junk = "X".repeat(5000);
        assertEquals(CONTINUE, s.feed(in("\0AUTH EXTERNAL " + junk + "\r\n")));
        assertTrue(out(s).startsWith("REJECTED"), "a non-hex identity is rejected, not cut short");
        assertEquals(CONTINUE, s.feed(in("AUTH EXTERNAL " + HEX_UID + "\r\n")));
        assertEquals("OK " + GUID + "\r\n", out(s));
        assertEquals(AUTHENTICATED, s.feed(in("BEGIN\r\n")));
    }

    @Test
    void guidMustBe32HexDigits() {
        assertTrue(SaslServer.isHexGuid("0123456789abcdefABCDEF0123456789"));
        assertFalse(SaslServer.isHexGuid("0123456789abcdefABCDEF012345678"));
        assertFalse(SaslServer.isHexGuid("0123456789abcdefABCDEF012345678g"));
        assertFalse(SaslServer.isHexGuid(null));
        assertThrows(IllegalArgumentException.class, () -> new SaslServer(true, false, UID, uid -> true, "xyz", false));
    }
}
