package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/** Scenario 4: dbus-python (libdbus + GLib main loop), two connections in one script. */
class DbusPythonTest {
    static final String PYTHON = System.getProperty("compat.python", "/usr/bin/python3");

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void serviceCallAndSignal(BusKind kind, @TempDir Path tmp) throws Exception {
        Path script = tmp.resolve("two_connections.py");
        try (InputStream in = DbusPythonTest.class.getResourceAsStream("pytest_two_connections.py")) {
            assertNotNull(in, "script resource");
            Files.copy(in, script);
        }
        try (BusUnderTest bus = kind.start()) {
            Cmd.Result r = Cmd.run(List.of(PYTHON, script.toString(), bus.address()), Buses.T);
            assertEquals(0, r.exitCode(), r.describe());
            String out = r.stdout();
            Matcher a = Pattern.compile("(?m)^A (:\\d+\\.\\d+)$").matcher(out);
            Matcher b = Pattern.compile("(?m)^B (:\\d+\\.\\d+)$").matcher(out);
            assertTrue(a.find() && b.find(), r.describe());
            String ua = a.group(1);
            List<String> lines = out.lines().toList();
            assertTrue(lines.contains("owner " + ua), "GetNameOwner(com.example.PyTest) is A\n" + r.describe());
            assertTrue(lines.contains("error org.freedesktop.DBus.Error.UnknownMethod"), r.describe());
            assertTrue(lines.contains("reply echo:hi"), r.describe());
            assertTrue(lines.contains("signal Pong ping-1 from " + ua + " path /com/example/PyTest"), r.describe());
            assertTrue(lines.indexOf("error org.freedesktop.DBus.Error.UnknownMethod") < lines.indexOf("reply echo:hi"),
                    "replies in call order\n" + r.describe());
        }
    }
}
