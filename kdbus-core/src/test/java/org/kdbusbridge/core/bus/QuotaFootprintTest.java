// Measures what the bus really holds per match rule and per name entry (heap after a full
// collection, before and after N of them) and checks the quota's charge is of that size: the
// numbers in docs/performance.md ("Per-uid quota") come from this test's output. Loose bounds:
// a collector's accounting is not exact, but a charge far below the real cost would let a uid
// fill the heap anyway.
package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;

class QuotaFootprintTest {
    private static final int N = 50_000;
    private static final int CONNECTIONS = 100;

    private static long heapUsed() {
        MemoryMXBean mx = ManagementFactory.getMemoryMXBean();
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 5; i++) {
            System.gc();
            best = Math.min(best, mx.getHeapMemoryUsage().getUsed());
        }
        return best;
    }

    private static List<Connection> clients(Bus bus) {
        List<Connection> out = new ArrayList<>();
        for (int i = 0; i < CONNECTIONS; i++) {
            Connection c = bus.connect(new Credentials(1000, 1000, 1), new ConnectionSink() {
                @Override
                public void onQueued(Connection connection) { }
            });
            bus.hello(c);
            out.add(c);
        }
        return out;
    }

    @Test
    void chargesAreOfTheSizeTheBusReallyHolds() throws Exception {
        BusLimits limits = new BusLimits();
        limits.maxMatchRulesPerConnection = Integer.MAX_VALUE;
        limits.maxNamesPerConnection = Integer.MAX_VALUE;
        UserQuota quota = new UserQuota(Long.MAX_VALUE / 4, Long.MAX_VALUE / 4, UserQuota.MATCH_RULE_BASE,
                UserQuota.NAME_ENTRY_BASE);
        Bus bus = new Bus(limits, quota);
        List<Connection> cs = clients(bus);
        // The texts a client sends: parsed from fresh strings, as the driver does.
        String[] texts = new String[N];
        for (int i = 0; i < N; i++) {
            texts[i] = "type='signal',sender='org.example.Service',path='/org/example/Object" + i
                    + "',interface='org.example.Iface',member='Changed'";
        }
        long before = heapUsed();
        for (int i = 0; i < N; i++) {
            bus.addMatch(cs.get(i % CONNECTIONS), MatchRule.parse(texts[i]));
        }
        long rules = heapUsed() - before; // the texts were alive before and still are: not counted
        java.lang.ref.Reference.reachabilityFence(texts);
        long ruleCharge = bus.quotaUsed(1000);

        String[] names = new String[N];
        for (int i = 0; i < N; i++) {
            names[i] = new String("org.example.Name" + i);
        }
        long beforeNames = heapUsed();
        for (int i = 0; i < N; i++) {
            bus.requestName(cs.get(i % CONNECTIONS), names[i], 0);
        }
        // Queue entries: a second connection queued behind each of the first 1/10.
        for (int i = 0; i < N / 10; i++) {
            bus.requestName(cs.get((i + 1) % CONNECTIONS), names[i], 0);
        }
        long nameHeld = heapUsed() - beforeNames; // the name strings were alive before: not counted
        long nameCharge = bus.quotaUsed(1000) - ruleCharge;
        int entries = N + N / 10;
        double perRule = (double) rules / N;
        double perEntry = (double) nameHeld / entries;
        double nameChars = names[0].length() + 40; // what the charge adds for the (retained) string
        System.out.printf("quota footprint: %d rules: %.0f B/rule measured, %.0f B/rule charged;"
                + " %d name entries: %.0f B/entry measured (+ %.0f B for a name's string), %.0f B/entry charged%n",
                N, perRule, (double) ruleCharge / N, entries, perEntry, nameChars, (double) nameCharge / entries);
        assertTrue(ruleCharge >= rules / 2, "rule charge " + ruleCharge + " vs measured " + rules);
        assertTrue(ruleCharge <= rules * 3, "rule charge " + ruleCharge + " vs measured " + rules);
        assertTrue(nameCharge >= nameHeld / 2, "name charge " + nameCharge + " vs measured " + nameHeld);
        assertTrue(bus.names().ownerEntries() == entries);
    }

    @Test
    void replySlotChargeIsOfTheSizeTheBusReallyHolds() throws Exception {
        BusLimits limits = new BusLimits();
        limits.maxRepliesPerConnection = Integer.MAX_VALUE;
        limits.replyTimeout = 60_000; // each slot is in the reply_timeout FIFO too
        UserQuota quota = new UserQuota(Long.MAX_VALUE / 4, Long.MAX_VALUE / 4, UserQuota.MATCH_RULE_BASE,
                UserQuota.NAME_ENTRY_BASE);
        Bus bus = new Bus(limits, quota);
        bus.setClock(() -> 0);
        List<Connection> callers = clients(bus);
        List<Connection> callees = clients(bus);
        long before = heapUsed();
        for (int i = 0; i < N; i++) {
            Connection callee = callees.get(i % CONNECTIONS);
            bus.send(callers.get((i / CONNECTIONS) % CONNECTIONS), org.kdbusbridge.core.Fixtures.call(
                    callee.uniqueName(), i + 1));
            callee.pool().pop(); // the call itself is the queues' business, not the slot's
        }
        long held = heapUsed() - before;
        long charge = bus.quotaUsed(1000);
        System.out.printf("quota footprint: %d reply slots: %.0f B/slot measured, %.0f B/slot charged%n",
                N, (double) held / N, (double) charge / N);
        int open = 0;
        for (Connection c : callees) {
            open += c.pendingIncomingReplies();
        }
        assertTrue(open == N);
        assertTrue(charge >= held / 2, "slot charge " + charge + " vs measured " + held);
        assertTrue(charge <= held * 3, "slot charge " + charge + " vs measured " + held);
    }
}
