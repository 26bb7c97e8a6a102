// Tests name/path syntax and signature grammar and depth limits against spec rules.
package org.kdbusbridge.bridge.protocol;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class NamesAndSignaturesTest {
    @Test
    void objectPaths() {
        for (String p : new String[] {"/", "/a", "/org/freedesktop/DBus", "/a_b/C9/_"}) assertTrue(Names.isValidObjectPath(p), p);
        for (String p : new String[] {"", "a", "//", "/a/", "/a//b", "/a-b", "/a.b", "/ä"}) assertFalse(Names.isValidObjectPath(p), p);
    }

    @Test
    void interfaceAndErrorNames() {
        for (String n : new String[] {"a.b", "org.freedesktop.DBus", "_a._9", "A1.B2.C3"}) assertTrue(Names.isValidInterfaceName(n), n);
        for (String n : new String[] {"", "a", ".a.b", "a.b.", "a..b", "a.9b", "a-b.c", "a.b c", "a" + ".b".repeat(128)})
            assertFalse(Names.isValidInterfaceName(n), n);
        assertTrue(Names.isValidErrorName("org.freedesktop.DBus.Error.Failed"));
        String max = "a." + "b".repeat(253);
        assertTrue(Names.isValidInterfaceName(max));
        assertFalse(Names.isValidInterfaceName(max + "c"));
    }

    @Test
    void memberNames() {
        for (String n : new String[] {"Hello", "_x", "a9"}) assertTrue(Names.isValidMemberName(n), n);
        for (String n : new String[] {"", "9a", "a.b", "a-b", "x".repeat(256)}) assertFalse(Names.isValidMemberName(n), n);
    }

    @Test
    void busNames() {
        for (String n : new String[] {":1.42", ":1.0", ":a.b-c", "org.example.Svc", "a-b.c_d", "org.freedesktop.DBus", ":9.9.9"})
            assertTrue(Names.isValidBusName(n), n);
        for (String n : new String[] {"", ":", ":1", "org", "9org.a", "a.9b", "a..b", ".a.b", "a.b.", ":1..2", "a b.c", "a." + "b".repeat(254)})
            assertFalse(Names.isValidBusName(n), n);
        assertTrue(Names.isUniqueName(":1.1"));
        assertFalse(Names.isUniqueName("a.b"));
    }

    @Test
    void signatures() {
        for (String s : new String[] {"", "s", "a{sv}", "(ii)", "a(sa{sv})", "aai", "ybnqiuxtdhsogv", "a{ya{sv}}"})
            assertTrue(Signatures.isValid(s, false), s);
        for (String s : new String[] {"a", "(", ")", "()", "{sv}", "a{vs}", "a{s}", "a{svs}", "a{(i)s}", "(i", "z", "r", "m", "e", "a{sv"})
            assertFalse(Signatures.isValid(s, false), s);
        assertTrue(Signatures.isValid("a{sv}", true));
        assertFalse(Signatures.isValid("ss", true));
        assertFalse(Signatures.isValid("", true));
        assertFalse(Signatures.isValid("y".repeat(256), false));
        assertTrue(Signatures.isValid("y".repeat(255), false));
    }

    @Test
    void signatureDepthLimits() {
        assertTrue(Signatures.isValid("a".repeat(32) + "i", false));
        assertFalse(Signatures.isValid("a".repeat(33) + "i", false));
        assertTrue(Signatures.isValid("(".repeat(32) + "i" + ")".repeat(32), false));
        assertFalse(Signatures.isValid("(".repeat(33) + "i" + ")".repeat(33), false));
        // Dict entries count as structs.
        assertFalse(Signatures.isValid("(".repeat(32) + "a{si}" + ")".repeat(32), false));
        // 32 arrays plus 32 structs together are allowed.
        assertTrue(Signatures.isValid("a".repeat(32) + "(".repeat(32) + "i" + ")".repeat(32), false));
    }
}
