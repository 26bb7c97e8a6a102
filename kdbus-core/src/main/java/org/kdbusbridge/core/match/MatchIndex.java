package org.kdbusbridge.core.match;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.ArgSource;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameRegistry;

/**
 * Every connection's match rules, indexed so a message is checked only against rules that
 * could match it.
 *
 * Rules are split into two tables: rules without {@code eavesdrop='true'} (they can only match
 * broadcasts) and eavesdropping rules (broadcasts and unicast). A rule with a destination but
 * no eavesdrop can never match and is in no table. Inside a table each rule sits in exactly one
 * bucket, under one of its keys: {@code member}+{@code arg0} (string arg0), exact
 * {@code path}, {@code member}, {@code sender}, a {@code path_namespace}, {@code interface};
 * a rule with none of these goes under its string {@code arg0}, and only a rule without any
 * key into the table's wildcard bucket. Of a rule's keys, add picks the bucket that would
 * cost lookups least: an empty one, or one holding an equal rule (they match together), else
 * the smallest; ties go to the order above. A lookup probes, for each kind of key, the one
 * bucket named by the message's value (the sender by its unique name and the well-known names
 * it owns, a path by each of its namespace prefixes), so any placement is correct: a rule is
 * checked whenever a message carries its key, and the full check decides.
 *
 * Invariants: each AddMatch is one entry (duplicates are kept and removed one at a time);
 * an entry is in its owner's list and in at most one bucket (none only for a destination rule
 * without eavesdrop), and the bucket is determined by the rule plus the kind recorded in the
 * entry: the kind is one the rule has a key for (ARG0 only for a rule with none of the other
 * keys, WILD only for one without any), and the bucket is the table's, under that key; a
 * bucket of one entry is that entry, of more a Bucket whose entries know their index; no map
 * holds an empty bucket or an empty arg0 map; an owner's list is never empty, its length is
 * the owner's {@link Connection#matchRuleCount}, the lists together hold {@link #size} entries
 * and each table's buckets together its {@code size}; {@link #checkInvariants} verifies this;
 * a recipient is reported at most once per message (de-duplicated by the message sequence
 * number, {@link Connection#stampOnce}); a lookup allocates nothing (every map probe, the
 * prefix probes of a path included, works on the message's own strings) and asks the message
 * for its arg0 only when a bucket keyed by arg0 could apply (the bridge decodes arguments
 * lazily). Sender probes rely on NameRegistry keeping {@link Connection#ownedNames} a superset
 * of the names the connection primary-owns. The order of reported recipients is unspecified.
 */
public final class MatchIndex {
    // Where an entry is, in the order add prefers them on equal cost.
    static final int NONE = 0;
    static final int MEMBER_ARG0 = 1;
    static final int PATH = 2;
    static final int MEMBER = 3;
    static final int SENDER = 4;
    static final int PATH_NAMESPACE = 5;
    static final int IFACE = 6;
    static final int ARG0 = 7;
    static final int WILD = 8;
    private static final int KIND_BITS = 4;
    private static final int KIND_MASK = (1 << KIND_BITS) - 1;

    static final class Entry {
        final Connection owner;
        final MatchRule rule;
        /** The kind of bucket (low bits) and, in a Bucket, the index in it (high bits). */
        int where;

        Entry(Connection owner, MatchRule rule) {
            this.owner = owner;
            this.rule = rule;
        }

        int kind() {
            return where & KIND_MASK;
        }

        int index() {
            return where >>> KIND_BITS;
        }

        void setIndex(int i) {
            where = (i << KIND_BITS) | (where & KIND_MASK);
        }
    }

    /** Two or more entries; removal moves the last one into the gap. */
    static final class Bucket {
        Entry[] entries = new Entry[2];
        int size;

        void add(Entry e) {
            if (size == entries.length) {
                entries = Arrays.copyOf(entries, size * 2);
            }
            e.setIndex(size);
            entries[size++] = e;
        }

        void remove(Entry e) {
            int i = e.index();
            if (i >= size || entries[i] != e) {
                throw new IllegalStateException("match rule entry is not in its bucket");
            }
            Entry last = entries[--size];
            entries[i] = last;
            last.setIndex(i);
            entries[size] = null;
            if (size >= 4 && size * 4 <= entries.length) {
                entries = Arrays.copyOf(entries, entries.length / 2);
            }
        }
    }

