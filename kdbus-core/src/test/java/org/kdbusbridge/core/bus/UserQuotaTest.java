// Invariants under test: every match rule and every name / queue entry is charged to its
// connection's uid and released when it goes (RemoveMatch, ReleaseName, DO_NOT_QUEUE refusal
// of a queued owner, a DO_NOT_QUEUE primary replaced, disconnect, BecomeMonitor), so a uid
// holding nothing is charged nothing; a request over the uid's (or the bus-wide) budget is
// refused with LimitsExceeded and changes nothing; other uids are unaffected; refusals are
// logged once per uid per interval; max_match_rules_per_connection and
// max_names_per_connection keep dbus-daemon's checks and texts.
package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.name.NameRegistry;

class UserQuotaTest {
    private static final MatchRule RULE = parse("type='signal',member='Changed'");
    private static final String NAME = "org.example.Name";

    private BusLimits limits;
    private UserQuota quota;
    private Bus bus;
    private long now;
    private final List<String> logged = new ArrayList<>();

    @BeforeEach
    void setUp() {
        limits = new BusLimits();
        limits.maxMatchRulesPerConnection = 100_000;
        limits.maxNamesPerConnection = 100_000;
        // Room for exactly 10 of RULE per uid and 25 for everyone.
        quota = new UserQuota(1, 1, UserQuota.MATCH_RULE_BASE, UserQuota.NAME_ENTRY_BASE);
        long rule = quota.cost(RULE);
        newBus(new UserQuota(10 * rule, 25 * rule, UserQuota.MATCH_RULE_BASE, UserQuota.NAME_ENTRY_BASE));
    }

    private void newBus(UserQuota q) {
        quota = q;
        bus = new Bus(limits, q);
        bus.setClock(() -> now);
        bus.setQuotaLog(logged::add);
    }

    private Connection client(long uid) {
        Connection c = bus.connect(new Credentials(uid, uid, 1), new ConnectionSink() {
            @Override
            public void onQueued(Connection connection) { }
        });
        bus.hello(c);
        return c;
    }

    private static MatchRule rule(int i) {
        return parse("type='signal',member='M" + i + "'");
    }

