package org.kdbusbridge.bridge.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.kdbusbridge.bridge.client.SessionEnvironment;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.config.BusConfigParser;
import org.kdbusbridge.bridge.config.ConfigException;
import org.kdbusbridge.bridge.server.BusServer;
import org.kdbusbridge.bridge.transport.TransportSettings;

/**
 * {@code kdbus-bridge run-session}: dbus-run-session's contract with our bus in-process. It
 * starts a bus, runs a program with DBUS_SESSION_BUS_ADDRESS set, stops the bus when the
 * program exits and exits with the program's status (128 + signal if it was killed, like
 * sh). Its own failures exit 127, as dbus-run-session's do.
 */
public final class RunSession {
    static final String ME = "kdbus-bridge-run-session";

    private RunSession() { }

    static int run(String[] argv) {
        String configFile = null;
        int prog = -1;
        String needsArg = null;
        for (int i = 0; i < argv.length; i++) {
            String arg = argv[i];
            if (needsArg != null) {
                if (needsArg.equals("--config-file")) {
                    if (configFile != null) {
                        return fail("--config-file given twice");
                    }
                    configFile = arg;
                }
                // --dbus-daemon=BINARY is accepted for compatibility; the bus is always ours.
                needsArg = null;
                continue;
            }
            if (arg.equals("--help")) {
                System.out.println(usage());
                return 0;
            } else if (arg.equals("--version")) {
                System.out.println(ME + " " + Main.VERSION);
                return 0;
            } else if (arg.startsWith("--config-file=")) {
                if (configFile != null) {
                    return fail("--config-file given twice");
                }
                configFile = arg.substring("--config-file=".length());
            } else if (arg.startsWith("--dbus-daemon=")) {
                continue;
            } else if (arg.equals("--config-file") || arg.equals("--dbus-daemon")) {
                needsArg = arg;
            } else if (arg.equals("--")) {
                prog = i + 1;
                break;
            } else if (arg.startsWith("-")) {
                return fail("option '" + arg + "' is unknown");
            } else {
                prog = i;
                break;
            }
        }
        if (prog < 0 || prog >= argv.length) {
            return fail(needsArg != null ? "option '" + needsArg + "' requires an argument"
                    : "a non-option argument is required");
        }
        BusConfig config;
        try {
            config = BusConfigParser.parse(Path.of(configFile != null ? configFile : Main.SESSION_CONF));
        } catch (ConfigException e) {
            return fail(e.getMessage());
        }
        BusServer server = new BusServer(config, TransportSettings.fromSystemProperties());
        String address;
        try {
            address = server.start();
        } catch (IOException | RuntimeException e) {
            return fail("failed to start the bus: " + e.getMessage());
        }
        try {
            List<String> command = new ArrayList<>(Arrays.asList(argv).subList(prog, argv.length));
            ProcessBuilder pb = new ProcessBuilder(command).inheritIO();
            SessionEnvironment.apply(pb.environment(), address);
            Process p;
            try {
                p = pb.start();
            } catch (IOException e) {
                return fail("failed to exec '" + command.get(0) + "': " + e.getMessage());
            }
            while (true) {
                try {
                    return p.waitFor(); // the JDK reports 128 + signal for a killed child
                } catch (InterruptedException e) {
                    // keep waiting: the program decides when the session ends
                }
            }
        } finally {
            server.stop();
        }
    }

    private static int fail(String message) {
        System.err.println(ME + ": " + message);
        return 127;
    }

    static String usage() {
        return ME + " [OPTIONS] [--] PROGRAM [ARGUMENTS]\n" + ME + " --version\n" + ME + " --help\n\n"
                + "Options:\n"
                + "--dbus-daemon=BINARY       accepted for compatibility (the bus is kdbus-bridge)\n"
                + "--config-file=FILENAME     bus configuration instead of the session one\n";
    }
}
