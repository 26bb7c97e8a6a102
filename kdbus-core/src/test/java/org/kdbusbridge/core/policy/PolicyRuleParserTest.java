package org.kdbusbridge.core.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.OptionalLong;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class PolicyRuleParserTest {
    private static final PolicyRuleParser.Principals PRINCIPALS = new PolicyRuleParser.Principals() {
        @Override
        public OptionalLong uid(String name) {
            return name.equals("alice") ? OptionalLong.of(1000) : name.matches("\\d+") ? OptionalLong.of(Long.parseLong(name))
                    : OptionalLong.empty();
        }

        @Override
        public OptionalLong gid(String name) {
            return name.equals("wheel") ? OptionalLong.of(10) : OptionalLong.empty();
        }
    };

    private static Map<String, String> attrs(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    private static PolicyRule allow(String... kv) throws PolicyException {
        return PolicyRuleParser.parse("allow", attrs(kv), PRINCIPALS).rule();
    }

    private static PolicyRule deny(String... kv) throws PolicyException {
        return PolicyRuleParser.parse("deny", attrs(kv), PRINCIPALS).rule();
    }

    private static String refused(String... kv) {
        return assertThrows(PolicyException.class, () -> allow(kv)).getMessage();
    }

    @Test
    void sendRuleWithEveryAttribute() throws Exception {
        PolicyRule.Send s = assertInstanceOf(PolicyRule.Send.class, allow("send_destination", "org.a", "send_interface",
                "org.a.I", "send_member", "M", "send_path", "/p", "send_type", "method_call", "send_requested_reply",
                "false", "send_broadcast", "false", "eavesdrop", "true", "min_fds", "1", "max_fds", "5", "log", "true"));
        assertTrue(s.allow());
        assertEquals("org.a", s.destination());
        assertFalse(s.destinationIsPrefix());
        assertEquals("org.a.I", s.interfaceName());
        assertEquals("M", s.member());
        assertEquals("/p", s.path());
        assertNull(s.error());
        assertEquals(MessageKind.METHOD_CALL, s.type());
        assertFalse(s.requestedReply());
        assertEquals(PolicyRule.Broadcast.FALSE, s.broadcast());
        assertTrue(s.eavesdrop());
        assertEquals(1, s.minFds());
        assertEquals(5, s.maxFds());
        assertTrue(s.log());
    }

    @Test
    void sendDefaults() throws Exception {
        PolicyRule.Send a = assertInstanceOf(PolicyRule.Send.class, allow("send_type", "signal"));
        assertTrue(a.requestedReply(), "allow rules default to requested replies only");
        assertEquals(PolicyRule.Broadcast.ANY, a.broadcast());
        assertFalse(a.eavesdrop());
        assertEquals(0, a.minFds());
        assertEquals(PolicyRule.MAX_FDS, a.maxFds());
        assertEquals(33_554_432, PolicyRule.MAX_FDS);
        assertFalse(a.log());
        PolicyRule.Send d = assertInstanceOf(PolicyRule.Send.class, deny("send_type", "signal"));
        assertFalse(d.requestedReply(), "deny rules default to unrequested replies only");
        assertFalse(d.allow());
    }

    @Test
    void wildcardsBecomeNull() throws Exception {
        PolicyRule.Send s = assertInstanceOf(PolicyRule.Send.class,
                allow("send_destination", "*", "send_interface", "*", "send_path", "*", "send_type", "*"));
        assertNull(s.destination());
        assertNull(s.interfaceName());
        assertNull(s.path());
        assertNull(s.type());
        PolicyRule.Receive r = assertInstanceOf(PolicyRule.Receive.class,
                allow("receive_sender", "*", "receive_error", "*", "receive_type", "*"));
        assertNull(r.sender());
        assertNull(r.error());
        assertNull(r.type());
        PolicyRule.Own o = assertInstanceOf(PolicyRule.Own.class, allow("own", "*"));
        assertNull(o.name());
        assertFalse(o.prefix());
    }

    @Test
    void prefixesAreNeverWildcards() throws Exception {
        PolicyRule.Send s = assertInstanceOf(PolicyRule.Send.class, allow("send_destination_prefix", "*"));
        assertEquals("*", s.destination());
        assertTrue(s.destinationIsPrefix());
        PolicyRule.Own o = assertInstanceOf(PolicyRule.Own.class, allow("own_prefix", "*"));
        assertEquals("*", o.name());
        assertTrue(o.prefix());
    }

    @Test
    void receiveRuleWithEveryAttribute() throws Exception {
        PolicyRule.Receive r = assertInstanceOf(PolicyRule.Receive.class, deny("receive_sender", "org.s",
                "receive_interface", "org.s.I", "receive_member", "M", "receive_path", "/q", "receive_type", "signal",
                "receive_requested_reply", "true", "eavesdrop", "false", "min_fds", "0x2", "max_fds", "010"));
        assertFalse(r.allow());
        assertEquals("org.s", r.sender());
        assertEquals("org.s.I", r.interfaceName());
        assertEquals("M", r.member());
        assertEquals("/q", r.path());
        assertEquals(MessageKind.SIGNAL, r.type());
        assertTrue(r.requestedReply());
        assertFalse(r.eavesdrop());
        assertEquals(2, r.minFds(), "strtol base 0: hex");
        assertEquals(8, r.maxFds(), "strtol base 0: octal");
    }

    @Test
    void bareEavesdropIsAReceiveRule() throws Exception {
        PolicyRule.Receive r = assertInstanceOf(PolicyRule.Receive.class, allow("eavesdrop", "true"));
        assertTrue(r.eavesdrop());
        assertNull(r.sender());
        PolicyRule.Send s = assertInstanceOf(PolicyRule.Send.class, allow("send_destination", "*", "eavesdrop", "true"));
        assertTrue(s.eavesdrop());
    }

    @Test
    void ownUserGroupRules() throws Exception {
        assertEquals(new PolicyRule.Own(true, "org.x", false), allow("own", "org.x"));
        assertEquals(new PolicyRule.Own(false, "org.x", true), deny("own_prefix", "org.x"));
        assertEquals(new PolicyRule.User(true, -1), allow("user", "*"));
        assertEquals(new PolicyRule.User(true, 1000), allow("user", "alice"));
        assertEquals(new PolicyRule.User(false, 42), deny("user", "42"));
        assertEquals(new PolicyRule.Group(true, -1), allow("group", "*"));
        assertEquals(new PolicyRule.Group(true, 10), allow("group", "wheel"));
        assertFalse(allow("user", "*").perClient());
        assertTrue(allow("own", "a.b").perClient());
    }

    @Test
    void unknownUserOrGroupDropsTheRuleWithAWarning() throws Exception {
        PolicyRuleParser.Parsed p = PolicyRuleParser.parse("allow", attrs("user", "nobody-here"), PRINCIPALS);
        assertNull(p.rule());
        assertNotNull(p.warning());
        assertTrue(p.warning().contains("nobody-here"), p.warning());
        PolicyRuleParser.Parsed g = PolicyRuleParser.parse("deny", attrs("group", "nogroup-here"), PRINCIPALS);
        assertNull(g.rule());
        assertTrue(g.warning().contains("nogroup-here"), g.warning());
    }

    @Test
    void logIsAcceptedOnAnyRule() throws Exception {
        assertInstanceOf(PolicyRule.Own.class, allow("own", "a.b", "log", "true"));
        assertInstanceOf(PolicyRule.Receive.class, allow("receive_type", "signal", "log", "whatever"));
    }

    @Test
    void unknownAttributeIsRefused() {
        assertTrue(refused("send_destination", "a", "frob", "1").contains("frob"));
        assertTrue(refused("sendinterface", "x").contains("sendinterface"));
        assertThrows(PolicyException.class, () -> PolicyRuleParser.parse("permit", attrs("own", "x"), PRINCIPALS));
    }

    @Test
    void emptyOrOnlyModifierRulesAreRefused() {
        refused();
        refused("log", "true");
        refused("max_fds", "3");
        refused("min_fds", "1");
    }

    @Test
    void mixingSendAndReceiveIsRefused() {
        assertTrue(refused("send_destination", "a", "receive_sender", "b").contains("send_"));
        refused("send_type", "signal", "receive_type", "signal");
    }

    @Test
    void exclusiveAttributesAreRefused() {
        refused("own", "a", "user", "*");
        refused("own", "a", "own_prefix", "b");
        refused("user", "*", "group", "*");
        refused("own", "a", "send_destination", "b");
        refused("group", "*", "eavesdrop", "true");
        refused("user", "*", "max_fds", "1");
    }

    @Test
    void memberNeedsInterfaceOrPath() throws Exception {
        refused("send_member", "M");
        refused("send_member", "M", "send_destination", "a");
        refused("receive_member", "M");
        assertInstanceOf(PolicyRule.Send.class, allow("send_member", "M", "send_path", "/"));
        assertInstanceOf(PolicyRule.Receive.class, allow("receive_member", "M", "receive_interface", "a.I"));
    }

    @Test
    void errorExcludesMemberAndInterface() {
        refused("send_error", "a.E", "send_interface", "a.I");
        refused("send_error", "a.E", "send_member", "M", "send_path", "/");
        refused("receive_error", "a.E", "receive_interface", "a.I");
    }

    @Test
    void destinationAndPrefixAreExclusive() {
        refused("send_destination", "a", "send_destination_prefix", "a");
    }

    @Test
    void broadcastWithADestinationCanNeverMatch() throws Exception {
        assertTrue(refused("send_destination", "org.a", "send_broadcast", "true").contains("org.a"));
        PolicyRule.Send s = assertInstanceOf(PolicyRule.Send.class, allow("send_destination", "*", "send_broadcast", "true"));
        assertEquals(PolicyRule.Broadcast.TRUE, s.broadcast());
        assertInstanceOf(PolicyRule.Send.class, allow("send_destination", "org.a", "send_broadcast", "false"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"methodcall", "METHOD_CALL", "", "signals", "any"})
    void badMessageTypesAreRefused(String type) {
        assertTrue(refused("send_type", type).contains("\"" + type + "\""));
        assertThrows(PolicyException.class, () -> allow("receive_type", type));
    }

    @ParameterizedTest
    @ValueSource(strings = {"method_call", "method_return", "signal", "error"})
    void everyMessageTypeParses(String type) throws Exception {
        PolicyRule.Send s = assertInstanceOf(PolicyRule.Send.class, allow("send_type", type));
        assertEquals(type, s.type().configName());
        assertEquals(s.type(), MessageKind.fromCode(s.type().code()));
    }

    @ParameterizedTest
    @ValueSource(strings = {"yes", "1", "TRUE", ""})
    void booleansMustBeTrueOrFalse(String v) {
        refused("send_type", "signal", "eavesdrop", v);
        refused("send_type", "signal", "send_requested_reply", v);
        refused("send_type", "signal", "send_broadcast", v);
        refused("receive_type", "signal", "receive_requested_reply", v);
        refused("eavesdrop", v);
    }

    @ParameterizedTest
    @ValueSource(strings = {"-1", "33554433", "lots", "", "99999999999999999999"})
    void fdBoundsAreChecked(String v) {
        refused("send_type", "signal", "max_fds", v);
        refused("receive_type", "signal", "min_fds", v);
    }

    @Test
    void fdBoundsParseLikeStrtol() throws Exception {
        assertEquals(33_554_432, ((PolicyRule.Send) allow("send_type", "signal", "max_fds", "33554432")).maxFds());
        assertEquals(7, ((PolicyRule.Send) allow("send_type", "signal", "max_fds", " 7 fds")).maxFds());
        assertEquals(0, ((PolicyRule.Send) allow("send_type", "signal", "max_fds", "+0")).maxFds());
        assertEquals(16L, PolicyRuleParser.strtolPrefix("0x10"));
        assertEquals(-5L, PolicyRuleParser.strtolPrefix("-5"));
        assertNull(PolicyRuleParser.strtolPrefix("x"));
    }

    @Test
    void knownAttributesCoverTheManPage() {
        for (String a : new String[] {"send_destination", "send_destination_prefix", "send_interface", "send_member",
                "send_error", "send_path", "send_type", "send_requested_reply", "send_broadcast", "receive_sender",
                "receive_interface", "receive_member", "receive_error", "receive_path", "receive_type",
                "receive_requested_reply", "own", "own_prefix", "user", "group", "eavesdrop", "min_fds", "max_fds",
                "log"}) {
            assertTrue(PolicyRuleParser.isKnownAttribute(a), a);
        }
        assertFalse(PolicyRuleParser.isKnownAttribute("context"));
    }
}