    /** One table's buckets; a map's value is an Entry or a Bucket (MEMBER_ARG0: a map by arg0). */
    static final class Table {
        final StringMap byMemberArg0 = new StringMap();
        final StringMap byPath = new StringMap();
        final StringMap byMember = new StringMap();
        final StringMap bySender = new StringMap();
        final StringMap byPathNamespace = new StringMap();
        final StringMap byIface = new StringMap();
        final StringMap byArg0 = new StringMap();
        Object wild;
        int size;
    }

    final Table broadcasts = new Table();
    final Table eavesdroppers = new Table();
    final IdentityHashMap<Connection, ArrayList<Entry>> byOwner = new IdentityHashMap<>();
    private final String driverName;
    int size;
    int peakSize;
    int peakPerConnection;
    /** Entries checked by collect, for tests: lookups must not scan unrelated rules. */
    long candidatesChecked;

    /** Told of every rule as it is added or removed (the bus charges them to the owner's uid). */
    public interface RuleListener {
        default void added(Connection owner, MatchRule rule) { }

        default void removed(Connection owner, MatchRule rule) { }
    }

    private RuleListener listener = new RuleListener() { };

    public void setRuleListener(RuleListener listener) {
        this.listener = listener;
    }

    /** @param driverName the bus driver's name, which {@code sender=} may name (org.freedesktop.DBus) */
    public MatchIndex(String driverName) {
        this.driverName = driverName;
    }

    public void add(Connection owner, MatchRule rule) {
        Entry e = new Entry(owner, rule);
        Table t = table(rule);
        if (t != null) {
            int kind = choose(t, rule);
            e.where = kind;
            link(t, kind, e);
            assert MatchIndexInvariants.holds(t, kind, e) : "match rule entry not in the bucket it was put in";
        }
        byOwner.computeIfAbsent(owner, k -> new ArrayList<>(4)).add(e);
        owner.addMatchRuleCount(1);
        size++;
        peakSize = Math.max(peakSize, size);
        peakPerConnection = Math.max(peakPerConnection, owner.matchRuleCount());
        listener.added(owner, rule);
    }

    /** The most rules ever held at once (dbus-daemon's PeakMatchRules). */
    public int peakSize() {
        return peakSize;
    }

    /** The most rules one connection ever held (PeakMatchRulesPerConnection). */
    public int peakPerConnection() {
        return peakPerConnection;
    }

    /** Removes one instance of an equal rule (the most recently added); false if the owner has none. */
    public boolean remove(Connection owner, MatchRule rule) {
        ArrayList<Entry> mine = byOwner.get(owner);
        if (mine == null) {
            return false;
        }
        for (int i = mine.size() - 1; i >= 0; i--) {
            Entry e = mine.get(i);
            if (e.rule.equals(rule)) {
                mine.remove(i);
                if (mine.isEmpty()) {
                    byOwner.remove(owner);
                }
                unlink(e);
                return true;
            }
        }
        return false;
    }

    public void removeAll(Connection owner) {
        ArrayList<Entry> mine = byOwner.remove(owner);
        if (mine != null) {
            for (Entry e : mine) {
                unlink(e);
            }
        }
    }

    private void unlink(Entry e) {
        int kind = e.kind();
        if (kind != NONE) {
            Table t = table(e.rule);
            relink(t, kind, e, false);
            t.size--;
        }
        e.owner.addMatchRuleCount(-1);
        size--;
        assert size >= 0 && e.owner.matchRuleCount() >= 0 : size + " rules, " + e.owner.matchRuleCount() + " of " + e.owner;
        listener.removed(e.owner, e.rule);
    }

    public int size() {
        return size;
    }

    /** The rules of one connection, in the order they were added. */
    public List<MatchRule> rulesOf(Connection owner) {
        List<MatchRule> out = new ArrayList<>();
        ArrayList<Entry> mine = byOwner.get(owner);
        if (mine != null) {
            for (Entry e : mine) {
                out.add(e.rule);
            }
        }
        return out;
    }

