// Invariants under test (issue 17, peeks): PeekQueued lists the caller's own pool oldest first
// with sender, interface, member, path, seq and the sender's credentials, at most as many as
// asked, and takes or reorders nothing; PeekActivationQueue shows the messages handed to the
// caller at the end of a start while it is the name's primary owner, only those it was given
// (not those refused at hand-over), the bus's own as sender null; anyone else is refused, and an
// owner that got the name without a start sees nothing.
package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.Fixtures.call;
import static org.kdbusbridge.core.Fixtures.drain;
import static org.kdbusbridge.core.Fixtures.signalTo;

import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.QueuedMessage;
import org.kdbusbridge.core.name.NameRegistry;

class QueuePeekTest {
    private static final String NAME = "org.example.Svc";
    private Bus bus;

    @BeforeEach
    void setUp() {
        bus = new Bus(new BusLimits());
        bus.setActivatable(Set.of(NAME));
    }

    private Connection client(long uid, long pid) {
        Connection c = bus.connect(new Credentials(uid, uid + 1, pid), x -> { });
        bus.hello(c);
        return c;
    }

    /**
     * One answer at a time: each answer is queued past the pool's budget, so while the previous
     * one is still queued for the caller a peek is refused (LimitsExceeded in the driver); once
     * it has left the pool the next peek is answered. Pipelined peeks cannot grow a queue.
     */
    @Test
    void aPeekWhileThePreviousAnswerIsStillQueuedIsRefused() {
        Connection a = client(1000, 11);
        Connection r = client(1000, 33);
        assertEquals(Delivery.OK, bus.send(a, signalTo(r.uniqueName(), "First")));
        assertFalse(bus.peekQueued(r, 100).denied());
        r.pool().push(signalTo(r.uniqueName(), "Answer")); // what the driver queues next, in the same step
        QueuePeek again = bus.peekQueued(r, 100);
        assertTrue(again.denied(), "the first answer is still queued");
        assertTrue(again.messages().isEmpty());
        r.pool().pop();
        assertTrue(bus.peekQueued(r, 100).denied(), "the answer is still behind the first message");
        r.pool().pop(); // the answer leaves: written
        QueuePeek p = bus.peekQueued(r, 100);
        assertFalse(p.denied());
        assertEquals(0, p.queued());
    }

    @Test
    void peekQueuedListsTheOwnPoolInOrderAndTakesNothing() {
        Connection a = client(1000, 11);
        Connection b = client(2000, 22);
        Connection r = client(1000, 33);
        Message m1 = signalTo(r.uniqueName(), "First");
        Message m2 = call(r.uniqueName(), 7);
        Message m3 = signalTo(r.uniqueName(), "Third");
        assertEquals(Delivery.OK, bus.send(a, m1));
        assertEquals(Delivery.OK, bus.send(b, m2));
        assertEquals(Delivery.OK, bus.send(a, m3));

        QueuePeek p = bus.peekQueued(r, 100);
        assertEquals(3, p.queued());
        assertEquals(List.of(
                new QueuedMessage(Message.SIGNAL, a.uniqueName(), m1.iface(), "First", m1.path(), m1.seq(), a.credentials()),
                new QueuedMessage(Message.METHOD_CALL, b.uniqueName(), m2.iface(), "Call", m2.path(), m2.seq(),
                        new Credentials(2000, 2001, 22)),
                new QueuedMessage(Message.SIGNAL, a.uniqueName(), m3.iface(), "Third", m3.path(), m3.seq(), a.credentials())),
                p.messages());
        assertTrue(m1.seq() < m2.seq() && m2.seq() < m3.seq());

        QueuePeek first = bus.peekQueued(r, 2);
        assertEquals(3, first.queued(), "the total, even when fewer are listed");
        assertEquals(p.messages().subList(0, 2), first.messages());

        assertEquals(List.of(m1, m2, m3), drain(r), "nothing taken or reordered");
        assertEquals(0, bus.peekQueued(r, 100).queued());
        assertTrue(bus.peekQueued(a, 100).messages().isEmpty(), "another's pool is never shown");
    }

