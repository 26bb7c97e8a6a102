package org.kdbusbridge.compat;

import java.nio.file.Path;
import java.util.List;

import org.kdbusbridge.compat.harness.BusKind;

/** Command lines of a bus on a config file: ours through the real launcher (bin/kdbus-bridge), or dbus-daemon. */
final class Launched {
    private Launched() {
    }

    /** {@code --config-file=conf --nofork --print-address} for {@code kind}. */
    static List<String> onConfig(BusKind kind, Path conf) {
        String exe = kind == BusKind.KDBUS_BRIDGE ? DropInTest.BIN + "/kdbus-bridge" : "/usr/bin/dbus-daemon";
        return List.of(exe, "--config-file=" + conf, "--nofork", "--print-address");
    }
}
