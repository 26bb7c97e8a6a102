package org.kdbusbridge.core.endpoint;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The decisions of one endpoint's filter, xdg-dbus-proxy's filter mode point for point (see
 * docs/endpoint-semantics.md): the level of a name, what the client may send, which broadcasts
 * and NameOwnerChanged signals it receives, which names it is told of, and how each driver
 * method is treated. Immutable and shared by all connections of the endpoint; what one
 * connection learns is passed in as its {@link EndpointState}, and who owns what as
 * {@link OwnedNames}. With {@code filtering} off everything is allowed.
 *
 * Lookups: rules are indexed by name, exact and subtree apart, so a name's level costs one
 * hash lookup per dot-separated prefix while subtree rules exist, and one otherwise.
 */
public final class EndpointPolicy {
    /** Everything the rules say about one name string (exact or subtree). */
    private static final class Entry {
        Level nameLevel = Level.NONE;
        final List<CallRule> calls = new ArrayList<>(1);
        final List<CallRule> broadcasts = new ArrayList<>(1);

        /** Any rule at all makes the name at least TALK (flatpak-proxy.c: call/broadcast filters have policy TALK). */
        Level level() {
            return calls.isEmpty() && broadcasts.isEmpty() ? nameLevel : nameLevel.max(Level.TALK);
        }
    }

    private static final int CALLS = 0;
    private static final int BROADCASTS = 1;

    private final EndpointFilter filter;
    private final Map<String, Entry> exact = new HashMap<>();
    private final Map<String, Entry> subtree = new HashMap<>();

    public EndpointPolicy(EndpointFilter filter) {
        this.filter = filter;
        // The proxy always lets its client talk to the bus itself (flatpak_proxy_init).
        entry(NamePattern.exact(DriverAccess.DRIVER_NAME)).nameLevel = Level.TALK;
        for (NameRule r : filter.nameRules()) {
            Entry e = entry(r.pattern());
            e.nameLevel = e.nameLevel.max(r.level());
        }
        for (CallRule r : filter.callRules()) {
            entry(r.pattern()).calls.add(r);
        }
        for (CallRule r : filter.broadcastRules()) {
            entry(r.pattern()).broadcasts.add(r);
        }
    }

    public EndpointFilter filter() {
        return filter;
    }

    public boolean filtering() {
        return filter.filtering();
    }

    private Entry entry(NamePattern p) {
        return (p.subtree() ? subtree : exact).computeIfAbsent(p.name(), n -> new Entry());
    }

    // ---- levels ----

    /**
     * The level of a well-known name from the rules alone: the highest of every rule whose
     * pattern matches it. A unique name (or null) gets NONE here; see {@link #levelOf}.
     */
    public Level levelOfWellKnown(String name) {
        if (name == null || (!name.isEmpty() && name.charAt(0) == ':')) {
            return Level.NONE;
        }
        Level max = Level.NONE;
        Entry e = exact.get(name);
        if (e != null) {
            max = e.level();
        }
        if (subtree.isEmpty()) {
            return max;
        }
        String n = name;
        while (true) {
            Entry s = subtree.get(n);
            if (s != null) {
                max = max.max(s.level());
            }
            int dot = n.lastIndexOf('.');
            if (dot < 0) {
                return max;
            }
            n = n.substring(0, dot);
        }
    }

    /**
     * The level of any name: null (the bus itself, no destination) is TALK; a unique name has
     * the highest of what {@code state} grants it (TALK for the client itself, SEE for peers
     * that sent it a message) and of every well-known name it owns now; a well-known name has
     * {@link #levelOfWellKnown}. With filtering off, OWN.
     */
    public Level levelOf(String name, OwnedNames owners, EndpointState state) {
        if (!filter.filtering()) {
            return Level.OWN;
        }
        if (name == null) {
            return Level.TALK;
        }
        if (name.isEmpty() || name.charAt(0) != ':') {
            return levelOfWellKnown(name);
        }
        Level max = state.grantOf(name);
        for (String owned : owners.primaryNamesOf(name)) {
            max = max.max(levelOfWellKnown(owned));
            if (max == Level.OWN) {
                break;
            }
        }
        return max;
    }

    // ---- what the client is told ----

    /** Whether ListNames and ListActivatableNames replies keep {@code name}: SEE or more. */
    public boolean listsName(String name, OwnedNames owners, EndpointState state) {
        return levelOf(name, owners, state).atLeast(Level.SEE);
    }

    /**
     * Whether the client receives NameOwnerChanged for {@code name} (its arg0): SEE or more on
     * the name, or with sloppy names any unique name. For a unique name's disconnect,
     * {@code owners} should give the names it owned just before it left.
     */
    public boolean showsNameOwnerChanged(String name, OwnedNames owners, EndpointState state) {
        if (!filter.filtering()) {
            return true;
        }
        if (filter.sloppyNames() && name != null && !name.isEmpty() && name.charAt(0) == ':') {
            return true;
        }
        return levelOf(name, owners, state).atLeast(Level.SEE);
    }

    /**
     * Whether the client receives a broadcast signal (no destination) from {@code sender}: the
     * sender (its unique name, or the bus) has OWN, or a TALK-or-more name rule or state grant,
     * or one of its names has a --broadcast rule matching path, interface and member. A --call
     * rule or a SEE rule lets no broadcast through. (This is 0.1.4's rule, the version Debian
     * ships; 0.1.6 and later let any TALK-level sender through, which makes --broadcast rules
     * unable to restrict anything: see docs/endpoint-semantics.md.)
     */
    public boolean receivesBroadcast(String sender, String path, String iface, String member, OwnedNames owners,
            EndpointState state) {
        if (!filter.filtering()) {
            return true;
        }
        return permits(BROADCASTS, sender, path, iface, member, owners, state);
    }

