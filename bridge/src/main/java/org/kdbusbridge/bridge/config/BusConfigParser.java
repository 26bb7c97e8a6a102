package org.kdbusbridge.bridge.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.stream.Stream;

import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.policy.PolicyContext;
import org.kdbusbridge.core.policy.PolicyException;
import org.kdbusbridge.core.policy.PolicyRule;
import org.kdbusbridge.core.policy.PolicyRuleParser;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads dbus-daemon busconfig XML (session.conf, system.conf and their includes).
 *
 * Invariants: never touches the network (the DOCTYPE's DTD is not fetched); every error
 * names the file and line; include cycles are refused; a missing includedir is skipped with
 * a warning, a missing include is an error unless ignore_missing="yes"; elements, their
 * nesting and their attributes are checked as dbus-daemon checks them (unknown ones are
 * errors); every {@code <policy>} rule goes into the config's policy database in file order,
 * includes expanded in place; a broken includedir fragment is skipped whole.
 */
public final class BusConfigParser {
    private static final Logger LOG = LoggerFactory.getLogger(BusConfigParser.class);
    private static final int MAX_INCLUDE_DEPTH = 32;

    /** Which elements may appear inside which; elements not listed as keys take no children. */
    private static final Map<String, Set<String>> CHILDREN = Map.of(
            "busconfig", Set.of("type", "user", "fork", "keep_umask", "syslog", "listen", "pidfile", "auth",
                    "allow_anonymous", "includedir", "include", "servicedir", "standard_session_servicedirs",
                    "standard_system_servicedirs", "servicehelper", "limit", "policy", "apparmor", "selinux"),
            "policy", Set.of("allow", "deny"),
            "selinux", Set.of("associate"));

    /** The attributes each element may carry (allow/deny are checked by PolicyRuleParser). */
    private static final Map<String, Set<String>> ATTRIBUTES = Map.ofEntries(
            Map.entry("include", Set.of("ignore_missing", "if_selinux_enabled", "selinux_root_relative")),
            Map.entry("limit", Set.of("name")),
            Map.entry("policy", Set.of("context", "user", "group", "at_console")),
            Map.entry("apparmor", Set.of("mode")),
            Map.entry("associate", Set.of("own", "context")));

    /** Elements whose text is their value and must not be empty. */
    private static final Set<String> NEEDS_CONTENT = Set.of("include", "user", "type", "listen", "pidfile", "auth",
            "servicedir", "servicehelper", "includedir", "limit");

    private final Deque<Path> stack = new ArrayDeque<>();
    private final Set<Path> seen = new HashSet<>();
    /** Set once a group rule or {@code <policy group=>} was seen: then the group table is read. */
    private boolean needGroups;

    private final ConfigCache cache;
    /** The environment and home directory the standard session service directories come from (the bus's own). */
    private final Map<String, String> env;
    private final String home;

    private BusConfigParser(ConfigCache cache, Map<String, String> env, String home) {
        this.cache = cache;
        this.env = env;
        this.home = home;
    }

    /** Parses {@code file} and everything it includes. */
    public static BusConfig parse(Path file) throws ConfigException {
        return parse(file, ConfigCache.NONE);
    }

    /** As {@link #parse(Path)}, taking files that did not change since they were last read from {@code cache}. */
    public static BusConfig parse(Path file, ConfigCache cache) throws ConfigException {
        return parse(file, cache, System.getenv(), System.getProperty("user.home"));
    }

    /**
     * As {@link #parse(Path, ConfigCache)} for a bus whose environment is {@code env} (XDG
     * variables) and whose home is {@code home}: a bus hosted in a shared JVM has its front's,
     * not the JVM's.
     */
    public static BusConfig parse(Path file, ConfigCache cache, Map<String, String> env, String home)
            throws ConfigException {
        BusConfig config = new BusConfig();
        BusConfigParser parser = new BusConfigParser(cache, env, home);
        parser.parseInto(config, file.toAbsolutePath().normalize(), false);
        config.finishPolicy(parser.needGroups);
        return config;
    }

    private void parseInto(BusConfig config, Path file, boolean included) throws ConfigException {
        if (stack.size() > MAX_INCLUDE_DEPTH || stack.contains(file)) {
            throw new ConfigException(file + ": circular inclusion of config files");
        }
        ConfigDocument doc = cache.load(file);
        stack.push(file);
        seen.add(file);
        config.sourceFiles.add(file.toString());
        try {
            doc.replay(new Handler(config, file));
        } finally {
            stack.pop();
        }
    }

    private final class Handler implements ConfigDocument.Sink {
        private final BusConfig config;
        private final Path file;
        private int line;
        private final Deque<String> elements = new ArrayDeque<>();
        private final StringBuilder text = new StringBuilder();
        /** The context of the open {@code <policy>}; null when its user/group is unknown (rules dropped). */
        private PolicyContext policyContext;
        private boolean includeIgnoreMissing;
        private boolean includeIfSelinux;
        private String limitName;

        Handler(BusConfig config, Path file) {
            this.config = config;
            this.file = file;
        }

        private ConfigException fail(String msg) {
            return new ConfigException(file + ":" + line + ": " + msg);
        }

        private void warn(String msg) {
            LOG.warn("{}:{}: {}", file, line, msg);
        }

        /** The value of attribute {@code name} in name/value pairs, or null. */
        private static String value(String[] atts, String name) {
            for (int i = 0; i + 1 < atts.length; i += 2) {
                if (atts[i].equals(name)) {
                    return atts[i + 1];
                }
            }
            return null;
        }

        @Override
        public void start(String qName, String[] atts, int line) throws ConfigException {
            this.line = line;
            String parent = elements.peek();
            if (parent == null) {
                if (!qName.equals("busconfig")) {
                    throw fail("Unknown element \"" + qName + "\" at root of configuration file");
                }
            } else if (!CHILDREN.getOrDefault(parent, Set.of()).contains(qName)) {
                throw fail("Element <" + qName + "> not allowed inside <" + parent + "> in configuration file");
            }
            if (!qName.equals("allow") && !qName.equals("deny")) {
                Set<String> allowed = ATTRIBUTES.getOrDefault(qName, Set.of());
                for (int i = 0; i < atts.length; i += 2) {
                    if (!allowed.contains(atts[i])) {
                        throw fail("Attribute \"" + atts[i] + "\" is not allowed on <" + qName + ">");
                    }
                }
            }
            text.setLength(0);
            switch (qName) {
                case "policy" -> startPolicy(atts);
                case "allow", "deny" -> rule(qName, atts);
                case "include" -> {
                    includeIgnoreMissing = yesNo(atts, "ignore_missing");
                    includeIfSelinux = yesNo(atts, "if_selinux_enabled");
                    yesNo(atts, "selinux_root_relative");
                }
                case "limit" -> {
                    limitName = value(atts, "name");
                    if (limitName == null) {
                        throw fail("<limit> element must have a \"name\" attribute");
                    }
                }
                case "apparmor" -> {
                    String mode = value(atts, "mode");
                    if (mode != null && !Set.of("enabled", "disabled", "required").contains(mode)) {
                        throw fail("<apparmor mode=\"" + mode + "\">: mode must be \"required\", \"enabled\" or \"disabled\"");
                    }
                    if (mode != null) {
                        config.apparmorMode = mode;
                    }
                }
                case "associate" -> {
                    String own = value(atts, "own");
                    String context = value(atts, "context");
                    if (own == null || context == null) {
                        throw fail("<associate> needs both own=\"<bus name>\" and context=\"<SELinux context>\"");
                    }
                    config.selinuxContexts.put(own, context);
                }
                case "standard_session_servicedirs" -> {
                    StandardServiceDirs.transientDir(env, StandardServiceDirs::setUpTransientDir)
                            .ifPresent(this::addTransientServiceDir);
                    addServiceDirs(StandardServiceDirs.dataDirs(env, home));
                }
                case "standard_system_servicedirs" -> addServiceDirs(StandardServiceDirs.system());
                case "fork" -> config.fork = true;
                case "keep_umask" -> config.keepUmask = true;
                case "syslog" -> config.syslog = true;
                case "allow_anonymous" -> config.allowAnonymous = true;
                default -> { }
            }
            elements.push(qName);
        }

        private boolean yesNo(String[] atts, String name) throws ConfigException {
            String v = value(atts, name);
            if (v == null || v.equals("no")) {
                return false;
            }
            if (v.equals("yes")) {
                return true;
            }
            throw fail(name + "=\"" + v + "\" must be \"yes\" or \"no\"");
        }

        private void startPolicy(String[] atts) throws ConfigException {
            String context = value(atts, "context");
            String user = value(atts, "user");
            String group = value(atts, "group");
            String atConsole = value(atts, "at_console");
            int n = (context != null ? 1 : 0) + (user != null ? 1 : 0) + (group != null ? 1 : 0) + (atConsole != null ? 1 : 0);
            if (n != 1) {
                throw fail("<policy> element must have exactly one of (context|user|group|at_console) attributes");
            }
            policyContext = null;
            if (context != null) {
                switch (context) {
                    case "default" -> policyContext = PolicyContext.DEFAULT;
                    case "mandatory" -> policyContext = PolicyContext.MANDATORY;
                    default -> throw fail("<policy context=\"" + context + "\">: context must be \"default\" or \"mandatory\"");
                }
            } else if (user != null) {
                OptionalLong uid = Users.SYSTEM.uid(user);
                if (uid.isPresent()) {
                    policyContext = PolicyContext.user(uid.getAsLong());
                } else {
                    warn("unknown user \"" + user + "\" in <policy>; its rules are ignored");
                }
            } else if (group != null) {
                OptionalLong gid = Users.SYSTEM.gid(group);
                if (gid.isPresent()) {
                    policyContext = PolicyContext.group(gid.getAsLong());
                    needGroups = true;
                } else {
                    warn("unknown group \"" + group + "\" in <policy>; its rules are ignored");
                }
            } else {
                switch (atConsole) {
                    case "true" -> policyContext = PolicyContext.atConsole(true);
                    case "false" -> policyContext = PolicyContext.atConsole(false);
                    default -> throw fail("<policy at_console=\"" + atConsole + "\">: must be \"true\" or \"false\"");
                }
            }
        }

        private void rule(String element, String[] atts) throws ConfigException {
            Map<String, String> attrs = new LinkedHashMap<>();
            for (int i = 0; i + 1 < atts.length; i += 2) {
                attrs.put(atts[i], atts[i + 1]);
            }
            try {
                PolicyRuleParser.Parsed parsed = PolicyRuleParser.parse(element, attrs, Users.SYSTEM);
                if (parsed.warning() != null) {
                    warn(parsed.warning());
                }
                if (parsed.rule() == null || policyContext == null) {
                    return; // an unknown user or group: dropped, as dbus-daemon does
                }
                if (parsed.rule() instanceof PolicyRule.Group) {
                    needGroups = true;
                }
                config.policyBuilder.add(policyContext, parsed.rule());
            } catch (PolicyException e) {
                throw fail(e.getMessage());
            }
        }

        private void addServiceDirs(List<String> dirs) {
            for (String d : dirs) {
                if (!config.serviceDirs.contains(d)) {
                    config.serviceDirs.add(d);
                }
                config.transientServiceDirs.remove(d); // also a plain one: watched, any file name
            }
        }

        /** The transient directory: strict file names, not watched (dbus-daemon's flags). */
        private void addTransientServiceDir(String d) {
            if (!config.serviceDirs.contains(d)) {
                config.serviceDirs.add(d);
                config.transientServiceDirs.add(d);
            }
        }

        @Override
        public void text(String ch, int line) throws ConfigException {
            this.line = line;
            String top = elements.peek();
            if (top != null && !NEEDS_CONTENT.contains(top)) {
                for (int i = 0; i < ch.length(); i++) {
                    if (!Character.isWhitespace(ch.charAt(i))) {
                        throw fail("No text is allowed inside <" + top + ">");
                    }
                }
                return;
            }
            text.append(ch);
        }

        @Override
        public void end(String qName, int line) throws ConfigException {
            this.line = line;
            elements.pop();
            String value = text.toString().trim();
            text.setLength(0);
            if (qName.equals("policy")) {
                policyContext = null;
            }
            if (NEEDS_CONTENT.contains(qName) && value.isEmpty()) {
                throw fail("<" + qName + "> must not be empty");
            }
            switch (qName) {
                case "type" -> config.type = value;
                case "user" -> config.user = value;
                case "listen" -> config.listen.add(value);
                case "pidfile" -> config.pidfile = value;
                case "auth" -> config.auth.add(value);
                case "servicedir" -> addServiceDirs(List.of(resolve(value).toString()));
                case "servicehelper" -> config.servicehelper = resolve(value).toString();
                case "limit" -> {
                    long v;
                    try {
                        v = Long.parseLong(value);
                    } catch (NumberFormatException e) {
                        throw fail("<limit name=\"" + limitName + "\"> value \"" + value + "\" is not a number");
                    }
                    if (!config.limits.set(limitName, v)) {
                        warn("there is no limit called \"" + limitName + "\"");
                    } else if (limitName.equals("max_message_unix_fds") && v > BusLimits.MAX_MESSAGE_UNIX_FDS) {
                        warn("max_message_unix_fds=" + v + " is more than one message can carry on Linux (SCM_MAX_FD); "
                                + BusLimits.MAX_MESSAGE_UNIX_FDS + " applies");
                    }
                }
                case "include" -> {
                    if (includeIfSelinux) {
                        return; // SELinux is not supported; see docs/compatibility.md
                    }
                    Path inc = resolve(value);
                    if (!Files.exists(inc)) {
                        if (includeIgnoreMissing) {
                            return;
                        }
                        throw fail("Failed to open \"" + inc + "\": No such file or directory");
                    }
                    parseInto(config, inc, true);
                }
                case "includedir" -> includeDir(resolve(value));
                default -> { }
            }
        }

        private void includeDir(Path dir) {
            if (!Files.isDirectory(dir)) {
                LOG.debug("{}: includedir {} does not exist, skipped", file, dir);
                return;
            }
            List<Path> files = new ArrayList<>();
            try (Stream<Path> s = Files.list(dir)) {
                s.filter(p -> p.getFileName().toString().endsWith(".conf")).sorted().forEach(files::add);
            } catch (IOException e) {
                LOG.warn("{}: can't read includedir {}: {}", file, dir, e.getMessage());
                return;
            }
            for (Path p : files) {
                Snapshot before = Snapshot.of(config);
                try {
                    parseInto(config, p.toAbsolutePath().normalize(), true);
                } catch (ConfigException e) {
                    before.restore(config);
                    LOG.warn("Skipping config fragment {}: {}", p, e.getMessage());
                }
            }
        }

        private Path resolve(String value) {
            Path p = Path.of(value);
            return p.isAbsolute() ? p : file.getParent().resolve(p).normalize();
        }
    }

    /**
     * What a broken includedir fragment may have changed before its error, so it can be undone
     * (dbus-daemon merges a fragment only once it parsed completely). Limits are not covered.
     */
    private record Snapshot(String type, String user, boolean fork, boolean keepUmask, boolean syslog,
            boolean allowAnonymous, String pidfile, String servicehelper, String apparmorMode, int listen, int auth,
            int serviceDirs, int sourceFiles, Map<String, String> selinux, int policyMark) {
        static Snapshot of(BusConfig c) {
            return new Snapshot(c.type, c.user, c.fork, c.keepUmask, c.syslog, c.allowAnonymous, c.pidfile,
                    c.servicehelper, c.apparmorMode, c.listen.size(), c.auth.size(), c.serviceDirs.size(),
                    c.sourceFiles.size(), new LinkedHashMap<>(c.selinuxContexts), c.policyBuilder.mark());
        }

        void restore(BusConfig c) {
            c.type = type;
            c.user = user;
            c.fork = fork;
            c.keepUmask = keepUmask;
            c.syslog = syslog;
            c.allowAnonymous = allowAnonymous;
            c.pidfile = pidfile;
            c.servicehelper = servicehelper;
            c.apparmorMode = apparmorMode;
            truncate(c.listen, listen);
            truncate(c.auth, auth);
            truncate(c.serviceDirs, serviceDirs);
            truncate(c.sourceFiles, sourceFiles);
            c.selinuxContexts.clear();
            c.selinuxContexts.putAll(selinux);
            c.policyBuilder.rollback(policyMark);
        }

        private static void truncate(List<String> l, int size) {
            l.subList(size, l.size()).clear();
        }
    }
}
