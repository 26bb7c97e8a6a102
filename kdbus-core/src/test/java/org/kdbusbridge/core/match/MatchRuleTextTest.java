package org.kdbusbridge.core.match;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * The hand-over carries match rules as text (docs/handover.md section 3, MATCHES): every rule
 * the bus holds must come back equal from its canonical text. Property test over generated
 * rules with every key kind, including values with quotes, backslashes, commas and spaces.
 */
class MatchRuleTextTest {
    private static final String[] TYPES = {"signal", "method_call", "method_return", "error"};
    private static final String[] BUS_NAMES = {":1.42", ":1.0", "org.freedesktop.DBus", "org.example.Svc",
            "com.a-b.c_d", "x.y"};
    private static final String[] IFACES = {"org.example.Iface", "a.b", "org.freedesktop.DBus.Properties"};
    private static final String[] MEMBERS = {"Changed", "NameOwnerChanged", "_x", "m1"};
    private static final String[] PATHS = {"/", "/org/example", "/a/b/c", "/_1"};
    private static final String[] NAMESPACES = {"org", "org.example", "com.a-b", "a_b.c"};
    /** Pieces of free-form argument values: quoting, escaping and separators the text form must keep. */
    private static final String[] PIECES = {"a", "'", "\\", ",", " ", "=", "''", "\\'", "é", "\u263a", "/", "",
            "arg0='x'", "\t", "path"};

    @Test
    void generatedRulesComeBackFromTheirText() throws Exception {
        Random rnd = new Random(19);
        int checked = 0;
        int long1024 = 0;
        for (int i = 0; i < 20_000; i++) {
            String text = randomRuleText(rnd);
            MatchRule r;
            try {
                r = MatchRule.parse(text);
            } catch (MatchRuleException e) {
                if (e.getMessage().startsWith("Match rule text is")) {
                    i--; // too long as sent: not a rule a bus could hold; draw another
                    continue;
                }
                throw new AssertionError("generator made an invalid rule: " + text, e);
            }
            String canonical = r.toString();
            assertEquals(r, MatchRule.parseCanonical(canonical), () -> "from " + text + " via " + canonical);
            assertEquals(canonical, MatchRule.parseCanonical(canonical).toString(), "the text is a fixed point");
            if (canonical.length() <= MatchRule.MAX_RULE_LENGTH / 3) {
                assertEquals(r, MatchRule.parse(canonical), () -> "parse, from " + text + " via " + canonical);
            }
            if (utf8(canonical) > MatchRule.MAX_RULE_LENGTH) {
                long1024++;
            }
            checked++;
        }
        assertEquals(20_000, checked);
        assertTrue(long1024 > 0, "some canonical texts must exceed 1024 bytes, the case parseCanonical exists for");
    }

    @Test
    void eachKeyKindAloneRoundTrips() throws Exception {
        String[] rules = {"eavesdrop=true", "eavesdrop='false'", "type='signal'", "sender=':1.7'",
                "destination='org.a.B'", "interface='a.b'", "member='M'", "path='/a'", "path_namespace='/'",
                "arg0='x'", "arg63=''", "arg3path='/a/'", "arg0namespace='org.a'", "arg5=it\\'s",
                "arg1='a,b',arg2=' c '", "arg0path='',arg1='\\'"};
        for (String text : rules) {
            MatchRule r = MatchRule.parse(text);
            assertEquals(r, MatchRule.parse(r.toString()), text);
        }
    }

    @Test
    void aRuleAtTheLimitHasALongerCanonicalTextThatOnlyParseCanonicalTakes() throws Exception {
        // 1024 bytes as sent, unquoted; quoting adds two characters.
        String text = "arg0=" + "x".repeat(MatchRule.MAX_RULE_LENGTH - 5);
        MatchRule r = MatchRule.parse(text);
        String canonical = r.toString();
        assertTrue(utf8(canonical) > MatchRule.MAX_RULE_LENGTH);
        assertThrows(MatchRuleException.class, () -> MatchRule.parse(canonical));
        assertEquals(r, MatchRule.parseCanonical(canonical));
    }

    private static int utf8(String s) {
        return s.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
    }

    private static String randomRuleText(Random rnd) {
        List<String> keys = new ArrayList<>();
        if (rnd.nextInt(3) == 0) {
            keys.add(kv(rnd, "type", pick(rnd, TYPES)));
        }
        if (rnd.nextInt(3) == 0) {
            keys.add(kv(rnd, "sender", pick(rnd, BUS_NAMES)));
        }
        if (rnd.nextInt(3) == 0) {
            keys.add(kv(rnd, "destination", pick(rnd, BUS_NAMES)));
        }
        if (rnd.nextInt(3) == 0) {
            keys.add(kv(rnd, "interface", pick(rnd, IFACES)));
        }
        if (rnd.nextInt(3) == 0) {
            keys.add(kv(rnd, "member", pick(rnd, MEMBERS)));
        }
        switch (rnd.nextInt(3)) {
            case 0 -> keys.add(kv(rnd, "path", pick(rnd, PATHS)));
            case 1 -> keys.add(kv(rnd, "path_namespace", pick(rnd, PATHS)));
            default -> { }
        }
        if (rnd.nextInt(4) == 0) {
            keys.add(kv(rnd, "eavesdrop", rnd.nextBoolean() ? "true" : "false"));
        }
        boolean arg0Used = false;
        if (rnd.nextInt(4) == 0) {
            keys.add(kv(rnd, "arg0namespace", pick(rnd, NAMESPACES)));
            arg0Used = true;
        }
        int args = rnd.nextInt(4);
        List<Integer> used = new ArrayList<>();
        for (int a = 0; a < args && keys.size() < MatchRule.MAX_RULE_TOKENS; a++) {
            int idx = rnd.nextInt(3) == 0 ? rnd.nextInt(MatchRule.MAX_ARG + 1) : rnd.nextInt(4);
            if (used.contains(idx) || (idx == 0 && arg0Used)) {
                continue;
            }
            used.add(idx);
            String suffix = rnd.nextInt(3) == 0 ? "path" : "";
            keys.add(kv(rnd, "arg" + idx + suffix, freeValue(rnd)));
        }
        Collections.shuffle(keys, rnd);
        return String.join(",", keys);
    }

    private static String freeValue(Random rnd) {
        if (rnd.nextInt(40) == 0) {
            return "'".repeat(260 + rnd.nextInt(40)); // 2 bytes sent as \', 4 bytes of canonical text
        }
        StringBuilder b = new StringBuilder();
        for (int i = rnd.nextInt(6); i > 0; i--) {
            b.append(pick(rnd, PIECES));
        }
        return b.toString();
    }

    /** key=value as a client might write it: quoted, or unquoted with the \' escape. */
    private static String kv(Random rnd, String key, String value) {
        String quoted = "'" + value.replace("'", "'\\''") + "'";
        boolean longQuotes = value.length() > 200 && value.chars().allMatch(ch -> ch == '\'');
        boolean plain = longQuotes || !value.contains(",") && !value.contains("\\") && !value.isEmpty()
                && !Character.isWhitespace(value.charAt(0)) && rnd.nextBoolean();
        String v = plain ? value.replace("'", "\\'") : quoted;
        return (rnd.nextInt(5) == 0 ? " " : "") + key + "=" + v;
    }

    private static String pick(Random rnd, String[] from) {
        return from[rnd.nextInt(from.length)];
    }
}
