package org.kdbusbridge.core.match;

import java.util.ArrayList;
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
 * bucket of one entry is that entry, of more a MatchBucket whose entries know their index; no map
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
    // Where an entry is (MatchEntry's kind), in the order add prefers them on equal cost.
    static final int NONE = 0;
    static final int MEMBER_ARG0 = 1;
    static final int PATH = 2;
    static final int MEMBER = 3;
    static final int SENDER = 4;
    static final int PATH_NAMESPACE = 5;
    static final int IFACE = 6;
    static final int ARG0 = 7;
    static final int WILD = 8;

    final MatchTable broadcasts = new MatchTable();
    final MatchTable eavesdroppers = new MatchTable();
    final IdentityHashMap<Connection, ArrayList<MatchEntry>> byOwner = new IdentityHashMap<>();
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
        MatchEntry e = new MatchEntry(owner, rule);
        MatchTable t = table(rule);
        if (t != null) {
            int kind = t.choose(rule);
            e.where = kind;
            t.link(kind, e);
            assert MatchIndexInvariants.holds(t, kind, e) : "match rule entry not in the bucket it was put in";
        }
        byOwner.computeIfAbsent(owner, k -> new ArrayList<>(4)).add(e);
        owner.addMatchRuleCount(1);
        size++;
        peakSize = Math.max(peakSize, size);
        peakPerConnection = Math.max(peakPerConnection, owner.matchRuleCount());
        listener.added(owner, rule);
    }

    /** Hand-over restore: the old bus's peaks (restored rules may have raised these already). */
    public void restorePeaks(int peakSize, int peakPerConnection) {
        this.peakSize = Math.max(this.peakSize, peakSize);
        this.peakPerConnection = Math.max(this.peakPerConnection, peakPerConnection);
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
        ArrayList<MatchEntry> mine = byOwner.get(owner);
        if (mine == null) {
            return false;
        }
        for (int i = mine.size() - 1; i >= 0; i--) {
            MatchEntry e = mine.get(i);
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
        ArrayList<MatchEntry> mine = byOwner.remove(owner);
        if (mine != null) {
            for (MatchEntry e : mine) {
                unlink(e);
            }
        }
    }

    private void unlink(MatchEntry e) {
        int kind = e.kind();
        if (kind != NONE) {
            table(e.rule).unlink(kind, e);
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
        ArrayList<MatchEntry> mine = byOwner.get(owner);
        if (mine != null) {
            for (MatchEntry e : mine) {
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

    private void probe(MatchTable t, Message m, Connection addressed, NameRegistry names, List<Connection> out) {
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
        if (slot instanceof MatchEntry e) {
            check(e, m, addressed, names, out);
            return;
        }
        MatchBucket b = (MatchBucket) slot;
        MatchEntry[] entries = b.entries;
        for (int i = 0, n = b.size; i < n; i++) {
            check(entries[i], m, addressed, names, out);
        }
    }

    private void check(MatchEntry e, Message m, Connection addressed, NameRegistry names, List<Connection> out) {
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
    MatchTable table(MatchRule r) {
        if (r.eavesdrop) {
            return eavesdroppers;
        }
        return r.destination == null ? broadcasts : null;
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
        ArrayList<MatchEntry> mine = byOwner.get(owner);
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
