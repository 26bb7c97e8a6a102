// Invariants: every scenario runs against each selected bus with the same script and the same
// assertions; a receiver always reads through the fd it received (a pipe whose other end the
// sender wrote); fd counts of the bus are compared only after the bus announced (NameOwnerChanged)
// that every client of the run has gone, so the wait is on a condition with a deadline.
package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/** Unix fd passing with dbus-python and GLib (python3-gi), and the bus's fd table after 10,000 passes. */
class FdPassingTest {
    static final String PYTHON = DbusPythonTest.PYTHON;
    static final int PASSES = 10_000;

    @TempDir
    Path tmp;

    private Path script() throws IOException {
        Path script = tmp.resolve("pyfds.py");
        if (!Files.exists(script)) {
            for (String name : List.of("pyfds.py", "rawwire.py")) { // rawwire: its raw-message encoder
                try (InputStream in = FdPassingTest.class.getResourceAsStream(name)) {
                    assertNotNull(in, "script resource " + name);
                    Files.copy(in, tmp.resolve(name));
                }
            }
        }
        return script;
    }

    private Cmd.Result run(BusUnderTest bus, String... args) throws IOException {
        List<String> argv = new ArrayList<>(List.of(PYTHON, script().toString()));
        argv.add(args[0]);
        argv.add(bus.address());
        argv.addAll(List.of(args).subList(1, args.length));
        return Cmd.run(argv, Buses.T);
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void dbusPythonPassesAPipeBothWays(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            Cmd.Result r = run(bus, "dbus-python");
            assertEquals(0, r.exitCode(), r.describe());
            assertEquals(List.of("read hello-fd", "got from-service", "denied org.freedesktop.DBus.Error.NotSupported"),
                    r.stdout().lines().toList(), r.describe());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void gdbusPassesAPipeBothWays(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            Cmd.Result r = run(bus, "gio");
            assertEquals(0, r.exitCode(), r.describe());
            assertEquals(List.of("read hello-fd", "got from-service", "denied org.freedesktop.DBus.Error.NotSupported"),
                    r.stdout().lines().toList(), r.describe());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void tenThousandPassesLeakNoFd(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start();
             RawClient observer = RawClient.connectHello(bus.address(), Buses.T)) {
            observer.callBus("AddMatch", Buses.T, "s",
                    "type='signal',interface='org.freedesktop.DBus',member='NameOwnerChanged'");
            leakRun(bus, observer, 500); // warm-up: lazily opened files of the bus are open now
            long before = fdCount(bus);
            String counts = leakRun(bus, observer, PASSES);
            long after = fdCount(bus);
            System.out.printf("[fd-leak] %s: %d passes (%s), bus fds before %d, after %d%n",
                    bus.name(), PASSES, counts, before, after);
            assertEquals("counts ok=6000 NotSupported=2000 ServiceUnknown=2000", counts);
            assertEquals(before, after, "fds of " + bus.name() + " after " + PASSES + " passes");
            assertTrue(bus.isAlive());
        }
    }

    /** Runs the leak scenario and waits until the bus says each of its clients has gone. */
    private String leakRun(BusUnderTest bus, RawClient observer, int passes) throws IOException {
        Cmd.Result r = run(bus, "leak", Integer.toString(passes));
        assertEquals(0, r.exitCode(), r.describe());
        List<String> lines = r.stdout().lines().toList();
        String names = lines.stream().filter(l -> l.startsWith("names ")).findFirst().orElseThrow();
        assertEquals("taken " + passes * 3 / 5, lines.get(lines.size() - 1), r.describe());
        for (String name : names.substring(6).split(" ")) {
            Message gone = observer.await(m -> m.type == Message.SIGNAL && "NameOwnerChanged".equals(m.member)
                    && name.equals(m.arg(0)) && "".equals(m.arg(2)), Buses.T, false);
            assertNotNull(gone, name + " left the bus");
        }
        return lines.stream().filter(l -> l.startsWith("counts ")).findFirst().orElseThrow();
    }

    private static long fdCount(BusUnderTest bus) throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc", Long.toString(bus.pid()), "fd"))) {
            return s.count();
        }
    }
}
