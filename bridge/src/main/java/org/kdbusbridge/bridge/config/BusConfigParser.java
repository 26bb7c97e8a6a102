package org.kdbusbridge.bridge.config;

import java.io.IOException;
import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import javax.xml.parsers.ParserConfigurationException;
import javax.xml.parsers.SAXParser;
import javax.xml.parsers.SAXParserFactory;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.xml.sax.Attributes;
import org.xml.sax.InputSource;
import org.xml.sax.Locator;
import org.xml.sax.SAXException;
import org.xml.sax.SAXParseException;
import org.xml.sax.helpers.DefaultHandler;

/**
 * Reads dbus-daemon busconfig XML (session.conf, system.conf and their includes).
 *
 * Invariants: never touches the network (the DOCTYPE's DTD is not fetched); every error
 * names the file and line; include cycles are refused; a missing includedir is skipped with
 * a warning, a missing include is an error unless ignore_missing="yes".
 */
public final class BusConfigParser {
    private static final Logger LOG = LoggerFactory.getLogger(BusConfigParser.class);
    private static final int MAX_INCLUDE_DEPTH = 32;

    private static final Set<String> KNOWN = Set.of("busconfig", "type", "user", "fork", "keep_umask", "syslog",
            "listen", "pidfile", "auth", "allow_anonymous", "includedir", "include", "servicedir",
            "standard_session_servicedirs", "standard_system_servicedirs", "servicehelper", "limit", "policy",
            "allow", "deny", "apparmor", "selinux", "associate");

    private final Deque<Path> stack = new ArrayDeque<>();
    private final Set<Path> seen = new HashSet<>();

    /** Parses {@code file} and everything it includes. */
    public static BusConfig parse(Path file) throws ConfigException {
        BusConfig config = new BusConfig();
        new BusConfigParser().parseInto(config, file.toAbsolutePath().normalize(), false);
        return config;
    }

