package org.kdbusbridge.core.match;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.match.MatchIndex.ARG0;
import static org.kdbusbridge.core.match.MatchIndex.IFACE;
import static org.kdbusbridge.core.match.MatchIndex.MEMBER;
import static org.kdbusbridge.core.match.MatchIndex.MEMBER_ARG0;
import static org.kdbusbridge.core.match.MatchIndex.NONE;
import static org.kdbusbridge.core.match.MatchIndex.PATH;
import static org.kdbusbridge.core.match.MatchIndex.PATH_NAMESPACE;
import static org.kdbusbridge.core.match.MatchIndex.SENDER;
import static org.kdbusbridge.core.match.MatchIndex.WILD;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.Fixtures.Args;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.ArgSource;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameChange;
import org.kdbusbridge.core.name.NameRegistry;

/**
 * The bucketing of {@link MatchIndex}: it reports exactly the recipients a check of every rule
 * would (random rules, messages and name changes, fixed seeds), keeps duplicates across
 * buckets apart, and does not scan rules a message cannot match.
 */
class MatchIndexBucketsTest {
    private static final String DRIVER = "org.freedesktop.DBus";

    private MatchIndex index;
    private NameRegistry names;
    private long seq;

    @BeforeEach
    void setUp() {
        index = new MatchIndex(DRIVER);
        names = new NameRegistry();
    }

    // ---------------------------------------------------------------- brute force

    /**
     * Whether {@code r} matches {@code m}, checked the way the index did before it had keys
     * (and monitors still do): destination and eavesdrop, then sender by name ownership, then
     * the rule's content.
     */
    private static boolean bruteForce(MatchRule r, Message m, Connection addressed, NameRegistry names) {
        if (r.destination() != null) {
            if (m.destination() == null || !r.eavesdrop()) {
                return false;
            }
            if (addressed == null ? !r.destination().equals(m.destination())
                    : !answersTo(addressed, r.destination(), names)) {
                return false;
            }
        } else if (m.destination() != null && !r.eavesdrop()) {
            return false;
        }
        if (r.sender() != null) {
            boolean ok = m.sender() == null ? r.sender().equals(DRIVER) : answersTo(m.sender(), r.sender(), names);
            if (!ok) {
                return false;
            }
        }
        return r.matchesContent(m);
    }

    private static boolean answersTo(Connection c, String name, NameRegistry names) {
        return name.startsWith(":") ? name.equals(c.uniqueName()) : names.owner(name) == c;
    }

    private static final String[] PATHS = {"/", "/a", "/a/b", "/a/b/c", "/ab", "/a/bc", "/x", "/x/y/z"};
    private static final String[] MEMBERS = {"M1", "M2", "NameOwnerChanged"};
    private static final String[] IFACES = {"org.i.A", "org.i.B", DRIVER};
    private static final String[] BUS_NAMES = {":1.1", ":1.2", ":1.3", ":1.6", ":1.99", "org.n.A", "org.n.B",
        "org.n.C", DRIVER};
    private static final String[] WELL_KNOWN = {"org.n.A", "org.n.B", "org.n.C"};
    private static final String[] ARGS = {"a", "b", "org.n", "org.n.A", "/a", "/a/", "/a/b", ""};
    private static final String[] TYPES = {"signal", "method_call", "method_return", "error"};

    private static String pick(Random rnd, String[] values) {
        return values[rnd.nextInt(values.length)];
    }

