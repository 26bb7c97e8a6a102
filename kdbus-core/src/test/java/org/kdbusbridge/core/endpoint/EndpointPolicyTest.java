package org.kdbusbridge.core.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

// The decisions of xdg-dbus-proxy's filter mode (flatpak-proxy.c), one behaviour per test.
class EndpointPolicyTest {
    private static final String SELF = ":1.1";
    private final Map<String, List<String>> owned = new HashMap<>();
    private final OwnedNames owners = u -> owned.getOrDefault(u, List.of());
    private EndpointState state;

    @BeforeEach
    void setUp() {
        state = new EndpointState(64, 64);
        state.helloAnswered(SELF);
    }

    private static EndpointPolicy policy(EndpointFilter.Builder b) {
        return new EndpointPolicy(b.filtering(true).build());
    }

    private static EndpointFilter.Builder rules() {
        return EndpointFilter.builder("ep");
    }

    private SendVerdict call(EndpointPolicy p, String dest, String path, String iface, String member) {
        return p.checkSend(true, dest, path, iface, member, true, false, null, owners, state);
    }

    private static CallRule rule(String name, String iface, String member, String path, boolean subtree) {
        NamePattern n = name.endsWith(".*") ? NamePattern.subtreeOf(name.substring(0, name.length() - 2))
                : NamePattern.exact(name);
        return new CallRule(n, iface, member, path, subtree);
    }

    // ---- levels ----

    @Test
    void eachNameRuleGivesItsLevelAndTheHighestWins() {
        EndpointPolicy p = policy(rules().see("org.a.See").talk("org.a.Talk").own("org.a.Own").see("org.a.Both")
                .own("org.a.Both"));
        assertEquals(Level.SEE, p.levelOfWellKnown("org.a.See"));
        assertEquals(Level.TALK, p.levelOfWellKnown("org.a.Talk"));
        assertEquals(Level.OWN, p.levelOfWellKnown("org.a.Own"));
        assertEquals(Level.OWN, p.levelOfWellKnown("org.a.Both"));
        assertEquals(Level.NONE, p.levelOfWellKnown("org.a.Other"));
    }

    @Test
    void wildcardCoversTheNameAndEverythingBelowButNotASiblingPrefix() {
        EndpointPolicy p = policy(rules().talk("org.foo.*").own("org.foo.bar"));
        assertEquals(Level.TALK, p.levelOfWellKnown("org.foo"));
        assertEquals(Level.OWN, p.levelOfWellKnown("org.foo.bar"));
        assertEquals(Level.TALK, p.levelOfWellKnown("org.foo.bar.gazonk"));
        assertEquals(Level.NONE, p.levelOfWellKnown("org.foobar"));
        assertEquals(Level.NONE, p.levelOfWellKnown("org"));
    }

    @Test
    void anExactRuleDoesNotCoverNamesBelowIt() {
        EndpointPolicy p = policy(rules().own("org.foo"));
        assertEquals(Level.NONE, p.levelOfWellKnown("org.foo.bar"));
    }

    @Test
    void callAndBroadcastRulesMakeTheNameTalk() {
        EndpointPolicy p = policy(rules().see("org.c").call(rule("org.c", "org.c.I", "M", null, false))
                .broadcast(rule("org.b.*", null, null, "/x", false)));
        assertEquals(Level.TALK, p.levelOfWellKnown("org.c"));
        assertEquals(Level.TALK, p.levelOfWellKnown("org.b.sub"));
    }

    @Test
    void theBusItselfIsAlwaysTalk() {
        EndpointPolicy p = policy(rules());
        assertEquals(Level.TALK, p.levelOfWellKnown("org.freedesktop.DBus"));
        assertEquals(Level.TALK, p.levelOf(null, owners, state));
    }

    @Test
    void aUniqueNameHasTheHighestLevelOfTheNamesItOwnsNow() {
        EndpointPolicy p = policy(rules().see("org.s").talk("org.t.*"));
        owned.put(":1.5", List.of("org.s", "org.unrelated"));
        owned.put(":1.6", List.of("org.s", "org.t.deep"));
        assertEquals(Level.SEE, p.levelOf(":1.5", owners, state));
        assertEquals(Level.TALK, p.levelOf(":1.6", owners, state));
        assertEquals(Level.NONE, p.levelOf(":1.7", owners, state));
        owned.put(":1.6", List.of()); // released: not sticky (a deliberate difference from the proxy)
        assertEquals(Level.NONE, p.levelOf(":1.6", owners, state));
    }

