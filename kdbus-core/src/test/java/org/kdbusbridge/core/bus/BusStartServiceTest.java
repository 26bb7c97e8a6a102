package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.Fixtures.RecordingSink;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;

/** Bus.startService: StartServiceByName's checks, in dbus-daemon's order, changing nothing. */
class BusStartServiceTest {
    private final BusLimits limits = new BusLimits();
    private final Bus bus = new Bus(limits);

    /** A registered client (Hello went through). */
    private Connection client() {
        Connection c = bus.connect(new Credentials(1000, 1000, 100), new RecordingSink());
        return bus.hello(c).refused() ? null : c;
    }

    @Test
    void unknownWithoutServiceFileEvenWhenOwned() {
        Connection c = client();
        bus.requestName(c, "org.example.Owned", 0);
        assertEquals(StartCheck.UNKNOWN, bus.startService("org.example.Owned"));
        assertEquals(StartCheck.UNKNOWN, bus.startService(c.uniqueName()));
        assertEquals(StartCheck.UNKNOWN, bus.startService(Bus.DRIVER_NAME));
        assertEquals(StartCheck.UNKNOWN, bus.startService(""));
    }

    @Test
    void startThenAlreadyRunning() {
        bus.setActivatable(Set.of("org.example.Svc"));
        assertEquals(StartCheck.START, bus.startService("org.example.Svc"));
        assertEquals(0, bus.pendingActivationEntries(), "the check changes nothing");
        bus.requestName(client(), "org.example.Svc", 0);
        assertEquals(StartCheck.ALREADY_RUNNING, bus.startService("org.example.Svc"));
    }

    @Test
    void limitComesFirst() {
        bus.setActivatable(Set.of("org.example.Svc"));
        bus.requestName(client(), "org.example.Svc", 0);
        bus.addActivationWaiters(limits.maxPendingServiceStarts);
        assertEquals(StartCheck.LIMIT, bus.startService("org.example.Svc"));
        assertEquals(StartCheck.LIMIT, bus.startService("org.example.Unknown"));
    }

    @Test
    void lookupGivesTheListenerItsChance() {
        List<String> looked = new ArrayList<>();
        bus.setActivationListener(new Bus.ActivationListener() {
            @Override
            public void activationRequested(String name) { }

            @Override
            public void activatableLookup(String name) {
                looked.add(name);
                bus.setActivatable(Set.of(name));
            }
        });
        assertEquals(StartCheck.START, bus.startService("org.example.Fresh"));
        assertEquals(List.of("org.example.Fresh"), looked);
    }

    /**
     * As dbus-daemon's pending activations: a service file removed while its start is in flight
     * leaves what already waits waiting for the start's outcome; new messages and starts find no
     * file; the activator goes once the start ends.
     */
    @Test
    void aFileRemovedMidStartKeepsItsWaitersUntilTheStartEnds() {
        bus.setActivatable(Set.of("org.example.Svc"));
        Connection caller = client();
        assertEquals(Delivery.OK, bus.send(caller, Fixtures.call("org.example.Svc", 1)));
        assertTrue(bus.activator("org.example.Svc").isStarting());

        assertEquals(List.of(), bus.setActivatable(Set.of()), "nothing is orphaned while the start runs");
        assertFalse(bus.activatableNames().contains("org.example.Svc"), "no longer listed");
        assertNull(bus.lookupActivator("org.example.Svc"), "a new start finds no file");
        assertEquals(StartCheck.UNKNOWN, bus.startService("org.example.Svc"));
        assertEquals(Delivery.SERVICE_UNKNOWN, bus.send(caller, Fixtures.call("org.example.Svc", 2)));
        assertEquals(1, bus.pendingActivationEntries(), "the first call still waits");

        Connection owner = client();
        bus.requestName(owner, "org.example.Svc", 0);
        assertEquals(1, bus.completeActivation("org.example.Svc").drained(), "the waiter reaches the new owner");
        assertNull(bus.activator("org.example.Svc"), "and the retired activator is gone");
        assertEquals(0, bus.pendingActivationEntries());
    }

    @Test
    void aRetiredStartThatFailsFailsItsWaitersAndGoes() {
        bus.setActivatable(Set.of("org.example.Svc"));
        Connection caller = client();
        bus.send(caller, Fixtures.call("org.example.Svc", 1));
        bus.setActivatable(Set.of());
        assertEquals(1, bus.failActivation("org.example.Svc").size(), "the start's failure reaches the waiter");
        assertNull(bus.activator("org.example.Svc"));
    }

    @Test
    void aFileThatComesBackMidStartIsListedAgainWithItsWaiters() {
        bus.setActivatable(Set.of("org.example.Svc"));
        Connection caller = client();
        bus.send(caller, Fixtures.call("org.example.Svc", 1));
        bus.setActivatable(Set.of());
        bus.setActivatable(Set.of("org.example.Svc"));
        assertNotNull(bus.lookupActivator("org.example.Svc"));
        assertEquals(Delivery.OK, bus.send(caller, Fixtures.call("org.example.Svc", 2)));
        assertEquals(2, bus.failActivation("org.example.Svc").size());
        assertNotNull(bus.activator("org.example.Svc"), "a listed name keeps its activator");
    }
}
