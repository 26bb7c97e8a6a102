// Invariants under test: a connection behind a custom endpoint (issue 18) is filtered where the
// bus routes, as xdg-dbus-proxy filters (docs/endpoint-semantics.md): hidden names look missing,
// SEE names refuse, TALK names and --call rules pass; replies only to calls it received; a peer
// that called it becomes visible; broadcasts and NameOwnerChanged reach it only from what it may
// see; the driver's verdicts and ListNames filter; connections outside are never affected.
package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.kdbusbridge.core.Fixtures.call;
import static org.kdbusbridge.core.Fixtures.drain;
import static org.kdbusbridge.core.Fixtures.reply;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.Fixtures.RecordingSink;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.endpoint.CallRule;
import org.kdbusbridge.core.endpoint.EndpointFilter;
import org.kdbusbridge.core.endpoint.EndpointPolicy;
import org.kdbusbridge.core.endpoint.NamePattern;
import org.kdbusbridge.core.endpoint.SendVerdict;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameChange;

class EndpointRoutingTest {
    private Bus bus;
    private Connection talk;   // owns org.example.Talk
    private Connection see;    // owns org.example.See
    private Connection hidden; // owns org.example.Hidden
    private Connection callable; // owns org.example.Callable: one --call rule
    private Connection app;    // behind the endpoint

    private Connection client(EndpointPolicy endpoint) {
        Connection c = bus.connect(new Credentials(1000, 1000, 100), new RecordingSink());
        if (endpoint != null) {
            c.setEndpoint(endpoint);
        }
        bus.hello(c);
        return c;
    }

    private Connection owner(String name) {
        Connection c = client(null);
        bus.names().request(c, name, 0, new ArrayList<>());
        return c;
    }

    @BeforeEach
    void setUp() throws Exception {
        bus = new Bus(new BusLimits());
        talk = owner("org.example.Talk");
        see = owner("org.example.See");
        hidden = owner("org.example.Hidden");
        callable = owner("org.example.Callable");
        EndpointFilter f = EndpointFilter.builder("test").filtering(true).talk("org.example.Talk")
                .see("org.example.See").own("org.example.App")
                .call(new CallRule(NamePattern.exact("org.example.Callable"), "org.example.Api", "Allowed", null, false))
                .build();
        app = client(new EndpointPolicy(f));
    }

    private static Message callTo(String dest, long serial, String member) {
        return Fixtures.msg(Message.METHOD_CALL, 0, serial, Message.NO_REPLY_SERIAL, dest, "/", "org.example.Api",
                member, null, 16, null);
    }

    @Test
    void callsOutAreFilteredAsByTheProxy() {
        assertEquals(Delivery.OK, bus.send(app, call("org.example.Talk", 1)));
        assertEquals(1, drain(talk).size());
        assertEquals(Delivery.ENDPOINT_ACCESS_DENIED, bus.send(app, call("org.example.See", 2)));
        assertEquals(Delivery.ENDPOINT_SERVICE_UNKNOWN, bus.send(app, call("org.example.Missing", 3)));
        assertEquals(Delivery.ENDPOINT_NAME_HAS_NO_OWNER, bus.send(app, call(hidden.uniqueName(), 4)),
                "a hidden unique name looks missing too");
        assertEquals(Delivery.ENDPOINT_ACCESS_DENIED, bus.send(app, callTo("org.example.Callable", 5, "Other")));
        assertEquals(Delivery.OK, bus.send(app, callTo("org.example.Callable", 6, "Allowed")), "the --call rule");
        assertEquals(1, drain(callable).size(), "only the allowed call arrived");
        assertEquals(0, drain(hidden).size());
        assertEquals(0, drain(see).size());
        assertEquals(Delivery.OK, bus.send(app, call(talk.uniqueName(), 7)), "the owner of a TALK name");
    }