    @Test
    void theClientIsTalkToItselfAndPeersThatMessagedItAreSee() {
        EndpointPolicy p = policy(rules());
        assertEquals(Level.TALK, p.levelOf(SELF, owners, state));
        assertEquals(Level.NONE, p.levelOf(":1.9", owners, state));
        state.delivered(":1.9");
        assertEquals(Level.SEE, p.levelOf(":1.9", owners, state));
        state.forget(":1.9");
        assertEquals(Level.NONE, p.levelOf(":1.9", owners, state));
    }

    // ---- calls and signals from the client ----

    @Test
    void aHiddenWellKnownNameLooksUnknown() {
        EndpointPolicy p = policy(rules());
        SendVerdict v = call(p, "org.hidden", "/", "a.b", "M");
        assertEquals(SendVerdict.Outcome.REFUSE, v.outcome());
        assertTrue(v.hidden());
        assertEquals("org.freedesktop.DBus.Error.ServiceUnknown", v.errorName());
        assertEquals("org.freedesktop.DBus.Error.ServiceUnknown", v.errorText());
        assertFalse(v.silent());
    }

    @Test
    void aHiddenNameWithNoAutoStartOrAHiddenUniqueNameHasNoOwner() {
        EndpointPolicy p = policy(rules());
        SendVerdict noStart = p.checkSend(true, "org.hidden", "/", "a.b", "M", true, true, null, owners, state);
        assertEquals("org.freedesktop.DBus.Error.NameHasNoOwner", noStart.errorName());
        owned.put(":1.42", List.of("org.hidden"));
        SendVerdict guessed = call(p, ":1.42", "/", "a.b", "M");
        assertEquals("org.freedesktop.DBus.Error.NameHasNoOwner", guessed.errorName());
        assertTrue(guessed.hidden());
    }

    @Test
    void aSeeNameIsAccessDenied() {
        EndpointPolicy p = policy(rules().see("org.s"));
        SendVerdict v = call(p, "org.s", "/", "a.b", "M");
        assertEquals(SendVerdict.Outcome.REFUSE, v.outcome());
        assertFalse(v.hidden());
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", v.errorName());
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", v.errorText());
    }

    @Test
    void talkAndOwnAllowEveryCall() {
        EndpointPolicy p = policy(rules().talk("org.t").own("org.o"));
        assertSame(SendVerdict.ALLOW, call(p, "org.t", "/any", "x.y", "Z"));
        assertSame(SendVerdict.ALLOW, call(p, "org.o", "/any", null, "Z"));
    }

    @Test
    void callRulesAllowOnlyTheMatchingCalls() {
        EndpointPolicy p = policy(rules()
                .call(rule("org.portal.*", "org.portal.Settings", "Read", "/org/portal", false))
                .call(rule("org.portal.*", "org.portal.FileChooser", null, "/org/portal/desktop", true)));
        assertTrue(call(p, "org.portal.Desktop", "/org/portal", "org.portal.Settings", "Read").allowed());
        assertFalse(call(p, "org.portal.Desktop", "/org/portal", "org.portal.Settings", "Write").allowed());
        assertFalse(call(p, "org.portal.Desktop", "/org/other", "org.portal.Settings", "Read").allowed());
        assertTrue(call(p, "org.portal", "/org/portal/desktop/x", "org.portal.FileChooser", "Open").allowed());
        SendVerdict denied = call(p, "org.portal", "/org/portal/desktop", "org.portal.Other", "Open");
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", denied.errorName()); // visible: TALK by the rule
    }

    @Test
    void aBroadcastRuleAloneDoesNotAllowCalls() {
        EndpointPolicy p = policy(rules().broadcast(rule("org.b", null, null, null, false)));
        SendVerdict v = call(p, "org.b", "/", "a.b", "M");
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", v.errorName());
    }

    @Test
    void callsToAUniqueNameUseTheRulesOfTheNamesItOwns() {
        EndpointPolicy p = policy(rules().call(rule("org.c", "org.c.I", "M", null, false)).talk("org.t"));
        owned.put(":1.5", List.of("org.c"));
        owned.put(":1.6", List.of("org.t"));
        assertTrue(call(p, ":1.5", "/", "org.c.I", "M").allowed());
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", call(p, ":1.5", "/", "org.c.I", "N").errorName());
        assertTrue(call(p, ":1.6", "/", "any.I", "N").allowed());
    }

