package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.MessageFacts;

/** SenderPidfds against a kernel stand-in: which process, opened once, the bounds, closing. */
class SenderPidfdsTest {
    /** Processes by pid (value: real uid); fds it handed out (value: the pid they refer to). */
    static final class FakeKernel implements SenderPidfds.Kernel {
        final Map<Long, Long> processes = new HashMap<>();
        final Map<Integer, Long> fds = new HashMap<>();
        final Set<Integer> exited = new HashSet<>();
        final List<Long> opens = new ArrayList<>();
        int connection = -1;
        int nextFd = 100;
        /** While set: pidfd_open fails with this errno (minus), whatever the process. */
        int failWith;
        /** While set: dup fails (EMFILE). */
        boolean dupFails;
        /** While set: /proc/PID/status cannot be read (EMFILE), whatever the process. */
        boolean statusUnreadable;
        /** While set: a pidfd's fdinfo cannot be read (EMFILE). */
        boolean fdinfoUnreadable;

        int fdFor(long pid) {
            fds.put(nextFd, pid);
            return nextFd++;
        }

        @Override public int connectionPidfd() { return connection; }
        @Override public long pidOf(int pidfd) {
            if (fdinfoUnreadable) {
                return org.kdbusbridge.bridge.transport.PeerCredentials.PIDFD_UNREADABLE;
            }
            return exited.contains(pidfd) ? -1 : fds.getOrDefault(pidfd, 0L);
        }
        @Override public int open(long pid) {
            opens.add(pid);
            if (failWith != 0) {
                return -failWith;
            }
            return processes.containsKey(pid) ? fdFor(pid) : -3; // ESRCH
        }
        @Override public int dup(int fd) {
            if (dupFails) {
                return -1;
            }
            int d = fdFor(fds.get(fd));
            if (exited.contains(fd)) {
                exited.add(d);
            }
            return d;
        }
        @Override public long realUid(long pid) {
            return statusUnreadable ? SenderProcess.UNREADABLE : processes.getOrDefault(pid, SenderProcess.UNREADABLE);
        }
        @Override public void close(int fd) {
            assertNotNull(fds.remove(fd), "closed once, and only fds it owns: " + fd);
        }
    }

    @Test
    void onePidfdPerProcessSharedByItsMessagesClosedWhenTheLastLetsGo() {
        FakeKernel k = new FakeKernel();
        k.processes.put(10L, 1000L);
        SenderPidfds c = new SenderPidfds(k);
        FdSet a = c.take(10, 1000);
        FdSet b = c.take(10, 1000);
        assertSame(a, b, "one set for the process");
        assertEquals(List.of(10L), k.opens, "opened once");
        assertEquals(3, a.references(), "the cache's and two messages'");
        a.release();
        b.release();
        c.close();
        assertTrue(a.isClosed(), "the cache let go after the messages: closed");
        assertTrue(k.fds.isEmpty());
        assertEquals(0, c.live());
        assertNull(c.take(10, 1000), "a closed cache hands out nothing");
    }

    @Test
    void theConnectionsOwnPidfdIsDupedForItsLiveProcess() {
        FakeKernel k = new FakeKernel();
        k.processes.put(10L, 1000L);
        k.connection = k.fdFor(10);
        SenderPidfds c = new SenderPidfds(k);
        FdSet p = c.take(10, 1000);
        assertNotNull(p);
        assertTrue(k.opens.isEmpty(), "no pidfd_open by number: the connection's own, dup'ed");
        assertEquals(10L, k.pidOf(p.fd(0)));
        p.release();
        c.close();
        assertEquals(1, k.fds.size(), "only the socket's own is left (the socket closes it)");
    }

    @Test
    void noPidfdForAGoneProcessAnotherUsersProcessOrWithoutASendTimePid() {
        FakeKernel k = new FakeKernel();
        k.processes.put(20L, 0L);
        SenderPidfds c = new SenderPidfds(k);
        assertNull(c.take(30, 1000), "gone: ESRCH");
        assertNull(c.take(30, 1000));
        assertEquals(List.of(30L), k.opens, "a gone process is remembered, not asked again");
        assertNull(c.take(20, 1000), "pid 20 is root's now, the bytes were uid 1000's");
        assertTrue(k.fds.isEmpty(), "the other user's pidfd was closed at once");
        assertNull(c.take(-1, 1000), "no send-time pid: nothing");
        c.close();
    }

