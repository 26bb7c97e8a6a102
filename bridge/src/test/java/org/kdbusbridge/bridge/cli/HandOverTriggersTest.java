// Invariants under test (docs/handover.md section 1, step 3): SIGUSR2 asks for a hand-over only
// where _JAVA_SR_SIGNUM moved HotSpot's suspend/resume signal to another one it accepts (13..64;
// 12 is SIGUSR2 itself, anything else makes HotSpot fall back to 12); --replace finds the bus it
// asks as the design says, and refuses two at once or an unknown option; activated services get
// neither of the launcher's two variables.
package org.kdbusbridge.bridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.activation.Spawner;

class HandOverTriggersTest {
    @Test
    void sigusr2OnlyWhereTheJvmsSuspendSignalWasMoved() {
        assertNull(StopSignals.usr2Taken("40"));
        assertNull(StopSignals.usr2Taken("13"));
        assertNull(StopSignals.usr2Taken("64"));
        for (String v : new String[] {null, "12", "11", "65", "0", "abc", ""}) {
            assertNotNull(StopSignals.usr2Taken(v), String.valueOf(v));
        }
        assertTrue(StopSignals.usr2Taken(null).contains("_JAVA_SR_SIGNUM is not set"));
    }

    @Test
    void replaceAsksTheBusItIsPointedAt() {
        assertEquals("unix:path=/tmp/x", ReplaceCommand.address(new String[] {"--replace", "--address=unix:path=/tmp/x"}));
        assertEquals("unix:path=/tmp/y", ReplaceCommand.address(new String[] {"--replace", "--address", "unix:path=/tmp/y"}));
        assertThrows(IllegalArgumentException.class,
                () -> ReplaceCommand.address(new String[] {"--replace", "--system", "--address=unix:path=/tmp/x"}));
        assertThrows(IllegalArgumentException.class, () -> ReplaceCommand.address(new String[] {"--replace", "--fork"}));
        String system = System.getenv("DBUS_SYSTEM_BUS_ADDRESS");
        assertEquals(system != null && !system.isEmpty() ? system : "unix:path=/var/run/dbus/system_bus_socket",
                ReplaceCommand.address(new String[] {"--replace", "--system"}));
    }

    @Test
    void servicesGetNeitherOfTheLaunchersVariables() {
        Map<String, String> env = Spawner.busEnvironment(Map.of("PATH", "/usr/bin", "_JAVA_SR_SIGNUM", "40",
                "KDBUS_BRIDGE_LAUNCHER", "/opt/kdbus-bridge/bin/kdbus-bridge"));
        assertEquals(Map.of("PATH", "/usr/bin"), env);
    }
}