    /** All rules, per owner. */
    public Map<Connection, List<MatchRule>> allRules() {
        Map<Connection, List<MatchRule>> out = new IdentityHashMap<>();
        for (Connection c : byOwner.keySet()) {
            out.put(c, rulesOf(c));
        }
        return out;
    }

    /**
     * Adds to {@code out} every connection with a rule matching {@code m}. For a message with
     * a destination ({@code addressed} is its resolved recipient, or null if none), only
     * eavesdropping rules count: the recipient itself is delivered to by the caller. The order
     * of {@code out} is unspecified.
     */
    public void collect(Message m, Connection addressed, NameRegistry names, List<Connection> out) {
        if (m.destination() == null && broadcasts.size > 0) {
            probe(broadcasts, m, addressed, names, out);
        }
        if (eavesdroppers.size > 0) {
            probe(eavesdroppers, m, addressed, names, out);
        }
    }

    private void probe(Table t, Message m, Connection addressed, NameRegistry names, List<Connection> out) {
        String member = m.member();
        String path = m.path();
        String iface = m.iface();
        if (member != null) {
            if (!t.byMemberArg0.isEmpty()) {
                StringMap byArg0 = (StringMap) t.byMemberArg0.get(member);
                if (byArg0 != null) {
                    String a0 = plainArg0(m.args());
                    if (a0 != null) {
                        scan(byArg0.get(a0), m, addressed, names, out);
                    }
                }
            }
            if (!t.byMember.isEmpty()) {
                scan(t.byMember.get(member), m, addressed, names, out);
            }
        }
        if (path != null) {
            if (!t.byPath.isEmpty()) {
                scan(t.byPath.get(path), m, addressed, names, out);
            }
            if (!t.byPathNamespace.isEmpty()) {
                probeNamespaces(t.byPathNamespace, path, m, addressed, names, out);
            }
        }
        if (!t.bySender.isEmpty()) {
            probeSender(t.bySender, m, addressed, names, out);
        }
        if (iface != null && !t.byIface.isEmpty()) {
            scan(t.byIface.get(iface), m, addressed, names, out);
        }
        if (!t.byArg0.isEmpty()) {
            String a0 = plainArg0(m.args());
            if (a0 != null) {
                scan(t.byArg0.get(a0), m, addressed, names, out);
            }
        }
        scan(t.wild, m, addressed, names, out);
    }

    /** Every namespace a path is in: "/", each prefix ending before a '/', and the path itself. */
    private void probeNamespaces(StringMap map, String path, Message m, Connection addressed, NameRegistry names,
                                 List<Connection> out) {
        int n = path.length();
        int h = 0;
        for (int k = 0; k < n; k++) {
            char c = path.charAt(k);
            if (k > 1 && c == '/') {
                scan(map.getPrefix(path, k, h), m, addressed, names, out);
            }
            h = 31 * h + c;
            if (k == 0) {
                scan(map.getPrefix(path, 1, h), m, addressed, names, out);
            }
        }
        if (n > 1) {
            scan(map.getPrefix(path, n, h), m, addressed, names, out);
        }
    }

    /**
     * The buckets of every name the sender answers to: the driver's name for bus-originated
     * messages, else the unique name and each well-known name it owns. When it is queued for
     * more names than there are sender keys, the keys are walked and the owner asked instead.
     */
    private void probeSender(StringMap map, Message m, Connection addressed, NameRegistry names,
                             List<Connection> out) {
        Connection from = m.sender();
        if (from == null) {
            scan(map.get(driverName), m, addressed, names, out);
            return;
        }
        String unique = from.uniqueName();
        if (unique != null) {
            scan(map.get(unique), m, addressed, names, out);
        }
        List<String> owned = from.ownedNames();
        int n = owned.size();
        if (n == 0) {
            return;
        }
        if (n <= map.size()) {
            for (int i = 0; i < n; i++) {
                scan(map.get(owned.get(i)), m, addressed, names, out);
            }
        } else {
            for (int i = 0, cap = map.capacity(); i < cap; i++) {
                String key = map.keyAt(i);
                if (key != null && key.charAt(0) != ':' && names.owner(key) == from) {
                    scan(map.valueAt(i), m, addressed, names, out);
                }
            }
        }
    }

