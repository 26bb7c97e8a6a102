package org.kdbusbridge.core.match;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.core.message.Message;

class MatchRuleTest {

    private static MatchRule p(String text) throws MatchRuleException {
        return MatchRule.parse(text);
    }

    private static MatchRuleException bad(String text) {
        return assertThrows(MatchRuleException.class, () -> MatchRule.parse(text), text);
    }

    // ---------------------------------------------------------------- grammar

    @Test
    void emptyRuleMatchesEverything() throws Exception {
        for (String text : new String[] {"", "   ", " \t\r\n"}) {
            MatchRule r = p(text);
            assertEquals(0, r.type());
            assertNull(r.sender());
            assertNull(r.iface());
            assertNull(r.member());
            assertNull(r.path());
            assertNull(r.pathNamespace());
            assertNull(r.destination());
            assertFalse(r.eavesdrop());
            assertFalse(r.hasArgs());
        }
    }

    @Test
    void everyKeyIsParsed() throws Exception {
        MatchRule r = p("type='signal',sender='org.example.Sender',interface='org.example.Iface',"
                + "member='Changed',path='/org/example/Obj',destination=':1.42',eavesdrop='true',"
                + "arg0='zero',arg3path='/a/',arg63='last'");
        assertEquals(Message.SIGNAL, r.type());
        assertEquals("org.example.Sender", r.sender());
        assertEquals("org.example.Iface", r.iface());
        assertEquals("Changed", r.member());
        assertEquals("/org/example/Obj", r.path());
        assertNull(r.pathNamespace());
        assertEquals(":1.42", r.destination());
        assertTrue(r.eavesdrop());
        assertTrue(r.hasArgs());
        assertEquals(r, p(r.toString()), "canonical form round-trips");
    }

    @Test
    void pathNamespaceAndArg0Namespace() throws Exception {
        MatchRule r = p("path_namespace='/org/example',arg0namespace='org.example'");
        assertNull(r.path());
        assertEquals("/org/example", r.pathNamespace());
        assertTrue(r.hasArgs());
        assertEquals("/", p("path_namespace='/'").pathNamespace());
        assertTrue(p("arg0namespace='single'").hasArgs(), "one element is a valid namespace");
        assertTrue(p("arg0namespace='org.ex-ample._x'").hasArgs());
    }

    @ParameterizedTest
    @CsvSource({"method_call, 1", "method_return, 2", "error, 3", "signal, 4"})
    void messageTypes(String name, int type) throws Exception {
        assertEquals(type, p("type='" + name + "'").type());
        assertEquals(type, p("type=" + name).type());
    }

    @Test
    void eavesdropFalseIsTheDefault() throws Exception {
        assertFalse(p("eavesdrop='false'").eavesdrop());
        assertEquals(p(""), p("eavesdrop='false'"));
        // eavesdrop may be given twice (dbus-monitor appends it); the last one wins
        assertFalse(p("eavesdrop='true',eavesdrop='false'").eavesdrop());
        assertTrue(p("eavesdrop='false',eavesdrop='true'").eavesdrop());
    }

    // ---------------------------------------------------------------- quoting

    @Test
    void unquotedValues() throws Exception {
        MatchRule r = p("type=signal,member=Changed,arg0=hello");
        assertEquals(Message.SIGNAL, r.type());
        assertEquals("Changed", r.member());
        assertEquals(p("type='signal',member='Changed',arg0='hello'"), r);
    }

    @Test
    void whiteSpaceAroundKeysIsSkippedButValuesAreTakenVerbatim() throws Exception {
        assertEquals(p("type='signal',member='Changed'"), p("  type ='signal',\tmember\n='Changed',  "));
        // a value runs up to the comma, white space included
        bad("member=Changed ,type=signal");
        // spaces inside an unquoted value are kept
        assertEquals(p("arg0='hello world'"), p("arg0=hello world"));
        // a space after '=' is part of the value
        bad("type= 'signal'");
    }

    @Test
    void trailingWhiteSpaceAndTrailingCommaAreAccepted() throws Exception {
        MatchRule expected = p("type='signal'");
        // white space after the value (before the next comma) belongs to the value, as in dbus-daemon
        bad("type='signal'   ");
        assertEquals(p("arg0='x  '"), p("arg0='x'  "));
        assertEquals(expected, p("type='signal',"));
        assertEquals(expected, p("type='signal',  \t"));
    }

