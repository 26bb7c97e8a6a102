package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.regex.Pattern;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/** Scenario 3: systemd's busctl (sd-bus pipelines AUTH, BEGIN and Hello in one write). */
class BusctlTest {

    static Cmd.Result busctl(BusUnderTest bus, String... args) {
        List<String> argv = new java.util.ArrayList<>(List.of("busctl", "--address=" + bus.address(), "--no-pager"));
        argv.addAll(List.of(args));
        return Cmd.run(argv, Buses.T);
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void listShowsDriverAndActiveNames(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start();
             RawClient holder = RawClient.connectHello(bus.address(), Buses.T)) {
            Message r = holder.callBus("RequestName", Buses.T, "su", "com.example.Busctl", 4L);
            assertEquals(1L, r.arg(0));
            Cmd.Result res = busctl(bus, "list");
            assertTrue(res.ok(), res.describe());
            String out = res.stdout();
            assertTrue(Pattern.compile("(?m)^org\\.freedesktop\\.DBus\\s+" + bus.pid() + "\\s").matcher(out).find(),
                    "driver row with the bus pid\n" + res.describe());
            assertTrue(Pattern.compile("(?m)^com\\.example\\.Busctl\\s+" + ProcessHandle.current().pid() + "\\s.*"
                    + Pattern.quote(holder.uniqueName())).matcher(out).find(), "well-known name row\n" + res.describe());
            assertTrue(Pattern.compile("(?m)^" + Pattern.quote(holder.uniqueName()) + "\\s").matcher(out).find(),
                    "unique name row\n" + res.describe());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void callGetId(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            Cmd.Result res = busctl(bus, "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId");
            assertTrue(res.ok(), res.describe());
            assertTrue(res.stdout().strip().matches("s \"[0-9a-f]{32}\""), res.describe());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void statusOfDriver(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            Cmd.Result res = busctl(bus, "status", "org.freedesktop.DBus");
            assertEquals(0, res.exitCode(), res.describe());
            assertTrue(res.stdout().contains("PID=" + bus.pid()), res.describe());
            assertTrue(res.stdout().contains("UID=" + RawClient.uid()), res.describe());
        }
    }
}
