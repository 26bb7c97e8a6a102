package org.kdbusbridge.core.match;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameRegistry;

/**
 * Every connection's match rules, indexed so a message is checked only against rules that
 * could match it: rules are bucketed by (member, interface), with a wildcard bucket for
 * each, so a lookup probes four buckets instead of scanning every rule on the bus.
 *
 * Invariants: each AddMatch is one entry (duplicates are kept and removed one at a time);
 * an entry is in exactly one bucket and in its owner's list; a recipient is reported at most
 * once per message (de-duplicated by the message sequence number, no allocation).
 */
public final class MatchIndex {
    private static final String ANY = "";

    private static final class Entry {
        final Connection owner;
        final MatchRule rule;

        Entry(Connection owner, MatchRule rule) {
            this.owner = owner;
            this.rule = rule;
        }
    }

    private final HashMap<String, HashMap<String, ArrayList<Entry>>> byMember = new HashMap<>();
    private final IdentityHashMap<Connection, ArrayList<Entry>> byOwner = new IdentityHashMap<>();
    private final String driverName;
    private int size;
    private int peakSize;
    private int peakPerConnection;

    /** @param driverName the bus driver's name, which {@code sender=} may name (org.freedesktop.DBus) */
    public MatchIndex(String driverName) {
        this.driverName = driverName;
    }

    public void add(Connection owner, MatchRule rule) {
        Entry e = new Entry(owner, rule);
        bucket(rule, true).add(e);
        byOwner.computeIfAbsent(owner, k -> new ArrayList<>()).add(e);
        owner.addMatchRuleCount(1);
        size++;
        peakSize = Math.max(peakSize, size);
        peakPerConnection = Math.max(peakPerConnection, owner.matchRuleCount());
    }

    /** The most rules ever held at once (dbus-daemon's PeakMatchRules). */
    public int peakSize() {
        return peakSize;
    }

    /** The most rules one connection ever held (PeakMatchRulesPerConnection). */
    public int peakPerConnection() {
        return peakPerConnection;
    }

    /** Removes one instance of an equal rule; false if the owner has none. */
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
        ArrayList<Entry> b = bucket(e.rule, false);
        if (b != null) {
            b.remove(e);
            if (b.isEmpty()) {
                HashMap<String, ArrayList<Entry>> byIface = byMember.get(key(e.rule.member));
                byIface.remove(key(e.rule.iface));
                if (byIface.isEmpty()) {
                    byMember.remove(key(e.rule.member));
                }
            }
        }
        e.owner.addMatchRuleCount(-1);
        size--;
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
     * eavesdropping rules count: the recipient itself is delivered to by the caller.
     */
    public void collect(Message m, Connection addressed, NameRegistry names, List<Connection> out) {
        String member = m.member();
        String iface = m.iface();
        HashMap<String, ArrayList<Entry>> exact = member == null ? null : byMember.get(member);
        HashMap<String, ArrayList<Entry>> wild = byMember.get(ANY);
        if (exact != null) {
            scan(iface == null ? null : exact.get(iface), m, addressed, names, out);
            scan(exact.get(ANY), m, addressed, names, out);
        }
        if (wild != null) {
            scan(iface == null ? null : wild.get(iface), m, addressed, names, out);
            scan(wild.get(ANY), m, addressed, names, out);
        }
    }

    private void scan(ArrayList<Entry> bucket, Message m, Connection addressed, NameRegistry names,
                      List<Connection> out) {
        if (bucket == null) {
            return;
        }
        boolean broadcast = m.destination() == null;
        long seq = m.seq();
        for (int i = 0, n = bucket.size(); i < n; i++) {
            Entry e = bucket.get(i);
            Connection owner = e.owner;
            if (owner.isClosed()) {
                continue;
            }
            MatchRule r = e.rule;
            if (r.destination != null) {
                if (broadcast || !r.eavesdrop) {
                    continue;
                }
                if (addressed == null) {
                    if (!r.destination.equals(m.destination())) {
                        continue;
                    }
                } else if (!owns(addressed, r.destination, names)) {
                    continue;
                }
            } else if (!broadcast && !r.eavesdrop) {
                continue;
            }
            if (r.sender != null && !senderMatches(r.sender, m.sender(), names)) {
                continue;
            }
            if (!r.matchesContent(m)) {
                continue;
            }
            if (owner.stampOnce(seq)) {
                out.add(owner);
            }
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

    private ArrayList<Entry> bucket(MatchRule rule, boolean create) {
        String mk = key(rule.member);
        String ik = key(rule.iface);
        HashMap<String, ArrayList<Entry>> byIface = byMember.get(mk);
        if (byIface == null) {
            if (!create) {
                return null;
            }
            byIface = new HashMap<>();
            byMember.put(mk, byIface);
        }
        ArrayList<Entry> b = byIface.get(ik);
        if (b == null && create) {
            b = new ArrayList<>(2);
            byIface.put(ik, b);
        }
        return b;
    }

    private static String key(String s) {
        return s == null ? ANY : s;
    }
}
