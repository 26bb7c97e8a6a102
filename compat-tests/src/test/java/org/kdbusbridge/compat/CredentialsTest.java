package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * GetConnectionCredentials (issue 13, item 9): the same client gets the same UnixUserID,
 * UnixGroupIDs (SO_PEERGROUPS plus the primary gid, ascending), ProcessID and
 * LinuxSecurityLabel presence from dbus-daemon and from us, and the bus's own credentials
 * have the same keys; our deliberate addition, ProcessFD, is a pidfd of the caller and goes
 * only to callers that negotiated fd passing.
 */
class CredentialsTest {
    @TempDir
    Path tmp;

    /** The same process credentials each time: as it is, and with groups set by setpriv. */
    static final List<List<String>> RUNS = List.of(List.of(),
            List.of("setpriv", "--groups=44,27,5,44", "--regid=100"),
            List.of("setpriv", "--groups=0,5", "--regid=5"),
            List.of("setpriv", "--clear-groups", "--regid=7"));

    private List<List<String>> run(BusUnderTest bus) throws Exception {
        Path script = tmp.resolve("credentials.py");
        if (!Files.exists(script)) {
            try (InputStream in = CredentialsTest.class.getResourceAsStream("credentials.py")) {
                assertNotNull(in, "script resource");
                Files.copy(in, script);
            }
        }
        List<List<String>> out = new ArrayList<>();
        for (List<String> prefix : RUNS) {
            List<String> argv = new ArrayList<>(prefix);
            argv.addAll(List.of(DbusPythonTest.PYTHON, script.toString(), bus.address()));
            Cmd.Result r = Cmd.run(argv, Buses.T);
            assertEquals(0, r.exitCode(), r.describe());
            List<String> lines = r.stdout().lines().toList();
            assertTrue(lines.contains("pid-is-me True"), r.describe());
            assertTrue(lines.contains("bus-pid " + bus.pid()), "the bus's own ProcessID\n" + r.describe());
            out.add(lines);
        }
        return out;
    }

    @Test
    void sameCredentialsFromBothBuses() throws Exception {
        Buses.assumeBothSelected();
        List<List<String>> reference;
        List<List<String>> ours;
        try (BusUnderTest bus = BusKind.DBUS_DAEMON.start()) {
            reference = run(bus);
        }
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start()) {
            ours = run(bus);
        }
        for (int i = 0; i < RUNS.size(); i++) {
            List<String> ref = reference.get(i);
            List<String> got = ours.get(i);
            assertTrue(ref.contains("processfd absent"), "dbus-daemon 1.14 sends no ProcessFD: " + ref);
            assertTrue(got.contains("processfd is-me"), "our ProcessFD is a pidfd of the caller: " + got);
            assertEquals(withoutVarying(ref), withoutVarying(got), "run " + RUNS.get(i));
        }
        assertTrue(reference.get(1).contains("groups [5, 27, 44, 44, 100]"), reference.get(1).toString());
    }

    /** Lines that must be equal: all but the pids and dbus-daemon's lack of ProcessFD. */
    private static List<String> withoutVarying(List<String> lines) {
        return lines.stream().filter(l -> !l.startsWith("bus-pid ") && !l.startsWith("processfd ")).toList();
    }

    /** A caller that did not negotiate fd passing gets no ProcessFD key (and no fds). */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void noProcessFdWithoutFdPassing(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start(); RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            Message r = c.callBus("GetConnectionCredentials", Buses.T, "s", c.uniqueName());
            assertEquals(Message.METHOD_RETURN, r.type, r.toString());
            assertEquals(0, r.unixFds, "no fds for a caller that can't take them");
            @SuppressWarnings("unchecked")
            Map<Object, Object> creds = (Map<Object, Object>) r.arg(0);
            assertFalse(creds.containsKey("ProcessFD"), creds.toString());
            assertTrue(creds.containsKey("UnixGroupIDs"), creds.toString());
            assertTrue(creds.containsKey("ProcessID") && creds.containsKey("UnixUserID"), creds.toString());
        }
    }
}