    @Test
    void backslashEscapesAQuoteOnlyOutsideQuotes() throws Exception {
        // 'it'\''s' = it + ' + s
        assertEquals(p("arg0=it\\'s"), p("arg0='it'\\''s'"));
        MatchRule apostrophe = p("arg0='it'\\''s'");
        assertTrue(apostrophe.toString().contains("arg0='it'\\''s'"), apostrophe.toString());
        // a backslash before anything else is literal
        assertEquals(p("arg0='a\\b'"), p("arg0=a\\b"));
        // a trailing backslash is literal
        assertEquals(p("arg0='a\\'"), p("arg0=a\\"));
        // inside quotes a backslash is literal and the quote ends the quoted part
        MatchRule inside = p("arg0='a\\',arg1=x");
        assertEquals(p("arg1='x',arg0=a\\"), inside);
        // a comma inside quotes is part of the value
        assertNotEquals(p("arg0='a',arg1='b'"), p("arg0='a,arg1=b'"));
        assertEquals(p("arg0='a,arg1=b'"), p("arg0=a','arg1=b"));
        // quotes can be concatenated with unquoted text
        assertEquals(p("arg0='abc'"), p("arg0=a'b'c"));
        // an empty value is allowed for args
        assertEquals(p("arg0=''"), p("arg0="));
    }

    @Test
    void toStringRoundTripsAwkwardValues() throws Exception {
        for (String text : new String[] {
            "arg0='it'\\''s'", "arg0=a\\b", "arg1='x,y',arg5path='/a/'", "arg0=''",
            "type='error',path_namespace='/',arg0namespace='org'", "sender='org.freedesktop.DBus'"}) {
            MatchRule r = p(text);
            assertEquals(r, p(r.toString()), text + " -> " + r);
        }
    }

    // ---------------------------------------------------------------- errors

    @ParameterizedTest
    @ValueSource(strings = {
        "type='signal',type='signal'",
        "sender='org.a.B',sender='org.a.B'",
        "interface='org.a.B',interface='org.a.B'",
        "member='M',member='M'",
        "destination=':1.1',destination=':1.1'",
        "path='/a',path='/a'",
        "path_namespace='/a',path_namespace='/a'",
        "path='/a',path_namespace='/a'",
        "path_namespace='/a',path='/b'",
        "arg0='a',arg0='a'",
        "arg0='a',arg0path='/a'",
        "arg2path='/a',arg2='a'",
        "arg0namespace='a',arg0='a'",
        "unknown='x'",
        "Type='signal'",
        "type='bogus'",
        "type=''",
        "type",
        "type 'signal'",
        "type='signal' member='M'",
        "sender='not a name'",
        "sender='nodots'",
        "sender='org..example'",
        "sender='org.1example'",
        "sender=''",
        "interface='nodots'",
        "interface='org.ex-ample'",
        "interface='org.example.'",
        "member='Has.Dot'",
        "member='1digit'",
        "member=''",
        "path='relative'",
        "path='/trailing/'",
        "path='/double//slash'",
        "path='/bad-char'",
        "path_namespace=''",
        "destination='bad name'",
        "eavesdrop='yes'",
        "eavesdrop=''",
        "arg",
        "argX='a'",
        "arg64='a'",
        "arg100='a'",
        "arg99999999999='a'",
        "arg64path='/a'",
        "arg1namespace='org.example'",
        "arg0junk='a'",
        "arg0pathx='a'",
        "arg0namespace='1org'",
        "arg0namespace='org..example'",
        "arg0namespace=''",
        "arg0namespace='org.example.'",
        "arg0='unbalanced",
        "type='signal",
        "arg0='a''b",
    })
    void invalidRulesAreRejectedAsInvalidNotAsLimits(String text) {
        MatchRuleException e = bad(text);
        assertFalse(e.isLimitExceeded(), text);
        assertFalse(e.getMessage().isEmpty());
    }

    @Test
    void argNumbersUpTo63AreAccepted() throws Exception {
        assertTrue(p("arg63='x'").hasArgs());
        assertTrue(p("arg63path='/x'").hasArgs());
        assertTrue(p("arg0='a',arg1path='/b',arg63='c',arg10='d'").hasArgs());
        assertEquals(p("arg7='x'"), p("arg07='x'"));
    }

    @Test
    void tooLongIsLimitExceeded() throws Exception {
        String prefix = "arg0='";
        String ok = prefix + "x".repeat(MatchRule.MAX_RULE_LENGTH - prefix.length() - 1) + "'";
        assertEquals(MatchRule.MAX_RULE_LENGTH, ok.length());
        assertTrue(p(ok).hasArgs());
        String tooLong = prefix + "x".repeat(MatchRule.MAX_RULE_LENGTH - prefix.length()) + "'";
        MatchRuleException e = bad(tooLong);
        assertTrue(e.isLimitExceeded());
        // the limit applies even to text that would not parse
        assertTrue(bad("x".repeat(2000)).isLimitExceeded());
    }

