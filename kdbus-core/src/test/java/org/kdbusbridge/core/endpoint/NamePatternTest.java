package org.kdbusbridge.core.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class NamePatternTest {
    @Test
    void exactMatchesOnlyItself() {
        NamePattern p = NamePattern.exact("org.foo");
        assertTrue(p.matches("org.foo"));
        assertFalse(p.matches("org.foo.bar"));
        assertFalse(p.matches("org.fo"));
        assertFalse(p.matches(null));
        assertEquals("org.foo", p.toString());
    }

    @Test
    void subtreeMatchesTheNameAndEveryNameBelowButNotASiblingPrefix() {
        NamePattern p = NamePattern.subtreeOf("org.foo");
        assertTrue(p.matches("org.foo"));
        assertTrue(p.matches("org.foo.bar"));
        assertTrue(p.matches("org.foo.bar.gazonk"));
        assertFalse(p.matches("org.foobar"));
        assertFalse(p.matches("org.fo"));
        assertFalse(p.matches("org"));
        assertEquals("org.foo.*", p.toString());
    }

    @Test
    void uniqueNamesNeverMatch() {
        assertFalse(NamePattern.exact(":1.5").matches(":1.5"));
        assertFalse(NamePattern.subtreeOf(":1").matches(":1.5"));
    }

    @Test
    void nameRuleRefusesNone() {
        assertThrows(IllegalArgumentException.class, () -> new NameRule(NamePattern.exact("a.b"), Level.NONE));
        assertEquals(Level.OWN, NameRule.own(NamePattern.exact("a.b")).level());
    }

    @Test
    void levelsAreOrdered() {
        assertTrue(Level.OWN.atLeast(Level.TALK));
        assertTrue(Level.TALK.atLeast(Level.SEE));
        assertFalse(Level.SEE.atLeast(Level.TALK));
        assertEquals(Level.TALK, Level.SEE.max(Level.TALK));
        assertEquals(Level.OWN, Level.OWN.max(Level.NONE));
    }
}
