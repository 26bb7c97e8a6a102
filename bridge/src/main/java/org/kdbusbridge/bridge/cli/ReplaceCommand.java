package org.kdbusbridge.bridge.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;

import org.kdbusbridge.bridge.client.BusConnection;
import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.config.BusConfigParser;
import org.kdbusbridge.bridge.config.ConfigException;

/**
 * {@code kdbus-bridge --replace [--session|--system|--address=A|--config-file=F]}: asks a running
 * bus to hand itself over to the installed program (Extensions1.Reexec, docs/extensions.md) and
 * waits for the new program's answer. Exit status 0 once the new bus serves; 1 with the bus's
 * error (HandOverFailed, HandOverInProgress, AccessDenied, or UnknownMethod from a bus without
 * the method: dbus-daemon and dbus-broker are left as they were) or why it could not ask.
 */
final class ReplaceCommand {
    static final String OPTION = "--replace";
    static final String IFACE = "org.kdbusbridge.Extensions1";
    /** A hand-over is a check run (a JVM start) plus the pause (another): minutes would be a hang. */
    static final Duration TIMEOUT = Duration.ofSeconds(120);
    static final String USAGE = "kdbus-bridge --replace [--session|--system|--address=ADDRESS|--config-file=FILE]";

    private ReplaceCommand() { }

    static int run(String[] argv) {
        String address;
        try {
            address = address(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("kdbus-bridge --replace: " + e.getMessage());
            System.err.println(USAGE);
            return 1;
        }
        try (BusConnection bus = BusConnection.open(address, "replace")) {
            BusMessage r = bus.callDriver(IFACE, "Reexec", "", new Object[0], TIMEOUT);
            if (r == null) {
                System.err.println("kdbus-bridge --replace: no answer from " + address + " within " + TIMEOUT.toSeconds() + " s");
                return 1;
            }
            if (r.isError()) {
                String text = r.body() != null && !r.body().isEmpty() ? r.stringArg(0) : null;
                System.err.println("kdbus-bridge --replace: " + r.errorName() + (text == null ? "" : ": " + text));
                return 1;
            }
            return 0;
        } catch (IOException e) {
            System.err.println("kdbus-bridge --replace: " + address + ": " + e.getMessage());
            return 1;
        }
    }

    /**
     * The bus to ask: --address, or --session (DBUS_SESSION_BUS_ADDRESS, else
     * $XDG_RUNTIME_DIR/bus), --system (DBUS_SYSTEM_BUS_ADDRESS, else the standard socket), or
     * the first {@code <listen>} of --config-file; with none of them, --session.
     */
    static String address(String[] argv) {
        String address = null;
        String which = null;
        String prev = null;
        for (String a : argv) {
            String value = null;
            if (a.equals(OPTION)) {
                prev = a;
                continue;
            } else if (a.equals("--session") || a.equals("--system")) {
                value = a;
            } else if (a.startsWith("--address=")) {
                value = "address:" + a.substring(10);
            } else if ("--address".equals(prev) && !a.startsWith("--")) {
                value = "address:" + a;
            } else if (a.startsWith("--config-file=")) {
                value = "config:" + a.substring(14);
            } else if ("--config-file".equals(prev) && !a.startsWith("--")) {
                value = "config:" + a;
            } else if (!a.equals("--address") && !a.equals("--config-file")) {
                throw new IllegalArgumentException("unknown option " + a);
            }
            prev = a;
            if (value == null) {
                continue;
            }
            if (which != null) {
                throw new IllegalArgumentException("one bus at a time: " + which + " and " + value);
            }
            which = value;
        }
        if (which == null || which.equals("--session")) {
            String env = System.getenv("DBUS_SESSION_BUS_ADDRESS");
            if (env != null && !env.isEmpty()) {
                return env;
            }
            String runtime = System.getenv("XDG_RUNTIME_DIR");
            if (runtime == null || runtime.isEmpty()) {
                throw new IllegalArgumentException("no session bus: DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset");
            }
            return "unix:path=" + Path.of(runtime, "bus");
        }
        if (which.equals("--system")) {
            String env = System.getenv("DBUS_SYSTEM_BUS_ADDRESS");
            return env != null && !env.isEmpty() ? env : "unix:path=/var/run/dbus/system_bus_socket";
        }
        if (which.startsWith("address:")) {
            address = which.substring(8);
        } else {
            try {
                BusConfig config = BusConfigParser.parse(Path.of(which.substring(7)), Main.configCache());
                if (config.listen().isEmpty()) {
                    throw new IllegalArgumentException(which.substring(7) + " has no <listen>");
                }
                address = config.listen().get(0);
            } catch (ConfigException e) {
                throw new IllegalArgumentException(e.getMessage(), e);
            }
        }
        return address;
    }
}