    private static String plainArg0(ArgSource args) {
        String a0 = args.arg(0);
        return a0 == null || args.isObjectPath(0) ? null : a0;
    }

    private void scan(Object slot, Message m, Connection addressed, NameRegistry names, List<Connection> out) {
        if (slot == null) {
            return;
        }
        if (slot instanceof Entry e) {
            check(e, m, addressed, names, out);
            return;
        }
        Bucket b = (Bucket) slot;
        Entry[] entries = b.entries;
        for (int i = 0, n = b.size; i < n; i++) {
            check(entries[i], m, addressed, names, out);
        }
    }

    private void check(Entry e, Message m, Connection addressed, NameRegistry names, List<Connection> out) {
        candidatesChecked++;
        Connection owner = e.owner;
        if (owner.isClosed()) {
            return;
        }
        MatchRule r = e.rule;
        boolean broadcast = m.destination() == null;
        if (r.destination != null) {
            if (broadcast || !r.eavesdrop) {
                return;
            }
            if (addressed == null) {
                if (!r.destination.equals(m.destination())) {
                    return;
                }
            } else if (!owns(addressed, r.destination, names)) {
                return;
            }
        } else if (!broadcast && !r.eavesdrop) {
            return;
        }
        if (r.sender != null && !senderMatches(r.sender, m.sender(), names)) {
            return;
        }
        if (!r.matchesContent(m)) {
            return;
        }
        if (owner.stampOnce(m.seq())) {
            out.add(owner);
        }
    }

    /**
     * A monitor's rule against a message: every key counts, but monitors see unicast traffic
     * whatever the rule's eavesdrop flag ({@code addressed} is the resolved recipient or null).
     */
    public boolean matchesForMonitor(MatchRule r, Message m, Connection addressed, NameRegistry names) {
        if (r.destination != null) {
            String dest = m.destination();
            if (dest == null) {
                return false;
            }
            if (addressed == null ? !r.destination.equals(dest) : !owns(addressed, r.destination, names)
                    && !r.destination.equals(dest)) {
                return false;
            }
        }
        if (r.sender != null && !senderMatches(r.sender, m.sender(), names)) {
            return false;
        }
        return r.matchesContent(m);
    }

    private boolean senderMatches(String ruleSender, Connection sender, NameRegistry names) {
        if (sender == null) {
            return ruleSender.equals(driverName);
        }
        return owns(sender, ruleSender, names);
    }

    private static boolean owns(Connection c, String name, NameRegistry names) {
        if (name.charAt(0) == ':') {
            return name.equals(c.uniqueName());
        }
        return names.owner(name) == c;
    }

    // ---------------------------------------------------------------- placement

    /** The table a rule belongs in, or null if it can never match (destination, no eavesdrop). */
    Table table(MatchRule r) {
        if (r.eavesdrop) {
            return eavesdroppers;
        }
        return r.destination == null ? broadcasts : null;
    }

    /** The keyed kinds in the order {@link #choose} prefers them on equal cost. */
    private static final int[] KEYED = {MEMBER_ARG0, PATH, MEMBER, SENDER, PATH_NAMESPACE, IFACE};

    /** Marks a kind whose key the rule does not have. */
    private static final Object NO_KEY = new Object();

    /** The kind of bucket {@code r} goes into: see the class comment. */
    private static int choose(Table t, MatchRule r) {
        String a0 = r.plainArg0();
        int best = -1;
        int bestCost = Integer.MAX_VALUE;
        for (int i = 0; i < KEYED.length && bestCost > 0; i++) {
            Object slot = slotFor(t, r, a0, KEYED[i]);
            if (slot != NO_KEY) {
                int c = cost(slot, r);
                if (c < bestCost) {
                    best = KEYED[i];
                    bestCost = c;
                }
            }
        }
        if (best >= 0) {
            return best;
        }
        return a0 != null ? ARG0 : WILD;
    }

