// Invariants: every assertion runs the scenario once on a fresh /usr/bin/dbus-daemon and once on
// a fresh kdbus-bridge (the shaded jar, as a process, as the other compat tests use it), never
// concurrently; the only tolerated differences are those of the one allow-list file
// (bridge/src/main/resources/.../migration/allowed-differences.txt); a scenario that fails
// (throws) on both buses fails the test with that exception, never passes it as "identical".
package org.kdbusbridge.compat.harness;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.List;
import java.util.Map;

import org.kdbusbridge.bridge.migration.BusLauncher;
import org.kdbusbridge.bridge.migration.DifferentialRunner;
import org.kdbusbridge.bridge.migration.Workload;

/**
 * "This scenario behaves identically on both buses", in one line:
 *
 * <pre>
 *   Differential.assertSameOnBothBuses(address -&gt; { ... talk to the bus at address ... });
 *   Differential.assertSameOnBothBuses("busctl", "--user", "list");
 * </pre>
 *
 * Everything that goes over each bus is recorded by a monitor and compared after
 * normalisation (org.kdbusbridge.bridge.migration.Normalizer; docs/migration.md).
 */
public final class Differential {
    private Differential() { }

    /** A scenario: Java code given a bus address (DBUS_SESSION_BUS_ADDRESS is not set for it). */
    @FunctionalInterface
    public interface Scenario {
        void run(String address) throws Exception;
    }

    public static BusLauncher referenceBus() {
        return BusLauncher.process("dbus-daemon", List.of(System.getProperty("compat.dbus-daemon", "/usr/bin/dbus-daemon")));
    }

    public static BusLauncher ourBus() {
        return BusLauncher.process("kdbus-bridge", BusKind.KDBUS_BRIDGE.command(List.of()));
    }

    /** Runs the scenario on both buses and returns the comparison (no assertion). */
    public static DifferentialRunner.Result compare(Scenario s) throws Exception {
        Buses.assumeBothSelected();
        Throwable[] failures = new Throwable[2];
        int[] run = {0};
        Workload w = (address, dir) -> {
            int i = run[0]++;
            try {
                s.run(address);
                return 0;
            } catch (Exception | AssertionError e) {
                failures[i] = e;
                return 1;
            }
        };
        DifferentialRunner.Result r = new DifferentialRunner(referenceBus(), ourBus()).run(w);
        if (failures[0] != null && failures[1] != null) {
            AssertionError e = new AssertionError("the scenario failed on both buses: " + failures[0], failures[0]);
            e.addSuppressed(failures[1]);
            throw e;
        }
        if (!r.matches() && (failures[0] != null || failures[1] != null)) {
            AssertionError e = new AssertionError(r.report().render());
            if (failures[0] != null) e.addSuppressed(failures[0]);
            if (failures[1] != null) e.addSuppressed(failures[1]);
            throw e;
        }
        return r;
    }

    /** Runs a command line with DBUS_SESSION_BUS_ADDRESS set on both buses and returns the comparison. */
    public static DifferentialRunner.Result compare(String... command) throws Exception {
        Buses.assumeBothSelected();
        return new DifferentialRunner(referenceBus(), ourBus())
                .run(Workload.command(List.of(command), Map.of(), Buses.T));
    }

    public static void assertSameOnBothBuses(Scenario s) throws Exception {
        check(compare(s));
    }

    public static void assertSameOnBothBuses(String... command) throws Exception {
        check(compare(command));
    }

    private static void check(DifferentialRunner.Result r) {
        if (!r.matches()) {
            fail("the scenario behaves differently on kdbus-bridge and dbus-daemon:\n" + r.report().render()
                    + "\n(work directories: " + r.reference().workDir() + ", " + r.ours().workDir() + ")");
        }
        if (r.referenceTranscript().messageCount() == 0) {
            fail("the scenario sent no message over the bus: nothing was compared");
        }
    }
}