    @Test
    void lengthLimitCountsUtf8BytesLikeDbusDaemon() throws Exception {
        // 600 two-byte characters: 606 chars but 1207 bytes
        String text = "arg0='" + "\u00e9".repeat(600) + "'";
        assertTrue(text.length() < MatchRule.MAX_RULE_LENGTH);
        assertTrue(bad(text).isLimitExceeded());
        // 300 of them (607 bytes) are fine
        assertTrue(p("arg0='" + "\u00e9".repeat(300) + "'").hasArgs());
        // supplementary characters are 4 bytes (2 chars)
        assertTrue(bad("arg0='" + "\ud83d\ude00".repeat(300) + "'").isLimitExceeded());
        assertTrue(p("arg0='" + "\ud83d\ude00".repeat(250) + "'").hasArgs());
    }

    @Test
    void emptyKeyEndsTheRuleAsInDbusDaemon() throws Exception {
        // dbus-daemon's tokenizer treats an empty key as the end of the rule (it never
        // advances past the '='), so what follows is ignored rather than rejected.
        assertEquals(p(""), p("=signal"));
        assertEquals(p("type='signal'"), p("type='signal',=x,member='M'"));
    }

    @Test
    void keysAfterTheSixteenthAreIgnoredAsInDbusDaemon() throws Exception {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < MatchRule.MAX_RULE_TOKENS; i++) {
            b.append("arg").append(i).append("='v").append(i).append("',");
        }
        MatchRule sixteen = p(b.toString());
        assertEquals(sixteen, p(b + "arg16='ignored'"));
        assertEquals(sixteen, p(b + "bogus_key='not even checked'"));
        assertEquals(sixteen, p(b + "arg0='duplicate, but never seen'"));
        // but fifteen plus one more is still parsed
        String fifteen = b.substring(0, b.indexOf("arg15="));
        assertNotEquals(p(fifteen), p(fifteen + "arg20='x'"));
        bad(fifteen + "bogus_key='x'");
    }

    // ---------------------------------------------------------------- equality

    @Test
    void equalityIsByContentNotText() throws Exception {
        MatchRule a = p("type='signal',interface='org.example.I',member='M',arg0='x'");
        MatchRule b = p("arg0=x, member=M,\ninterface=org.example.I,  type=signal");
        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
        assertNotEquals(a, p("type='signal',interface='org.example.I',member='M'"));
        assertNotEquals(a, p("type='signal',interface='org.example.I',member='M',arg0='y'"));
        assertNotEquals(a, p("type='signal',interface='org.example.I',member='M',arg1='x'"));
        assertNotEquals(a, p("type='method_call',interface='org.example.I',member='M',arg0='x'"));
        assertNotEquals(a, p("type='signal',interface='org.example.I',member='M',arg0='x',eavesdrop=true"));
        assertNotEquals(p("arg0='/a'"), p("arg0path='/a'"));
        assertNotEquals(p("arg0='org.a'"), p("arg0namespace='org.a'"));
        assertNotEquals(p("path='/a'"), p("path_namespace='/a'"));
        assertNotEquals(p("sender=':1.1'"), p("destination=':1.1'"));
        assertNotEquals(p(""), p("type='signal'"));
        assertNotEquals(a, null);
        assertNotEquals(a, "type='signal'");
    }

    @Test
    void keysNearTheKnownOnesAreStillUnknownOrMalformed() throws Exception {
        // Known keys are matched in place (no copy of the key text); anything else still
        // reaches the same errors as before, with the key as written.
        for (String k : new String[] {"typ", "types", "Type", "membe", "member_", "path_namespac", "path_namespaces",
                "eavesdro", "x"}) {
            MatchRuleException e = assertThrows(MatchRuleException.class, () -> MatchRule.parse(k + "='a'"));
            assertEquals("Unknown key \"" + k + "\" in match rule", e.getMessage(), k);
        }
        MatchRuleException e = assertThrows(MatchRuleException.class, () -> MatchRule.parse("arg0pat='/a'"));
        assertTrue(e.getMessage().startsWith("Key 'arg0pat' in match rule contains junk"), e.getMessage());
        // Keys found in the middle of the text, in every position and spelling the grammar has.
        MatchRule r = MatchRule.parse(" type='signal',sender='a.b',interface='c.d',member='M',path_namespace='/p',"
                + "destination=':1.2',eavesdrop='true',arg0='x',arg1='y',arg2='z',arg3='w',arg4path='/q/'");
        assertEquals(4, r.type());
        assertEquals("a.b", r.sender());
        assertEquals("c.d", r.iface());
        assertEquals("M", r.member());
        assertEquals("/p", r.pathNamespace());
        assertEquals(":1.2", r.destination());
        assertTrue(r.eavesdrop());
        assertTrue(r.toString().endsWith("arg0='x',arg1='y',arg2='z',arg3='w',arg4path='/q/'"), r.toString());
        assertEquals("arg0namespace='a.b'", MatchRule.parse("arg0namespace='a.b'").toString());
        assertEquals("type='signal',member='M',path='/o'", MatchRule.parse("path='/o',member='M',type='signal'").toString());
    }
}
