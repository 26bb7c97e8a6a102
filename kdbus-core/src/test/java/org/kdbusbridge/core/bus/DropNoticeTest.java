// Invariants under test (issue 17, dropped-message notices): a connection that watches drops
// counts exactly the broadcasts its pool skipped, with the first and last sequence number; the
// bus decides one notice per run of drops, only once the pool is at most half full, and starts
// counting afresh; unicasts are refused to their senders as before and not counted; connections
// that did not ask count nothing (their pool's DroppedMessages statistic still does); the sink
// hears of the first drop of each run only; off, disconnect and BecomeMonitor end it.
package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.Fixtures.drain;
import static org.kdbusbridge.core.Fixtures.signal;
import static org.kdbusbridge.core.Fixtures.signalTo;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;

class DropNoticeTest {
    private static final int POOL = 10;
    private BusLimits limits;
    private Bus bus;
    /** Every onDropped call, in order. */
    private final List<Connection> dropSignals = new ArrayList<>();

    @BeforeEach
    void setUp() {
        limits = new BusLimits();
        limits.maxQueuedMessages = POOL;
        bus = new Bus(limits);
    }

    private Connection client() {
        Connection c = bus.connect(new Credentials(1000, 1000, 1), new ConnectionSink() {
            @Override
            public void onQueued(Connection connection) { }

            @Override
            public void onDropped(Connection connection) {
                dropSignals.add(connection);
            }
        });
        bus.hello(c);
        return c;
    }

    private void subscribe(Connection c) throws Exception {
        assertNull(bus.addMatch(c, MatchRule.parse("type='signal',member='Tick'")).denial());
    }

    /** Sends {@code n} Tick broadcasts from {@code from}; returns their sequence numbers. */
    private long[] tick(Connection from, int n) {
        long[] seqs = new long[n];
        for (int i = 0; i < n; i++) {
            Message m = signal("Tick");
            assertEquals(Delivery.OK, bus.send(from, m), "a broadcast never fails");
            seqs[i] = m.seq();
        }
        return seqs;
    }

    @Test
    void aStalledSubscriberMissesExactlyNAndGetsOneNoticeWithTheRangeOnceItDrained() throws Exception {
        Connection sender = client();
        Connection watcher = client();
        Connection plain = client();
        subscribe(watcher);
        subscribe(plain);
        assertFalse(bus.watchDrops(watcher, true), "was not watching");
        long[] fit = tick(sender, POOL);
        long[] missed = tick(sender, 7);
        assertEquals(POOL, watcher.pool().messages());
        assertEquals(7, watcher.drops().count());
        assertEquals(List.of(watcher), dropSignals, "the sink hears of the first drop of the run only");
        assertNull(bus.takeDropNotice(watcher), "no room yet: the count goes on");
        assertEquals(7, watcher.drops().count());

        // Draining to just over half: still no room.
        for (int i = 0; i < POOL / 2 - 1; i++) {
            assertEquals(fit[i], watcher.pool().pop().seq());
        }
        assertNull(bus.takeDropNotice(watcher));
        watcher.pool().pop();
        DropNotice n = bus.takeDropNotice(watcher);
        assertNotNull(n, "half empty: the notice is due");
        assertEquals(new DropNotice(7, missed[0], missed[6]), n);
        assertNull(bus.takeDropNotice(watcher), "one notice per run");
        assertFalse(watcher.hasUnreportedDrops(), "the count was reset");

        // The kept messages are the ones that fitted, in order; nothing of the missed run.
        List<Message> rest = drain(watcher);
        assertEquals(POOL / 2, rest.size());
        assertEquals(fit[POOL - 1], rest.get(rest.size() - 1).seq());

        // The one who did not ask: the same drops, counted only in its pool's statistic.
        assertNull(plain.drops());
        assertFalse(plain.hasUnreportedDrops());
        assertNull(bus.takeDropNotice(plain));
        assertEquals(7, plain.pool().dropped());
        assertEquals(List.of(watcher), dropSignals, "no onDropped for the one who did not ask");
    }

