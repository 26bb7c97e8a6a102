package org.kdbusbridge.bridge.endpoint;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.core.endpoint.CallRule;
import org.kdbusbridge.core.endpoint.EndpointFilter;
import org.kdbusbridge.core.endpoint.NamePattern;
import org.kdbusbridge.core.endpoint.NameRule;
import org.kdbusbridge.core.name.NameSyntax;

/**
 * xdg-dbus-proxy's command line, read as the proxy reads it (dbus-proxy.c main, start_proxy,
 * parse_generic_args; flatpak-proxy.c filter_new_from_rule), into one {@link EndpointFilter}
 * per ADDRESS PATH pair. Refusals carry the proxy's messages.
 *
 * What it accepts: --see/--talk/--own=NAME, where NAME may end in ".*" (a subtree) and what is
 * left must be a valid well-known bus name (so "org.*" is refused: "org" has one element);
 * --call/--broadcast=NAME=RULE, split at the first '=' after the option, NAME taken as it comes
 * (the proxy validates neither it nor RULE; a trailing ".*" still makes a subtree); --filter,
 * --log, --sloppy-names; and anywhere, --fd=FD, --args=FD (NUL-separated arguments read from
 * FD, inserted where the option stood), --help, --version. Anything else starting with '-' is
 * an unknown argument; anything else starts the next ADDRESS PATH pair (even an empty string).
 */
public final class ProxyRuleParser {
    private ProxyRuleParser() { }

    /** Reads everything from a file descriptor, for --args=FD. */
    @FunctionalInterface
    public interface ArgsSource {
        byte[] readAll(int fd) throws IOException;
    }

    /** What the command line asks for: run the proxies, or print help or the version and exit 0. */
    public enum Action { RUN, HELP, VERSION }

    /** One ADDRESS PATH pair and its filter (endpoint id: the socket path). */
    public record ProxySpec(String address, String socketPath, EndpointFilter filter) { }

    /** {@code syncFd}: the last --fd=FD, or -1. {@code proxies}: empty unless RUN. */
    public record CommandLine(Action action, int syncFd, List<ProxySpec> proxies) {
        public CommandLine {
            proxies = List.copyOf(proxies);
        }
    }

    /** The whole command line (without argv[0]). */
    public static CommandLine parseCommandLine(List<String> argv, ArgsSource argsSource) throws ProxyArgumentException {
        if (argv.isEmpty()) {
            throw new ProxyArgumentException("", true);
        }
        Cursor c = new Cursor(new ArrayList<>(argv), argsSource);
        List<ProxySpec> proxies = new ArrayList<>();
        while (c.i < c.args.size()) {
            String arg = c.args.get(c.i);
            if (isOption(arg)) {
                Action a = c.generic();
                if (a != Action.RUN) {
                    return new CommandLine(a, c.syncFd, List.of());
                }
            } else {
                ProxySpec p = c.proxy();
                if (p == null) {
                    return new CommandLine(c.stopAction, c.syncFd, List.of());
                }
                proxies.add(p);
            }
        }
        if (proxies.isEmpty()) {
            throw new ProxyArgumentException("No proxies specified");
        }
        return new CommandLine(Action.RUN, c.syncFd, proxies);
    }

    /**
     * One proxy's filter options alone (what follows ADDRESS PATH), for callers that take a rule
     * set without the rest of the command line (the control API, the CLI). The general options
     * (--fd, --args, --help, --version) and non-options are refused here as unknown arguments.
     */
    public static EndpointFilter parseOptions(String endpointId, List<String> options) throws ProxyArgumentException {
        EndpointFilter.Builder b = EndpointFilter.builder(endpointId);
        for (String arg : options) {
            if (!filterOption(arg, b)) {
                throw new ProxyArgumentException("Unknown argument " + arg);
            }
        }
        return b.build();
    }

    /**
     * A --call/--broadcast RULE, {@code [METHOD][@PATH]}, for the names of {@code name}
     * (flatpak-proxy.c filter_new_from_rule): PATH is what follows the first '@' if anything
     * does, a subtree if it ends in "/*"; METHOD is what precedes it: empty or starting with
     * '*' matches any interface and member; otherwise its last '.' splits it into interface
     * and member, a member of "*" meaning any, and without a '.' it is all interface. Nothing
     * is validated, as in the proxy: a rule that can match nothing is accepted.
     */
    public static CallRule parseRule(NamePattern name, String rule) {
        String path = null;
        boolean pathSubtree = false;
        int at = rule.indexOf('@');
        if (at >= 0 && at + 1 < rule.length()) {
            path = rule.substring(at + 1);
            if (path.endsWith("/*")) {
                pathSubtree = true;
                path = path.substring(0, path.length() - 2);
            }
        }
        int methodEnd = at >= 0 ? at : rule.length();
        String iface = null;
        String member = null;
        if (methodEnd != 0 && rule.charAt(0) != '*') {
            iface = rule.substring(0, methodEnd);
            int dot = iface.lastIndexOf('.');
            if (dot >= 0) {
                String m = iface.substring(dot + 1);
                iface = iface.substring(0, dot);
                member = m.equals("*") ? null : m;
            }
        }
        return new CallRule(name, iface, member, path, pathSubtree);
    }

