package org.kdbusbridge.core.match;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.Fixtures.IFACE;
import static org.kdbusbridge.core.Fixtures.PATH;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.Fixtures.Args;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.ArgSource;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameRegistry;

class MatchIndexTest {
    private static final String DRIVER = "org.freedesktop.DBus";

    private MatchIndex index;
    private NameRegistry names;
    private Connection watcher;
    private Connection a;
    private Connection b;
    private long seq;

    @BeforeEach
    void setUp() {
        index = new MatchIndex(DRIVER);
        names = new NameRegistry();
        watcher = Fixtures.conn(10);
        a = Fixtures.conn(1);
        b = Fixtures.conn(2);
    }

    private void watch(String rule) throws MatchRuleException {
        index.add(watcher, MatchRule.parse(rule));
    }

    /** Recipients of {@code m} sent by {@code from} (null = the driver), as a broadcast. */
    private List<Connection> recipients(Message m, Connection from) {
        return recipients(m, from, null);
    }

    private List<Connection> recipients(Message m, Connection from, Connection addressed) {
        m.admit(from, ++seq);
        List<Connection> out = new ArrayList<>();
        index.collect(m, addressed, names, out);
        return out;
    }

    private boolean seen(Message m, Connection from) {
        return recipients(m, from).contains(watcher);
    }

    private static Message sig(ArgSource args) {
        return Fixtures.signal(PATH, IFACE, "Changed", args);
    }

    private static Message sigAt(String path) {
        return Fixtures.signal(path, IFACE, "Changed", null);
    }

    // ---------------------------------------------------------------- header keys

    @Test
    void typeInterfaceMemberPath() throws Exception {
        watch("type='signal',interface='org.example.Iface',member='Changed',path='/org/example/Obj'");
        assertTrue(seen(sig(null), a));
        assertFalse(seen(Fixtures.signal(PATH, IFACE, "Other", null), a));
        assertFalse(seen(Fixtures.signal(PATH, "org.example.Other", "Changed", null), a));
        assertFalse(seen(Fixtures.signal("/org/example/Obj/Child", IFACE, "Changed", null), a));
        assertFalse(seen(Fixtures.signal("/org/example", IFACE, "Changed", null), a));
        assertFalse(seen(Fixtures.msg(Message.METHOD_CALL, 0, 1, -1, null, PATH, IFACE, "Changed", null, 0, null), a));
    }

    @Test
    void typeAloneSelectsMessageType() throws Exception {
        watch("type='error'");
        assertTrue(seen(Fixtures.error(null, 5), a));
        assertFalse(seen(Fixtures.reply(null, 5), a));
        assertFalse(seen(sig(null), a));
    }

    @Test
    void interfaceNeverMatchesMessagesWithoutInterface() throws Exception {
        watch("interface='org.example.Iface'");
        Message noIface = Fixtures.msg(Message.METHOD_CALL, 0, 1, -1, null, PATH, null, "Changed", null, 0, null);
        assertFalse(seen(noIface, a));
        assertFalse(seen(Fixtures.reply(null, 1), a));
        assertTrue(seen(sig(null), a));
    }

    @Test
    void memberNeverMatchesMessagesWithoutMember() throws Exception {
        watch("member='Changed'");
        assertFalse(seen(Fixtures.error(null, 1), a));
        Message noIface = Fixtures.msg(Message.METHOD_CALL, 0, 1, -1, null, PATH, null, "Changed", null, 0, null);
        assertTrue(seen(noIface, a), "member without interface still matches");
    }

    @Test
    void emptyRuleMatchesEveryBroadcastIncludingRepliesAndErrors() throws Exception {
        watch("");
        assertTrue(seen(sig(null), a));
        assertTrue(seen(Fixtures.reply(null, 1), a));
        assertTrue(seen(Fixtures.error(null, 1), null));
    }

    @ParameterizedTest(name = "path_namespace={0} path={1} -> {2}")
    @CsvSource({
        "/aa/bb, /aa/bb, true",
        "/aa/bb, /aa/bb/cc, true",
        "/aa/bb, /aa/bb/cc/dd, true",
        "/aa/bb, /aa/bbcc, false",
        "/aa/bb, /aa/b, false",
        "/aa/bb, /aa, false",
        "/aa/bb, /, false",
        "/, /, true",
        "/, /aa, true",
        "/, /aa/bb/cc, true",
    })
    void pathNamespace(String ns, String path, boolean expected) throws Exception {
        watch("path_namespace='" + ns + "'");
        assertEquals(expected, seen(sigAt(path), a));
    }

