package org.kdbusbridge.core.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

class PolicyDatabaseTest {
    private static final long OWNER = 1000;
    private static final long[] NO_GROUPS = {};

    private static PolicyRule.User user(boolean allow, long uid) { return new PolicyRule.User(allow, uid); }

    private static PolicyRule.Group group(boolean allow, long gid) { return new PolicyRule.Group(allow, gid); }

    private static PolicyRule.Own own(boolean allow, String name) { return new PolicyRule.Own(allow, name, false); }

    private static PolicyRule.Own ownPrefix(boolean allow, String name) { return new PolicyRule.Own(allow, name, true); }

    // --- allowUser --------------------------------------------------------------------------

    @Test
    void emptyDatabaseAllowsOnlyTheBusOwner() {
        assertTrue(PolicyDatabase.EMPTY.allowUser(OWNER, NO_GROUPS, OWNER));
        assertFalse(PolicyDatabase.EMPTY.allowUser(0, NO_GROUPS, OWNER));
        assertFalse(PolicyDatabase.EMPTY.allowUser(1001, new long[] {100}, OWNER));
        assertEquals(0, PolicyDatabase.EMPTY.size());
    }

    @Test
    void userWildcardAllowsEveryone() throws Exception {
        PolicyDatabase db = new PolicyDatabase.Builder().add(PolicyContext.DEFAULT, user(true, PolicyRule.User.ANY)).build();
        for (long uid : new long[] {0, 1, 1001, 65534, 4_000_000_000L}) {
            assertTrue(db.allowUser(uid, NO_GROUPS, OWNER), "uid " + uid);
        }
    }

    @Test
    void lastMatchingRuleWinsAndDenyCanLockOutTheOwner() throws Exception {
        PolicyDatabase db = new PolicyDatabase.Builder()
                .add(PolicyContext.DEFAULT, user(true, -1))
                .add(PolicyContext.DEFAULT, user(false, 1234))
                .add(PolicyContext.DEFAULT, user(false, OWNER))
                .build();
        assertFalse(db.allowUser(1234, NO_GROUPS, OWNER));
        assertFalse(db.allowUser(OWNER, NO_GROUPS, OWNER));
        assertTrue(db.allowUser(1235, NO_GROUPS, OWNER));
    }

    @Test
    void groupRulesMatchAnyOfTheUsersGroups() throws Exception {
        PolicyDatabase db = new PolicyDatabase.Builder()
                .add(PolicyContext.DEFAULT, group(true, 27))
                .add(PolicyContext.DEFAULT, group(false, 666))
                .build();
        assertTrue(db.allowUser(2000, new long[] {100, 27}, OWNER));
        assertFalse(db.allowUser(2000, new long[] {100}, OWNER));
        assertFalse(db.allowUser(2000, new long[] {27, 666}, OWNER), "the later deny matches too");
        PolicyDatabase any = new PolicyDatabase.Builder().add(PolicyContext.DEFAULT, group(true, -1)).build();
        assertTrue(any.allowUser(2000, NO_GROUPS, OWNER), "group=\"*\" matches even without groups");
    }

    @Test
    void mandatoryRulesComeAfterDefaultRulesWhateverTheFileOrder() throws Exception {
        PolicyDatabase db = new PolicyDatabase.Builder()
                .add(PolicyContext.MANDATORY, user(false, 1234))
                .add(PolicyContext.DEFAULT, user(true, -1))
                .build();
        assertFalse(db.allowUser(1234, NO_GROUPS, OWNER));
        assertTrue(db.allowUser(1, NO_GROUPS, OWNER));
    }

    @Test
    void userRulesInConsoleContextDoNotDecideConnects() throws Exception {
        PolicyDatabase db = new PolicyDatabase.Builder()
                .add(PolicyContext.atConsole(true), user(true, -1))
                .add(PolicyContext.atConsole(false), group(true, -1))
                .build();
        assertFalse(db.allowUser(4242, new long[] {1}, OWNER));
        assertEquals(2, db.size());
    }

