// Invariants under test: fds of a message close exactly once, after the last pool that took the
// message pops it (or at once when nobody took it); fd-carrying messages never reach a peer that
// did not negotiate fds; pools account fds against max_outgoing_unix_fds.
package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.FdSet;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;

class BusFdTest {
    private final List<Integer> closed = new ArrayList<>();
    private BusLimits limits;
    private Bus bus;

    @BeforeEach
    void setUp() {
        limits = new BusLimits();
        bus = new Bus(limits);
    }

    private Connection client(boolean fds) {
        Connection c = bus.connect(new Credentials(1000, 1000, 1), x -> { });
        bus.hello(c);
        c.setAcceptsUnixFds(fds);
        return c;
    }

    private FdSet fds(int... numbers) {
        return new FdSet(numbers, closed::add);
    }

    private static Message call(String dest, FdSet fds) {
        return new Message(Message.METHOD_CALL, 0, 1, Message.NO_REPLY_SERIAL, dest, "/p", "a.B", "M", null,
                new SealedPayload(new byte[16]), null, fds);
    }

    private static Message signal(FdSet fds) {
        return new Message(Message.SIGNAL, 0, 2, Message.NO_REPLY_SERIAL, null, "/p", "a.B", "S", null,
                new SealedPayload(new byte[16]), null, fds);
    }

    @Test
    void unicastFdsCloseAfterTheReceiverWroteThem() {
        Connection a = client(true);
        Connection b = client(true);
        FdSet set = fds(7, 8);
        assertEquals(Delivery.OK, bus.send(a, call(b.uniqueName(), set)));
        set.release(); // the creator's reference
        assertTrue(closed.isEmpty(), "still queued on b");
        assertEquals(2, b.pool().fds());
        b.pool().pop();
        assertEquals(List.of(7, 8), closed);
        assertEquals(0, b.pool().fds());
    }

    @Test
    void receiverWithoutFdSupportGetsNotSupportedAndNothingLeaks() {
        Connection a = client(true);
        Connection b = client(false);
        FdSet set = fds(9);
        assertEquals(Delivery.FDS_NOT_SUPPORTED, bus.send(a, call(b.uniqueName(), set)));
        assertTrue(b.pool().isEmpty());
        assertEquals(0, a.pendingOutgoingReplies(), "no reply slot for a refused call");
        set.release();
        assertEquals(List.of(9), closed);
    }

    @Test
    void undeliverableClosesWithTheCreatorsReference() {
        Connection a = client(true);
        FdSet set = fds(3);
        assertEquals(Delivery.SERVICE_UNKNOWN, bus.send(a, call("org.example.Nobody", set)));
        set.release();
        assertEquals(List.of(3), closed);
    }

    @Test
    void broadcastSkipsReceiversWithoutFdsAndClosesAfterTheLastReceiver() throws Exception {
        Connection a = client(true);
        Connection b = client(true);
        Connection c = client(true);
        Connection old = client(false);
        for (Connection x : List.of(b, c, old)) {
            bus.matches().add(x, MatchRule.parse("type='signal'"));
        }
        FdSet set = fds(11);
        assertEquals(Delivery.OK, bus.send(a, signal(set)));
        set.release();
        assertTrue(old.pool().isEmpty(), "a peer without fd support never sees it");
        assertEquals(1, b.pool().messages());
        b.pool().pop();
        assertTrue(closed.isEmpty(), "c still holds it");
        c.pool().pop();
        assertEquals(List.of(11), closed);
    }

    @Test
    void disconnectClosesQueuedFds() {
        Connection a = client(true);
        Connection b = client(true);
        FdSet set = fds(21);
        bus.send(a, call(b.uniqueName(), set));
        set.release();
        bus.disconnect(b);
        assertEquals(List.of(21), closed);
    }

    @Test
    void outgoingFdBudgetRefusesWithLimitsExceeded() {
        limits.maxOutgoingUnixFds = 2;
        Connection a = client(true);
        Connection b = client(true);
        FdSet first = fds(1, 2);
        assertEquals(Delivery.OK, bus.send(a, call(b.uniqueName(), first)), "an empty pool always takes one");
        first.release();
        FdSet second = fds(3);
        assertEquals(Delivery.RECIPIENT_FULL, bus.send(a, call(b.uniqueName(), second)));
        second.release();
        assertEquals(List.of(3), closed);
        assertEquals(2, b.pool().fds());
    }

    @Test
    void activatorHoldsFdsUntilTheOwnerArrives() {
        bus.setActivatable(java.util.Set.of("org.example.Svc"));
        Connection a = client(true);
        FdSet set = fds(5);
        assertEquals(Delivery.OK, bus.send(a, call("org.example.Svc", set)));
        set.release();
        assertTrue(closed.isEmpty(), "waiting on the activator");
        Connection owner = client(true);
        bus.names().request(owner, "org.example.Svc", 0, new ArrayList<>());
        bus.completeActivation("org.example.Svc");
        assertTrue(closed.isEmpty(), "now in the owner's pool");
        owner.pool().pop();
        assertEquals(List.of(5), closed);
    }

