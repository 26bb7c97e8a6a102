package org.kdbusbridge.core.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

// The bus-driver method table (flatpak-proxy.c get_dbus_method_handler) and the decisions on it.
class DriverAccessTest {
    private static final String BUS = "org.freedesktop.DBus";
    private final Map<String, List<String>> owned = Map.of(":1.5", List.of("org.s"), ":1.6", List.of("org.o"));
    private final OwnedNames owners = u -> owned.getOrDefault(u, List.of());
    private final EndpointState state = new EndpointState(16, 16);
    private final EndpointPolicy policy = new EndpointPolicy(
            EndpointFilter.builder("ep").filtering(true).see("org.s").talk("org.t").own("org.o").build());

    private SendVerdict driver(String member, String arg0) {
        return policy.checkDriverCall(BUS, member, arg0, true, false, owners, state);
    }

    @Test
    void tableMatchesTheProxy() {
        assertEquals(DriverAccess.PASS, DriverAccess.of(BUS, "Hello"));
        assertEquals(DriverAccess.PASS, DriverAccess.of(BUS, "RemoveMatch"));
        assertEquals(DriverAccess.PASS, DriverAccess.of(BUS, "GetId"));
        assertEquals(DriverAccess.PASS_UNLESS_EAVESDROP, DriverAccess.of(BUS, "AddMatch"));
        assertEquals(DriverAccess.FILTER_NAME_LIST, DriverAccess.of(BUS, "ListNames"));
        assertEquals(DriverAccess.FILTER_NAME_LIST, DriverAccess.of(BUS, "ListActivatableNames"));
        assertEquals(DriverAccess.SEE_OR_FALSE, DriverAccess.of(BUS, "NameHasOwner"));
        assertEquals(DriverAccess.SEE_OR_NO_OWNER, DriverAccess.of(BUS, "GetNameOwner"));
        for (String m : List.of("GetConnectionUnixProcessID", "GetConnectionCredentials", "GetAdtAuditSessionData",
                "GetConnectionSELinuxSecurityContext", "GetConnectionUnixUser")) {
            assertEquals(DriverAccess.NEEDS_SEE, DriverAccess.of(BUS, m), m);
        }
        assertEquals(DriverAccess.NEEDS_TALK, DriverAccess.of(BUS, "StartServiceByName"));
        for (String m : List.of("RequestName", "ReleaseName", "ListQueuedOwners")) {
            assertEquals(DriverAccess.NEEDS_OWN, DriverAccess.of(BUS, m), m);
        }
        assertEquals(Level.OWN, DriverAccess.NEEDS_OWN.needed());
        assertEquals(Level.TALK, DriverAccess.NEEDS_TALK.needed());
        assertEquals(Level.SEE, DriverAccess.NEEDS_SEE.needed());
    }

