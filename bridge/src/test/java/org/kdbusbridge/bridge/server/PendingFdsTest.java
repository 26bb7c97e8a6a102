package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.message.FdSet;

/**
 * The received-fd ring on its own: FIFO order across growth and wrap-around, the limit passed
 * per fd, what a message may claim, and that every fd is closed exactly once. The fd numbers
 * are never open in this process (fcntl on them fails), so nothing real is closed.
 */
class PendingFdsTest {
    private static final int BASE = 1_000_000;
    private final List<Integer> closed = new ArrayList<>();
    private final PendingFds fds = new PendingFds(closed::add, () -> { });

    @Test
    void fdsComeOutInArrivalOrderAcrossGrowthAndWrapAround() throws Exception {
        int next = BASE;
        int expected = BASE;
        for (int round = 0; round < 5; round++) {
            for (int i = 0; i < 13; i++) {
                assertTrue(fds.accept(next++, 100));
            }
            FdSet set = fds.claim(7, 16, true);
            for (int i = 0; i < 7; i++) {
                assertEquals(expected++, set.fd(i));
            }
            set.release();
        }
        assertEquals(5 * 13 - 5 * 7, fds.count());
        fds.closeAll();
        assertEquals(0, fds.count());
        // The claimed sets closed theirs on release, closeAll the rest: each fd once, none twice.
        assertEquals(5 * 13, closed.size());
        assertEquals(5 * 13, closed.stream().distinct().count());
    }

    @Test
    void theLimitComesWithEachFdAndAnFdPastItIsClosed() {
        assertTrue(fds.accept(BASE, 2));
        assertTrue(fds.accept(BASE + 1, 2));
        assertFalse(fds.accept(BASE + 2, 2), "a third fd with the limit at 2");
        assertEquals(List.of(BASE + 2), closed);
        assertTrue(fds.accept(BASE + 3, 3), "the limit is what the caller says now");
        assertEquals(3, fds.count());
    }

    @Test
    void aMessageClaimsOnlyFdsThatArrivedWithinItsLimitsWhenNegotiated() {
        fds.accept(BASE, 10);
        assertThrows(ProtocolException.class, () -> fds.claim(2, 16, true), "only one arrived");
        assertThrows(ProtocolException.class, () -> fds.claim(1, 0, true), "past max_message_unix_fds");
        assertThrows(ProtocolException.class, () -> fds.claim(1, 16, false), "not negotiated");
        assertEquals(1, fds.count(), "a refused claim takes nothing");
    }
}
