package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.connection.Connection;

// ReplySlots against a list of open calls in opening order: opens (duplicates refused), replies,
// timeouts (NoReply in deadline order) and departures (NoReply in the callee's call order, and
// every slot of the departing side gone), with the invariants checked after every step.
class ReplySlotsModelTest {
    private record Call(Connection callee, Connection caller, long serial, long deadline) { }

    private long now;
    private long nextId = 1;

    @ParameterizedTest
    @CsvSource({"1, -1", "2, -1", "3, 1000", "4, 1000", "5, 50"})
    void matchesAListOfOpenCalls(long seed, long timeout) {
        Random r = new Random(seed);
        ReplySlots slots = new ReplySlots(() -> timeout, () -> now, (caller, n) -> caller.addPendingOutgoing(-n));
        List<Connection> live = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            live.add(Fixtures.conn(nextId++));
        }
        List<Call> model = new ArrayList<>();
        for (int step = 0; step < 5_000; step++) {
            Connection a = live.get(r.nextInt(live.size()));
            Connection b = live.get(r.nextInt(live.size()));
            long serial = 1 + r.nextInt(20);
            int op = r.nextInt(20);
            String at = "seed " + seed + " step " + step;
            if (op < 10) {
                boolean fresh = find(model, a, b, serial) == null;
                assertEquals(fresh, slots.open(a, b, serial), at + ": open");
                if (fresh) {
                    b.addPendingOutgoing(1); // what Bus.expectReply counts
                    model.add(new Call(a, b, serial, timeout > 0 ? now + timeout : -1));
                }
            } else if (op < 16) {
                Call c = find(model, a, b, serial);
                assertEquals(c != null, slots.answer(a, b, serial), at + ": answer");
                model.remove(c);
            } else if (op < 19) {
                now += r.nextInt(timeout > 0 ? (int) timeout / 3 + 1 : 100);
                List<DeadReply> expected = new ArrayList<>();
                for (Iterator<Call> it = model.iterator(); it.hasNext(); ) {
                    Call c = it.next();
                    if (c.deadline >= 0 && c.deadline <= now) {
                        expected.add(new DeadReply(c.caller, c.serial));
                        it.remove();
                    }
                }
                assertEquals(expected, slots.expire(), at + ": expire");
            } else {
                a.markClosed(true); // as Bus.disconnect does before dropping the slots
                List<DeadReply> expected = new ArrayList<>();
                for (Iterator<Call> it = model.iterator(); it.hasNext(); ) {
                    Call c = it.next();
                    if (c.callee == a && c.caller != a) {
                        expected.add(new DeadReply(c.caller, c.serial));
                    }
                    if (c.callee == a || c.caller == a) {
                        it.remove();
                    }
                }
                assertEquals(expected, slots.drop(a), at + ": drop");
                assertEquals(0, a.pendingOutgoingReplies(), at + ": the leaver's count");
                live.set(live.indexOf(a), Fixtures.conn(nextId++));
            }
            slots.checkInvariants(live);
            assertEquals(model.size(), slots.openCount(), at);
            for (Connection c : live) {
                assertEquals(model.stream().filter(x -> x.caller == c).count(), c.pendingOutgoingReplies(),
                        at + ": replies counted for " + c);
                assertEquals(model.stream().filter(x -> x.callee == c).count(), c.pendingIncomingReplies(),
                        at + ": replies owed by " + c);
            }
            long earliest = model.stream().filter(x -> x.deadline >= 0).mapToLong(Call::deadline).min().orElse(-1);
            if (earliest >= 0) {
                long next = slots.nextDeadline();
                assertTrue(next >= 0 && next <= earliest, at + ": next deadline " + next + ", earliest " + earliest);
            } else if (timeout <= 0) {
                assertEquals(-1, slots.nextDeadline(), at);
            }
        }
    }

    private static Call find(List<Call> model, Connection callee, Connection caller, long serial) {
        for (Call c : model) {
            if (c.callee == callee && c.caller == caller && c.serial == serial) {
                return c;
            }
        }
        return null;
    }
}
