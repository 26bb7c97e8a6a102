package org.kdbusbridge.bridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

/**
 * {@code kdbus-bridge endpoint}'s reading of its command line: the metadata options become
 * AddEndpoint's a{sv} (max-connections as a Long, which EndpointClient sends as {@code u}), the
 * rest stays in order, and a --max-connections the bus would refuse is refused before it is asked.
 */
class EndpointCommandArgsTest {
    @Test
    void metadataOptionsAreTakenOutAndMaxConnectionsIsANumber() {
        EndpointCommand.Args a = EndpointCommand.Args.parse(new String[] {"add", "--address=unix:path=/b",
                "--app-id=org.example.App", "--max-connections=3", "/run/app/bus", "--filter", "--talk=org.example.X",
                "--instance-id=42"}, "unix:path=/default");
        Map<String, Object> want = new LinkedHashMap<>();
        want.put("app-id", "org.example.App");
        want.put("max-connections", 3L);
        want.put("instance-id", "42");
        assertEquals(want, a.metadata());
        assertEquals(List.of("/run/app/bus", "--filter", "--talk=org.example.X"), a.rest());
        assertEquals("unix:path=/b", a.address());
    }

    @Test
    void theUint32RangeIsAcceptedAtBothEnds() {
        assertEquals(1L, EndpointCommand.Args.parse(new String[] {"add", "--max-connections=1", "/p"}, null)
                .metadata().get("max-connections"));
        assertEquals(4294967295L, EndpointCommand.Args.parse(new String[] {"add", "--max-connections=4294967295", "/p"},
                null).metadata().get("max-connections"));
        assertEquals("unix:path=/default", EndpointCommand.Args.parse(new String[] {"list"}, "unix:path=/default").address());
    }

    @Test
    void zeroNegativeTooLargeAndNonNumbersAreRefused() {
        for (String v : List.of("0", "-1", "4294967296", "abc", "", "2.5")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> EndpointCommand.Args.parse(new String[] {"add", "--max-connections=" + v, "/p"}, null), v);
            assertTrue(e.getMessage().contains("--max-connections") && e.getMessage().contains("'" + v + "'"), e.getMessage());
        }
    }

    @Test
    void runRefusesABadValueWithStatusOneWithoutABus() {
        assertEquals(1, EndpointCommand.run(new String[] {"add", "--address=unix:path=/nonexistent/bus",
                "--max-connections=0", "/tmp/x"}));
    }

    @Test
    void aUnixAddressGoesAsGivenAndAnythingElseIsAPathMadeAbsolute() {
        assertEquals("unix:abstract=kbb-app", EndpointCommand.where("unix:abstract=kbb-app"));
        assertEquals("unix:path=/run/app/bus", EndpointCommand.where("unix:path=/run/app/bus"));
        assertEquals("/run/app/bus", EndpointCommand.where("/run/app/bus"));
        assertEquals(java.nio.file.Path.of("app-bus").toAbsolutePath().toString(), EndpointCommand.where("app-bus"));
    }

    @Test
    void aRelativeUnixPathIsMadeAbsoluteAgainstTheCallersWorkingDirectory() {
        String abs = java.nio.file.Path.of("app-bus").toAbsolutePath().toString();
        assertEquals("unix:path=" + org.kdbusbridge.bridge.transport.UnixAddress.escape(abs),
                EndpointCommand.where("unix:path=app-bus"));
        assertEquals(java.nio.file.Path.of("sub/app bus").toAbsolutePath().toString(),
                org.kdbusbridge.bridge.transport.UnixAddress.parse(EndpointCommand.where("unix:path=sub/app%20bus")).value());
        // An address that does not parse goes as given: the bus says what is wrong with it.
        assertEquals("unix:path=", EndpointCommand.where("unix:path="));
        assertEquals("unix:dir=rel", EndpointCommand.where("unix:dir=rel"));
    }

    @Test
    void aRefusalPrintsTheErrorNameAndTextOrTheNameAlone() {
        assertEquals("kdbus-bridge endpoint remove: org.freedesktop.DBus.Error.InvalidArgs: No endpoint 'e9'",
                EndpointCommand.refusalLine("remove", "org.freedesktop.DBus.Error.InvalidArgs", "No endpoint 'e9'"));
        assertEquals("kdbus-bridge endpoint list: org.freedesktop.DBus.Error.AccessDenied",
                EndpointCommand.refusalLine("list", "org.freedesktop.DBus.Error.AccessDenied", null));
        assertEquals("kdbus-bridge endpoint add: org.example.Error",
                EndpointCommand.refusalLine("add", "org.example.Error", ""));
    }
}