    @Test
    void userAndGroupRulesAreRefusedInPerUserAndPerGroupContexts() {
        PolicyDatabase.Builder b = new PolicyDatabase.Builder();
        PolicyException e = assertThrows(PolicyException.class, () -> b.add(PolicyContext.user(0), user(true, -1)));
        assertTrue(e.getMessage().contains("per-user"), e.getMessage());
        assertThrows(PolicyException.class, () -> b.add(PolicyContext.group(0), group(true, -1)));
        assertThrows(PolicyException.class, () -> b.add(PolicyContext.group(0), user(true, 5)));
        assertEquals(0, b.build().size());
    }

    // --- canOwn -----------------------------------------------------------------------------

    @Test
    void nothingMayBeOwnedWithoutARule() {
        assertFalse(PolicyDatabase.EMPTY.canOwn(OWNER, NO_GROUPS, "org.example"));
    }

    @Test
    void ownWildcardAndExactNames() throws Exception {
        PolicyDatabase db = new PolicyDatabase.Builder()
                .add(PolicyContext.DEFAULT, own(true, null))
                .add(PolicyContext.DEFAULT, own(false, "org.secret"))
                .build();
        assertTrue(db.canOwn(1, NO_GROUPS, "org.example"));
        assertFalse(db.canOwn(1, NO_GROUPS, "org.secret"));
        assertTrue(db.canOwn(1, NO_GROUPS, "org.secret.Sub"), "own= is exact");
    }

    @Test
    void ownPrefixMatchesWholeWords() throws Exception {
        PolicyDatabase db = new PolicyDatabase.Builder().add(PolicyContext.DEFAULT, ownPrefix(true, "org.a")).build();
        assertTrue(db.canOwn(1, NO_GROUPS, "org.a"));
        assertTrue(db.canOwn(1, NO_GROUPS, "org.a.b"));
        assertTrue(db.canOwn(1, NO_GROUPS, "org.a.b.c"));
        assertFalse(db.canOwn(1, NO_GROUPS, "org.ab"));
        assertFalse(db.canOwn(1, NO_GROUPS, "org"));
        assertFalse(db.canOwn(1, NO_GROUPS, "net.org.a"));
    }

    @Test
    void ownOrderIsDefaultGroupUserConsoleMandatory() throws Exception {
        PolicyDatabase db = new PolicyDatabase.Builder()
                // File order deliberately differs from evaluation order.
                .add(PolicyContext.MANDATORY, own(false, "org.m"))
                .add(PolicyContext.atConsole(true), own(true, "org.c"))
                .add(PolicyContext.atConsole(true), own(true, "org.m"))
                .add(PolicyContext.atConsole(false), own(false, "org.u"))
                .add(PolicyContext.user(7), own(true, "org.u"))
                .add(PolicyContext.user(7), own(false, "org.g"))
                .add(PolicyContext.group(50), own(true, "org.g"))
                .add(PolicyContext.group(50), own(false, "org.d"))
                .add(PolicyContext.DEFAULT, own(true, "org.d"))
                .add(PolicyContext.DEFAULT, own(true, "org.g"))
                .build();
        long[] g50 = {50};
        assertFalse(db.canOwn(7, g50, "org.d"), "group overrides default");
        assertTrue(db.canOwn(8, NO_GROUPS, "org.d"));
        assertFalse(db.canOwn(7, g50, "org.g"), "user overrides group");
        assertTrue(db.canOwn(8, g50, "org.g"));
        assertTrue(db.canOwn(7, g50, true, "org.u"), "at_console=true rules don't touch org.u");
        assertFalse(db.canOwn(7, g50, false, "org.u"), "at_console=false overrides user");
        assertFalse(db.canOwn(7, g50, "org.u"), "the 3-argument form means not at the console");
        assertTrue(db.canOwn(9, NO_GROUPS, true, "org.c"));
        assertFalse(db.canOwn(9, NO_GROUPS, false, "org.c"));
        assertFalse(db.canOwn(9, NO_GROUPS, true, "org.m"), "mandatory overrides at_console");
    }

