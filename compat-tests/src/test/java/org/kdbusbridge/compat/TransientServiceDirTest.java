// Invariants: each test runs the same assertions against /usr/bin/dbus-daemon and kdbus-bridge,
// each bus with its own fresh XDG_RUNTIME_DIR and XDG_DATA_HOME (never the user's).
package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * {@code <standard_session_servicedirs/>} and the transient service directory: at start-up the
 * bus creates $XDG_RUNTIME_DIR/dbus-1/services (and dbus-1), mode 0700, so a program can drop
 * a service file there and call ReloadConfig; only files named after their bus name count; a
 * runtime directory others can write to is not used (and nothing is created in it).
 */
class TransientServiceDirTest {
    static final String NAME = "com.example.Transient1";

    private static Path config(Path dir) throws Exception {
        StringBuilder x = new StringBuilder("<busconfig><type>session</type>")
                .append("<listen>unix:path=").append(dir.resolve("bus")).append("</listen>")
                .append("<auth>EXTERNAL</auth><standard_session_servicedirs/>")
                .append("<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>")
                .append("<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n");
        return Files.writeString(dir.resolve("bus.conf"), x.toString());
    }

    private static Path runtimeDir(Path dir, String mode) throws Exception {
        Path run = Files.createDirectory(dir.resolve("run"));
        Files.setPosixFilePermissions(run, PosixFilePermissions.fromString(mode));
        return run;
    }

    private static BusUnderTest start(BusKind kind, Path dir, Path run) throws Exception {
        return kind.start(Map.of("XDG_RUNTIME_DIR", run.toString(), "XDG_DATA_HOME", dir.resolve("data").toString()),
                config(dir));
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void createdAtStartUpAndReadOnReload(BusKind kind, @TempDir Path dir) throws Exception {
        Path run = runtimeDir(dir, "rwx------");
        try (BusUnderTest bus = start(kind, dir, run); RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            Path services = run.resolve("dbus-1/services");
            for (Path d : new Path[] {run.resolve("dbus-1"), services}) {
                assertTrue(Files.isDirectory(d), d + " exists once the bus is up");
                assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(d)), d.toString());
            }
            Message before = c.call(Message.call(NAME, "/foo", "com.example.bar", "Activate"), Buses.T);
            assertEquals(StartServiceByNameTest.UNKNOWN, before.errorName, before.toString());

            Files.writeString(services.resolve(NAME + ".service"),
                    "[D-BUS Service]\nName=" + NAME + "\nExec=/bin/false\n");
            // Strict naming there: a file not named after its bus name is ignored.
            Files.writeString(services.resolve("misnamed.service"),
                    "[D-BUS Service]\nName=com.example.Misnamed\nExec=/bin/false\n");
            Message reload = c.callBus("ReloadConfig", Buses.T, "");
            assertEquals(Message.METHOD_RETURN, reload.type, reload.toString());
            String listed = String.valueOf(c.callBus("ListActivatableNames", Buses.T, "").arg(0));
            assertTrue(listed.contains(NAME), listed);
            assertFalse(listed.contains("com.example.Misnamed"), listed);
            Message after = c.callBus("StartServiceByName", Buses.T, "su", NAME, 0L);
            assertEquals("org.freedesktop.DBus.Error.Spawn.ChildExited", after.errorName, after.toString());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void aRuntimeDirOthersCanWriteIsNotUsed(BusKind kind, @TempDir Path dir) throws Exception {
        Path run = runtimeDir(dir, "rwxrwxrwx");
        try (BusUnderTest bus = start(kind, dir, run); RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(Message.METHOD_RETURN, c.callBus("ListActivatableNames", Buses.T, "").type);
            assertFalse(Files.exists(run.resolve("dbus-1")), "nothing created in an unsafe XDG_RUNTIME_DIR");
        }
    }

    /**
     * As dbus-daemon, a start looks at the (unwatched) directory again: a dropped file is
     * found and a removed one is gone, without ReloadConfig.
     */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void dropsAndRemovalsCountWithoutReload(BusKind kind, @TempDir Path dir) throws Exception {
        Path run = runtimeDir(dir, "rwx------");
        try (BusUnderTest bus = start(kind, dir, run); RawClient c = RawClient.connectHello(bus.address(), Buses.T)) {
            Path file = run.resolve("dbus-1/services").resolve(NAME + ".service");
            Files.writeString(file, "[D-BUS Service]\nName=" + NAME + "\nExec=/bin/false\n");
            Message call = c.call(Message.call(NAME, "/foo", "com.example.bar", "Activate"), Buses.T);
            assertEquals("org.freedesktop.DBus.Error.Spawn.ChildExited", call.errorName, call.toString());
            Files.delete(file);
            Message gone = c.callBus("StartServiceByName", Buses.T, "su", NAME, 0L);
            assertEquals(StartServiceByNameTest.UNKNOWN, gone.errorName, gone.toString());
        }
    }
}
