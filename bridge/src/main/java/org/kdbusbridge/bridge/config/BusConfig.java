package org.kdbusbridge.bridge.config;

import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.core.bus.BusLimits;

/**
 * The effective configuration of one bus, as read from busconfig XML and the command line.
 *
 * Invariants: immutable after {@link BusConfigParser} or the CLI finished building it;
 * limits hold dbus-daemon's defaults for every limit the files did not name.
 */
public final class BusConfig {
    /** One connect-time rule ({@code <allow user=>}/{@code <deny user=>}); uid -1 means "*". */
    public record UserRule(boolean allow, long uid) { }

    String type;
    final List<String> listen = new ArrayList<>();
    final List<String> auth = new ArrayList<>();
    boolean allowAnonymous;
    String user;
    boolean fork;
    boolean keepUmask;
    boolean syslog;
    String pidfile;
    final List<String> serviceDirs = new ArrayList<>();
    final List<UserRule> userRules = new ArrayList<>();
    final BusLimits limits = new BusLimits();
    final List<String> sourceFiles = new ArrayList<>();

    public String type() { return type; }
    public List<String> listen() { return listen; }
    public List<String> auth() { return auth; }
    public boolean allowAnonymous() { return allowAnonymous; }
    public String user() { return user; }
    public boolean fork() { return fork; }
    public boolean keepUmask() { return keepUmask; }
    public boolean syslog() { return syslog; }
    public String pidfile() { return pidfile; }
    public List<String> serviceDirs() { return serviceDirs; }
    public BusLimits limits() { return limits; }
    public List<String> sourceFiles() { return sourceFiles; }

    /** Replaces every listen address (the CLI's --address). */
    public void overrideListen(String address) {
        listen.clear();
        listen.add(address);
    }

    public boolean allowsExternal() {
        return auth.isEmpty() || auth.contains("EXTERNAL");
    }

    /** ANONYMOUS needs both the mechanism and {@code <allow_anonymous/>}. */
    public boolean allowsAnonymous() {
        return allowAnonymous && (auth.isEmpty() || auth.contains("ANONYMOUS"));
    }

    /** dbus-daemon's connect check: the bus owner by default, then user rules in order. */
    public boolean isUidAllowed(long uid, long busUid) {
        boolean allowed = uid == busUid;
        for (UserRule r : userRules) {
            if (r.uid() == -1 || r.uid() == uid) {
                allowed = r.allow();
            }
        }
        return allowed;
    }

    /** A config for tests and embedding: listen on {@code address}, session semantics. */
    public static BusConfig forAddress(String address) {
        BusConfig c = new BusConfig();
        c.type = "session";
        c.listen.add(address);
        return c;
    }
}