    @Test
    void groupRulesFollowTheOrderOfTheClientsGroups() throws Exception {
        PolicyDatabase db = new PolicyDatabase.Builder()
                .add(PolicyContext.group(1), own(true, "org.x"))
                .add(PolicyContext.group(2), own(false, "org.x"))
                .build();
        assertFalse(db.canOwn(5, new long[] {1, 2}, "org.x"));
        assertTrue(db.canOwn(5, new long[] {2, 1}, "org.x"));
        assertTrue(db.hasGroupRules());
    }

    @Test
    void rulesForLeavesOutConnectRulesAndKeepsFileOrderPerContext() throws Exception {
        PolicyRule a = own(true, "a.a");
        PolicyRule b = own(false, "a.a");
        PolicyRule u = user(true, -1);
        PolicyRule m = own(true, "m.m");
        PolicyDatabase db = new PolicyDatabase.Builder()
                .add(PolicyContext.MANDATORY, m)
                .add(PolicyContext.DEFAULT, a)
                .add(PolicyContext.DEFAULT, u)
                .add(PolicyContext.DEFAULT, b)
                .build();
        assertEquals(List.of(a, b, m), db.rulesFor(1, NO_GROUPS, false));
        assertEquals(List.of(a, u, b), db.defaultRules());
        assertEquals(List.of(m), db.mandatoryRules());
        assertThrows(UnsupportedOperationException.class, () -> db.defaultRules().add(a));
        assertThrows(UnsupportedOperationException.class, () -> db.rulesFor(1, NO_GROUPS, false).clear());
    }

    @Test
    void perUserRulesAccumulateAcrossPolicyElements() throws Exception {
        PolicyRule first = own(true, "a.one");
        PolicyRule second = own(true, "a.two");
        PolicyDatabase db = new PolicyDatabase.Builder()
                .add(PolicyContext.user(0), first)
                .add(PolicyContext.DEFAULT, own(false, "x.x"))
                .add(PolicyContext.user(0), second)
                .build();
        assertEquals(List.of(first, second), db.userRules(0));
        assertEquals(List.of(), db.userRules(1));
        assertEquals(List.of(), db.groupRules(0));
    }

    @Test
    void rollbackDropsLaterRules() throws Exception {
        PolicyDatabase.Builder b = new PolicyDatabase.Builder().add(PolicyContext.DEFAULT, own(true, "a.b"));
        int mark = b.mark();
        b.add(PolicyContext.DEFAULT, own(false, "a.b")).add(PolicyContext.MANDATORY, user(true, -1));
        b.rollback(mark);
        PolicyDatabase db = b.build();
        assertEquals(1, db.size());
        assertTrue(db.canOwn(1, NO_GROUPS, "a.b"));
        assertThrows(IllegalArgumentException.class, () -> b.rollback(5));
    }

    @Test
    void builtDatabaseIsNotChangedByTheBuilder() throws Exception {
        PolicyDatabase.Builder b = new PolicyDatabase.Builder().add(PolicyContext.DEFAULT, own(true, "a.b"));
        PolicyDatabase db = b.build();
        b.add(PolicyContext.DEFAULT, own(false, "a.b"));
        assertTrue(db.canOwn(1, NO_GROUPS, "a.b"));
        assertFalse(b.build().canOwn(1, NO_GROUPS, "a.b"));
    }

    @Test
    void contextsValidateTheirIds() {
        assertThrows(IllegalArgumentException.class, () -> new PolicyContext(PolicyContext.Kind.DEFAULT, 3));
        assertThrows(IllegalArgumentException.class, () -> new PolicyContext(PolicyContext.Kind.CONSOLE, 2));
        assertThrows(IllegalArgumentException.class, () -> PolicyContext.user(-1));
        assertEquals(PolicyContext.atConsole(true), new PolicyContext(PolicyContext.Kind.CONSOLE, 1));
    }
}
