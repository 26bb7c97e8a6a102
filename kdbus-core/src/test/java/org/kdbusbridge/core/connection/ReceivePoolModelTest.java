package org.kdbusbridge.core.connection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;

// ReceivePool against a deque and per-uid sums: what offer takes (the budgets and the fair share
// of foreign uids), FIFO order (at every index: peek(i)), counts, peaks, fd references, and the
// invariants after every step.
class ReceivePoolModelTest {
    private static final long OWNER = 1000;
    private static final long MAX_BYTES = 2_000;
    private static final int MAX_MESSAGES = 12;
    private static final int MAX_FDS = 6;

    /** Senders: the owner's uid, three foreign uids, an unknown one (-1), and the bus (null). */
    private final Connection[] senders = {
        sender(1, OWNER), sender(2, 2000), sender(3, 3000), sender(4, 4000), sender(5, -1), null,
    };

    private final ArrayDeque<Message> model = new ArrayDeque<>();
    private final Map<Long, long[]> foreign = new HashMap<>();
    private long bytes;
    private long fds;

    private static Connection sender(long id, long uid) {
        return new Connection(id, new Credentials(uid, uid, (int) id), c -> { },
                new ReceivePool(Long.MAX_VALUE, Integer.MAX_VALUE));
    }

    private static Message message(Random r, Connection from, long seq) {
        FdSet set = r.nextInt(5) == 0 ? new FdSet(new int[1 + r.nextInt(3)], fd -> { }) : null;
        Message m = new Message(Message.SIGNAL, Message.FLAG_NO_REPLY_EXPECTED, seq, Message.NO_REPLY_SERIAL, null,
                "/p", "a.b", "M", null, new SealedPayload(new byte[1 + r.nextInt(400)]), null, set);
        m.admit(from, seq);
        return m;
    }

    private static long uidOf(Message m) {
        return m.sender() == null ? ReceivePool.BUS_UID : m.sender().credentials().uid();
    }

    /** The admission rule, restated over the model. */
    private boolean modelFits(Message m) {
        if (model.isEmpty()) {
            return true;
        }
        if (bytes + m.size() > MAX_BYTES || model.size() >= MAX_MESSAGES || fds + m.unixFds() > MAX_FDS) {
            return false;
        }
        long uid = uidOf(m);
        if (uid == OWNER || uid == ReceivePool.BUS_UID) {
            return true;
        }
        long[] mine = foreign.getOrDefault(uid, new long[3]);
        int actors = foreign.size() + (foreign.containsKey(uid) ? 0 : 1);
        return share(MAX_BYTES - bytes, actors, mine[0], m.size())
                && share(MAX_FDS - fds, actors, mine[1], m.unixFds())
                && share(MAX_MESSAGES - model.size(), actors, mine[2], 1);
    }

    /** After the message, the uid's charge is at most (what is free + its charge) / (actors + 1). */
    private static boolean share(long free, int actors, long charge, long amount) {
        return amount == 0 || (charge + amount) * (actors + 1) <= free + charge;
    }

    private void modelAdd(Message m, int sign) {
        bytes += sign * m.size();
        fds += sign * m.unixFds();
        long uid = uidOf(m);
        if (uid != OWNER && uid != ReceivePool.BUS_UID) {
            long[] s = foreign.computeIfAbsent(uid, k -> new long[3]);
            s[0] += sign * m.size();
            s[1] += sign * m.unixFds();
            s[2] += sign;
            if (s[2] == 0) {
                foreign.remove(uid);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4})
    void matchesADequeWithPerUidSums(long seed) {
        Random r = new Random(seed);
        ReceivePool pool = new ReceivePool(MAX_BYTES, MAX_MESSAGES);
        pool.setMaxFds(MAX_FDS);
        pool.setOwnerUid(OWNER);
        long dropped = 0;
        long peakBytes = 0;
        long peakFds = 0;
        for (int step = 0; step < 5_000; step++) {
            String at = "seed " + seed + " step " + step;
            int op = r.nextInt(20);
            if (op < 11) {
                Message m = message(r, senders[r.nextInt(senders.length)], step + 1);
                boolean fits = modelFits(m);
                assertEquals(fits, pool.fits(m), at + ": fits");
                assertEquals(fits, pool.offer(m), at + ": offer");
                if (fits) {
                    model.addLast(m);
                    modelAdd(m, 1);
                } else {
                    dropped++;
                }
            } else if (op < 12) {
                Message m = message(r, senders[r.nextInt(senders.length)], step + 1);
                pool.push(m); // over the budget if need be
                model.addLast(m);
                modelAdd(m, 1);
            } else if (op < 19) {
                Message want = model.pollFirst();
                assertSame(want, pool.pop(), at + ": pop");
                if (want != null) {
                    modelAdd(want, -1);
                    if (want.fds() != null) {
                        assertEquals(1, want.fds().references(), at + ": the pool's fd reference went");
                    }
                }
            } else if (r.nextInt(10) == 0) {
                pool.clear();
                for (Message m : model) {
                    if (m.fds() != null) {
                        assertEquals(1, m.fds().references(), at + ": clear dropped the fd reference");
                    }
                }
                model.clear();
                foreign.clear();
                bytes = 0;
                fds = 0;
            }
            peakBytes = Math.max(peakBytes, bytes);
            peakFds = Math.max(peakFds, fds);
            pool.checkInvariants();
            assertSame(model.peekFirst(), pool.peek(), at);
            int i = 0;
            for (Message m : model) {
                assertSame(m, pool.peek(i), at + ": peek(" + i + ")");
                i++;
            }
            assertNull(pool.peek(model.size()), at + ": peek past the last");
            assertNull(pool.peek(-1), at + ": peek(-1)");
            assertEquals(model.size(), pool.messages(), at);
            assertEquals(bytes, pool.bytes(), at);
            assertEquals(fds, pool.fds(), at);
            assertEquals(foreign.size(), pool.chargedUsers(), at);
            for (Connection s : senders) {
                long uid = s == null ? ReceivePool.BUS_UID : s.credentials().uid();
                long[] sums = foreign.get(uid);
                assertEquals(sums == null ? 0 : sums[0], pool.bytesOf(uid), at + ": bytes of uid " + uid);
            }
            assertEquals(dropped, pool.dropped(), at);
            assertEquals(peakBytes, pool.peakBytes(), at);
            assertEquals(peakFds, pool.peakFds(), at);
        }
    }

    @Test
    void checkInvariantsNoticesAClosedFdSetInTheQueue() {
        ReceivePool pool = new ReceivePool(MAX_BYTES, MAX_MESSAGES);
        FdSet set = new FdSet(new int[] {7}, fd -> { });
        Message m = new Message(Message.SIGNAL, 0, 1, Message.NO_REPLY_SERIAL, null, "/p", "a.b", "M", null,
                new SealedPayload(new byte[8]), null, set);
        m.admit(null, 1);
        pool.push(m);
        pool.checkInvariants();
        set.release();
        set.release(); // someone dropped the pool's reference
        assertThrows(IllegalStateException.class, pool::checkInvariants);
    }
}
