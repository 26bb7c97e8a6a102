package org.kdbusbridge.core.monitor;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.match.MatchIndex;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameRegistry;

/**
 * The monitor connections and their rules (BecomeMonitor).
 *
 * Invariants: a monitor is captured every admitted message its rules match, in sequence
 * order, including messages that were then refused or could not be delivered; a monitor has
 * no names and is invisible to other peers; a full monitor pool drops (and counts) rather
 * than slow the bus. An empty rule list means everything.
 */
public final class Monitors {
    private final Map<Connection, List<MatchRule>> monitors = new IdentityHashMap<>();

    public void add(Connection c, List<MatchRule> rules) {
        monitors.put(c, List.copyOf(rules));
    }

    /** Every monitor with its rules (a copy; the order is unspecified). */
    public Map<Connection, List<MatchRule>> all() {
        return new IdentityHashMap<>(monitors);
    }

    public void remove(Connection c) {
        monitors.remove(c);
    }

    public boolean isMonitor(Connection c) {
        return monitors.containsKey(c);
    }

    public boolean isEmpty() {
        return monitors.isEmpty();
    }

    public int size() {
        return monitors.size();
    }

    /** Offers {@code m} to every monitor with a matching rule (or no rules). */
    public void capture(Message m, Connection addressed, MatchIndex index, NameRegistry names) {
        if (monitors.isEmpty()) {
            return;
        }
        for (Map.Entry<Connection, List<MatchRule>> e : new ArrayList<>(monitors.entrySet())) {
            Connection mon = e.getKey();
            if (mon.isClosed()) {
                continue;
            }
            List<MatchRule> rules = e.getValue();
            boolean match = rules.isEmpty();
            for (int i = 0; !match && i < rules.size(); i++) {
                match = index.matchesForMonitor(rules.get(i), m, addressed, names);
            }
            if (match) {
                mon.offer(m);
            }
        }
    }
}
