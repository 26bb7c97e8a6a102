// Invariants: each proof program of docs/migration.md runs once on dbus-daemon and once on
// kdbus-bridge through Differential; a test passes only if the transcripts are identical after
// normalisation and the allow-list, and the exit statuses are equal (0 for these programs).
package org.kdbusbridge.compat;

import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.compat.harness.Differential;

/** The migration proof (issue 8): real programs behave the same on both buses. */
class MigrationProofTest {
    static String resource(String name) throws Exception {
        return Path.of(MigrationProofTest.class.getResource("migration/" + name).toURI()).toString();
    }

    @Test
    void gdbusAppExportingAndCallingAnObject() throws Exception {
        Differential.assertSameOnBothBuses("/usr/bin/python3", resource("gdbus_app.py"));
    }

    @Test
    void dbusPythonAppWithSignalsAndNameQueueing() throws Exception {
        Differential.assertSameOnBothBuses("/usr/bin/python3", resource("dbus_python_app.py"));
    }

    @Test
    void busctlSequence() throws Exception {
        Differential.assertSameOnBothBuses("/bin/sh", resource("busctl_sequence.sh"));
    }
}
