package org.kdbusbridge.bridge.config;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.policy.ConnectionPolicy;
import org.kdbusbridge.core.policy.PolicyContext;
import org.kdbusbridge.core.policy.PolicyDatabase;
import org.kdbusbridge.core.policy.PolicyException;
import org.kdbusbridge.core.policy.PolicyRule;

/**
 * The effective configuration of one bus, as read from busconfig XML and the command line.
 *
 * Invariants: immutable after {@link BusConfigParser} or the CLI finished building it (only
 * {@link #overrideListen} changes it afterwards); limits hold dbus-daemon's defaults for every
 * limit the files did not name; {@link #policy()} holds every {@code <policy>} rule of every
 * file in file order; service directories are absolute and appear once each; the group table
 * used by {@link #isUidAllowed} is read once, when the config is built, and only if some rule
 * is about groups. Nobody is ever "at the console": {@code <policy at_console="true">} rules
 * never apply and {@code at_console="false"} rules apply to everyone (no logind/ConsoleKit
 * lookup on the bus).
 */
public final class BusConfig {
    String type;
    final List<String> listen = new ArrayList<>();
    final List<String> auth = new ArrayList<>();
    boolean allowAnonymous;
    String user;
    boolean fork;
    boolean keepUmask;
    boolean syslog;
    String pidfile;
    String servicehelper;
    String apparmorMode;
    final Map<String, String> selinuxContexts = new LinkedHashMap<>();
    final List<String> serviceDirs = new ArrayList<>();
    /** Those of serviceDirs that are only the transient directory (strict naming, not watched). */
    final java.util.Set<String> transientServiceDirs = new java.util.HashSet<>();
    final BusLimits limits = new BusLimits();
    final List<String> sourceFiles = new ArrayList<>();
    final PolicyDatabase.Builder policyBuilder = new PolicyDatabase.Builder();
    PolicyDatabase policy = PolicyDatabase.EMPTY;
    Users.GroupTable groups = Users.GroupTable.EMPTY;

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
    /** Whether {@code dir} (one of {@link #serviceDirs()}) is only $XDG_RUNTIME_DIR/dbus-1/services. */
    public boolean isTransientServiceDir(String dir) { return transientServiceDirs.contains(dir); }
    public BusLimits limits() { return limits; }
    public List<String> sourceFiles() { return sourceFiles; }

    /** {@code <servicehelper>}, made absolute; null if none. Not used until activation exists. */
    public String servicehelper() { return servicehelper; }

    /** {@code <apparmor mode=>}: "enabled", "disabled", "required", or null. Parsed, not enforced. */
    public String apparmorMode() { return apparmorMode; }

    /** {@code <selinux><associate own= context=/>}: bus name to context. Parsed, not enforced. */
    public Map<String, String> selinuxContexts() { return Collections.unmodifiableMap(selinuxContexts); }

    /** Every {@code <policy>} rule. */
    public PolicyDatabase policy() { return policy; }

    /** The groups of {@code uid} (primary first) from the table read at config time. */
    public long[] groupsOf(long uid) { return groups.groupsOf(uid); }

    boolean systemdActivation;

    /** --systemd-activation: SystemdService= services are started through systemd. */
    public boolean systemdActivation() { return systemdActivation; }

    public void setSystemdActivation(boolean on) { systemdActivation = on; }

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

    /**
     * dbus-daemon's connect check ({@link PolicyDatabase#allowUser}): the bus owner by default,
     * then the user=/group= rules of the default and then the mandatory policy.
     */
    public boolean isUidAllowed(long uid, long busUid) {
        return policy.allowUser(uid, groupsOf(uid), busUid);
    }

    /**
     * The per-connection rules of a client with {@code uid}, compiled: groups from the table
     * read at config time, never at the console.
     */
    public ConnectionPolicy compilePolicy(long uid) {
        PolicyDatabase db = policy;
        if (compiledFrom != db) {
            compiled.clear();
            compiledFrom = db;
        }
        ConnectionPolicy p = compiled.get(uid);
        if (p == null) {
            p = ConnectionPolicy.compile(db, uid, db.hasGroupRules() ? groupsOf(uid) : new long[0], false);
            if (compiled.size() < MAX_COMPILED_POLICIES) {
                compiled.put(uid, p);
            }
        }
        return p;
    }

    /**
     * Compiled policies by uid: immutable, and the same for every connection of a uid until
     * the config is reloaded (a reload builds a new BusConfig), so a connect reuses them.
     */
    private final java.util.concurrent.ConcurrentHashMap<Long, ConnectionPolicy> compiled =
            new java.util.concurrent.ConcurrentHashMap<>();
    private volatile PolicyDatabase compiledFrom;
    private static final int MAX_COMPILED_POLICIES = 256;

    /** Freezes the policy and reads the group table if any rule needs it. */
    void finishPolicy(boolean loadGroups) {
        policy = policyBuilder.build();
        groups = loadGroups ? Users.GroupTable.load(Users.PASSWD, Users.GROUP) : Users.GroupTable.EMPTY;
    }

    /**
     * A config for tests and embedding: listen on {@code address}, session semantics, and the
     * stock session.conf policy (send and receive everything, eavesdropping included; own any
     * name; only the bus owner's uid may connect).
     */
    public static BusConfig forAddress(String address) {
        BusConfig c = new BusConfig();
        c.type = "session";
        c.listen.add(address);
        try {
            c.policyBuilder.add(PolicyContext.DEFAULT, new PolicyRule.Send(true, null, false, null, null, null, null,
                    null, true, PolicyRule.Broadcast.ANY, true, 0, PolicyRule.MAX_FDS, false));
            c.policyBuilder.add(PolicyContext.DEFAULT, new PolicyRule.Receive(true, null, null, null, null, null, null,
                    true, true, 0, PolicyRule.MAX_FDS));
            c.policyBuilder.add(PolicyContext.DEFAULT, new PolicyRule.Own(true, null, false));
        } catch (PolicyException e) {
            throw new IllegalStateException(e);
        }
        c.finishPolicy(false);
        return c;
    }
}