    @Test
    void boundedByLiveMaxAcrossEvictionsWhileQueuedMessagesHoldThem() {
        FakeKernel k = new FakeKernel();
        List<FdSet> held = new ArrayList<>();
        SenderPidfds c = new SenderPidfds(k);
        for (long pid = 1; pid <= SenderPidfds.LIVE_MAX; pid++) {
            k.processes.put(pid, 1000L);
            FdSet s = c.take(pid, 1000);
            assertNotNull(s);
            held.add(s); // a queued message of each process
        }
        assertEquals(SenderPidfds.LIVE_MAX, c.live());
        k.processes.put(99L, 1000L);
        assertNull(c.take(99, 1000), "past the bound: no pidfd, no fd opened");
        assertEquals(SenderPidfds.LIVE_MAX, k.fds.size());
        held.forEach(FdSet::release); // the messages were written
        // Nothing was given up for the refused 99: the four cached stay open, the evicted closed.
        assertEquals(SenderPidfds.CACHED, c.live(), "evicted entries closed with their last message");
        FdSet again = c.take(99, 1000);
        assertNotNull(again, "room again");
        again.release();
        c.close();
        assertEquals(0, c.live());
        assertTrue(k.fds.isEmpty());
    }

    @Test
    void messageFactsHoldThePidfdWhileTheSenderOrAnyQueueHoldsTheMessage() {
        FakeKernel k = new FakeKernel();
        k.processes.put(10L, 1000L);
        SenderPidfds c = new SenderPidfds(k);
        MessageFacts f = new MessageFacts();
        f.setPidfd(c.take(10, 1000));
        FdSet p = f.pidfd();
        c.close();
        f.holdHandles(); // the first queue took it
        f.dropHandles(); // the sender routed it
        assertSame(p, f.pidfd(), "still queued: still held");
        f.dropHandles(); // the last queue let it go
        assertNull(f.pidfd());
        assertTrue(p.isClosed());
        // A message no queue kept: the routing step's hold (the first queue hold, taken inside
        // Bus.send) ends with routing, then the sender lets go, the last holder: closed.
        FakeKernel k2 = new FakeKernel();
        k2.processes.put(10L, 1000L);
        SenderPidfds c2 = new SenderPidfds(k2);
        MessageFacts g = new MessageFacts();
        g.setPidfd(c2.take(10, 1000));
        c2.close();
        g.holdHandles(); // routing holds it
        g.dropHandles(); // nobody took it: routing ends
        assertTrue(k2.fds.size() == 1 && g.pidfd() != null, "the sender still holds it");
        g.dropHandles(); // the sender after routing
        assertNull(g.pidfd());
        assertTrue(k2.fds.isEmpty());
    }

    @Test
    void clearLetsTheCachedPidfdsGoAndTheCacheFillsAgain() {
        FakeKernel k = new FakeKernel();
        k.processes.put(10L, 1000L);
        k.processes.put(11L, 1000L);
        SenderPidfds c = new SenderPidfds(k);
        c.take(10, 1000).release();
        FdSet queued = c.take(11, 1000); // a message still queued holds this one
        assertEquals(2, c.live());
        c.clear(); // nobody wants pidfds any more
        assertEquals(1, c.live(), "the cache's own went; the queued message's stays open");
        assertEquals(1, k.fds.size());
        queued.release();
        assertEquals(0, c.live());
        assertTrue(k.fds.isEmpty());
        FdSet fresh = c.take(10, 1000);
        assertNotNull(fresh, "not closed: asked again, it opens again");
        assertEquals(List.of(10L, 11L, 10L), k.opens);
        fresh.release();
        c.close();
        assertTrue(k.fds.isEmpty());
    }

    @Test
    void transientFailuresAreNotRememberedAsAGoneProcessOnlyEsrchIs() {
        FakeKernel k = new FakeKernel();
        k.processes.put(10L, 1000L);
        SenderPidfds c = new SenderPidfds(k);
        for (int errno : new int[] {LibC.EMFILE, LibC.ENFILE, LibC.ENOMEM, LibC.EAGAIN}) {
            k.failWith = errno;
            assertNull(c.take(10, 1000), "errno " + errno + ": none this time");
        }
        k.failWith = 0;
        FdSet p = c.take(10, 1000);
        assertNotNull(p, "the failures passed: the live process gets its pidfd");
        assertEquals(List.of(10L, 10L, 10L, 10L, 10L), k.opens, "asked again after each transient failure");
        assertEquals(1, c.live());
        p.release();
        // ESRCH is remembered: the process is gone, its pid not asked again.
        assertNull(c.take(20, 1000));
        assertNull(c.take(20, 1000));
        assertEquals(6, k.opens.size(), "ESRCH once, then remembered");
        // A failed dup of the connection's own pidfd (EMFILE) is not remembered either.
        k.processes.put(30L, 1000L);
        k.connection = k.fdFor(30);
        k.dupFails = true;
        assertNull(c.take(30, 1000));
        k.dupFails = false;
        FdSet own = c.take(30, 1000);
        assertNotNull(own, "dup'ed once it works");
        own.release();
        c.close();
        assertEquals(1, k.fds.size(), "only the socket's own is left");
    }