    /** The split of an --args blob: each NUL ends an argument (empty ones too); a tail without NUL is one more. */
    public static List<String> splitArgs(byte[] data) {
        List<String> out = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < data.length; i++) {
            if (data[i] == 0) {
                out.add(new String(data, start, i - start, java.nio.charset.StandardCharsets.UTF_8));
                start = i + 1;
            }
        }
        if (start < data.length) {
            out.add(new String(data, start, data.length - start, java.nio.charset.StandardCharsets.UTF_8));
        }
        return out;
    }

    private static boolean isOption(String arg) {
        return !arg.isEmpty() && arg.charAt(0) == '-';
    }

    /** Applies one filter option to {@code b}; false if {@code arg} is none of them. */
    private static boolean filterOption(String arg, EndpointFilter.Builder b) throws ProxyArgumentException {
        if (arg.startsWith("--see=") || arg.startsWith("--talk=") || arg.startsWith("--own=")) {
            String name = arg.substring(arg.indexOf('=') + 1);
            boolean wildcard = name.endsWith(".*");
            if (wildcard) {
                name = name.substring(0, name.length() - 2);
            }
            if (NameSyntax.isUniqueName(name) || !NameSyntax.isValidBusName(name)) {
                throw new ProxyArgumentException("'" + name + "' is not a valid dbus name");
            }
            NamePattern p = new NamePattern(name, wildcard);
            // The proxy tells them apart by the option's third character.
            b.name(arg.charAt(2) == 't' ? NameRule.talk(p) : arg.charAt(2) == 'o' ? NameRule.own(p) : NameRule.see(p));
            return true;
        }
        if (arg.startsWith("--call=") || arg.startsWith("--broadcast=")) {
            String rest = arg.substring(arg.indexOf('=') + 1);
            int nameEnd = rest.indexOf('=');
            if (nameEnd < 0) {
                throw new ProxyArgumentException("'" + rest + "' is not a valid name + rule");
            }
            String name = rest.substring(0, nameEnd);
            boolean wildcard = name.endsWith(".*");
            if (wildcard) {
                name = name.substring(0, name.length() - 2);
            }
            CallRule r = parseRule(new NamePattern(name, wildcard), rest.substring(nameEnd + 1));
            if (arg.startsWith("--call=")) {
                b.call(r);
            } else {
                b.broadcast(r);
            }
            return true;
        }
        switch (arg) {
            case "--log" -> b.logMessages(true);
            case "--filter" -> b.filtering(true);
            case "--sloppy-names" -> b.sloppyNames(true);
            default -> {
                return false;
            }
        }
        return true;
    }

    /** The walk over the (growing, with --args) argument list. */
    private static final class Cursor {
        final List<String> args;
        final ArgsSource argsSource;
        int i;
        int syncFd = -1;
        Action stopAction = Action.RUN;

        Cursor(List<String> args, ArgsSource argsSource) {
            this.args = args;
            this.argsSource = argsSource;
        }

        /** ADDRESS PATH and the options after them; null if --help or --version stopped everything. */
        ProxySpec proxy() throws ProxyArgumentException {
            if (i >= args.size() || isOption(args.get(i))) {
                throw new ProxyArgumentException("No bus address given");
            }
            String address = args.get(i++);
            if (i >= args.size() || isOption(args.get(i))) {
                throw new ProxyArgumentException("No socket path given");
            }
            String path = args.get(i++);
            EndpointFilter.Builder b = EndpointFilter.builder(path);
            while (i < args.size() && isOption(args.get(i))) {
                if (filterOption(args.get(i), b)) {
                    i++;
                } else {
                    Action a = generic();
                    if (a != Action.RUN) {
                        stopAction = a;
                        return null;
                    }
                }
            }
            return new ProxySpec(address, path, b.build());
        }

        /** --help, --version, --fd=, --args= (dbus-proxy.c parse_generic_args). */
        Action generic() throws ProxyArgumentException {
            String arg = args.get(i);
            if (arg.equals("--help")) {
                return Action.HELP;
            }
            if (arg.equals("--version")) {
                return Action.VERSION;
            }
            if (arg.startsWith("--fd=")) {
                String s = arg.substring("--fd=".length());
                int fd = parseFd(s);
                if (fd < 0) {
                    throw new ProxyArgumentException("Invalid fd " + s);
                }
                syncFd = fd;
                i++;
                return Action.RUN;
            }
            if (arg.startsWith("--args=")) {
                String s = arg.substring("--args=".length());
                int fd = parseFd(s);
                if (fd < 0) {
                    throw new ProxyArgumentException("Invalid --args fd " + s);
                }
                byte[] data;
                try {
                    data = argsSource.readAll(fd);
                } catch (IOException e) {
                    throw new ProxyArgumentException("Failed to load --args: " + e.getMessage());
                }
                i++;
                args.addAll(i, splitArgs(data));
                return Action.RUN;
            }
            throw new ProxyArgumentException("Unknown argument " + arg);
        }
    }

    /**
     * A file descriptor number as strtol reads it (leading white space, a sign, decimal
     * digits, nothing after); -1 if it is not one or is negative. Values beyond int are
     * refused (the proxy would truncate them).
     */
    static int parseFd(String s) {
        int k = 0;
        while (k < s.length() && " \t\n\u000b\f\r".indexOf(s.charAt(k)) >= 0) {
            k++;
        }
        boolean negative = false;
        if (k < s.length() && (s.charAt(k) == '+' || s.charAt(k) == '-')) {
            negative = s.charAt(k) == '-';
            k++;
        }
        int digitsStart = k;
        long v = 0;
        while (k < s.length() && s.charAt(k) >= '0' && s.charAt(k) <= '9') {
            v = v * 10 + (s.charAt(k) - '0');
            if (v > Integer.MAX_VALUE) {
                return -1;
            }
            k++;
        }
        if (k == digitsStart || k != s.length()) {
            return -1;
        }
        return negative ? (v == 0 ? 0 : -1) : (int) v;
    }
}
