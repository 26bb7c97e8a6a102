// The property every fuzzer of MatchRule.parse checks, for one input string:
//  * parse throws nothing but MatchRuleException (no NumberFormatException, index errors, ...);
//  * a parsed rule's canonical text (toString, what GetAllMatchRules shows) parses back to an
//    equal rule with an equal hash (RemoveMatch finds rules by equality);
//  * argN keys are accepted only with ASCII digits, as by dbus-daemon.
package org.kdbusbridge.core.match;

import java.nio.charset.StandardCharsets;
import java.util.Random;

final class MatchRuleFuzzTarget {
    private MatchRuleFuzzTarget() {}

    /** True if parsed, false if refused; AssertionError on a property violation. */
    static boolean run(String text) {
        MatchRule rule;
        try {
            rule = MatchRule.parse(text);
        } catch (MatchRuleException e) {
            if (e.getMessage() == null || e.getMessage().isEmpty()) throw new AssertionError("MatchRuleException without a message");
            return false;
        } catch (RuntimeException | StackOverflowError e) {
            throw new AssertionError("MatchRule.parse threw " + e + " for " + quote(text), e);
        }
        String canonical = rule.toString();
        if (canonical.getBytes(StandardCharsets.UTF_8).length > MatchRule.MAX_RULE_LENGTH) {
            return true; // quoting grew it past the length limit: not re-parseable by design
        }
        try {
            MatchRule again = MatchRule.parse(canonical);
            if (!again.equals(rule) || again.hashCode() != rule.hashCode()) {
                throw new AssertionError("round trip changed the rule: " + quote(text) + " -> " + quote(canonical)
                        + " -> " + quote(again.toString()));
            }
        } catch (MatchRuleException e) {
            throw new AssertionError("canonical form " + quote(canonical) + " of " + quote(text) + " does not parse: " + e.getMessage());
        }
        return true;
    }

    static String quote(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c < 0x20 || c > 0x7e) sb.append(String.format("\\u%04x", (int) c));
            else sb.append(c);
        }
        return sb.append('"').toString();
    }

    private static final String[] KEYS = {"type", "sender", "interface", "member", "path", "path_namespace",
            "destination", "eavesdrop", "arg0", "arg1", "arg63", "arg64", "arg0path", "arg3path", "arg0namespace",
            "arg1namespace", "arg", "argx", "arg00", "arg0000", "arg99999999999", "arg\u0663", "arg\uff11", "type ", "bogus", ""};
    private static final String[] VALUES = {"signal", "method_call", "method_return", "error", "bogus",
            "org.example.Foo", "org.freedesktop.DBus", ":1.42", "/", "/org/example", "/org/example/", "Changed",
            "true", "false", "", "a'b", "a\\b", "a,b", "grüße", "\uD83D\uDE00", "org", "org.example.", "x".repeat(300)};

    /** A plausible rule with token- and character-level mutations. */
    static String next(Random r) {
        StringBuilder sb = new StringBuilder();
        int n = r.nextInt(6) + (r.nextInt(10) == 0 ? 14 : 0);
        for (int i = 0; i < n; i++) {
            if (i > 0) sb.append(r.nextInt(8) == 0 ? " , " : ",");
            String k = KEYS[r.nextInt(KEYS.length)];
            String v = VALUES[r.nextInt(VALUES.length)];
            sb.append(k).append(r.nextInt(10) == 0 ? " = " : "=");
            switch (r.nextInt(4)) {
                case 0 -> sb.append(v);
                case 1 -> sb.append('\'').append(v).append('\'');
                case 2 -> sb.append('\'').append(v.replace("'", "'\\''")).append('\'');
                default -> sb.append(v.replace("'", "\\'"));
            }
        }
        String s = sb.toString();
        int muts = r.nextInt(3);
        for (int k = 0; k < muts; k++) {
            String junk = "'\\,= \t\n\u00e9\u0000\uD800a0";
            StringBuilder m = new StringBuilder(s);
            switch (r.nextInt(4)) {
                case 0 -> m.insert(m.length() == 0 ? 0 : r.nextInt(m.length() + 1), junk.charAt(r.nextInt(junk.length())));
                case 1 -> { if (m.length() > 0) m.deleteCharAt(r.nextInt(m.length())); }
                case 2 -> { if (m.length() > 0) m.setCharAt(r.nextInt(m.length()), junk.charAt(r.nextInt(junk.length()))); }
                default -> { if (m.length() > 0) m.setLength(r.nextInt(m.length())); }
            }
            s = m.toString();
        }
        return s;
    }
}