    @Test
    void anUnreadableStatusOrFdinfoOfALiveProcessIsNotRememberedAsGone() {
        FakeKernel k = new FakeKernel();
        k.processes.put(10L, 1000L);
        SenderPidfds c = new SenderPidfds(k);
        k.statusUnreadable = true; // EMFILE opening /proc/10/status
        assertNull(c.take(10, 1000));
        assertTrue(k.fds.isEmpty(), "the new pidfd was closed");
        k.statusUnreadable = false;
        k.fdinfoUnreadable = true; // EMFILE opening /proc/self/fdinfo/N
        assertNull(c.take(10, 1000));
        assertTrue(k.fds.isEmpty());
        k.fdinfoUnreadable = false;
        FdSet p = c.take(10, 1000);
        assertNotNull(p, "not cached as gone: the live process gets its pidfd once it can be read");
        assertEquals(List.of(10L, 10L, 10L), k.opens);
        p.release();
        // An exited process with an unreadable status is still gone (its pidfd says so).
        k.processes.put(11L, 1000L);
        k.statusUnreadable = true;
        int next = k.nextFd;
        k.exited.add(next);
        assertNull(c.take(11, 1000));
        k.statusUnreadable = false;
        assertNull(c.take(11, 1000), "remembered as gone");
        assertEquals(4, k.opens.size());
        c.close();
        assertTrue(k.fds.isEmpty());
    }

    @Test
    void enosysAndEpermArePermanentForEveryCacheSharingTheState() {
        for (int errno : new int[] {LibC.ENOSYS, LibC.EPERM}) {
            FakeKernel k = new FakeKernel();
            k.processes.put(10L, 1000L);
            k.processes.put(20L, 1000L);
            SenderPidfds.Support support = new SenderPidfds.Support();
            SenderPidfds c = new SenderPidfds(k, support);
            SenderPidfds other = new SenderPidfds(k, support); // another sender of the same bus
            k.failWith = errno;
            assertNull(c.take(10, 1000));
            assertTrue(support.off());
            k.failWith = 0;
            assertNull(c.take(10, 1000), "errno " + errno + ": never asked again");
            assertNull(c.take(20, 1000));
            assertNull(other.take(20, 1000), "nor by another sender");
            assertEquals(List.of(10L), k.opens, "one failing syscall in all");
            // A connection's own pidfd still works: a dup, no pidfd_open.
            k.connection = k.fdFor(20);
            FdSet own = other.take(20, 1000);
            assertNotNull(own);
            own.release();
            assertEquals(List.of(10L), k.opens);
            c.close();
            other.close();
        }
        // EMFILE leaves the state alone.
        SenderPidfds.Support s = new SenderPidfds.Support();
        org.junit.jupiter.api.Assertions.assertFalse(s.permanent(LibC.EMFILE));
        org.junit.jupiter.api.Assertions.assertFalse(s.off());
    }

    @Test
    void aFailedOpenEvictsNothingOnlyAResultWorthCachingDoes() {
        FakeKernel k = new FakeKernel();
        SenderPidfds c = new SenderPidfds(k);
        for (long pid = 1; pid <= SenderPidfds.CACHED; pid++) {
            k.processes.put(pid, 1000L);
            c.take(pid, 1000).release();
        }
        assertEquals(SenderPidfds.CACHED, c.live());
        k.processes.put(50L, 1000L);
        k.failWith = LibC.EMFILE;
        assertNull(c.take(50, 1000));
        k.failWith = 0;
        assertEquals(SenderPidfds.CACHED, c.live(), "the least recent entry's pidfd was not closed");
        for (long pid = 1; pid <= SenderPidfds.CACHED; pid++) {
            c.take(pid, 1000).release();
        }
        assertEquals(SenderPidfds.CACHED + 1, k.opens.size(), "every entry still cached: no pid opened again");
        // A gone process is worth caching: it evicts the least recent entry (pid 1 now).
        assertNull(c.take(60, 1000));
        assertEquals(SenderPidfds.CACHED - 1, c.live());
        c.take(1, 1000).release();
        assertEquals(SenderPidfds.CACHED + 3, k.opens.size(), "pid 1 was evicted and is opened again");
        c.close();
        assertTrue(k.fds.isEmpty());
    }

    @Test
    void atTheLiveBoundAnIdleLeastRecentEntryStillMakesRoom() {
        FakeKernel k = new FakeKernel();
        SenderPidfds c = new SenderPidfds(k);
        List<FdSet> held = new ArrayList<>();
        // Four entries evicted but held by queued messages, four cached and idle: at the bound.
        for (long pid = 1; pid <= SenderPidfds.LIVE_MAX; pid++) {
            k.processes.put(pid, 1000L);
            FdSet s = c.take(pid, 1000);
            if (pid <= SenderPidfds.LIVE_MAX - SenderPidfds.CACHED) {
                held.add(s);
            } else {
                s.release();
            }
        }
        assertEquals(SenderPidfds.LIVE_MAX, c.live());
        k.processes.put(99L, 1000L);
        FdSet p = c.take(99, 1000);
        assertNotNull(p, "the idle least recent entry closes for it");
        assertEquals(SenderPidfds.LIVE_MAX, c.live());
        p.release();
        held.forEach(FdSet::release);
        c.close();
        assertTrue(k.fds.isEmpty());
    }
}