    @Test
    void refusedMessagesThatExpectNoReplyAreDroppedSilently() {
        Message m = Fixtures.msg(Message.METHOD_CALL, Message.FLAG_NO_REPLY_EXPECTED, 9, Message.NO_REPLY_SERIAL,
                "org.example.See", "/", "i.f", "M", null, 16, null);
        assertEquals(Delivery.DISCARDED, bus.send(app, m));
        assertEquals(Delivery.DISCARDED, bus.send(app, Fixtures.signalTo("org.example.Hidden", "S")));
    }

    @Test
    void aCallerBecomesVisibleAndMayBeAnsweredOnceButNotCalledBack() {
        Connection outsider = client(null);
        assertEquals(Delivery.ENDPOINT_NAME_HAS_NO_OWNER, bus.send(app, call(outsider.uniqueName(), 1)));
        assertEquals(Delivery.DISCARDED, bus.send(app, reply(outsider.uniqueName(), 40)), "no call to answer");
        assertEquals(Delivery.OK, bus.send(outsider, call(app.uniqueName(), 40)), "calls in are not filtered");
        assertEquals(1, drain(app).size());
        assertEquals(Delivery.ENDPOINT_ACCESS_DENIED, bus.send(app, call(outsider.uniqueName(), 2)),
                "a caller is SEE, not TALK");
        assertEquals(Delivery.OK, bus.send(app, reply(outsider.uniqueName(), 40)));
        assertEquals(1, drain(outsider).size());
        assertEquals(Delivery.DISCARDED, bus.send(app, reply(outsider.uniqueName(), 40)), "only once");
        assertTrue(bus.endpointLists(app, outsider.uniqueName()));
    }

    @Test
    void broadcastsAndNameOwnerChangedReachItOnlyFromWhatItMaySee() throws Exception {
        bus.matches().add(app, MatchRule.parse("type='signal'"));
        Connection outside = client(null);
        bus.matches().add(outside, MatchRule.parse("type='signal'"));
        bus.send(talk, Fixtures.signal("FromTalk"));
        bus.send(see, Fixtures.signal("FromSee"));
        bus.send(hidden, Fixtures.signal("FromHidden"));
        List<String> got = new ArrayList<>();
        for (Message m : drain(app)) got.add(m.member());
        assertEquals(List.of("FromTalk"), got);
        assertEquals(3, drain(outside).size(), "outside nothing is filtered");

        bus.emitSignal(noc("org.example.See"));
        bus.emitSignal(noc("org.example.Hidden"));
        got.clear();
        for (Message m : drain(app)) got.add(m.args().arg(0));
        assertEquals(List.of("org.example.See"), got);

        // A departing owner of a visible name: its unique name's NameOwnerChanged is shown too.
        Disconnect d = bus.disconnect(see);
        assertFalse(d.nameChanges().isEmpty());
        bus.emitSignal(noc(see.uniqueName()));
        assertEquals(1, drain(app).size());
        Disconnect h = bus.disconnect(hidden);
        assertFalse(h.nameChanges().isEmpty());
        bus.emitSignal(noc(hidden.uniqueName()));
        assertEquals(0, drain(app).size());
    }

    private static Message noc(String name) {
        return Fixtures.signal("/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged",
                Fixtures.Args.of(name, "", ""));
    }