    /** A random rule text; may be invalid (e.g. arg0namespace='/a'), then null is returned. */
    private static MatchRule randomRule(Random rnd) {
        List<String> keys = new ArrayList<>();
        if (rnd.nextInt(3) == 0) {
            keys.add("type='" + pick(rnd, TYPES) + "'");
        }
        if (rnd.nextInt(3) == 0) {
            keys.add("member='" + pick(rnd, MEMBERS) + "'");
        }
        if (rnd.nextInt(4) == 0) {
            keys.add("interface='" + pick(rnd, IFACES) + "'");
        }
        switch (rnd.nextInt(5)) {
            case 0, 1 -> keys.add("path='" + pick(rnd, PATHS) + "'");
            case 2 -> keys.add("path_namespace='" + pick(rnd, PATHS) + "'");
            default -> { }
        }
        if (rnd.nextInt(3) == 0) {
            keys.add("sender='" + pick(rnd, BUS_NAMES) + "'");
        }
        if (rnd.nextInt(8) == 0) {
            keys.add("destination='" + pick(rnd, BUS_NAMES) + "'");
        }
        if (rnd.nextInt(5) == 0) {
            keys.add("eavesdrop='" + rnd.nextBoolean() + "'");
        }
        switch (rnd.nextInt(8)) {
            case 0, 1, 2 -> keys.add("arg0='" + pick(rnd, ARGS) + "'");
            case 3 -> keys.add("arg0namespace='" + pick(rnd, ARGS) + "'");
            case 4 -> keys.add("arg" + rnd.nextInt(3) + "path='" + pick(rnd, ARGS) + "'");
            case 5 -> keys.add("arg" + (1 + rnd.nextInt(3)) + "='" + pick(rnd, ARGS) + "'");
            default -> { }
        }
        if (rnd.nextInt(10) == 0) {
            keys.add("arg2='" + pick(rnd, ARGS) + "'");
        }
        java.util.Collections.shuffle(keys, rnd);
        try {
            return MatchRule.parse(String.join(",", keys));
        } catch (MatchRuleException e) {
            return null;
        }
    }

    private static ArgSource randomArgs(Random rnd) {
        Args a = new Args();
        for (int i = rnd.nextInt(5); i > 0; i--) {
            switch (rnd.nextInt(4)) {
                case 0 -> a.path(pick(rnd, PATHS));
                case 1 -> a.other();
                default -> a.str(pick(rnd, ARGS));
            }
        }
        return a;
    }

    private record Sent(Message message, Connection addressed) { }

    private Sent randomMessage(Random rnd, List<Connection> conns) {
        int type = 1 + rnd.nextInt(4);
        String dest = null;
        Connection addressed = null;
        if (rnd.nextInt(5) < 2) {
            dest = pick(rnd, BUS_NAMES);
            if (dest.startsWith(":")) {
                for (Connection c : conns) {
                    if (dest.equals(c.uniqueName())) {
                        addressed = c;
                    }
                }
            } else {
                addressed = names.owner(dest);
            }
            if (rnd.nextInt(6) == 0) {
                addressed = null; // e.g. queued for activation: compared by text
            }
        }
        boolean header = type == Message.METHOD_CALL || type == Message.SIGNAL || rnd.nextInt(4) == 0;
        String path = header ? pick(rnd, PATHS) : null;
        String iface = header && rnd.nextInt(5) > 0 ? pick(rnd, IFACES) : null;
        String member = header ? pick(rnd, MEMBERS) : null;
        Message m = Fixtures.msg(type, 0, 1, type == Message.METHOD_RETURN ? 1 : Message.NO_REPLY_SERIAL, dest,
                path, iface, member, type == Message.ERROR ? "org.e.Failed" : null, 8, randomArgs(rnd));
        Connection from = rnd.nextInt(6) == 0 ? null : conns.get(rnd.nextInt(conns.size()));
        m.admit(from, ++seq);
        return new Sent(m, addressed);
    }