    @Test
    void aPeerThatCalledTheClientIsSeeButCannotBeCalledBack() {
        EndpointPolicy p = policy(rules());
        state.delivered(":1.9");
        SendVerdict v = call(p, ":1.9", "/", "a.b", "M");
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", v.errorName());
        assertFalse(v.hidden());
        assertTrue(call(p, SELF, "/", "a.b", "M").allowed()); // itself: TALK
    }

    @Test
    void refusalsOfMessagesThatExpectNoReplyAreSilent() {
        EndpointPolicy p = policy(rules().see("org.s"));
        SendVerdict noReply = p.checkSend(true, "org.s", "/", "a.b", "M", false, false, null, owners, state);
        assertEquals(SendVerdict.Outcome.REFUSE, noReply.outcome());
        assertTrue(noReply.silent());
        SendVerdict signal = p.checkSend(false, "org.hidden", "/", "a.b", "S", false, false, null, owners, state);
        assertTrue(signal.silent());
        assertTrue(signal.hidden());
    }

    @Test
    void unicastSignalsFollowTheCallRules() {
        EndpointPolicy p = policy(rules().call(rule("org.c", "org.c.I", "Sig", null, false)));
        assertTrue(p.checkSend(false, "org.c", "/", "org.c.I", "Sig", false, false, null, owners, state).allowed());
        assertFalse(p.checkSend(false, "org.c", "/", "org.c.I", "Other", false, false, null, owners, state).allowed());
    }

    @Test
    void messagesWithoutDestinationAreAllowed() {
        EndpointPolicy p = policy(rules());
        assertSame(SendVerdict.ALLOW, p.checkSend(false, null, "/x", "a.b", "S", false, false, null, owners, state));
        assertSame(SendVerdict.ALLOW, p.checkSend(true, null, "/x", "a.b", "M", true, false, null, owners, state));
    }

    @Test
    void signalsToTheBusAreRefused() {
        EndpointPolicy p = policy(rules());
        SendVerdict v = p.checkSend(false, "org.freedesktop.DBus", "/", "org.freedesktop.DBus", "Hello", false, false,
                null, owners, state);
        assertEquals(SendVerdict.Outcome.REFUSE, v.outcome());
        assertTrue(v.silent());
    }

