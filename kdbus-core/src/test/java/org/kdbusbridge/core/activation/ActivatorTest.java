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
        assertEquals(2, bus.completeActivation(NAME).drained());
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
    void removingAnActivatableNameWithAStartInFlightKeepsItsQueueUntilTheStartEnds() {
        Connection caller = client();
        bus.send(caller, call(NAME, 1));
        assertEquals(0, bus.setActivatable(Set.of()).size(), "as dbus-daemon: the pending activation stays");
        assertEquals(1, caller.pendingOutgoingReplies());
        assertNull(bus.lookupActivator(NAME), "but no new start finds it");
        assertEquals(1, bus.failActivation(NAME).size());
        assertEquals(0, caller.pendingOutgoingReplies());
        assertNull(bus.activator(NAME));
    }

    @Test
    void removingAnIdleActivatableNameDropsItsActivator() {
        assertEquals(0, bus.setActivatable(Set.of()).size());
        assertNull(bus.activator(NAME));
    }

    // --- bus-originated messages to a name without owner (systemd activation) -------------

    private static final String SYSTEMD = "org.freedesktop.systemd1";

    @Test
    void anUnlistedActivatorQueuesButIsNotListed() {
        assertTrue(bus.setActivatable(Set.of(NAME), Set.of(SYSTEMD)).isEmpty());
        assertEquals(Set.of(NAME), bus.activatableNames(), "no service file: not in ListActivatableNames");
        assertNotNull(bus.activator(SYSTEMD));
        Connection caller = client();
        assertEquals(Delivery.OK, bus.send(caller, call(SYSTEMD, 1)), "waits for systemd instead of ServiceUnknown");
        assertEquals(List.of(SYSTEMD), requested);
        assertTrue(bus.setActivatable(Set.of(NAME)).isEmpty(), "dropped mid-start, what waited still waits");
        assertEquals(1, bus.failActivation(SYSTEMD).size(), "and gets the start's outcome");
        assertNull(bus.activator(SYSTEMD));
    }

    @Test
    void aBusMessageToANameWithoutOwnerWaitsOnItsActivatorAndStartsIt() {
        bus.setActivatable(Set.of(NAME), Set.of(SYSTEMD));
        Message sig = org.kdbusbridge.core.Fixtures.signalTo(SYSTEMD, "ActivationRequest");
        assertEquals(Delivery.OK, bus.emitToName(sig));
        assertEquals(List.of(SYSTEMD), requested);
        assertEquals(1, bus.pendingActivationEntries(), "counts towards max_pending_service_starts");
        Connection systemd = client();
        bus.names().request(systemd, SYSTEMD, 0, new ArrayList<>());
        assertEquals(1, bus.completeActivation(SYSTEMD).drained());
        assertEquals(List.of(sig), drain(systemd), "delivered once systemd owns its name");
        assertEquals(0, bus.pendingActivationEntries());

        Message later = org.kdbusbridge.core.Fixtures.signalTo(SYSTEMD, "ActivationRequest");
        assertEquals(Delivery.OK, bus.emitToName(later));
        assertEquals(List.of(later), drain(systemd), "with an owner: straight to it");
        assertEquals(Delivery.SERVICE_UNKNOWN, bus.emitToName(org.kdbusbridge.core.Fixtures.signalTo("org.example.None", "X")));
    }

    @Test
    void monitorsSeeAStartRequestBeforeTheMessageThatCausedIt() {
        bus.setActivatable(Set.of(NAME), Set.of(SYSTEMD));
        Connection mon = client();
        bus.becomeMonitor(mon);
        bus.startMonitoring(mon, List.of());
        Message request = org.kdbusbridge.core.Fixtures.signalTo(SYSTEMD, "ActivationRequest");
        // What the launcher does when asked to start NAME through systemd.
        bus.setActivationListener(name -> {
            if (name.equals(NAME)) {
                bus.emitToName(request);
            }
        });
        Connection caller = client();
        Message m = call(NAME, 1);
        assertEquals(Delivery.OK, bus.send(caller, m));
        assertEquals(List.of(request, m), drain(mon));
        Message again = call(NAME, 2);
        bus.send(caller, again);
        assertEquals(List.of(again), drain(mon), "no second start while one is in flight");
    }
}