    @Test
    void aSecondRunIsCountedAfreshWithItsOwnRange() throws Exception {
        Connection sender = client();
        Connection watcher = client();
        subscribe(watcher);
        bus.watchDrops(watcher, true);
        tick(sender, POOL);
        tick(sender, 3);
        drain(watcher);
        assertEquals(3, bus.takeDropNotice(watcher).count());

        tick(sender, POOL);
        long[] second = tick(sender, 4);
        assertEquals(2, dropSignals.size(), "one onDropped per run");
        assertNull(bus.takeDropNotice(watcher));
        drain(watcher);
        assertEquals(new DropNotice(4, second[0], second[3]), bus.takeDropNotice(watcher));
    }

    @Test
    void unicastsAreRefusedToTheirSendersAndNotCounted() throws Exception {
        Connection sender = client();
        Connection watcher = client();
        bus.watchDrops(watcher, true);
        for (int i = 0; i < POOL; i++) {
            assertEquals(Delivery.OK, bus.send(sender, signalTo(watcher.uniqueName(), "X")));
        }
        assertEquals(Delivery.RECIPIENT_FULL, bus.send(sender, signalTo(watcher.uniqueName(), "X")));
        assertEquals(1, watcher.pool().dropped(), "the statistic counts it, as before");
        assertFalse(watcher.hasUnreportedDrops(), "its sender was told: no notice");
        assertTrue(dropSignals.isEmpty());
    }

    @Test
    void switchingOffForgetsAndMonitorsAndLeaversAreToldNothing() throws Exception {
        Connection sender = client();
        Connection watcher = client();
        subscribe(watcher);
        bus.watchDrops(watcher, true);
        tick(sender, POOL + 2);
        assertTrue(bus.watchDrops(watcher, false), "was watching");
        assertNull(watcher.drops());
        drain(watcher);
        assertNull(bus.takeDropNotice(watcher));

        Connection mon = client();
        bus.watchDrops(mon, true);
        bus.becomeMonitor(mon);
        bus.startMonitoring(mon, List.of());
        assertNull(mon.drops(), "BecomeMonitor ends it");
        bus.watchDrops(mon, true);
        assertNull(mon.drops(), "a monitor cannot start it");

        Connection leaver = client();
        subscribe(leaver);
        bus.watchDrops(leaver, true);
        tick(sender, POOL + 1);
        bus.disconnect(leaver);
        assertNull(bus.takeDropNotice(leaver), "nothing for a closed connection");
    }

    @Test
    void nobodyWatchingCostsNothingOnTheDropPath() throws Exception {
        Connection sender = client();
        Connection plain = client();
        subscribe(plain);
        tick(sender, POOL + 5);
        assertEquals(5, plain.pool().dropped());
        assertNull(plain.drops(), "no counter is made for a connection that did not ask");
        assertTrue(dropSignals.isEmpty());
    }

    @Test
    void skippingAFullReceiverAllocatesNothingWhetherItWatchesOrNot() throws Exception {
        final int rounds = 20_000;
        Connection sender = client();
        Connection watcher = client();
        Connection plain = client();
        subscribe(watcher);
        subscribe(plain);
        bus.watchDrops(watcher, true);
        tick(sender, POOL); // both pools full from here on
        Message[] ticks = new Message[2 * rounds];
        for (int i = 0; i < ticks.length; i++) {
            ticks[i] = signal("Tick");
        }
        com.sun.management.ThreadMXBean mx =
                (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long me = Thread.currentThread().getId();
        long before = 0;
        for (int i = 0; i < ticks.length; i++) {
            if (i == rounds) { // the first half is warm-up
                before = mx.getThreadAllocatedBytes(me);
            }
            if (bus.send(sender, ticks[i]) != Delivery.OK) {
                throw new AssertionError("refused at " + i);
            }
        }
        long perMessage = (mx.getThreadAllocatedBytes(me) - before) / rounds;
        System.out.println("DROP-PATH-ALLOCATION: " + perMessage + " B per skipped broadcast (two receivers, one watching)");
        assertTrue(perMessage < 16, "a skipped broadcast allocated " + perMessage + " B");
        assertEquals(2L * rounds, watcher.drops().count());
        assertEquals(ticks[0].seq(), watcher.drops().firstSeq());
        assertEquals(ticks[ticks.length - 1].seq(), watcher.drops().lastSeq());
        assertEquals(2L * rounds, plain.pool().dropped());
        assertEquals(1, dropSignals.size());
    }
}
