package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;
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
}
