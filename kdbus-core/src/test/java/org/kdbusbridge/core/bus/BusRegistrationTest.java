package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.Fixtures.drain;

import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;

/** Hello's connection limits and what the bus does with non-signals that have no destination. */
class BusRegistrationTest {
    private BusLimits limits;
    private Bus bus;

    @BeforeEach
    void setUp() {
        limits = new BusLimits();
        bus = new Bus(limits);
    }

    private Connection connect(long uid) {
        return bus.connect(new Credentials(uid, uid, 1), x -> { });
    }

    private Connection client(long uid) {
        Connection c = connect(uid);
        assertFalse(bus.hello(c).refused());
        return c;
    }

    @Test
    void maxCompletedConnectionsRefusesHelloUntilAConnectionLeaves() {
        limits.maxCompletedConnections = 2;
        Connection a = client(1000);
        client(1001);
        Connection late = connect(1002);
        Registration r = bus.hello(late);
        assertTrue(r.refused());
        assertEquals(Registration.Limit.MAX_COMPLETED_CONNECTIONS, r.refusedBy());
        assertNull(r.arrival());
        assertNull(late.uniqueName(), "a refused connection stays unregistered");
        assertEquals(3, bus.connectionCount(), "and connected: it counts as incomplete");
        assertEquals(2, bus.completedConnectionCount());
        bus.disconnect(a);
        Registration retry = bus.hello(late);
        assertFalse(retry.refused(), "Hello may be retried");
        assertEquals(late.uniqueName(), retry.arrival().name());
    }

    @Test
    void maxConnectionsPerUserCountsTheAuthenticatedUid() {
        limits.maxConnectionsPerUser = 1;
        Connection first = client(1000);
        assertEquals(Registration.Limit.MAX_CONNECTIONS_PER_USER, bus.hello(connect(1000)).refusedBy());
        client(1001); // another user is not affected
        Connection anonymous = connect(1000);
        anonymous.setAuthenticatedUid(-1);
        assertFalse(bus.hello(anonymous).refused(), "no uid (ANONYMOUS): no per-user limit");
        bus.disconnect(first);
        assertFalse(bus.hello(connect(1000)).refused());
    }

    @Test
    void monitorsStayCompletedConnections() {
        limits.maxCompletedConnections = 1;
        Connection mon = client(1000);
        bus.becomeMonitor(mon);
        bus.startMonitoring(mon, List.of());
        assertTrue(bus.hello(connect(1000)).refused(), "dbus-daemon counts monitors as completed connections");
        bus.disconnect(mon);
        assertEquals(0, bus.completedConnectionCount());
    }

    @Test
    void callWithoutDestinationIsAnsweredByTheBusAndReachesNoMatchRule() throws Exception {
        Connection eavesdropper = client(1000);
        bus.matches().add(eavesdropper, MatchRule.parse("eavesdrop='true'"));
        Connection watcher = client(1000);
        bus.matches().add(watcher, MatchRule.parse("type='method_call'"));
        Connection mon = client(1000);
        bus.becomeMonitor(mon);
        bus.startMonitoring(mon, List.of());
        Connection caller = client(1000);

        Message call = Fixtures.call(null, 5);
        assertEquals(Delivery.UNADDRESSED_CALL, bus.send(caller, call));
        assertEquals(0, caller.pendingOutgoingReplies(), "no reply slot: the bus answers it");
        assertEquals(Delivery.DISCARDED, bus.send(caller, Fixtures.reply(null, 5)));
        assertEquals(Delivery.DISCARDED, bus.send(caller, Fixtures.error(null, 5)));
        assertTrue(drain(eavesdropper).isEmpty());
        assertTrue(drain(watcher).isEmpty());
        assertEquals(3, drain(mon).size(), "monitors see what entered the bus");

        Message answer = Fixtures.msg(Message.METHOD_RETURN, Message.FLAG_NO_REPLY_EXPECTED, 9, 5, null, null, null,
                null, null, 8, null);
        bus.answerUnaddressed(caller, answer);
        assertEquals(List.of(answer), drain(caller));
        assertEquals(List.of(answer), drain(mon));
        assertTrue(drain(eavesdropper).isEmpty(), "the answer is not broadcast either");
    }

    @Test
    void signalWithoutDestinationIsStillBroadcast() throws Exception {
        Connection watcher = client(1000);
        bus.matches().add(watcher, MatchRule.parse("type='signal'"));
        assertEquals(Delivery.OK, bus.send(client(1000), Fixtures.signal("S")));
        assertEquals(1, drain(watcher).size());
    }
}