    @Test
    void callsToTheBusGoByTheDriverTable() {
        EndpointPolicy p = policy(rules());
        assertSame(SendVerdict.ALLOW, p.checkSend(true, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                "org.freedesktop.DBus", "Hello", true, false, null, owners, state));
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", p.checkSend(true, "org.freedesktop.DBus", "/",
                "org.freedesktop.DBus", "RequestName", true, false, "org.freedesktop.DBus", owners, state).errorName());
        assertEquals("org.freedesktop.DBus.Error.ServiceUnknown", p.checkSend(true, "org.freedesktop.DBus", "/",
                "org.freedesktop.DBus", "RequestName", true, false, "org.evil", owners, state).errorName());
    }

    // ---- broadcasts, NameOwnerChanged, lists ----

    @Test
    void broadcastsComeFromTalkAndOwnSendersOnly() {
        EndpointPolicy p = policy(rules().see("org.s").talk("org.t").own("org.o"));
        owned.put(":1.5", List.of("org.s"));
        owned.put(":1.6", List.of("org.t"));
        owned.put(":1.7", List.of("org.o"));
        assertFalse(p.receivesBroadcast(":1.5", "/", "a.b", "S", owners, state));
        assertTrue(p.receivesBroadcast(":1.6", "/", "a.b", "S", owners, state));
        assertTrue(p.receivesBroadcast(":1.7", "/", "a.b", "S", owners, state));
        assertFalse(p.receivesBroadcast(":1.8", "/", "a.b", "S", owners, state));
    }

    @Test
    void broadcastRulesLetOnlyMatchingSignalsThrough() {
        EndpointPolicy p = policy(rules().broadcast(rule("org.portal.*", null, null, "/org/portal", true))
                .broadcast(rule("org.a11y", "org.a11y.Registry", "EventListenerRegistered", null, false)));
        owned.put(":1.5", List.of("org.portal.Desktop"));
        owned.put(":1.6", List.of("org.a11y"));
        assertTrue(p.receivesBroadcast(":1.5", "/org/portal/desktop", "x.y", "Changed", owners, state));
        assertFalse(p.receivesBroadcast(":1.5", "/org/other", "x.y", "Changed", owners, state));
        assertTrue(p.receivesBroadcast(":1.6", "/r", "org.a11y.Registry", "EventListenerRegistered", owners, state));
        assertFalse(p.receivesBroadcast(":1.6", "/r", "org.a11y.Registry", "EventListenerDeregistered", owners, state));
    }

    @Test
    void aCallRuleLetsNoBroadcastThrough() {
        EndpointPolicy p = policy(rules().call(rule("org.c", null, null, null, false)));
        owned.put(":1.5", List.of("org.c"));
        assertFalse(p.receivesBroadcast(":1.5", "/", "a.b", "S", owners, state));
    }

    @Test
    void broadcastsFromTheBusAndFromItselfAreReceived() {
        EndpointPolicy p = policy(rules());
        assertTrue(p.receivesBroadcast(null, "/", "org.freedesktop.DBus", "NameOwnerChanged", owners, state));
        assertTrue(p.receivesBroadcast("org.freedesktop.DBus", "/", "org.freedesktop.DBus", "X", owners, state));
        assertTrue(p.receivesBroadcast(SELF, "/", "a.b", "S", owners, state));
        state.delivered(":1.9"); // SEE only: its broadcasts stay filtered
        assertFalse(p.receivesBroadcast(":1.9", "/", "a.b", "S", owners, state));
    }

    @Test
    void nameOwnerChangedIsShownForVisibleNamesOnly() {
        EndpointPolicy p = policy(rules().see("org.s"));
        owned.put(":1.5", List.of("org.s"));
        assertTrue(p.showsNameOwnerChanged("org.s", owners, state));
        assertFalse(p.showsNameOwnerChanged("org.hidden", owners, state));
        assertTrue(p.showsNameOwnerChanged(":1.5", owners, state)); // owner of a SEE name
        assertFalse(p.showsNameOwnerChanged(":1.6", owners, state));
        assertTrue(p.showsNameOwnerChanged(SELF, owners, state));
        state.delivered(":1.9");
        assertTrue(p.showsNameOwnerChanged(":1.9", owners, state)); // a caller: its disconnect is shown
    }

    @Test
    void sloppyNamesShowEveryUniqueNameChangeButListNothingMore() {
        EndpointPolicy p = new EndpointPolicy(rules().filtering(true).sloppyNames(true).build());
        assertTrue(p.showsNameOwnerChanged(":1.77", owners, state));
        assertFalse(p.showsNameOwnerChanged("org.hidden", owners, state));
        assertFalse(p.listsName(":1.77", owners, state));
    }

    @Test
    void listsKeepSeeNamesAndVisibleUniqueNames() {
        EndpointPolicy p = policy(rules().see("org.s").talk("org.t.*"));
        owned.put(":1.5", List.of("org.t.x"));
        assertTrue(p.listsName("org.freedesktop.DBus", owners, state));
        assertTrue(p.listsName("org.s", owners, state));
        assertTrue(p.listsName("org.t.x", owners, state));
        assertFalse(p.listsName("org.hidden", owners, state));
        assertTrue(p.listsName(":1.5", owners, state));
        assertTrue(p.listsName(SELF, owners, state));
        assertFalse(p.listsName(":1.6", owners, state));
    }

    @Test
    void owningNeedsOwnIncludingWildcards() {
        EndpointPolicy p = policy(rules().own("org.app.*").talk("org.t"));
        assertTrue(p.mayOwn("org.app"));
        assertTrue(p.mayOwn("org.app.Instance1"));
        assertFalse(p.mayOwn("org.apps"));
        assertFalse(p.mayOwn("org.t"));
    }

    @Test
    void withoutFilteringEverythingIsAllowed() {
        EndpointPolicy p = new EndpointPolicy(rules().see("org.s").build());
        assertSame(SendVerdict.ALLOW, call(p, "org.hidden", "/", "a.b", "M"));
        assertTrue(p.receivesBroadcast(":1.5", "/", "a.b", "S", owners, state));
        assertTrue(p.showsNameOwnerChanged("org.hidden", owners, state));
        assertTrue(p.listsName("org.hidden", owners, state));
        assertTrue(p.mayOwn("org.hidden"));
        assertSame(SendVerdict.ALLOW, p.checkDriverCall("org.freedesktop.DBus.Monitoring", "BecomeMonitor", null,
                true, false, owners, state));
    }
}