    private record Added(Connection owner, MatchRule rule) { }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3, 20240531})
    void indexReportsExactlyWhatCheckingEveryRuleReports(long seed) {
        Random rnd = new Random(seed);
        List<Connection> conns = new ArrayList<>();
        for (int i = 1; i <= 6; i++) {
            conns.add(Fixtures.conn(i));
        }
        conns.get(5).markClosed(); // :1.6 never receives
        List<Added> model = new ArrayList<>();
        List<NameChange> changes = new ArrayList<>();
        int lookups = 0;
        int matched = 0;
        for (int step = 0; step < 6000; step++) {
            int op = rnd.nextInt(20);
            if (op < 7) {
                MatchRule r = randomRule(rnd);
                if (r != null) {
                    Connection owner = conns.get(rnd.nextInt(conns.size()));
                    int copies = rnd.nextInt(4) == 0 ? 2 : 1;
                    for (int i = 0; i < copies; i++) {
                        index.add(owner, r);
                        model.add(new Added(owner, r));
                    }
                }
            } else if (op < 9 && !model.isEmpty()) {
                Added victim = model.get(rnd.nextInt(model.size()));
                // an equal rule, parsed anew: removal is by content
                MatchRule same = parse(victim.rule().toString());
                assertTrue(index.remove(victim.owner(), same));
                removeLastEqual(model, victim.owner(), same);
            } else if (op == 9) {
                MatchRule r = randomRule(rnd);
                Connection owner = conns.get(rnd.nextInt(conns.size()));
                if (r != null) {
                    boolean had = model.stream().anyMatch(a -> a.owner() == owner && a.rule().equals(r));
                    assertEquals(had, index.remove(owner, r));
                    if (had) {
                        removeLastEqual(model, owner, r);
                    }
                }
            } else if (op == 10 && rnd.nextInt(10) == 0) {
                Connection owner = conns.get(rnd.nextInt(conns.size()));
                index.removeAll(owner);
                model.removeIf(a -> a.owner() == owner);
            } else if (op < 13) {
                Connection c = conns.get(rnd.nextInt(5));
                String name = pick(rnd, WELL_KNOWN);
                if (rnd.nextBoolean()) {
                    names.request(c, name, rnd.nextInt(8), changes);
                } else {
                    names.release(c, name, changes);
                }
            } else {
                Sent s = randomMessage(rnd, conns);
                Set<Connection> expected = new HashSet<>();
                for (Added a : model) {
                    if (!a.owner().isClosed() && a.owner() != s.addressed()
                            && bruteForce(a.rule(), s.message(), s.addressed(), names)) {
                        expected.add(a.owner());
                    }
                }
                if (s.addressed() != null) {
                    s.addressed().stampOnce(s.message().seq()); // as Bus.broadcast does
                }
                List<Connection> out = new ArrayList<>();
                index.collect(s.message(), s.addressed(), names, out);
                assertEquals(expected, new HashSet<>(out), () -> "step " + s.message().seq() + " rules " + model);
                assertEquals(out.size(), new HashSet<>(out).size(), "a recipient reported twice");
                lookups++;
                matched += out.size();
            }
            assertEquals(model.size(), index.size());
            index.checkInvariants();
            names.checkInvariants(conns);
        }
        assertTrue(lookups > 1000 && matched > 500, lookups + " lookups, " + matched + " deliveries");
        for (Connection c : conns) {
            List<MatchRule> mine = new ArrayList<>();
            for (Added a : model) {
                if (a.owner() == c) {
                    mine.add(a.rule());
                }
            }
            assertEquals(mine, index.rulesOf(c));
            assertEquals(mine.size(), c.matchRuleCount());
        }
    }

    private static void removeLastEqual(List<Added> model, Connection owner, MatchRule r) {
        for (int i = model.size() - 1; i >= 0; i--) {
            if (model.get(i).owner() == owner && model.get(i).rule().equals(r)) {
                model.remove(i);
                return;
            }
        }
        throw new AssertionError("model has no " + r);
    }

    // ---------------------------------------------------------------- placement, duplicates

    private static MatchRule parse(String text) {
        try {
            return MatchRule.parse(text);
        } catch (MatchRuleException e) {
            throw new AssertionError(text, e);
        }
    }

    private List<Connection> collect(Message m, Connection from) {
        m.admit(from, ++seq);
        List<Connection> out = new ArrayList<>();
        index.collect(m, null, names, out);
        return out;
    }

    private static Message noc(String arg0, String path) {
        return Fixtures.signal(path, DRIVER, "NameOwnerChanged", Args.of(arg0, "", ":1.7"));
    }

    @Test
    void eachKindOfKeyHasItsBucket() {
        Connection w = Fixtures.conn(10);
        String[] rules = {
            "member='NameOwnerChanged',arg0='org.n.A',path='/org/freedesktop/DBus',sender='org.freedesktop.DBus'",
            "type='signal',path='/a/b'",
            "member='M1',interface='org.i.A'",
            "sender=':1.5'",
            "type='signal',path_namespace='/a'",
            "interface='org.i.A'",
            "arg0='x'",
            "arg0namespace='org.n'",
            "destination=':1.5'",
            "destination=':1.5',eavesdrop='true'",
            "eavesdrop='true'",
        };
        for (String r : rules) {
            index.add(w, parse(r));
        }
        assertArrayEquals(new int[] {MEMBER_ARG0, PATH, MEMBER, SENDER, PATH_NAMESPACE, IFACE, ARG0, WILD, NONE,
            WILD, WILD}, index.kindsOf(w));
        assertEquals(rules.length, index.size());
        index.removeAll(w);
        assertEquals(0, index.size());
        assertEquals(0, w.matchRuleCount());
    }

    @Test
    void aRuleGoesToTheLeastCrowdedOfItsBucketsAndJoinsEqualRules() {
        Connection w = Fixtures.conn(10);
        String nocA = "member='NameOwnerChanged',arg0='org.n.A',path='/org/freedesktop/DBus'";
        index.add(w, parse(nocA));
        index.add(w, parse(nocA)); // an equal rule: same bucket
        // same member and arg0, other path: the member+arg0 bucket is taken, the path's is free
        index.add(w, parse("member='NameOwnerChanged',arg0='org.n.A',path='/other'"));
        // a watcher of another name: its own member+arg0 bucket
        index.add(w, parse("member='NameOwnerChanged',arg0='org.n.B',path='/org/freedesktop/DBus'"));
        // like the first two plus a sender: member+arg0 is taken, path /org/freedesktop/DBus still free
        index.add(w, parse(nocA + ",sender='org.freedesktop.DBus'"));
        // and once more with another arg1: member+arg0 and that path are taken, member is free
        index.add(w, parse(nocA + ",sender='org.freedesktop.DBus',arg1=''"));
        // and again with arg2: member+arg0, path and member are taken, sender is free
        index.add(w, parse(nocA + ",sender='org.freedesktop.DBus',arg2=''"));
        assertArrayEquals(new int[] {MEMBER_ARG0, MEMBER_ARG0, PATH, MEMBER_ARG0, PATH, MEMBER, SENDER},
                index.kindsOf(w));

        assertEquals(List.of(w), collect(noc("org.n.A", "/org/freedesktop/DBus"), null));
        index.candidatesChecked = 0;
        assertEquals(List.of(w), collect(noc("org.n.B", "/org/freedesktop/DBus"), null));
        assertEquals(4, index.candidatesChecked, "org.n.B's watcher and the path-, member- and sender-keyed rules");
    }

    @Test
    void duplicatesInDifferentBucketsAreRemovedOneAtATime() {
        Connection w = Fixtures.conn(10);
        Connection other = Fixtures.conn(11);
        Connection third = Fixtures.conn(12);
        String r = "type='signal',member='M1',path='/a/b'";
        index.add(other, parse("path='/a/b',type='error'")); // PATH: its only key
        index.add(other, parse("member='M1',type='error'")); // MEMBER: its only key
        index.add(w, parse(r)); // path /a/b and member M1 hold one other rule each: PATH comes first
        index.add(w, parse(r)); // path /a/b holds two, member M1 one: MEMBER
        index.add(third, parse(r)); // two each: PATH
        assertArrayEquals(new int[] {PATH, MEMBER}, index.kindsOf(w));
        assertArrayEquals(new int[] {PATH}, index.kindsOf(third));

        assertEquals(Set.of(w, third), new HashSet<>(collect(sig("/a/b", "M1"), null)));
        assertEquals(2, w.matchRuleCount());

        // removal is by content, most recent first: the copy in MEMBER
        assertTrue(index.remove(w, parse("path='/a/b',member='M1',type='signal'")));
        assertArrayEquals(new int[] {PATH}, index.kindsOf(w));
        assertEquals(1, w.matchRuleCount());
        assertEquals(Set.of(w, third), new HashSet<>(collect(sig("/a/b", "M1"), null)));
        // w's other copy sits between other's rule and third's in the path bucket
        assertTrue(index.remove(w, parse(r)));
        assertFalse(index.remove(w, parse(r)));
        assertEquals(0, w.matchRuleCount());
        assertEquals(List.of(third), collect(sig("/a/b", "M1"), null));
        assertTrue(index.remove(third, parse(r)));
        assertEquals(List.of(), collect(sig("/a/b", "M1"), null));
        // other's rules are intact after entries moved around inside the buckets
        assertEquals(List.of(other), collect(Fixtures.msg(Message.ERROR, 0, 1, 1, null, "/a/b", null, "M1",
                "org.e.Failed", 0, null), null));
        assertEquals(2, index.size());
        index.removeAll(other);
        assertEquals(0, index.size());
        index.candidatesChecked = 0;
        collect(sig("/a/b", "M1"), null);
        assertEquals(0, index.candidatesChecked);
    }

    private static Message sig(String path, String member) {
        return Fixtures.signal(path, "org.i.A", member, null);
    }

    @Test
    void removingFromTheMiddleOfABucketKeepsTheOthersFindable() {
        List<Connection> owners = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            Connection c = Fixtures.conn(100 + i);
            owners.add(c);
            index.add(c, parse("type='signal',path='/same',arg3='" + i + "'"));
        }
        Random rnd = new Random(7);
        List<Connection> left = new ArrayList<>(owners);
        while (!left.isEmpty()) {
            Connection c = left.remove(rnd.nextInt(left.size()));
            index.removeAll(c);
            index.checkInvariants();
            for (Connection d : left) {
                int i = owners.indexOf(d);
                assertEquals(List.of(d), collect(Fixtures.signal("/same", "org.i.A", "M",
                        Args.of("", "", "", String.valueOf(i))), null));
            }
        }
        assertEquals(0, index.size());
    }

    // ---------------------------------------------------------------- no scanning

    @Test
    void tenThousandPathOnlyRulesAreNotScanned() {
        List<Connection> conns = new ArrayList<>();
        for (int c = 0; c < 1000; c++) {
            Connection conn = Fixtures.conn(100 + c);
            conns.add(conn);
            for (int i = 0; i < 10; i++) {
                index.add(conn, parse("type='signal',path='/org/example/P" + (c * 10 + i) + "'"));
            }
        }
        Connection from = Fixtures.conn(1);
        index.candidatesChecked = 0;
        assertEquals(List.of(conns.get(423)), collect(Fixtures.signal("/org/example/P4231", "org.i.A", "M", null),
                from));
        assertEquals(List.of(), collect(Fixtures.signal("/org/example/Q", "org.i.A", "M", null), from));
        assertEquals(List.of(), collect(Fixtures.call(":1.100", 1), from));
        assertEquals(1, index.candidatesChecked);
    }

    @Test
    void tenThousandMixedRulesAreNotScanned() {
        List<Connection> conns = new ArrayList<>();
        for (int c = 0; c < 1000; c++) {
            Connection conn = Fixtures.conn(100 + c);
            conns.add(conn);
            for (int i = 0; i < 10; i++) {
                int r = c * 10 + i;
                String text = switch (i) {
                    case 0 -> "type='signal',path='/org/example/P" + r + "'";
                    case 1 -> "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                            + "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.n.N" + r + "'";
                    case 2 -> "type='signal',sender=':1." + (100 + c) + "',path='/org/example/Obj" + r
                            + "',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                            + "arg0='org.example.Iface" + (r % 16) + "'";
                    case 3 -> "type='signal',interface='org.example.I" + (r % 100) + "',member='M" + r + "'";
                    case 4 -> "type='signal',sender=':1." + (2000 + r) + "'";
                    case 5 -> "type='signal',sender='org.example.Svc" + r + "'";
                    case 6 -> "type='signal',arg0='org.example.Key" + r + "'";
                    case 7 -> "type='signal',path_namespace='/org/example/NS" + r + "'";
                    case 8 -> "type='signal',interface='org.example.J" + r + "'";
                    default -> "type='signal',member='Changed" + r + "'";
                };
                index.add(conn, parse(text));
            }
        }
        List<NameChange> ch = new ArrayList<>();
        Connection from = Fixtures.conn(1);
        names.request(from, "org.example.Svc45", 0, ch);
        names.request(conns.get(0), "org.example.Svc5", 0, ch);
        names.request(from, "org.example.Svc5", 0, ch); // queued only
        // member M23 (conn 2), inside namespace NS37 (conn 3), from Svc45's owner (conn 4), arg0 Key56 (conn 5)
        index.candidatesChecked = 0;
        List<Connection> out = collect(Fixtures.signal("/org/example/NS37/x", "org.example.I23", "M23",
                Args.of("org.example.Key56")), from);
        assertEquals(Set.of(conns.get(2), conns.get(3), conns.get(4), conns.get(5)), new HashSet<>(out));
        assertEquals(5, index.candidatesChecked, "M23, NS37, Svc45, Svc5 (queued: no match), Key56");

        index.candidatesChecked = 0;
        assertEquals(List.of(conns.get(400)), collect(noc("org.n.N4001", "/org/freedesktop/DBus"), null));
        assertEquals(1, index.candidatesChecked, "the one member+arg0 bucket");

        // PropertiesChanged watchers: the first of each arg0 took member+arg0, the rest their path
        index.candidatesChecked = 0;
        assertEquals(List.of(conns.get(300)), collect(Fixtures.signal("/org/example/Obj3002",
                "org.freedesktop.DBus.Properties", "PropertiesChanged", Args.of("org.example.Iface10")),
                conns.get(300)));
        assertEquals(2, index.candidatesChecked, "path Obj3002 and the member+arg0 bucket of Iface10");

        index.candidatesChecked = 0;
        assertEquals(List.of(), collect(Fixtures.call(":1.100", 1), from));
        assertEquals(0, index.candidatesChecked);
    }

    @Test
    void senderWithMoreNamesThanThereAreSenderKeys() {
        List<NameChange> ch = new ArrayList<>();
        Connection from = Fixtures.conn(1);
        Connection rival = Fixtures.conn(2);
        Connection w = Fixtures.conn(10);
        for (int i = 0; i < 6; i++) {
            names.request(from, "org.n.X" + i, 0, ch);
        }
        names.request(rival, "org.n.R", 0, ch);
        names.request(from, "org.n.R", 0, ch); // only queued
        index.add(w, parse("sender='org.n.X3',member='M'"));
        index.add(w, parse("sender='org.n.R',member='OnlyR'"));
        assertEquals(List.of(w), collect(Fixtures.signal("/a", "org.i.A", "M", null), from));
        assertEquals(List.of(), collect(Fixtures.signal("/a", "org.i.A", "OnlyR", null), from));
        assertEquals(List.of(w), collect(Fixtures.signal("/a", "org.i.A", "OnlyR", null), rival));
        names.release(rival, "org.n.R", ch); // from is promoted
        assertEquals(List.of(w), collect(Fixtures.signal("/a", "org.i.A", "OnlyR", null), from));
    }

    @Test
    void pathNamespaceBucketsAreProbedByEveryPrefixOfThePath() {
        String[] namespaces = {"/", "/a", "/a/b", "/a/b/c", "/ab", "/x"};
        Map<String, Connection> by = new HashMap<>();
        int id = 100;
        for (String ns : namespaces) {
            Connection c = Fixtures.conn(id++);
            by.put(ns, c);
            index.add(c, parse("path_namespace='" + ns + "'"));
        }
        assertEquals(Set.of(by.get("/")), new HashSet<>(collect(Fixtures.signal("/", "o.I", "M", null), null)));
        assertEquals(Set.of(by.get("/"), by.get("/a")),
                new HashSet<>(collect(Fixtures.signal("/a", "o.I", "M", null), null)));
        assertEquals(Set.of(by.get("/"), by.get("/a"), by.get("/a/b")),
                new HashSet<>(collect(Fixtures.signal("/a/b", "o.I", "M", null), null)));
        assertEquals(Set.of(by.get("/"), by.get("/a"), by.get("/a/b"), by.get("/a/b/c")),
                new HashSet<>(collect(Fixtures.signal("/a/b/c/d", "o.I", "M", null), null)));
        assertEquals(Set.of(by.get("/"), by.get("/ab")),
                new HashSet<>(collect(Fixtures.signal("/ab/c", "o.I", "M", null), null)));
        assertEquals(Set.of(by.get("/")), new HashSet<>(collect(Fixtures.signal("/abc", "o.I", "M", null), null)));
        assertEquals(Set.of(), new HashSet<>(collect(Fixtures.reply(null, 1), null)), "no path, no namespace");
    }

    @Test
    void unicastMessagesOnlyLookAtEavesdroppingRules() {
        Connection w = Fixtures.conn(10);
        Connection b = Fixtures.conn(2);
        for (int i = 0; i < 100; i++) {
            index.add(w, parse("member='Call'"));
            index.add(w, parse("destination=':1.2'"));
        }
        index.add(w, parse("member='Call',eavesdrop='true'"));
        Message m = Fixtures.call(":1.2", 1);
        m.admit(Fixtures.conn(1), ++seq);
        b.stampOnce(m.seq());
        List<Connection> out = new ArrayList<>();
        index.candidatesChecked = 0;
        index.collect(m, b, names, out);
        assertEquals(List.of(w), out);
        assertEquals(1, index.candidatesChecked);
    }

    @Test
    void argKeysCompareStringsOnly() {
        Connection w = Fixtures.conn(10);
        index.add(w, parse("arg0='/a'"));
        index.add(w, parse("member='M',arg0='/a'"));
        assertEquals(List.of(), collect(Fixtures.signal("/p", "o.I", "M", new Args().path("/a")), null));
        assertEquals(List.of(w), collect(Fixtures.signal("/p", "o.I", "M", Args.of("/a")), null));
        assertEquals(List.of(w), collect(Fixtures.signal("/p", "o.I", "N", Args.of("/a")), null));
        assertEquals(List.of(), collect(Fixtures.signal("/p", "o.I", "M", new Args().other()), null));
        assertEquals(List.of(), collect(Fixtures.signal("/p", "o.I", "M", null), null));
    }
}
