package org.kdbusbridge.core.policy;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every {@code <policy>} rule of a bus configuration, grouped by context, in file order.
 *
 * Invariants: immutable once built (a {@link Builder} makes it); within one context the rules
 * keep the order in which they were added, which is file order with includes expanded in
 * place; USER and GROUP rules only ever sit in the default, mandatory or at_console contexts
 * (the builder refuses them in user/group contexts, as dbus-daemon does); "last matching
 * rule wins" everywhere. The database does no I/O: callers pass the groups of a uid and
 * whether a user is at the console.
 */
public final class PolicyDatabase {
    /** A database without rules: only the bus owner may connect, nobody may own a name. */
    public static final PolicyDatabase EMPTY = new Builder().build();

    private final List<PolicyRule> defaultRules;
    private final List<PolicyRule> mandatoryRules;
    private final Map<Long, List<PolicyRule>> userRules;
    private final Map<Long, List<PolicyRule>> groupRules;
    private final List<PolicyRule> consoleTrueRules;
    private final List<PolicyRule> consoleFalseRules;
    private final int size;

    private PolicyDatabase(Builder b) {
        List<PolicyRule> def = new ArrayList<>();
        List<PolicyRule> mand = new ArrayList<>();
        Map<Long, List<PolicyRule>> users = new LinkedHashMap<>();
        Map<Long, List<PolicyRule>> groups = new LinkedHashMap<>();
        List<PolicyRule> conTrue = new ArrayList<>();
        List<PolicyRule> conFalse = new ArrayList<>();
        for (Entry e : b.entries) {
            PolicyContext c = e.context();
            switch (c.kind()) {
                case DEFAULT -> def.add(e.rule());
                case MANDATORY -> mand.add(e.rule());
                case USER -> users.computeIfAbsent(c.id(), k -> new ArrayList<>()).add(e.rule());
                case GROUP -> groups.computeIfAbsent(c.id(), k -> new ArrayList<>()).add(e.rule());
                case CONSOLE -> (c.id() == 1 ? conTrue : conFalse).add(e.rule());
                default -> throw new IllegalStateException(c.toString());
            }
        }
        this.defaultRules = List.copyOf(def);
        this.mandatoryRules = List.copyOf(mand);
        this.userRules = freeze(users);
        this.groupRules = freeze(groups);
        this.consoleTrueRules = List.copyOf(conTrue);
        this.consoleFalseRules = List.copyOf(conFalse);
        this.size = b.entries.size();
    }

    private static Map<Long, List<PolicyRule>> freeze(Map<Long, List<PolicyRule>> m) {
        Map<Long, List<PolicyRule>> out = new HashMap<>();
        m.forEach((k, v) -> out.put(k, List.copyOf(v)));
        return Collections.unmodifiableMap(out);
    }

    public List<PolicyRule> defaultRules() { return defaultRules; }

    public List<PolicyRule> mandatoryRules() { return mandatoryRules; }

    /** The rules of every {@code <policy user=>} naming {@code uid}, in file order. */
    public List<PolicyRule> userRules(long uid) { return userRules.getOrDefault(uid, List.of()); }

    /** The rules of every {@code <policy group=>} naming {@code gid}, in file order. */
    public List<PolicyRule> groupRules(long gid) { return groupRules.getOrDefault(gid, List.of()); }

    public List<PolicyRule> consoleRules(boolean atConsole) { return atConsole ? consoleTrueRules : consoleFalseRules; }

    /** True if some {@code <policy group=>} exists (dbus-daemon only looks groups up then). */
    public boolean hasGroupRules() { return !groupRules.isEmpty(); }

    /** How many rules, over all contexts. */
    public int size() { return size; }

    /**
     * May {@code uid} connect? dbus-daemon's order: the bus owner by default, then the user=
     * and group= rules of the default context, then those of the mandatory context; the last
     * matching rule wins. {@code gids} are all groups of {@code uid}, primary included.
     */
    public boolean allowUser(long uid, long[] gids, long busOwnerUid) {
        boolean allowed = uid == busOwnerUid;
        allowed = listAllowsUser(allowed, defaultRules, uid, gids);
        return listAllowsUser(allowed, mandatoryRules, uid, gids);
    }

