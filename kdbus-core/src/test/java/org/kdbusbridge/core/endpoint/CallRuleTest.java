package org.kdbusbridge.core.endpoint;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class CallRuleTest {
    private static final NamePattern N = NamePattern.exact("org.foo");

    @Test
    void anyMatchesEverything() {
        CallRule r = CallRule.any(N);
        assertTrue(r.matches("/", "a.b", "C"));
        assertTrue(r.matches(null, null, "C"));
    }

    @Test
    void exactPathMatchesOnlyThatPath() {
        CallRule r = new CallRule(N, null, null, "/org/foo", false);
        assertTrue(r.matches("/org/foo", "x.y", "M"));
        assertFalse(r.matches("/org/foo/bar", "x.y", "M"));
        assertFalse(r.matches("/org", "x.y", "M"));
        assertFalse(r.matches(null, "x.y", "M"));
    }

    @Test
    void pathSubtreeMatchesThePathAndBelowOnly() {
        CallRule r = new CallRule(N, null, null, "/org/foo", true);
        assertTrue(r.matches("/org/foo", null, "M"));
        assertTrue(r.matches("/org/foo/bar/baz", null, "M"));
        assertFalse(r.matches("/org/foobar", null, "M"));
        assertFalse(r.matches("/org", null, "M"));
    }

    @Test
    void rootSubtreeFromSlashStarMatchesEveryPath() {
        CallRule r = new CallRule(N, null, null, "", true); // "@/*"
        assertTrue(r.matches("/", null, "M"));
        assertTrue(r.matches("/a/b", null, "M"));
    }

    @Test
    void interfaceAndMemberCompareExactly() {
        CallRule iface = new CallRule(N, "org.foo.Iface", null, null, false);
        assertTrue(iface.matches("/", "org.foo.Iface", "Anything"));
        assertFalse(iface.matches("/", "org.foo.Other", "Anything"));
        assertFalse(iface.matches("/", null, "Anything")); // a call without interface does not match
        CallRule method = new CallRule(N, "org.foo.Iface", "Do", "/obj", false);
        assertTrue(method.matches("/obj", "org.foo.Iface", "Do"));
        assertFalse(method.matches("/obj", "org.foo.Iface", "Undo"));
        assertFalse(method.matches("/other", "org.foo.Iface", "Do"));
    }

    @Test
    void memberWithoutInterfaceIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new CallRule(N, null, "M", null, false));
        assertThrows(IllegalArgumentException.class, () -> new CallRule(N, null, null, null, true));
    }
}