    @Test
    void theNewOwnerSeesWhoCausedItsStart() {
        Connection caller = client(1000, 11);
        Connection other = client(2000, 22);
        Message c1 = call(NAME, 1);
        Message s2 = signalTo(NAME, "Hint");
        assertEquals(Delivery.OK, bus.send(caller, c1));
        assertEquals(Delivery.OK, bus.send(other, s2));
        Message fromBus = signalTo(NAME, "ActivationRequest");
        assertEquals(Delivery.OK, bus.emitToName(fromBus));

        Connection svc = client(3000, 33);
        assertEquals(NameRegistry.REPLY_PRIMARY_OWNER, bus.requestName(svc, NAME, 0).reply());
        assertEquals(3, bus.completeActivation(NAME).drained());
        List<Message> delivered = drain(svc); // the service read them all before it asks
        assertEquals(List.of(c1, s2, fromBus), delivered);

        HandOverPeek p = bus.peekHandOver(svc, NAME);
        assertFalse(p.denied());
        assertEquals(List.of(
                new QueuedMessage(Message.METHOD_CALL, caller.uniqueName(), c1.iface(), "Call", c1.path(), c1.seq(),
                        caller.credentials()),
                new QueuedMessage(Message.SIGNAL, other.uniqueName(), s2.iface(), "Hint", s2.path(), s2.seq(),
                        other.credentials()),
                new QueuedMessage(Message.SIGNAL, null, fromBus.iface(), "ActivationRequest", fromBus.path(), fromBus.seq(),
                        Credentials.UNKNOWN)),
                p.messages());
        assertEquals(p, bus.peekHandOver(svc, NAME), "a peek takes nothing");

        assertEquals(Denial.Reason.ACCESS_DENIED, bus.peekHandOver(caller, NAME).denial().reason(),
                "only the primary owner may ask");
        assertEquals(Denial.Reason.INVALID_ARGS, bus.peekHandOver(svc, svc.uniqueName()).denial().reason());
        assertEquals(Denial.Reason.INVALID_ARGS, bus.peekHandOver(svc, "not a name").denial().reason());

        // A later owner that got the name without a start sees nothing of the old start.
        bus.releaseName(svc, NAME);
        Connection next = client(3000, 44);
        assertEquals(NameRegistry.REPLY_PRIMARY_OWNER, bus.requestName(next, NAME, 0).reply());
        bus.completeActivation(NAME);
        assertEquals(List.of(), bus.peekHandOver(next, NAME).messages());
        assertNull(bus.peekHandOver(next, NAME).denial());
        // And the old owner, back without a start, does not see its old record either.
        bus.releaseName(next, NAME);
        assertEquals(NameRegistry.REPLY_PRIMARY_OWNER, bus.requestName(svc, NAME, 0).reply());
        bus.completeActivation(NAME);
        assertEquals(List.of(), bus.peekHandOver(svc, NAME).messages());
    }

    @Test
    void aMessageRefusedAtHandOverIsNotShown() throws Exception {
        Connection caller = client(1000, 11);
        Message withFds = new Message(Message.METHOD_CALL, 0, 5, Message.NO_REPLY_SERIAL, NAME, "/p", "org.example.I",
                "Take", null, new org.kdbusbridge.core.message.SealedPayload(new byte[16]), null,
                new org.kdbusbridge.core.message.FdSet(new int[] {-1}, fd -> { }));
        caller.setAcceptsUnixFds(true);
        Message plain = call(NAME, 6);
        assertEquals(Delivery.OK, bus.send(caller, withFds));
        assertEquals(Delivery.OK, bus.send(caller, plain));
        Connection svc = client(3000, 33); // did not negotiate fds
        bus.requestName(svc, NAME, 0);
        ActivationCompleted done = bus.completeActivation(NAME);
        assertEquals(List.of(withFds), done.refused());
        assertEquals(List.of(plain.seq()),
                bus.peekHandOver(svc, NAME).messages().stream().map(QueuedMessage::seq).toList());
    }
}