    @Test
    void theDriverAsksTheCoreAndListNamesIsFiltered() {
        assertEquals(SendVerdict.Outcome.ALLOW,
                bus.endpointDriverCall(app, "org.freedesktop.DBus", "RequestName", "org.example.App", true, false).outcome());
        SendVerdict v = bus.endpointDriverCall(app, "org.freedesktop.DBus", "RequestName", "org.example.Talk", true,
                false);
        assertEquals(SendVerdict.Outcome.REFUSE, v.outcome());
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", v.errorName());
        assertEquals(SendVerdict.Outcome.REPLY_FALSE,
                bus.endpointDriverCall(app, "org.freedesktop.DBus", "NameHasOwner", "org.example.Hidden", true, false)
                        .outcome());
        assertEquals(SendVerdict.Outcome.REFUSE,
                bus.endpointDriverCall(app, "org.freedesktop.DBus.Monitoring", "BecomeMonitor", null, true, false)
                        .outcome());
        assertEquals(SendVerdict.Outcome.REFUSE,
                bus.endpointDriverCall(app, "org.freedesktop.DBus", "AddMatch", "type='signal',eavesdrop=true", true,
                        false).outcome());
        assertTrue(bus.endpointLists(app, "org.example.See"));
        assertTrue(bus.endpointLists(app, talk.uniqueName()), "the owner of a TALK name");
        assertTrue(bus.endpointLists(app, app.uniqueName()), "itself");
        assertFalse(bus.endpointLists(app, "org.example.Hidden"));
        assertFalse(bus.endpointLists(app, hidden.uniqueName()));
        Connection outside = client(null);
        assertTrue(bus.endpointLists(outside, "org.example.Hidden"), "outside nothing is hidden");
        assertFalse(bus.mayGetProcessHandles(app), "no pidfd of a host process into a sandbox");
        assertTrue(bus.mayGetProcessHandles(outside));
        assertEquals(SendVerdict.Outcome.ALLOW,
                bus.endpointDriverCall(outside, "org.freedesktop.DBus.Monitoring", "BecomeMonitor", null, true, false)
                        .outcome());
    }

    @Test
    void withoutFilterNothingChanges() {
        Connection open = client(new EndpointPolicy(EndpointFilter.builder("open").build()));
        assertEquals(Delivery.OK, bus.send(open, call("org.example.Hidden", 1)));
        assertTrue(bus.endpointLists(open, "org.example.Hidden"));
        assertTrue(new NameChange("x", null, null).name().equals("x"));
    }

    @Test
    void unrequestedRepliesToItAreDroppedAndRequestedOnesArrive() {
        Connection outsider = client(null);
        assertEquals(Delivery.DISCARDED, bus.send(outsider, reply(app.uniqueName(), 77)), "the proxy drops it too");
        assertEquals(0, drain(app).size());
        assertFalse(bus.endpointLists(app, outsider.uniqueName()), "an unexpected reply makes nobody visible");
        assertEquals(Delivery.OK, bus.send(app, call("org.example.Talk", 5)));
        drain(talk);
        assertEquals(Delivery.OK, bus.send(talk, reply(app.uniqueName(), 5)));
        assertEquals(1, drain(app).size());
    }

    @Test
    void aDepartedCallerIsForgotten() throws Exception {
        bus.matches().add(app, MatchRule.parse("type='signal'"));
        Connection outsider = client(null);
        bus.send(outsider, call(app.uniqueName(), 3));
        drain(app);
        assertEquals(1, app.endpointState().peerCount());
        bus.disconnect(outsider);
        bus.emitSignal(noc(outsider.uniqueName()));
        assertEquals(1, drain(app).size(), "its own departure is still shown");
        bus.disconnect(client(null));
        assertEquals(0, app.endpointState().peerCount(), "then its grant goes");
    }

    @Test
    void requestNameItselfHoldsTheOwnRule() {
        Denial d = bus.requestName(app, "org.example.Talk", 0).denial();
        assertEquals(Denial.Reason.ACCESS_DENIED, d.reason());
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", d.text(), "the proxy's text: the error name");
        assertEquals(null, bus.requestName(app, "org.example.App", 0).denial());
    }

    @Test
    void theOwnRuleComesBeforeTheBussOwnChecksAsThroughTheProxy() {
        // The proxy refuses these before dbus-daemon could call them invalid or reserved.
        for (String name : List.of("org.freedesktop.DBus", app.uniqueName(), ":1.999", "not a name")) {
            Denial d = bus.requestName(app, name, 0).denial();
            assertEquals(Denial.Reason.ACCESS_DENIED, d.reason(), name);
            assertEquals("org.freedesktop.DBus.Error.AccessDenied", d.text(), name);
        }
        Connection outside = client(null);
        assertEquals(Denial.Reason.INVALID_ARGS, bus.requestName(outside, "org.freedesktop.DBus", 0).denial().reason(),
                "outside an endpoint the bus's own checks answer");
    }
}