    // ---------------------------------------------------------------- argN

    @Test
    void argMatchesStringsExactly() throws Exception {
        watch("arg0='org.example.Name'");
        assertTrue(seen(sig(Args.of("org.example.Name", "x")), a));
        assertFalse(seen(sig(Args.of("org.example.Name2")), a));
        assertFalse(seen(sig(Args.of("org.example")), a));
        assertFalse(seen(sig(Args.of("")), a));
        assertFalse(seen(sig(null), a), "no arguments");
        assertFalse(seen(sig(new Args().other()), a), "not a string");
    }

    @Test
    void argNeverMatchesAnObjectPath() throws Exception {
        watch("arg0='/org/example'");
        assertFalse(seen(sig(new Args().path("/org/example")), a));
        assertTrue(seen(sig(Args.of("/org/example")), a));
    }

    @Test
    void argIndexSelectsThatArgumentOnly() throws Exception {
        watch("arg2='two'");
        assertTrue(seen(sig(new Args().other().path("/x").str("two")), a));
        assertFalse(seen(sig(Args.of("two", "two")), a));
        assertFalse(seen(sig(Args.of("two", "two", "three")), a));
    }

    @Test
    void severalArgsMustAllMatch() throws Exception {
        watch("arg0='zero',arg3='three'");
        assertTrue(seen(sig(Args.of("zero", "1", "2", "three")), a));
        assertFalse(seen(sig(Args.of("zero", "1", "2", "four")), a));
        assertFalse(seen(sig(Args.of("zero")), a));
    }

    @Test
    void emptyArgValueMatchesOnlyEmptyString() throws Exception {
        watch("arg1=''");
        assertTrue(seen(sig(Args.of("x", "")), a));
        assertFalse(seen(sig(Args.of("x", "y")), a));
        assertFalse(seen(sig(Args.of("x")), a));
    }

    /** The D-Bus specification's examples for argNpath, both directions of prefix. */
    @ParameterizedTest(name = "arg0path={0} arg={1} -> {2}")
    @CsvSource({
        "/aa/bb/, /, true",
        "/aa/bb/, /aa/, true",
        "/aa/bb/, /aa/bb/, true",
        "/aa/bb/, /aa/bb/cc/, true",
        "/aa/bb/, /aa/bb/cc, true",
        "/aa/bb/, /aa/b, false",
        "/aa/bb/, /aa, false",
        "/aa/bb/, /aa/bb, false",
        "/aa/bb, /aa/bb, true",
        "/aa/bb, /aa/, true",
        "/aa/bb, /, true",
        "/aa/bb, /aa/bb/, false",
        "/aa/bb, /aa/bb/cc, false",
        "/aa/bb, /aa/bbcc, false",
        "/, /, true",
        "/, /aa, true",
        "/, /aa/bb/, true",
    })
    void argPathPrefixRules(String expected, String actual, boolean match) throws Exception {
        watch("arg0path='" + expected + "'");
        assertEquals(match, seen(sig(Args.of(actual)), a), "string argument");
    }

    @Test
    void argPathAlsoMatchesObjectPathArguments() throws Exception {
        watch("arg0path='/aa/bb/'");
        assertTrue(seen(sig(new Args().path("/aa/bb/cc")), a));
        assertFalse(seen(sig(new Args().path("/aa/b")), a));
        assertFalse(seen(sig(new Args().other()), a));
    }

    @ParameterizedTest(name = "arg0namespace={0} arg={1} -> {2}")
    @CsvSource({
        "com.example.backend1, com.example.backend1, true",
        "com.example.backend1, com.example.backend1.foo, true",
        "com.example.backend1, com.example.backend1.foo.bar, true",
        "com.example.backend1, com.example.backend2, false",
        "com.example.backend1, com.example.backend10, false",
        "com.example.backend1, com.example, false",
        "com.example.backend1, com.example.backend1_x, false",
        "com, com.example, true",
        "com, comx.example, false",
    })
    void arg0Namespace(String ns, String actual, boolean match) throws Exception {
        watch("arg0namespace='" + ns + "'");
        assertEquals(match, seen(sig(Args.of(actual)), a));
    }

