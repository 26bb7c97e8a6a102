// Invariants: pure parsing tests, no I/O; each case asserts the parsed fields or the error text.
package org.kdbusbridge.bridge.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import org.kdbusbridge.bridge.transport.UnixAddress.BadAddressException;
import org.kdbusbridge.bridge.transport.UnixAddress.Kind;

class UnixAddressTest {

    private static final String GUID = "0123456789abcdef0123456789ABCDEF";

    @Test
    void parsesAllKinds() {
        UnixAddress p = UnixAddress.parse("unix:path=/run/dbus/system_bus_socket");
        assertEquals(Kind.PATH, p.kind());
        assertEquals("/run/dbus/system_bus_socket", p.value());
        assertNull(p.guid());
        assertTrue(p.isResolved());

        assertEquals(Kind.DIR, UnixAddress.parse("unix:dir=/tmp").kind());
        assertEquals(Kind.TMPDIR, UnixAddress.parse("unix:tmpdir=/tmp").kind());
        assertFalse(UnixAddress.parse("unix:tmpdir=/tmp").isResolved());

        UnixAddress a = UnixAddress.parse("unix:abstract=/tmp/dbus-XYZ");
        assertEquals(Kind.ABSTRACT, a.kind());
        assertEquals("/tmp/dbus-XYZ", a.value());

        UnixAddress r = UnixAddress.parse("unix:runtime=yes");
        assertEquals(Kind.RUNTIME, r.kind());
        assertEquals("yes", r.value());
    }

    @Test
    void guidKeyIsParsedAndLowerCased() {
        UnixAddress a = UnixAddress.parse("unix:path=/tmp/x,guid=" + GUID);
        assertEquals(GUID.toLowerCase(), a.guid());
        assertEquals("unix:path=/tmp/x,guid=" + GUID.toLowerCase(), a.toConnectString());
        // key order does not matter
        assertEquals(a, UnixAddress.parse("unix:guid=" + GUID + ",path=/tmp/x"));
    }

    @Test
    void unescapesPercentSequencesAsUtf8() {
        UnixAddress a = UnixAddress.parse("unix:path=%2ftmp%2Fwith%20space%2c%3d%3b%c3%a9");
        assertEquals("/tmp/with space,=;\u00e9", a.value());
        // optionally-escaped characters may be escaped too
        assertEquals("/a-b_c.d*e\\f", UnixAddress.parse("unix:path=%2f%61-b_c.d*e\\f").value());
    }

    @Test
    void escapeRoundTrips() {
        String raw = "/tmp/a b,c=d;e%f\u00e9/ok-_.*\\";
        String esc = UnixAddress.escape(raw);
        assertEquals("/tmp/a%20b%2cc%3dd%3be%25f%c3%a9/ok-_.*\\", esc);
        assertEquals(raw, UnixAddress.unescape(esc));
        UnixAddress a = UnixAddress.path(raw, null);
        assertEquals("unix:path=" + esc, a.toConnectString());
        assertEquals(a, UnixAddress.parse(a.toConnectString()));
    }

    @Test
    void connectStringForms() {
        assertEquals("unix:abstract=foo%20bar,guid=" + GUID.toLowerCase(),
                UnixAddress.abstractName("foo bar", null).toConnectString(GUID));
        assertEquals("unix:path=/x", UnixAddress.parse("unix:path=/x").toConnectString());
        assertThrows(IllegalStateException.class, () -> UnixAddress.parse("unix:dir=/tmp").toConnectString());
        assertEquals("unix:dir=/tmp", UnixAddress.parse("unix:dir=/tmp").toString());
    }

    @Test
    void parsesLists() {
        List<UnixAddress> l = UnixAddress.parseList("unix:path=/a;unix:abstract=b;unix:tmpdir=/tmp;");
        assertEquals(3, l.size());
        assertEquals(Kind.PATH, l.get(0).kind());
        assertEquals(Kind.ABSTRACT, l.get(1).kind());
        assertEquals(Kind.TMPDIR, l.get(2).kind());
        assertMessage("Empty address", () -> UnixAddress.parseList(""));
        assertMessage("colon", () -> UnixAddress.parseList("unix:path=/a;;unix:path=/b"));
        assertMessage("single address", () -> UnixAddress.parse("unix:path=/a;unix:path=/b"));
    }

