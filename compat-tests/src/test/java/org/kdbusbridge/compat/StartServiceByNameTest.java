// Invariants: every parameterized test makes the same assertions against /usr/bin/dbus-daemon
// and kdbus-bridge; the diff test runs the real `kdbus-bridge diff` command line, which itself
// starts both buses, and passes only if it reports IDENTICAL.
package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
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
 * StartServiceByName as dbus-daemon answers it (issue 13): a .service file is looked up first,
 * so a name without one is ServiceUnknown even when it has an owner (the caller's own unique
 * name, org.freedesktop.DBus, org.freedesktop.systemd1); only an owned activatable name is
 * ALREADY_RUNNING (2). playerctl and upower call it and used to get different answers.
 */
class StartServiceByNameTest {
    static final String UNKNOWN = "org.freedesktop.DBus.Error.ServiceUnknown";
    static final String OWNED = "com.example.SsbnOwned";
    static final String UNOWNED = "com.example.SsbnUnowned";
    static final String PLAIN = "com.example.SsbnPlain";

    private static long start(RawClient c, String name) throws Exception {
        Message r = c.callBus("StartServiceByName", Buses.T, "su", name, 0L);
        assertEquals(Message.METHOD_RETURN, r.type, name + ": " + r);
        return (Long) r.arg(0);
    }

    private static void assertUnknown(RawClient c, String name) throws Exception {
        Message r = c.callBus("StartServiceByName", Buses.T, "su", name, 0L);
        assertEquals(UNKNOWN, r.errorName, name + ": " + r);
        assertEquals("The name " + name + " was not provided by any .service files", r.arg(0));
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void aServiceFileIsLookedUpBeforeTheOwner(BusKind kind, @TempDir Path dir) throws Exception {
        Path conf = ActivationTest.config(dir, Map.of());
        ActivationTest.service(dir, OWNED, "/bin/false");
        ActivationTest.service(dir, UNOWNED, "/bin/false");
        try (BusUnderTest bus = kind.start(conf); RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(1L, c.callBus("RequestName", Buses.T, "su", OWNED, 4L).arg(0));
            assertEquals(1L, c.callBus("RequestName", Buses.T, "su", PLAIN, 4L).arg(0));
            assertUnknown(c, c.uniqueName());
            assertUnknown(c, "org.freedesktop.DBus");
            assertUnknown(c, "org.freedesktop.systemd1");
            assertUnknown(c, PLAIN);
            assertUnknown(c, ":1.9999");
            assertEquals(2L, start(c, OWNED), "an owned activatable name is ALREADY_RUNNING");
            Message failed = c.callBus("StartServiceByName", Buses.T, "su", UNOWNED, 0L);
            assertEquals("org.freedesktop.DBus.Error.Spawn.ChildExited", failed.errorName, failed.toString());
            assertEquals("Process " + UNOWNED + " exited with status 1", failed.arg(0));
        }
    }

    /** With --systemd-activation, org.freedesktop.systemd1 needs no file: the start waits for it. */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void systemdNeedsNoFileUnderSystemdActivation(BusKind kind, @TempDir Path dir) throws Exception {
        Path conf = ActivationTest.config(dir, Map.of());
        try (BusUnderTest bus = kind.start(conf, "--systemd-activation");
             RawClient c = RawClient.connectHello(bus.address(), Buses.T);
             RawClient systemd = RawClient.connectHello(bus.address(), Buses.T)) {
            long serial = c.send(Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "StartServiceByName")
                    .body("su", "org.freedesktop.systemd1", 0L));
            c.sync(Buses.T); // the start is pending before systemd takes its name
            assertEquals(1L, systemd.callBus("RequestName", Buses.T, "su", "org.freedesktop.systemd1", 4L).arg(0));
            Message r = c.awaitReply(serial, Buses.T);
            assertNotNull(r, "answered once systemd took its name");
            assertEquals(1L, r.arg(0), "SUCCESS: " + r);
            assertEquals(2L, start(c, "org.freedesktop.systemd1"));
            assertUnknown(c, c.uniqueName());
        }
    }

    /** `kdbus-bridge diff` over a python3-dbus probe of the same cases reports no difference. */
    @Test
    void theDifferentialRunnerSeesNoDifference(@TempDir Path dir) throws Exception {
        Buses.assumeBothSelected();
        Path services = Files.createDirectories(dir.resolve("data/dbus-1/services"));
        for (String n : List.of("com.example.ProbeOwned", "com.example.ProbeUnowned")) {
            Files.writeString(services.resolve(n + ".service"), "[D-BUS Service]\nName=" + n + "\nExec=/bin/false\n");
        }
        Path runtime = Files.createDirectory(dir.resolve("run"),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Path probe = ActivationTest.resource(dir, "start_service_probe.py");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Cmd.Result r = Cmd.run(List.of(java, "-jar", System.getProperty(BusKind.JAR_PROPERTY), "diff",
                        "--", "/usr/bin/python3", probe.toString()),
                Map.of("XDG_DATA_HOME", dir.resolve("data").toString(), "XDG_RUNTIME_DIR", runtime.toString()),
                Buses.T.multipliedBy(6));
        assertEquals(0, r.exitCode(), r.describe());
        assertTrue(r.stdout().contains("IDENTICAL"), r.describe());
    }
}
