package org.kdbusbridge.bridge.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.bridge.transport.UnixAddress;

/**
 * {@code kdbus-bridge endpoint add|list|remove}: Endpoints1 for humans.
 * <ul>
 * <li>{@code add --address=BUS [--app-id=ID] [--instance-id=ID] [--max-connections=N]
 *     PATH|unix:path=PATH|unix:abstract=NAME [xdg-dbus-proxy options...]} (a relative PATH, bare
 *     or as unix:path=, is made absolute against the working directory) prints the endpoint's id and address, then holds it in the foreground until SIGTERM or
 *     SIGINT (the endpoint belongs to this process's connection).</li>
 * <li>{@code list --address=BUS}: one line per endpoint: id, address, app id, instance id, options.</li>
 * <li>{@code remove --address=BUS ID}.</li>
 * </ul>
 * Without --address, $DBUS_SESSION_BUS_ADDRESS. A refusal by the bus, for any verb, prints
 * {@code kdbus-bridge endpoint VERB: ERROR_NAME: text} (the name alone without text) and exits 1.
 */
final class EndpointCommand {
    static final String USAGE = "usage: kdbus-bridge endpoint add [--address=BUS] [--app-id=ID] [--instance-id=ID]"
            + " [--max-connections=N] PATH|unix:abstract=NAME [--filter] [--see=|--talk=|--own=NAME] [--call=|--broadcast=NAME=RULE] [--log] [--sloppy-names]\n"
            + "       kdbus-bridge endpoint list [--address=BUS]\n"
            + "       kdbus-bridge endpoint remove [--address=BUS] ID";

    private EndpointCommand() { }

    /**
     * The command line after the verb: the bus address, the AddEndpoint metadata (strings, and
     * max-connections as a Long, sent as {@code u}), and the remaining words (PATH and proxy
     * options for add, ID for remove).
     */
    record Args(String address, Map<String, Object> metadata, List<String> rest) {
        /** Throws IllegalArgumentException for a --max-connections that is not 1..2^32-1. */
        static Args parse(String[] argv, String defaultAddress) {
            String address = defaultAddress;
            Map<String, Object> metadata = new LinkedHashMap<>();
            List<String> rest = new ArrayList<>();
            for (int i = 1; i < argv.length; i++) {
                String a = argv[i];
                if (a.startsWith("--address=")) {
                    address = a.substring("--address=".length());
                } else if (a.startsWith("--app-id=")) {
                    metadata.put("app-id", a.substring("--app-id=".length()));
                } else if (a.startsWith("--instance-id=")) {
                    metadata.put("instance-id", a.substring("--instance-id=".length()));
                } else if (a.startsWith(MAX_CONNECTIONS)) {
                    metadata.put("max-connections", maxConnections(a.substring(MAX_CONNECTIONS.length())));
                } else {
                    rest.add(a);
                }
            }
            return new Args(address, metadata, rest);
        }

        /** A uint32 of at least 1, as the bus requires (0 would be an endpoint nobody can use). */
        private static Long maxConnections(String v) {
            long n;
            try {
                n = Long.parseLong(v);
            } catch (NumberFormatException e) {
                n = -1;
            }
            if (n < 1 || n > 0xFFFF_FFFFL) {
                throw new IllegalArgumentException("--max-connections wants a whole number from 1 to 4294967295, not '"
                        + v + "'");
            }
            return n;
        }
    }

    private static final String MAX_CONNECTIONS = "--max-connections=";