    @Test
    void arg0NamespaceDoesNotMatchObjectPaths() throws Exception {
        watch("arg0namespace='com.example'");
        assertFalse(seen(sig(new Args().path("com.example")), a));
        assertTrue(seen(sig(Args.of("com.example")), a));
    }

    // ---------------------------------------------------------------- sender

    @Test
    void senderUniqueName() throws Exception {
        watch("sender=':1.1'");
        assertTrue(seen(sig(null), a));
        assertFalse(seen(sig(null), b));
        assertFalse(seen(sig(null), null));
    }

    @Test
    void senderWellKnownNameTracksTheCurrentPrimaryOwner() throws Exception {
        String name = "org.example.Service";
        watch("sender='" + name + "'");
        assertFalse(seen(sig(null), a), "nobody owns it yet");

        List<org.kdbusbridge.core.name.NameChange> ch = new ArrayList<>();
        names.request(a, name, NameRegistry.FLAG_ALLOW_REPLACEMENT, ch);
        assertTrue(seen(sig(null), a));
        assertFalse(seen(sig(null), b));

        names.request(b, name, 0, ch); // b only queued
        assertFalse(seen(sig(null), b), "a queued owner is not the sender");

        names.request(b, name, NameRegistry.FLAG_REPLACE_EXISTING, ch);
        assertFalse(seen(sig(null), a), "a was replaced");
        assertTrue(seen(sig(null), b));

        names.release(b, name, ch);
        assertTrue(seen(sig(null), a), "a was promoted back");
        assertFalse(seen(sig(null), b));

        names.release(a, name, ch);
        assertFalse(seen(sig(null), a));
        assertFalse(seen(sig(null), b));
    }

    @Test
    void senderDriverNameMatchesBusOriginatedMessages() throws Exception {
        watch("sender='org.freedesktop.DBus'");
        assertTrue(seen(sig(null), null));
        assertFalse(seen(sig(null), a));
    }

    @Test
    void otherSendersNeverMatchBusOriginatedMessages() throws Exception {
        index.add(a, MatchRule.parse("sender=':1.1'"));
        index.add(b, MatchRule.parse("sender='org.example.Service'"));
        watch("type='signal'");
        assertEquals(List.of(watcher), recipients(sig(null), null));
    }

    // ---------------------------------------------------------------- unicast / eavesdropping

    @Test
    void nonEavesdroppingRulesIgnoreUnicastToOthers() throws Exception {
        watch("type='signal'");
        watch("destination=':1.2'");
        Message m = Fixtures.signalTo(":1.2", "Changed");
        assertEquals(List.of(), recipients(m, a, b));
    }

    @Test
    void eavesdroppingRuleSeesUnicastToOthers() throws Exception {
        watch("type='signal',eavesdrop='true'");
        assertEquals(List.of(watcher), recipients(Fixtures.signalTo(":1.2", "Changed"), a, b));
        assertEquals(List.of(), recipients(Fixtures.call(":1.2", 7), a, b), "type=signal does not match a call");
        assertEquals(List.of(watcher), recipients(sig(null), a), "and still sees broadcasts");
    }

    @Test
    void eavesdroppingDestinationRuleMatchesTheAddressedRecipientByAnyOfItsNames() throws Exception {
        List<org.kdbusbridge.core.name.NameChange> ch = new ArrayList<>();
        names.request(b, "org.example.B", 0, ch);
        index.add(watcher, MatchRule.parse("destination='org.example.B',eavesdrop='true'"));
        Connection other = Fixtures.conn(11);
        index.add(other, MatchRule.parse("destination=':1.2',eavesdrop='true'"));

        // addressed to b by its unique name: both rules name b
        List<Connection> r = recipients(Fixtures.call(":1.2", 1), a, b);
        assertEquals(2, r.size());
        assertTrue(r.contains(watcher) && r.contains(other));
        // addressed to someone else
        assertEquals(List.of(), recipients(Fixtures.call(":1.1", 2), b, a));
        // a destination rule never matches a broadcast
        assertEquals(List.of(), recipients(sig(null), a));
        // no resolved recipient: compared with the destination text
        assertEquals(List.of(watcher), recipients(Fixtures.call("org.example.B", 3), a, null));
    }