    /** What the bucket of {@code kind} holds under r's key now, or NO_KEY if r has no such key. */
    static Object slotFor(Table t, MatchRule r, String a0, int kind) {
        switch (kind) {
            case MEMBER_ARG0: {
                if (r.member == null || a0 == null) {
                    return NO_KEY;
                }
                StringMap byArg0 = (StringMap) t.byMemberArg0.get(r.member);
                return byArg0 == null ? null : byArg0.get(a0);
            }
            case PATH:
                return r.path == null ? NO_KEY : t.byPath.get(r.path);
            case MEMBER:
                return r.member == null ? NO_KEY : t.byMember.get(r.member);
            case SENDER:
                return r.sender == null ? NO_KEY : t.bySender.get(r.sender);
            case PATH_NAMESPACE:
                return r.pathNamespace == null ? NO_KEY : t.byPathNamespace.get(r.pathNamespace);
            case IFACE:
                return r.iface == null ? NO_KEY : t.byIface.get(r.iface);
            default:
                throw new IllegalArgumentException("kind " + kind);
        }
    }

    /** What joining a bucket costs lookups: nothing if it is empty or holds an equal rule, else its size. */
    private static int cost(Object slot, MatchRule r) {
        if (slot == null) {
            return 0;
        }
        if (slot instanceof Entry e) {
            return e.rule.equals(r) ? 0 : 1;
        }
        Bucket b = (Bucket) slot;
        return b.entries[0].rule.equals(r) ? 0 : b.size;
    }

    private static void link(Table t, int kind, Entry e) {
        relink(t, kind, e, true);
        t.size++;
    }

    /** Adds {@code e} to (or removes it from) the bucket of {@code kind} under its rule's key. */
    private static void relink(Table t, int kind, Entry e, boolean add) {
        MatchRule r = e.rule;
        switch (kind) {
            case MEMBER_ARG0 -> {
                StringMap byArg0 = (StringMap) t.byMemberArg0.get(r.member);
                if (byArg0 == null) {
                    byArg0 = new StringMap();
                    t.byMemberArg0.put(r.member, byArg0);
                }
                String a0 = r.plainArg0();
                byArg0.put(a0, step(byArg0.get(a0), e, add));
                if (byArg0.isEmpty()) {
                    t.byMemberArg0.put(r.member, null);
                }
            }
            case PATH -> t.byPath.put(r.path, step(t.byPath.get(r.path), e, add));
            case MEMBER -> t.byMember.put(r.member, step(t.byMember.get(r.member), e, add));
            case SENDER -> t.bySender.put(r.sender, step(t.bySender.get(r.sender), e, add));
            case PATH_NAMESPACE -> t.byPathNamespace.put(r.pathNamespace,
                    step(t.byPathNamespace.get(r.pathNamespace), e, add));
            case IFACE -> t.byIface.put(r.iface, step(t.byIface.get(r.iface), e, add));
            case ARG0 -> t.byArg0.put(r.plainArg0(), step(t.byArg0.get(r.plainArg0()), e, add));
            default -> t.wild = step(t.wild, e, add);
        }
    }

    private static Object step(Object slot, Entry e, boolean add) {
        return add ? with(slot, e) : without(slot, e);
    }

    /** A bucket plus one entry. */
    private static Object with(Object slot, Entry e) {
        if (slot == null) {
            return e;
        }
        Bucket b;
        if (slot instanceof Entry first) {
            b = new Bucket();
            b.add(first);
        } else {
            b = (Bucket) slot;
        }
        b.add(e);
        return b;
    }

    /** A bucket less one entry; null once empty, the remaining entry itself once one is left. */
    private static Object without(Object slot, Entry e) {
        if (slot == e) {
            return null;
        }
        if (!(slot instanceof Bucket b)) {
            throw new IllegalStateException("match rule entry is not in its bucket");
        }
        b.remove(e);
        return b.size == 1 ? b.entries[0] : b;
    }

    /**
     * Checks every invariant of the class comment ({@link MatchIndexInvariants}); throws
     * IllegalStateException naming the first broken one.
     */
    public void checkInvariants() {
        MatchIndexInvariants.check(this);
    }

    /** For tests: the kind of bucket each of the owner's rules is in, in the order added. */
    int[] kindsOf(Connection owner) {
        ArrayList<Entry> mine = byOwner.get(owner);
        if (mine == null) {
            return new int[0];
        }
        int[] out = new int[mine.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = mine.get(i).kind();
        }
        return out;
    }
}