    // ---- what the client sends ----

    /** Whether the client may become (or queue for) owner of well-known {@code name}: OWN. */
    public boolean mayOwn(String name) {
        return !filter.filtering() || levelOfWellKnown(name) == Level.OWN;
    }

    /**
     * The decision on a method call or signal the client sends (replies: see
     * {@link ReplyPermits}). {@code replyExpected}: a method call without NO_REPLY_EXPECTED
     * (always false for signals). {@code arg0}: the first body argument if it is a string, read
     * only for calls to the driver (pass null for any other message, or when it is not a
     * string). No destination: allowed (a broadcast, or a call to nobody).
     */
    public SendVerdict checkSend(boolean methodCall, String destination, String path, String iface, String member,
            boolean replyExpected, boolean noAutoStart, String arg0, OwnedNames owners, EndpointState state) {
        if (!filter.filtering() || destination == null) {
            return SendVerdict.ALLOW;
        }
        boolean silent = !(methodCall && replyExpected);
        Level level = levelOf(destination, owners, state);
        if (!level.atLeast(Level.SEE)) {
            return SendVerdict.hidden(!destination.isEmpty() && destination.charAt(0) == ':', noAutoStart, silent);
        }
        if (!level.atLeast(Level.TALK)) {
            return SendVerdict.accessDenied(silent);
        }
        if (DriverAccess.DRIVER_NAME.equals(destination)) {
            if (!methodCall) {
                return SendVerdict.accessDenied(true); // signals to the bus are refused
            }
            return checkDriverCall(iface, member, arg0, replyExpected, noAutoStart, owners, state);
        }
        return permits(CALLS, destination, path, iface, member, owners, state) ? SendVerdict.ALLOW
                : SendVerdict.accessDenied(silent);
    }

    /**
     * The decision on a method call to the driver (destination org.freedesktop.DBus), by
     * {@link DriverAccess}: for the arg0 methods, a client below the needed level gets the
     * hidden-name error if it cannot even SEE arg0 (ServiceUnknown, or NameHasNoOwner with
     * NO_AUTO_START), else AccessDenied; GetNameOwner and NameHasOwner answer as if arg0 had no
     * owner. {@code arg0} null: the first argument is missing or not a string, which no name
     * check passes.
     */
    public SendVerdict checkDriverCall(String iface, String member, String arg0, boolean replyExpected,
            boolean noAutoStart, OwnedNames owners, EndpointState state) {
        if (!filter.filtering()) {
            return SendVerdict.ALLOW;
        }
        boolean silent = !replyExpected;
        DriverAccess access = DriverAccess.of(iface, member);
        switch (access) {
            case PASS:
                return SendVerdict.ALLOW;
            case PASS_UNLESS_EAVESDROP:
                return arg0 != null && DriverAccess.mentionsEavesdrop(arg0) ? SendVerdict.accessDenied(silent)
                        : SendVerdict.ALLOW;
            case FILTER_NAME_LIST:
                return SendVerdict.ALLOW_FILTER_NAMES;
            case DENY:
                return SendVerdict.accessDenied(silent);
            default:
                break;
        }
        Level has = arg0 == null ? Level.NONE : levelOf(arg0, owners, state);
        if (has.atLeast(access.needed())) {
            return SendVerdict.ALLOW;
        }
        if (access == DriverAccess.SEE_OR_FALSE) {
            return SendVerdict.replyFalse(silent);
        }
        if (access == DriverAccess.SEE_OR_NO_OWNER) {
            return SendVerdict.nameHasNoOwner(silent);
        }
        // The destination is the driver, never a unique name: ServiceUnknown unless NO_AUTO_START.
        return has.atLeast(Level.SEE) ? SendVerdict.accessDenied(silent) : SendVerdict.hidden(false, noAutoStart, silent);
    }

    // ---- rule matching ----

    /**
     * Whether a call to, or a broadcast from, {@code name} passes: the name (or, for a unique
     * name, its state grant or any name it owns) has a TALK-or-more name rule, or a rule of
     * the kind asked for that matches the message. OWN passes whatever the rules say.
     */
    private boolean permits(int kind, String name, String path, String iface, String member, OwnedNames owners,
            EndpointState state) {
        if (name == null) {
            return true; // the bus itself
        }
        if (name.isEmpty() || name.charAt(0) != ':') {
            return wellKnownPermits(kind, name, path, iface, member);
        }
        if (state.grantOf(name).atLeast(Level.TALK)) {
            return true;
        }
        for (String owned : owners.primaryNamesOf(name)) {
            if (wellKnownPermits(kind, owned, path, iface, member)) {
                return true;
            }
        }
        return false;
    }

    private boolean wellKnownPermits(int kind, String name, String path, String iface, String member) {
        if (entryPermits(kind, exact.get(name), path, iface, member)) {
            return true;
        }
        if (subtree.isEmpty()) {
            return false;
        }
        String n = name;
        while (true) {
            if (entryPermits(kind, subtree.get(n), path, iface, member)) {
                return true;
            }
            int dot = n.lastIndexOf('.');
            if (dot < 0) {
                return false;
            }
            n = n.substring(0, dot);
        }
    }

    private static boolean entryPermits(int kind, Entry e, String path, String iface, String member) {
        if (e == null) {
            return false;
        }
        if (e.nameLevel.atLeast(Level.TALK)) {
            return true;
        }
        for (CallRule r : kind == CALLS ? e.calls : e.broadcasts) {
            if (r.matches(path, iface, member)) {
                return true;
            }
        }
        return false;
    }
}