    @Test
    void destinationRuleWithoutEavesdropNeverMatches() throws Exception {
        watch("destination=':1.2'");
        assertEquals(List.of(), recipients(Fixtures.call(":1.2", 1), a, b));
        assertEquals(List.of(), recipients(sig(null), a));
    }

    @Test
    void addressedRecipientIsNotReportedAgainByItsOwnEavesdroppingRule() throws Exception {
        index.add(b, MatchRule.parse("eavesdrop='true'"));
        Message m = Fixtures.call(":1.2", 1);
        m.admit(a, ++seq);
        b.stampOnce(m.seq()); // what the bus does for the addressed recipient
        List<Connection> out = new ArrayList<>();
        index.collect(m, b, names, out);
        assertEquals(List.of(), out);
    }

    // ---------------------------------------------------------------- bookkeeping

    @Test
    void oneRecipientPerConnectionEvenWithSeveralMatchingRulesInDifferentBuckets() throws Exception {
        watch("");
        watch("member='Changed'");
        watch("interface='org.example.Iface'");
        watch("interface='org.example.Iface',member='Changed'");
        watch("type='signal'");
        index.add(a, MatchRule.parse("member='Changed'"));
        List<Connection> r = recipients(sig(null), b);
        assertEquals(2, r.size());
        assertTrue(r.contains(watcher) && r.contains(a));
        // and again for the next message
        assertEquals(2, recipients(sig(null), b).size());
    }

    @Test
    void removingOneOfTwoDuplicateRulesLeavesTheOther() throws Exception {
        watch("type='signal',member='Changed'");
        watch("type='signal',member='Changed'");
        assertEquals(2, index.size());
        assertEquals(2, watcher.matchRuleCount());

        // removal compares content, not identity or text
        assertTrue(index.remove(watcher, MatchRule.parse("member=Changed,type=signal")));
        assertEquals(1, index.size());
        assertEquals(1, watcher.matchRuleCount());
        assertTrue(seen(sig(null), a));

        assertTrue(index.remove(watcher, MatchRule.parse("type='signal',member='Changed'")));
        assertEquals(0, index.size());
        assertEquals(0, watcher.matchRuleCount());
        assertFalse(seen(sig(null), a));
        assertFalse(index.remove(watcher, MatchRule.parse("type='signal',member='Changed'")));
    }

    @Test
    void removeOnlyTouchesTheOwnersRules() throws Exception {
        MatchRule r = MatchRule.parse("member='Changed'");
        index.add(watcher, r);
        assertFalse(index.remove(a, r));
        assertFalse(index.remove(watcher, MatchRule.parse("member='Other'")));
        assertEquals(1, index.size());
        assertTrue(seen(sig(null), b));
    }

    @Test
    void removeAllDropsEveryRuleOfOneConnection() throws Exception {
        watch("");
        watch("member='Changed'");
        watch("arg0='x'");
        index.add(a, MatchRule.parse("member='Changed'"));
        assertEquals(4, index.size());
        assertEquals(3, index.rulesOf(watcher).size());

        index.removeAll(watcher);
        assertEquals(1, index.size());
        assertEquals(0, watcher.matchRuleCount());
        assertEquals(List.of(), index.rulesOf(watcher));
        assertEquals(List.of(a), recipients(sig(Args.of("x")), b));
        index.removeAll(watcher); // idempotent
        assertEquals(1, index.size());
        assertEquals(1, a.matchRuleCount());
    }

    @Test
    void rulesOfKeepsAdditionOrderAndAllRulesGroupsByOwner() throws Exception {
        MatchRule r1 = MatchRule.parse("member='One'");
        MatchRule r2 = MatchRule.parse("arg0='x'");
        MatchRule r3 = MatchRule.parse("member='One'");
        index.add(watcher, r1);
        index.add(watcher, r2);
        index.add(watcher, r3);
        index.add(a, r2);
        assertEquals(List.of(r1, r2, r3), index.rulesOf(watcher));
        assertEquals(2, index.allRules().size());
        assertEquals(List.of(r2), index.allRules().get(a));
        assertEquals(List.of(), index.rulesOf(b));
    }

    @Test
    void closedConnectionsAreSkipped() throws Exception {
        watch("");
        index.add(a, MatchRule.parse(""));
        a.markClosed();
        assertEquals(List.of(watcher), recipients(sig(null), b));
    }
}