    private static MatchRule parse(String text) {
        try {
            return MatchRule.parse(text);
        } catch (org.kdbusbridge.core.match.MatchRuleException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void matchRulesAreChargedToTheUidAndReleasedOnRemoveAndDisconnect() {
        Connection a = client(1000);
        Connection b = client(1000);
        assertTrue(bus.addMatch(a, RULE).done());
        assertTrue(bus.addMatch(a, RULE).done()); // a duplicate is one more rule
        assertTrue(bus.addMatch(b, RULE).done());
        assertEquals(3 * quota.cost(RULE), bus.quotaUsed(1000));
        assertTrue(bus.removeMatch(a, RULE).done());
        assertEquals(2 * quota.cost(RULE), bus.quotaUsed(1000));
        bus.disconnect(a);
        assertEquals(quota.cost(RULE), bus.quotaUsed(1000));
        bus.disconnect(b);
        assertEquals(0, bus.quotaUsed(1000));
        assertEquals(0, bus.quotaUsedTotal());
    }

    @Test
    void overBudgetAddMatchIsRefusedChangesNothingAndSparesOtherUids() {
        List<Connection> flood = List.of(client(1000), client(1000), client(1000));
        int added = 0;
        for (int i = 0; i < 30; i++) {
            if (bus.addMatch(flood.get(i % 3), RULE).done()) {
                added++;
            }
        }
        assertEquals(10, added, "one uid's budget holds ten rules, over all its connections");
        int held = bus.matches().size();
        Connection x = flood.get(0);
        int xRules = x.matchRuleCount();
        MatchChange refused = bus.addMatch(x, RULE);
        assertFalse(refused.done());
        assertTrue(refused.denial().byQuota());
        assertEquals(Denial.Reason.LIMITS_EXCEEDED, refused.denial().reason());
        assertTrue(refused.denial().text().startsWith("Connection \"" + x.uniqueName()
                + "\" is not allowed to add more match rules ("), refused.denial().text());
        assertTrue(refused.denial().text().contains("uid 1000"), refused.denial().text());
        assertEquals(held, bus.matches().size());
        assertEquals(xRules, x.matchRuleCount());
        assertEquals(10 * quota.cost(RULE), bus.quotaUsed(1000));
        // Another uid still gets its rules, and a name.
        Connection other = client(2000);
        for (int i = 0; i < 10; i++) {
            assertTrue(bus.addMatch(other, RULE).done(), "rule " + i + " of uid 2000");
        }
        // The first uid gets room back by removing one.
        assertTrue(bus.removeMatch(x, RULE).done());
        assertTrue(bus.addMatch(flood.get(1), RULE).done());
    }

    @Test
    void refusalsAreLoggedOncePerUidPerInterval() {
        Connection a = client(1000);
        Connection b = client(2000);
        for (int i = 0; i < 10; i++) {
            bus.addMatch(a, RULE);
            bus.addMatch(b, RULE);
        }
        for (int i = 0; i < 100; i++) {
            assertFalse(bus.addMatch(a, RULE).done());
            assertEquals(Denial.Reason.LIMITS_EXCEEDED, bus.requestName(a, "org.example.N" + i, 0).denial().reason());
        }
        assertEquals(1, logged.size(), logged.toString());
        assertTrue(logged.get(0).contains("uid 1000"), logged.get(0));
        assertFalse(bus.addMatch(b, RULE).done());
        assertEquals(2, logged.size(), "uid 2000 has its own line: " + logged);
        now += UserQuotas.LOG_INTERVAL_MILLIS;
        assertFalse(bus.addMatch(a, RULE).done());
        assertEquals(3, logged.size(), "a minute later uid 1000 is logged again");
    }

    @Test
    void theBusWideBudgetBoundsAllUidsTogether() {
        int added = 0;
        for (long uid = 1000; uid < 1010; uid++) {
            Connection c = client(uid);
            for (int i = 0; i < 10; i++) {
                if (bus.addMatch(c, RULE).done()) {
                    added++;
                }
            }
        }
        assertEquals(25, added);
        Connection late = client(5000);
        MatchChange refused = bus.addMatch(late, RULE);
        assertFalse(refused.done());
        assertEquals(Denial.Reason.LIMITS_EXCEEDED, refused.denial().reason());
        assertTrue(refused.denial().text().contains("for all users"), refused.denial().text());
        assertTrue(bus.quotaUsedTotal() <= quota.busBytes());
    }

    @Test
    void namesAndQueueEntriesAreChargedAndReleased() {
        long cost = quota.cost(NAME);
        Connection a = client(1000);
        Connection b = client(2000);
        Connection c = client(2000);
        assertEquals(NameRegistry.REPLY_PRIMARY_OWNER, bus.requestName(a, NAME, 0).reply());
        assertEquals(cost, bus.quotaUsed(1000));
        assertEquals(NameRegistry.REPLY_ALREADY_OWNER, bus.requestName(a, NAME, 0).reply());
        assertEquals(cost, bus.quotaUsed(1000), "re-requesting an owned name adds nothing");
        assertEquals(NameRegistry.REPLY_IN_QUEUE, bus.requestName(b, NAME, 0).reply());
        assertEquals(NameRegistry.REPLY_IN_QUEUE, bus.requestName(b, NAME, 0).reply());
        assertEquals(cost, bus.quotaUsed(2000), "a queue entry is charged once");
        // DO_NOT_QUEUE while queued: EXISTS, and the queue entry goes.
        assertEquals(NameRegistry.REPLY_EXISTS, bus.requestName(b, NAME, NameRegistry.FLAG_DO_NOT_QUEUE).reply());
        assertEquals(0, bus.quotaUsed(2000));
        assertEquals(List.of(a), bus.names().queue(NAME));
        assertEquals(NameRegistry.REPLY_EXISTS, bus.requestName(c, NAME, NameRegistry.FLAG_DO_NOT_QUEUE).reply());
        assertEquals(0, bus.quotaUsed(2000), "EXISTS holds nothing");
        assertEquals(NameRegistry.RELEASE_RELEASED, bus.names().release(a, NAME, new ArrayList<>()));
        assertEquals(0, bus.quotaUsed(1000));
        assertEquals(0, bus.quotaUsedTotal());
    }

    @Test
    void aReplacedDoNotQueuePrimaryIsReleasedAndTheNewcomerCharged() {
        long cost = quota.cost(NAME);
        Connection a = client(1000);
        Connection b = client(2000);
        bus.requestName(a, NAME, NameRegistry.FLAG_ALLOW_REPLACEMENT | NameRegistry.FLAG_DO_NOT_QUEUE);
        NameOutcome r = bus.requestName(b, NAME, NameRegistry.FLAG_REPLACE_EXISTING);
        assertEquals(NameRegistry.REPLY_PRIMARY_OWNER, r.reply());
        assertEquals(1, r.changes().size());
        assertEquals(0, bus.quotaUsed(1000), "the old primary left the queue");
        assertEquals(cost, bus.quotaUsed(2000));
        // A primary without DO_NOT_QUEUE stays queued, still charged.
        Connection c = client(3000);
        bus.requestName(b, NAME, NameRegistry.FLAG_ALLOW_REPLACEMENT);
        bus.requestName(c, NAME, NameRegistry.FLAG_REPLACE_EXISTING);
        assertSame(c, bus.names().owner(NAME));
        assertEquals(cost, bus.quotaUsed(2000));
        assertEquals(cost, bus.quotaUsed(3000));
        bus.disconnect(b);
        bus.disconnect(c);
        assertEquals(0, bus.quotaUsedTotal());
    }

    @Test
    void overBudgetRequestNameIsRefusedAndChangesNothing() {
        long cost = quota.cost("org.example.N0");
        newBus(new UserQuota(5 * cost, 1000 * cost, UserQuota.MATCH_RULE_BASE, UserQuota.NAME_ENTRY_BASE));
        Connection a = client(1000);
        Connection a2 = client(1000);
        Connection other = client(2000);
        for (int i = 0; i < 5; i++) {
            assertEquals(NameRegistry.REPLY_PRIMARY_OWNER, bus.requestName(i % 2 == 0 ? a : a2,
                    "org.example.N" + i, 0).reply());
        }
        assertEquals(NameRegistry.REPLY_PRIMARY_OWNER, bus.requestName(other, "org.example.O0", 0).reply());
        // A new name, and queueing behind another uid's name, are refused.
        NameOutcome refused = bus.requestName(a, "org.example.N5", 0);
        assertNotNull(refused.denial().text());
        assertTrue(refused.denial().byQuota());
        assertEquals(Denial.Reason.LIMITS_EXCEEDED, refused.denial().reason());
        assertTrue(refused.denial().text().startsWith("Connection \"" + a.uniqueName()
                + "\" is not allowed to own more services ("), refused.denial().text());
        assertTrue(refused.changes().isEmpty());
        assertNull(bus.names().owner("org.example.N5"));
        assertEquals(Denial.Reason.LIMITS_EXCEEDED, bus.requestName(a, "org.example.O0", 0).denial().reason());
        assertEquals(List.of(other), bus.names().queue("org.example.O0"));
        // What adds no entry still works: re-requesting an owned name, DO_NOT_QUEUE's EXISTS.
        assertEquals(NameRegistry.REPLY_ALREADY_OWNER, bus.requestName(a, "org.example.N0", 0).reply());
        assertEquals(NameRegistry.REPLY_EXISTS,
                bus.requestName(a, "org.example.O0", NameRegistry.FLAG_DO_NOT_QUEUE).reply());
        // The other uid is unaffected.
        assertEquals(NameRegistry.REPLY_PRIMARY_OWNER, bus.requestName(other, "org.example.O1", 0).reply());
        assertEquals(5 * cost, bus.quotaUsed(1000));
    }

    @Test
    void becomingAMonitorReleasesNamesAndRules() {
        Connection m = client(1000);
        bus.requestName(m, NAME, 0);
        bus.addMatch(m, RULE);
        bus.becomeMonitor(m);
        assertEquals(quota.cost(RULE), bus.quotaUsed(1000), "its rules stay until monitoring starts");
        bus.startMonitoring(m, List.of());
        assertEquals(0, bus.quotaUsed(1000));
    }

    @Test
    void perConnectionLimitsKeepDbusDaemonsChecksAndTexts() {
        limits.maxMatchRulesPerConnection = 2;
        limits.maxNamesPerConnection = 3;
        newBus(UserQuota.forHeap(Runtime.getRuntime().maxMemory()));
        Connection a = client(1000);
        assertTrue(bus.addMatch(a, rule(1)).done());
        assertTrue(bus.addMatch(a, rule(2)).done());
        MatchChange m = bus.addMatch(a, rule(3));
        assertFalse(m.denial().byQuota());
        assertEquals(Denial.Reason.LIMITS_EXCEEDED, m.denial().reason());
        assertEquals("Connection \"" + a.uniqueName() + "\" is not allowed to add more match rules "
                + "(increase limits in configuration file if required; max_match_rules_per_connection=2)",
                m.denial().text());
        assertNull(bus.requestName(a, "org.example.A", 0).denial());
        assertNull(bus.requestName(a, "org.example.B", 0).denial());
        NameOutcome n = bus.requestName(a, "org.example.C", 0);
        assertFalse(n.denial().byQuota());
        assertEquals(Denial.Reason.LIMITS_EXCEEDED, n.denial().reason());
        assertEquals("Connection \"" + a.uniqueName() + "\" is not allowed to own more services "
                + "(increase limits in configuration file if required; max_names_per_connection=3)",
                n.denial().text());
        assertTrue(logged.isEmpty(), "the per-connection limits are the driver's to log, each time");
    }

    @Test
    void heapDerivedBudgetsKeepAReserveAndTheOverrideIsPassedIn() {
        long heap = 512L << 20;
        UserQuota q = UserQuota.forHeap(heap);
        assertEquals(heap / 8, q.perUserBytes());
        assertEquals(heap / 4, q.busBytes());
        UserQuota o = UserQuota.forHeap(heap, "65536");
        assertEquals(65536, o.perUserBytes());
        assertEquals(heap / 4, o.busBytes(), "an override never eats the reserve");
        // session.conf's limits overcommit a 512 MiB heap with rules and names; dbus-daemon's
        // defaults do not, but their 256 connections x 127 MiB in flight overcommit the queues.
        String defaults = q.overcommitNote(new BusLimits());
        assertTrue(defaults.startsWith("max_connections_per_user=256 with max_incoming_bytes=133169152"), defaults);
        assertFalse(defaults.contains("match rules"), defaults);
        assertNull(new UserQuota(heap / 8, heap / 4, UserQuota.MATCH_RULE_BASE, UserQuota.NAME_ENTRY_BASE)
                .overcommitNote(new BusLimits()), "no queue budget, no queue note");
        assertEquals(heap / 8, q.queues().perUserBytes());
        assertEquals(heap / 4, q.queues().busBytes());
        UserQuota f = UserQuota.forHeap(heap, null, "4096", 20_000);
        assertEquals(4096, f.queues().perUserBytes());
        assertEquals(heap / 4, f.queues().busBytes(), "an override never eats the reserve");
        assertEquals(2_500, f.queues().perUserFds());
        assertEquals(5_000, f.queues().busFds());
        assertEquals(heap / 16, f.framePerUserBytes());
        assertEquals(heap / 8, f.frameBusBytes());
        BusLimits session = new BusLimits();
        session.maxMatchRulesPerConnection = 50_000;
        session.maxNamesPerConnection = 50_000;
        session.maxConnectionsPerUser = 100_000;
        assertNotNull(q.overcommitNote(session));
    }
}