    private static boolean listAllowsUser(boolean allowed, List<PolicyRule> rules, long uid, long[] gids) {
        for (PolicyRule r : rules) {
            if (r instanceof PolicyRule.User u) {
                if (u.uid() == PolicyRule.User.ANY || u.uid() == uid) {
                    allowed = u.allow();
                }
            } else if (r instanceof PolicyRule.Group g) {
                if (g.gid() == PolicyRule.Group.ANY || contains(gids, g.gid())) {
                    allowed = g.allow();
                }
            }
        }
        return allowed;
    }

    private static boolean contains(long[] a, long v) {
        for (long x : a) {
            if (x == v) {
                return true;
            }
        }
        return false;
    }

    /**
     * The per-connection rules (send, receive, own) for a client, in the order dbus-daemon
     * evaluates them: default, then each of the client's groups in the order given, then the
     * user's, then at_console="true" or "false", then mandatory. USER and GROUP rules are left
     * out (they only matter at connect time).
     */
    public List<PolicyRule> rulesFor(long uid, long[] gids, boolean atConsole) {
        List<PolicyRule> out = new ArrayList<>();
        addPerClient(out, defaultRules);
        if (!groupRules.isEmpty()) {
            for (long gid : gids) {
                addPerClient(out, groupRules(gid));
            }
        }
        addPerClient(out, userRules(uid));
        addPerClient(out, consoleRules(atConsole));
        addPerClient(out, mandatoryRules);
        return Collections.unmodifiableList(out);
    }

    private static void addPerClient(List<PolicyRule> out, List<PolicyRule> rules) {
        for (PolicyRule r : rules) {
            if (r.perClient()) {
                out.add(r);
            }
        }
    }

    /** {@link #canOwn(long, long[], boolean, String)} for a user who is not at the console. */
    public boolean canOwn(long uid, long[] gids, String busName) {
        return canOwn(uid, gids, false, busName);
    }

    /**
     * May a connection of {@code uid} own {@code busName}? Denied unless a rule allows it; the
     * last matching own/own_prefix rule in {@link #rulesFor} order wins.
     */
    public boolean canOwn(long uid, long[] gids, boolean atConsole, String busName) {
        boolean allowed = false;
        for (PolicyRule r : rulesFor(uid, gids, atConsole)) {
            if (r instanceof PolicyRule.Own o && o.matches(busName)) {
                allowed = o.allow();
            }
        }
        return allowed;
    }

    @Override
    public String toString() {
        return "PolicyDatabase[" + size + " rules]";
    }

    private record Entry(PolicyContext context, PolicyRule rule) { }

    /**
     * Collects rules in file order. Not thread-safe; {@link #mark()} and {@link #rollback(int)}
     * let a caller drop the rules of an included file that turned out to be broken.
     */
    public static final class Builder {
        private final List<Entry> entries = new ArrayList<>();

        /**
         * Appends {@code rule} to {@code context}. USER and GROUP rules in a user= or group=
         * context are refused, since they have bus-global semantics.
         */
        public Builder add(PolicyContext context, PolicyRule rule) throws PolicyException {
            if (context == null || rule == null) {
                throw new IllegalArgumentException("context and rule are required");
            }
            if (!rule.perClient() && (context.kind() == PolicyContext.Kind.USER
                    || context.kind() == PolicyContext.Kind.GROUP)) {
                throw new PolicyException("a user= or group= rule can't sit in a per-"
                        + (context.kind() == PolicyContext.Kind.USER ? "user" : "group")
                        + " <policy>: it decides who may connect, which is bus-wide");
            }
            entries.add(new Entry(context, rule));
            return this;
        }

        /** A position to {@link #rollback(int)} to. */
        public int mark() {
            return entries.size();
        }

        /** Drops every rule added after {@code mark}. */
        public void rollback(int mark) {
            if (mark < 0 || mark > entries.size()) {
                throw new IllegalArgumentException("bad mark " + mark);
            }
            entries.subList(mark, entries.size()).clear();
        }

        public PolicyDatabase build() {
            return new PolicyDatabase(this);
        }
    }
}
