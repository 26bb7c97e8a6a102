package org.kdbusbridge.core.bus;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;

/**
 * Hand-over (issue 19, docs/handover.md section 8 step 1): rebuilds an idle bus's state in a
 * new {@link Bus} from values the bridge decoded from a snapshot. The core knows nothing of
 * sockets or bytes: each operation takes values, changes the bus without limit checks or
 * signals (what it restores was admitted by the old bus), and charges the quota as the
 * original operation did, so a smaller new heap leaves the bus over budget, never losing state.
 *
 * Order: {@link #connection} for every connection in id order, then {@link #register} (or
 * {@link #monitor}), {@link #queue} per name, {@link #ownedNames} per connection, {@link #match}
 * per rule in insertion order, then {@link #finish}, which restores the counters and checks the
 * registry's and the index's invariants. One use per bus, on the bus's thread.
 */
public final class Restore {
    /** The bus-wide values a snapshot carries that are not derived from its objects. */
    public record Counts(long nextId, long nextUnique, long lastSequence, int peakBusNames,
            int peakBusNamesPerConnection, int peakMatchRules, int peakMatchRulesPerConnection) {
    }

    private final Bus bus;
    private final Map<Long, Connection> byId = new LinkedHashMap<>();
    private boolean finished;

    Restore(Bus bus) {
        if (bus.connectionCount() != 0 || bus.lastSequence() != 0 || bus.names().nameCount() != 0) {
            throw new IllegalStateException("restore needs a new bus");
        }
        this.bus = bus;
    }

    static Counts counts(Bus b) {
        return new Counts(b.table().nextId(), b.table().nextUnique(), b.lastSequence(), b.peakBusNames(),
                b.peakBusNamesPerConnection(), b.matches().peakSize(), b.matches().peakPerConnection());
    }

    /**
     * What step 1 cannot carry, each named (empty: idle). Until later steps land the hand-over
     * refuses such a bus rather than lose any of it (docs/handover.md section 8).
     */
    static List<String> refusals(Bus b) {
        List<String> out = new ArrayList<>();
        int incomplete = b.connectionCount() - b.completedConnectionCount();
        if (incomplete > 0) {
            out.add(incomplete + " connection(s) that have not completed Hello (SASL state is carried from step 5)");
        }
        List<Connection> all = new ArrayList<>(b.activeConnections());
        all.addAll(b.monitorSet().all().keySet());
        long queued = 0;
        for (Connection c : all) {
            queued += c.pool().messages();
        }
        if (queued > 0) {
            out.add(queued + " queued message(s) (messages are carried from step 4)");
        }
        long slots = b.replySlotSet().openCount();
        if (slots > 0) {
            out.add(slots + " open reply slot(s) (carried from step 4)");
        }
        if (b.pendingActivationEntries() > 0) {
            out.add(b.pendingActivationEntries() + " pending activation entries (carried from steps 4 and 6)");
        }
        for (String name : b.activatableNames()) {
            org.kdbusbridge.core.activation.Activator a = b.activator(name);
            if (a != null && (a.isStarting() || a.queued() > 0)) {
                out.add("activation of " + name + " in flight (carried from step 6)");
            }
        }
        for (Connection c : all) {
            if (c.endpoint() != null) {
                out.add(c + " came in through a custom endpoint (endpoint state is not carried yet)");
            }
        }
        return out;
    }

    private void open() {
        if (finished) {
            throw new IllegalStateException("restore already finished");
        }
    }

    /** A connection with its old id (ids ascending); counted as connected, not registered yet. */
    public Connection connection(long id, Credentials credentials, ConnectionSink sink) {
        open();
        Connection c = bus.table().restoreConnection(id, credentials, sink);
        byId.put(id, c);
        return c;
    }

    /** The connection by its carried id, or null. */
    public Connection byId(long id) { return byId.get(id); }

    /** Its Hello as answered by the old bus: {@code unique} and visible to peers. */
    public void register(Connection c, String unique) {
        open();
        bus.table().restoreRegistered(c, unique, true);
    }

    /** A monitor (BecomeMonitor done in the old bus): its name kept but invisible, its monitor rules. */
    public void monitor(Connection c, String unique, List<MatchRule> rules) {
        open();
        bus.table().restoreRegistered(c, unique, false);
        c.watchDrops(false); // a monitor is told nothing by the bus
        bus.monitorSet().add(c, rules);
    }

    /** AttachMetadata's set and the drop watch (with its unreported count, {@code dropCount} 0 if none). */
    public void attachMetadata(Connection c, int items, boolean drops, long dropCount, long firstSeq, long lastSeq) {
        open();
        bus.attachMetadata(c, items, drops);
        if (drops && c.drops() != null && dropCount > 0) {
            c.drops().restore(dropCount, firstSeq, lastSeq);
        }
    }

    /** {@code name}'s owner queue, primary first, with each owner's stored flags. */
    public void queue(String name, List<Connection> owners, int[] flags) {
        open();
        bus.names().restore(name, owners, flags);
    }

    /** {@code c}'s well-known names in its own acquisition order (after every {@link #queue}). */
    public void ownedNames(Connection c, List<String> names) {
        open();
        if (!c.ownedNames().isEmpty()) {
            throw new IllegalStateException(c + ": owned names restored twice");
        }
        for (String n : names) {
            c.addOwnedName(n);
        }
    }

    /** One of {@code c}'s match rules; call in insertion order, duplicates included. */
    public void match(Connection c, MatchRule rule) {
        open();
        bus.matches().add(c, rule);
    }

    /** The counters and peaks; then the registry's and the index's invariants are checked. */
    public void finish(Counts counts) {
        open();
        finished = true;
        bus.table().restoreCounters(counts.nextId(), counts.nextUnique(), counts.peakBusNames(),
                counts.peakBusNamesPerConnection());
        bus.router().restoreSequence(counts.lastSequence());
        bus.matches().restorePeaks(counts.peakMatchRules(), counts.peakMatchRulesPerConnection());
        bus.names().checkInvariants(byId.values());
        bus.matches().checkInvariants();
        for (Connection c : byId.values()) {
            if (c.uniqueName() == null) {
                throw new IllegalStateException("connection " + c.id() + " restored without its Hello");
            }
        }
    }
}