    @Test
    void resolvesRuntimeDir() {
        UnixAddress r = UnixAddress.parse("unix:runtime=yes,guid=" + GUID);
        UnixAddress p = r.resolveRuntime(Map.of("XDG_RUNTIME_DIR", "/run/user/1000")::get);
        assertEquals(Kind.PATH, p.kind());
        assertEquals("/run/user/1000/bus", p.value());
        assertEquals(GUID.toLowerCase(), p.guid());
        assertEquals("/run/user/1000/bus",
                r.resolveRuntime(Map.of("XDG_RUNTIME_DIR", "/run/user/1000/")::get).value());
        assertMessage("XDG_RUNTIME_DIR", () -> r.resolveRuntime(k -> null));
        UnixAddress notRuntime = UnixAddress.parse("unix:path=/x");
        assertSame(notRuntime, notRuntime.resolveRuntime(k -> null));
    }

    @Test
    void parsesSystemdActivationAddress() {
        UnixAddress s = UnixAddress.parse("systemd:");
        assertEquals(Kind.SYSTEMD, s.kind());
        assertEquals("", s.value());
        assertNull(s.guid());
        assertFalse(s.isResolved());
        assertEquals("systemd:", s.toString());
        assertEquals(s, s.resolveRuntime(k -> "/run/user/1"));
        assertEquals(UnixAddress.systemd(null), s);
        assertThrows(IllegalStateException.class, s::toConnectString);

        UnixAddress g = UnixAddress.parse("systemd:guid=" + GUID);
        assertEquals(GUID.toLowerCase(java.util.Locale.ROOT), g.guid());
        assertEquals("systemd:guid=" + g.guid(), g.toString());

        assertEquals(java.util.List.of(Kind.SYSTEMD, Kind.PATH),
                UnixAddress.parseList("systemd:;unix:path=/x").stream().map(UnixAddress::kind).toList());
        assertMessage("Unknown key 'path' in systemd address", () -> UnixAddress.parse("systemd:path=/x"));
    }

    @Test
    void rejectsBadAddresses() {
        assertMessage("Unknown address type 'tcp'", () -> UnixAddress.parse("tcp:host=localhost,port=0"));
        assertMessage("Unknown address type 'launchd'", () -> UnixAddress.parse("launchd:env=FOO"));
        assertMessage("colon", () -> UnixAddress.parse("unix"));
        assertMessage("Transport in address is empty", () -> UnixAddress.parse(":path=/x"));
        assertMessage("must specify", () -> UnixAddress.parse("unix:"));
        assertMessage("must specify", () -> UnixAddress.parse("unix:guid=" + GUID));
        assertMessage("Unknown key 'foo'", () -> UnixAddress.parse("unix:path=/x,foo=bar"));
        assertMessage("Only one of", () -> UnixAddress.parse("unix:path=/x,abstract=y"));
        assertMessage("Only one of", () -> UnixAddress.parse("unix:dir=/x,tmpdir=/y"));
        assertMessage("Duplicate key 'path'", () -> UnixAddress.parse("unix:path=/x,path=/y"));
        assertMessage("runtime must be \"yes\"", () -> UnixAddress.parse("unix:runtime=no"));
        assertMessage("Empty value", () -> UnixAddress.parse("unix:path="));
        assertMessage("has no '='", () -> UnixAddress.parse("unix:path"));
        assertMessage("Empty key", () -> UnixAddress.parse("unix:=x"));
        assertMessage("should have been escaped", () -> UnixAddress.parse("unix:path=/a b"));
        assertMessage("should have been escaped", () -> UnixAddress.parse("unix:path=/a=b"));
        assertMessage("not followed by two hex digits", () -> UnixAddress.parse("unix:path=/a%2"));
        assertMessage("other than hex digits", () -> UnixAddress.parse("unix:path=/a%zz"));
        assertMessage("guid must be 32 hex digits", () -> UnixAddress.parse("unix:path=/a,guid=1234"));
        assertMessage("guid must be 32 hex digits",
                () -> UnixAddress.parse("unix:path=/a,guid=0123456789abcdef0123456789abcdeg"));
    }

    private static void assertMessage(String expectedPart, Runnable r) {
        BadAddressException e = assertThrows(BadAddressException.class, r::run);
        assertTrue(e.getMessage().contains(expectedPart),
                () -> "expected message containing '" + expectedPart + "' but got: " + e.getMessage());
    }
}