    /**
     * AttachMetadata's pidfd (held by MessageFacts, not by the message's FdSet) survives the
     * wait on an activator: the owner that was started gets it, and it closes once the owner's
     * pool let the message go.
     */
    @Test
    void aMessageWaitingOnAnActivatorKeepsItsPidfdForTheOwner() {
        bus.setActivatable(java.util.Set.of("org.example.Svc"));
        Connection a = client(true);
        Message m = call("org.example.Svc", null);
        org.kdbusbridge.core.message.MessageFacts f = new org.kdbusbridge.core.message.MessageFacts();
        FdSet pidfd = fds(9);
        f.setPidfd(pidfd); // the sender's hold, as ClientSession sets it before routing
        m.setFacts(f);
        assertEquals(Delivery.OK, bus.send(a, m));
        f.dropHandles(); // the sender after routing, as ClientSession does
        assertTrue(closed.isEmpty(), "waiting on the activator: the pidfd stays open");
        Connection owner = client(true);
        bus.attachMetadata(owner, org.kdbusbridge.core.message.MessageFacts.PIDFD);
        bus.names().request(owner, "org.example.Svc", 0, new ArrayList<>());
        bus.completeActivation("org.example.Svc");
        assertEquals(m, owner.pool().peek());
        assertEquals(pidfd, m.facts().pidfd(), "handed to the owner with its pidfd");
        assertEquals(1, owner.metadataFds(m), "the owner's copy carries it");
        assertTrue(closed.isEmpty());
        owner.pool().pop();
        assertEquals(List.of(9), closed, "closed once the owner's pool let the message go");
    }

    private Message withPidfd(Message m, int fd) {
        org.kdbusbridge.core.message.MessageFacts f = new org.kdbusbridge.core.message.MessageFacts();
        f.setPidfd(fds(fd));
        m.setFacts(f);
        return m;
    }

    /**
     * A pidfd handed to a receiver is an fd it holds: its pool counts it with the message's own
     * fds (max_outgoing_unix_fds, the uids' shares) from queueing to writing, for a receiver
     * that wants pidfd and takes fds only; the transport sends it only for a charged entry.
     */
    @Test
    void aReceiversPidfdIsChargedToItsPoolsFdBudget() {
        limits.maxOutgoingUnixFds = 2;
        Connection a = client(true);
        Connection b = client(true);
        Connection plain = client(true);
        Connection noFds = client(false);
        bus.attachMetadata(b, org.kdbusbridge.core.message.MessageFacts.PIDFD);
        bus.attachMetadata(noFds, org.kdbusbridge.core.message.MessageFacts.PIDFD);
        FdSet own = fds(1);
        Message first = withPidfd(call(b.uniqueName(), own), 11);
        assertEquals(Delivery.OK, bus.send(a, first));
        own.release(); // the sender's reference, as the session lets go after routing
        first.facts().dropHandles(); // the sender after routing
        assertEquals(2, b.pool().fds(), "its own fd and the pidfd");
        assertEquals(1, b.metadataFds(first));
        assertTrue(b.sendsPidfd(0));
        b.pool().checkInvariants();
        Message second = withPidfd(call(b.uniqueName(), null), 12);
        assertEquals(Delivery.RECIPIENT_FULL, bus.send(a, second), "the pidfd alone is past the fd budget");
        second.facts().dropHandles();
        Message toPlain = withPidfd(call(plain.uniqueName(), null), 13);
        assertEquals(Delivery.OK, bus.send(a, toPlain));
        toPlain.facts().dropHandles();
        assertEquals(0, plain.pool().fds(), "a receiver that did not ask holds no pidfd: nothing charged");
        assertFalse(plain.sendsPidfd(0));
        Message toNoFds = withPidfd(call(noFds.uniqueName(), null), 14);
        assertEquals(Delivery.OK, bus.send(a, toNoFds));
        toNoFds.facts().dropHandles();
        assertEquals(0, noFds.pool().fds(), "no fd passing: no pidfd, nothing charged");
        // AttachMetadata without pidfd: the queued copy goes without it, still charged until written.
        bus.attachMetadata(b, 0);
        assertFalse(b.sendsPidfd(0));
        assertEquals(2, b.pool().fds());
        b.pool().pop();
        assertEquals(0, b.pool().fds(), "the charge leaves with the message");
        b.pool().checkInvariants();
        assertTrue(closed.containsAll(List.of(1, 11, 12)), "its fd and pidfd closed, and the refused one's: " + closed);
    }

    @Test
    void failedActivationClosesWaitingFds() {
        bus.setActivatable(java.util.Set.of("org.example.Svc"));
        Connection a = client(true);
        FdSet set = fds(6);
        bus.send(a, call("org.example.Svc", set));
        set.release();
        assertEquals(1, bus.failActivation("org.example.Svc").size());
        assertEquals(List.of(6), closed);
    }

    @Test
    void fdSetClosesOnceAndRefusesReuse() {
        FdSet set = fds(4);
        set.retain();
        set.release();
        assertFalse(set.isClosed());
        set.release();
        assertTrue(set.isClosed());
        assertEquals(List.of(4), closed);
        assertThrows(IllegalStateException.class, set::release);
        assertThrows(IllegalStateException.class, set::retain);
    }
}
