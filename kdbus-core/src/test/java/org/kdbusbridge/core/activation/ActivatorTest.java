package org.kdbusbridge.core.activation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.Fixtures.call;
import static org.kdbusbridge.core.Fixtures.drain;
import static org.kdbusbridge.core.Fixtures.reply;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.bus.Delivery;
import org.kdbusbridge.core.bus.Disconnect;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameChange;

/** Activators: messages wait in order, move with their reply slots, fail together; BYEBYE. */
class ActivatorTest {
    private static final String NAME = "org.example.Activatable";
    private Bus bus;
    private final List<String> requested = new ArrayList<>();

    @BeforeEach
    void setUp() {
        bus = new Bus(new BusLimits());
        bus.setActivationListener(requested::add);
        assertTrue(bus.setActivatable(Set.of(NAME)).isEmpty());
    }

    private Connection client() {
        Connection c = bus.connect(new Credentials(1000, 1000, 1), x -> { });
        bus.hello(c);
        return c;
    }

    private void own(Connection c) {
        List<NameChange> changes = new ArrayList<>();
        bus.names().request(c, NAME, 0, changes);
    }

    @Test
    void messagesQueueInOrderAndMoveWithReplySlotsToTheNewOwner() {
        Connection caller = client();
        Message m1 = call(NAME, 1);
        Message m2 = call(NAME, 2);
        assertEquals(Delivery.OK, bus.send(caller, m1));
        assertEquals(Delivery.OK, bus.send(caller, m2));
        assertEquals(List.of(NAME), requested, "one activation for both messages");
        assertNull(bus.resolve(NAME), "an activator is never an owner");
        assertFalse(bus.names().names().contains(NAME));
        assertEquals(2, caller.pendingOutgoingReplies());

        Connection service = client();
        own(service);
        assertEquals(2, bus.completeActivation(NAME));
        assertEquals(List.of(m1, m2), drain(service), "moved in sequence order");
        assertEquals(2, service.pendingIncomingReplies(), "the reply slots moved too");
        assertEquals(Delivery.OK, bus.send(service, reply(caller.uniqueName(), 1)));
        assertEquals(1, caller.pendingOutgoingReplies());
        assertFalse(bus.activator(NAME).isStarting());
    }

    @Test
    void noAutoStartGetsNameHasNoOwnerAndStartsNothing() {
        Connection caller = client();
        assertEquals(Delivery.NAME_HAS_NO_OWNER, bus.send(caller, call(NAME, 1, Message.FLAG_NO_AUTO_START, 16)));
        assertTrue(requested.isEmpty());
        assertEquals(Delivery.SERVICE_UNKNOWN, bus.send(caller, call("org.example.NotActivatable", 2)));
    }

    @Test
    void failedActivationReturnsEveryWaitingMessageAndFreesTheReplyBudget() {
        Connection caller = client();
        bus.send(caller, call(NAME, 1));
        bus.send(caller, call(NAME, 2, Message.FLAG_NO_REPLY_EXPECTED, 16));
        List<Message> failed = bus.failActivation(NAME);
        assertEquals(2, failed.size());
        assertEquals(0, caller.pendingOutgoingReplies());
        assertFalse(bus.activator(NAME).isStarting());
        bus.send(caller, call(NAME, 3));
        assertEquals(List.of(NAME, NAME), requested, "a later message starts a new activation");
    }

    @Test
    void startServiceByNameStartsOnceWhileInFlight() {
        assertTrue(bus.activate(NAME));
        assertTrue(bus.activate(NAME));
        assertEquals(1, requested.size());
        assertFalse(bus.activate("org.example.Other"));
    }

    @Test
    void byebyeRefusedWhileACallIsUnanswered() {
        Connection service = client();
        own(service);
        Connection caller = client();
        bus.send(caller, call(NAME, 1));
        assertFalse(bus.isIdle(service), "a queued call");
        drain(service);
        assertFalse(bus.isIdle(service), "an unanswered call");
        bus.send(service, reply(caller.uniqueName(), 1));
        assertTrue(bus.isIdle(service));
    }

    @Test
    void byebyeFallsBackToTheActivatorAtomically() {
        Connection service = client();
        own(service);
        assertTrue(bus.isIdle(service));
        service.push(reply(service.uniqueName(), 99)); // the "yes" the driver queues first
        Disconnect d = bus.disconnectKeepingQueue(service);
        assertEquals(NAME, d.nameChanges().get(0).name());
        assertSame(service, d.nameChanges().get(0).oldOwner());
        assertEquals(1, service.pool().messages(), "the reply is still there to be written");
        Connection caller = client();
        Message next = call(NAME, 5);
        assertEquals(Delivery.OK, bus.send(caller, next), "queued on the activator, not lost");
        assertEquals(1, bus.activator(NAME).queued());
        assertEquals(List.of(NAME), requested);
        Connection again = client();
        own(again);
        bus.completeActivation(NAME);
        assertNotNull(again.pool().peek());
        assertSame(next, again.pool().peek());
    }

    @Test
    void removingAnActivatableNameOrphansItsQueue() {
        Connection caller = client();
        bus.send(caller, call(NAME, 1));
        assertEquals(1, bus.setActivatable(Set.of()).size());
        assertEquals(0, caller.pendingOutgoingReplies());
        assertNull(bus.activator(NAME));
    }
}
