package org.kdbusbridge.compat.harness;

import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Assumptions;

/** JUnit glue: the buses a scenario runs against, and common timeouts. */
public final class Buses {
    private Buses() {}

    /** Deadline for one client command or one awaited message. */
    public static final Duration T = Duration.ofSeconds(20);
    /** Deadline for things that should happen "now" on a local bus. */
    public static final Duration SHORT = Duration.ofSeconds(10);

    /** {@code @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")}. */
    public static Stream<BusKind> buses() {
        return BusKind.selected().stream();
    }

    /** For tests that compare both buses: skipped (not failed) when only one side is selected. */
    public static void assumeBothSelected() {
        List<BusKind> sel = BusKind.selected();
        Assumptions.assumeTrue(sel.contains(BusKind.DBUS_DAEMON) && sel.contains(BusKind.KDBUS_BRIDGE),
                "cross-bus comparison needs -Dcompat.buses=dbus-daemon,kdbus-bridge (the default)");
    }
}