    private void parseInto(BusConfig config, Path file, boolean included) throws ConfigException {
        if (stack.size() > MAX_INCLUDE_DEPTH || stack.contains(file)) {
            throw new ConfigException(file + ": circular inclusion of config files");
        }
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new ConfigException("Failed to open \"" + file + "\": " + e.getMessage(), e);
        }
        stack.push(file);
        seen.add(file);
        config.sourceFiles.add(file.toString());
        try {
            SAXParserFactory f = SAXParserFactory.newInstance();
            f.setNamespaceAware(false);
            f.setValidating(false);
            f.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
            f.setFeature("http://xml.org/sax/features/external-general-entities", false);
            f.setFeature("http://xml.org/sax/features/external-parameter-entities", false);
            SAXParser p = f.newSAXParser();
            InputSource src = new InputSource(new StringReader(text));
            src.setSystemId(file.toUri().toString());
            p.parse(src, new Handler(config, file));
        } catch (SAXParseException e) {
            if (e.getException() instanceof ConfigException ce) {
                throw ce;
            }
            throw new ConfigException(file + ":" + e.getLineNumber() + ": " + e.getMessage(), e);
        } catch (SAXException e) {
            if (e.getException() instanceof ConfigException ce) {
                throw ce;
            }
            throw new ConfigException(file + ": " + e.getMessage(), e);
        } catch (ParserConfigurationException | IOException e) {
            throw new ConfigException(file + ": " + e.getMessage(), e);
        } finally {
            stack.pop();
        }
    }

    private final class Handler extends DefaultHandler {
        private final BusConfig config;
        private final Path file;
        private Locator locator;
        private final Deque<String> elements = new ArrayDeque<>();
        private final StringBuilder text = new StringBuilder();
        private Attributes current;
        private String policyContext;
        private String includeIgnoreMissing;
        private boolean includeIfSelinux;
        private String limitName;

        Handler(BusConfig config, Path file) {
            this.config = config;
            this.file = file;
        }

        @Override
        public void setDocumentLocator(Locator l) {
            this.locator = l;
        }

        private SAXException fail(String msg) {
            int line = locator == null ? 0 : locator.getLineNumber();
            return new SAXException(new ConfigException(file + ":" + line + ": " + msg));
        }

        @Override
        public void startElement(String uri, String localName, String qName, Attributes atts) throws SAXException {
            if (elements.isEmpty() && !qName.equals("busconfig")) {
                throw fail("Unknown element \"" + qName + "\" at root of configuration file");
            }
            if (!KNOWN.contains(qName)) {
                throw fail("Element <" + qName + "> not allowed inside <" + elements.peek() + "> in configuration file");
            }
            text.setLength(0);
            switch (qName) {
                case "policy" -> {
                    String ctx = atts.getValue("context");
                    policyContext = ctx != null ? ctx : atts.getValue("user") != null ? "user"
                            : atts.getValue("group") != null ? "group" : atts.getValue("at_console") != null ? "console" : null;
                    if (policyContext == null) {
                        throw fail("<policy> element must have exactly one of (context|user|group|at_console) attributes");
                    }
                }
                case "allow", "deny" -> {
                    if (!"policy".equals(elements.peek())) {
                        throw fail("<" + qName + "> must be inside <policy>");
                    }
                    String user = atts.getValue("user");
                    if (user != null && ("default".equals(policyContext) || "mandatory".equals(policyContext))) {
                        long uid = user.equals("*") ? -1 : Users.uidOf(user);
                        if (uid == -2) {
                            LOG.warn("{}:{}: unknown username \"{}\" in policy", file, locator.getLineNumber(), user);
                        } else {
                            config.userRules.add(new BusConfig.UserRule(qName.equals("allow"), uid));
                        }
                    }
                }
                case "include" -> {
                    includeIgnoreMissing = atts.getValue("ignore_missing");
                    includeIfSelinux = "yes".equals(atts.getValue("if_selinux_enabled"));
                }
                case "limit" -> {
                    limitName = atts.getValue("name");
                    if (limitName == null) {
                        throw fail("<limit> element must have a \"name\" attribute");
                    }
                }
                case "fork" -> config.fork = true;
                case "keep_umask" -> config.keepUmask = true;
                case "syslog" -> config.syslog = true;
                case "allow_anonymous" -> config.allowAnonymous = true;
                default -> { }
            }
            current = atts;
            elements.push(qName);
        }

        @Override
        public void characters(char[] ch, int start, int length) {
            text.append(ch, start, length);
        }

        @Override
        public void endElement(String uri, String localName, String qName) throws SAXException {
            elements.pop();
            String value = text.toString().trim();
            text.setLength(0);
            try {
                switch (qName) {
                    case "type" -> config.type = value;
                    case "user" -> config.user = value;
                    case "listen" -> config.listen.add(value);
                    case "pidfile" -> config.pidfile = value;
                    case "auth" -> config.auth.add(value);
                    case "servicedir" -> config.serviceDirs.add(resolve(value).toString());
                    case "limit" -> {
                        long v;
                        try {
                            v = Long.parseLong(value);
                        } catch (NumberFormatException e) {
                            throw fail("<limit name=\"" + limitName + "\"> value \"" + value + "\" is not a number");
                        }
                        if (!config.limits.set(limitName, v)) {
                            LOG.warn("{}:{}: there is no limit called \"{}\"", file, locator.getLineNumber(), limitName);
                        }
                    }
                    case "include" -> {
                        if (includeIfSelinux) {
                            return; // SELinux is not supported; see docs/compatibility.md
                        }
                        Path inc = resolve(value);
                        if (!Files.exists(inc)) {
                            if ("yes".equals(includeIgnoreMissing)) {
                                return;
                            }
                            throw fail("Failed to open \"" + inc + "\": No such file or directory");
                        }
                        parseInto(config, inc, true);
                    }
                    case "includedir" -> includeDir(resolve(value));
                    default -> { }
                }
            } catch (ConfigException e) {
                throw new SAXException(e);
            }
        }

        private void includeDir(Path dir) throws ConfigException {
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
                try {
                    parseInto(config, p.toAbsolutePath().normalize(), true);
                } catch (ConfigException e) {
                    LOG.warn("Skipping config fragment {}: {}", p, e.getMessage());
                }
            }
        }

        private Path resolve(String value) {
            Path p = Path.of(value);
            return p.isAbsolute() ? p : file.getParent().resolve(p).normalize();
        }
    }
}