    static int run(String[] argv) {
        if (argv.length == 0 || argv[0].equals("--help")) {
            System.err.println(USAGE);
            return argv.length == 0 ? 1 : 0;
        }
        String verb = argv[0];
        Args args;
        try {
            args = Args.parse(argv, System.getenv("DBUS_SESSION_BUS_ADDRESS"));
        } catch (IllegalArgumentException e) {
            System.err.println("kdbus-bridge endpoint: " + e.getMessage());
            return 1;
        }
        String address = args.address();
        Map<String, Object> metadata = args.metadata();
        List<String> rest = args.rest();
        if (address == null || address.isEmpty()) {
            System.err.println("kdbus-bridge endpoint: no bus address (--address=, or DBUS_SESSION_BUS_ADDRESS)");
            return 1;
        }
        try {
            switch (verb) {
                case "add":
                    if (rest.isEmpty() || rest.get(0).startsWith("-")) {
                        return usage();
                    }
                    return add(address, where(rest.get(0)), rest.subList(1, rest.size()), metadata);
                case "list":
                    return rest.isEmpty() && metadata.isEmpty() ? list(address) : usage();
                case "remove":
                    return rest.size() == 1 && metadata.isEmpty() ? remove(address, rest.get(0)) : usage();
                default:
                    return usage();
            }
        } catch (EndpointClient.CallFailed e) { // the bus's error name, as dbus-send prints it
            System.err.println(refusalLine(verb, e.errorName, e.text));
            return 1;
        } catch (IOException e) {
            System.err.println("kdbus-bridge endpoint " + verb + ": " + e.getMessage());
            return 1;
        }
    }

    /**
     * The stderr line for a refusal by the bus, for every verb: {@code kdbus-bridge endpoint VERB:
     * ERROR_NAME: text}, or the name alone when the error carried no text.
     */
    static String refusalLine(String verb, String errorName, String text) {
        String head = "kdbus-bridge endpoint " + verb + ": " + errorName;
        return text == null || text.isEmpty() ? head : head + ": " + text;
    }

    /**
     * What AddEndpoint is asked to bind: a {@code unix:} address as given ({@code unix:abstract=},
     * an absolute {@code unix:path=}; the bus refuses other kinds), except that a relative
     * {@code unix:path=} is made absolute against this process's working directory, as a bare
     * word is (the bus refuses a relative path: its working directory is not the caller's).
     * A word that does not parse as an address goes as given, for the bus's own refusal text.
     */
    static String where(String word) {
        if (!word.startsWith("unix:")) {
            return Path.of(word).toAbsolutePath().toString();
        }
        UnixAddress a;
        try {
            a = UnixAddress.parse(word);
        } catch (UnixAddress.BadAddressException e) {
            return word;
        }
        if (a.kind() != UnixAddress.Kind.PATH || a.value().startsWith("/")) {
            return word;
        }
        return UnixAddress.path(Path.of(a.value()).toAbsolutePath().toString(), a.guid()).toString();
    }

    private static int usage() {
        System.err.println(USAGE);
        return 1;
    }

    private static int add(String address, String path, List<String> options, Map<String, Object> metadata)
            throws IOException {
        try (EndpointClient c = EndpointClient.open(address)) {
            StopSignals signals = StopSignals.install();
            String[] added = c.add(path, options, metadata);
            System.out.println(added[0] + " " + added[1]);
            System.out.flush();
            Thread watch = new Thread(() -> {
                c.awaitEnd();
                System.err.println("kdbus-bridge endpoint add: the bus closed the connection; endpoint " + added[0]
                        + " is gone");
                System.exit(1);
            }, "endpoint-bus");
            watch.setDaemon(true);
            watch.start();
            signals.await();
            return 0;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        }
    }

    private static int list(String address) throws IOException {
        try (EndpointClient c = EndpointClient.open(address)) {
            for (EndpointClient.Entry e : c.list()) {
                System.out.println(e.id() + "\t" + e.address() + "\t" + dash(e.appId()) + "\t" + dash(e.instanceId())
                        + "\t" + String.join(" ", e.options()));
            }
        }
        return 0;
    }

    private static String dash(String s) {
        return s == null || s.isEmpty() ? "-" : s;
    }

    private static int remove(String address, String id) throws IOException {
        try (EndpointClient c = EndpointClient.open(address)) {
            c.remove(id);
        }
        return 0;
    }
}