    @Test
    void everythingElseIsDenied() {
        assertEquals(DriverAccess.DENY, DriverAccess.of(BUS, "UpdateActivationEnvironment"));
        assertEquals(DriverAccess.DENY, DriverAccess.of(BUS, "BecomeMonitor"));
        assertEquals(DriverAccess.DENY, DriverAccess.of("org.freedesktop.DBus.Monitoring", "BecomeMonitor"));
        assertEquals(DriverAccess.DENY, DriverAccess.of(BUS, "ReloadConfig"));
        assertEquals(DriverAccess.DENY, DriverAccess.of(BUS, "GetConnectionUnixProcessFD"));
        assertEquals(DriverAccess.DENY, DriverAccess.of("org.freedesktop.DBus.Peer", "Ping"));
        assertEquals(DriverAccess.DENY, DriverAccess.of("org.freedesktop.DBus.Properties", "GetAll"));
        assertEquals(DriverAccess.DENY, DriverAccess.of("org.freedesktop.DBus.Debug.Stats", "GetStats"));
        assertEquals(DriverAccess.DENY, DriverAccess.of(null, "Hello")); // no interface: refused
        assertEquals(DriverAccess.PASS, DriverAccess.of("org.freedesktop.DBus.Introspectable", "Introspect"));
        SendVerdict v = driver("UpdateActivationEnvironment", null);
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", v.errorName());
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", v.errorText());
        assertFalse(v.hidden());
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", policy.checkDriverCall(
                "org.freedesktop.DBus.Monitoring", "BecomeMonitor", null, true, false, owners, state).errorName());
    }

    @Test
    void eavesdropIsDetectedWhateverItsValueAndSpacing() {
        assertTrue(DriverAccess.mentionsEavesdrop("type='signal',eavesdrop='true'"));
        assertTrue(DriverAccess.mentionsEavesdrop("eavesdrop='false'"));
        assertTrue(DriverAccess.mentionsEavesdrop("type='signal', eavesdrop \t\r\n= 'true'"));
        assertTrue(DriverAccess.mentionsEavesdrop("eavesdrop,eavesdrop=true"));
        assertFalse(DriverAccess.mentionsEavesdrop("type='signal',member='eavesdrop'"));
        assertFalse(DriverAccess.mentionsEavesdrop("type='signal'"));
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", driver("AddMatch", "eavesdrop=true").errorName());
        assertSame(SendVerdict.ALLOW, driver("AddMatch", "type='signal',interface='a.b'"));
        assertSame(SendVerdict.ALLOW, driver("AddMatch", null)); // not a string: the driver will refuse it
    }

    @Test
    void nameListsAreFiltered() {
        assertSame(SendVerdict.ALLOW_FILTER_NAMES, driver("ListNames", null));
        assertSame(SendVerdict.ALLOW_FILTER_NAMES, driver("ListActivatableNames", null));
    }

    @Test
    void ownerQueriesOnHiddenNamesAnswerAsIfNobodyOwnedThem() {
        SendVerdict has = driver("NameHasOwner", "org.hidden");
        assertEquals(SendVerdict.Outcome.REPLY_FALSE, has.outcome());
        SendVerdict get = driver("GetNameOwner", "org.hidden");
        assertEquals(SendVerdict.Outcome.REFUSE, get.outcome());
        assertEquals("org.freedesktop.DBus.Error.NameHasNoOwner", get.errorName());
        assertTrue(get.hidden());
        assertSame(SendVerdict.ALLOW, driver("GetNameOwner", "org.s"));
        assertSame(SendVerdict.ALLOW, driver("NameHasOwner", ":1.5")); // owner of a SEE name
        assertEquals(SendVerdict.Outcome.REPLY_FALSE, driver("NameHasOwner", ":1.77").outcome());
        assertEquals(SendVerdict.Outcome.REPLY_FALSE, driver("NameHasOwner", null).outcome());
    }

    @Test
    void ownMethodsNeedOwnHiddenNamesLookUnknownVisibleOnesAreDenied() {
        assertSame(SendVerdict.ALLOW, driver("RequestName", "org.o"));
        assertSame(SendVerdict.ALLOW, driver("ReleaseName", "org.o"));
        assertSame(SendVerdict.ALLOW, driver("ListQueuedOwners", "org.o"));
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", driver("RequestName", "org.t").errorName());
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", driver("ListQueuedOwners", "org.s").errorName());
        SendVerdict hidden = driver("RequestName", "org.evil");
        assertEquals("org.freedesktop.DBus.Error.ServiceUnknown", hidden.errorName());
        assertTrue(hidden.hidden());
        SendVerdict noStart = policy.checkDriverCall(BUS, "RequestName", "org.evil", true, true, owners, state);
        assertEquals("org.freedesktop.DBus.Error.NameHasNoOwner", noStart.errorName());
        assertTrue(policy.checkDriverCall(BUS, "RequestName", "org.evil", false, false, owners, state).silent());
    }

    @Test
    void startServiceNeedsTalk() {
        assertSame(SendVerdict.ALLOW, driver("StartServiceByName", "org.t"));
        assertEquals("org.freedesktop.DBus.Error.AccessDenied", driver("StartServiceByName", "org.s").errorName());
        assertEquals("org.freedesktop.DBus.Error.ServiceUnknown",
                driver("StartServiceByName", "org.hidden").errorName());
    }

    @Test
    void credentialQueriesNeedSeeOnTheNameOrTheUniqueName() {
        state.helloAnswered(":1.1");
        assertSame(SendVerdict.ALLOW, driver("GetConnectionCredentials", "org.s"));
        assertSame(SendVerdict.ALLOW, driver("GetConnectionUnixUser", ":1.1")); // itself
        assertSame(SendVerdict.ALLOW, driver("GetConnectionUnixProcessID", ":1.6")); // owner of org.o
        assertEquals("org.freedesktop.DBus.Error.ServiceUnknown",
                driver("GetConnectionUnixUser", ":1.9").errorName());
        state.delivered(":1.9"); // it called the client
        assertSame(SendVerdict.ALLOW, driver("GetConnectionUnixUser", ":1.9"));
    }
}
