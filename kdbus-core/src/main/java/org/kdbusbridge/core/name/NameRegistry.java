package org.kdbusbridge.core.name;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.core.connection.Connection;

/**
 * Well-known names, each with a queue of owners (kdbus name registry, dbus-daemon semantics).
 *
 * Invariants: a name exists in the map iff its queue is non-empty; the queue head is the
 * primary owner; a connection appears at most once per queue; each owner's stored flags are
 * ALLOW_REPLACEMENT and DO_NOT_QUEUE from its latest request (REPLACE_EXISTING is never
 * stored), and only the primary can have DO_NOT_QUEUE (such a request never queues); a
 * replaced primary moves to position 2, or leaves if it had DO_NOT_QUEUE. A connection's
 * {@link Connection#ownedNames} holds exactly the names whose queue it is in (primary or
 * queued), each once, in the order its entries were added; {@code ownerEntries} is the sum of
 * the queue lengths. Changes are appended to the caller's list in the order the driver must
 * emit them. {@link #checkInvariants} verifies all of this.
 */
public final class NameRegistry {
    public static final int FLAG_ALLOW_REPLACEMENT = 0x1;
    public static final int FLAG_REPLACE_EXISTING = 0x2;
    public static final int FLAG_DO_NOT_QUEUE = 0x4;

    public static final int REPLY_PRIMARY_OWNER = 1;
    public static final int REPLY_IN_QUEUE = 2;
    public static final int REPLY_EXISTS = 3;
    public static final int REPLY_ALREADY_OWNER = 4;

    public static final int RELEASE_RELEASED = 1;
    public static final int RELEASE_NON_EXISTENT = 2;
    public static final int RELEASE_NOT_OWNER = 3;

    private static final class Owner {
        final Connection conn;
        int flags;

        Owner(Connection conn, int flags) {
            this.conn = conn;
            this.flags = flags;
        }

        boolean allowReplacement() { return (flags & FLAG_ALLOW_REPLACEMENT) != 0; }
        boolean doNotQueue() { return (flags & FLAG_DO_NOT_QUEUE) != 0; }
    }

    private Map<String, ArrayList<Owner>> names = new HashMap<>();
    /** The most names held since {@link #names} was last built: a HashMap's table never shrinks. */
    private int namesHighWater;
    /** Owner entries over all queues (primary or queued): dbus-daemon's well-known "BusNames". */
    private int ownerEntries;
    private EntryListener entries = new EntryListener() { };

    /**
     * Told of every owner entry (primary or queued) as it is added or removed, in the same
     * transaction: the bus charges them to the connection's uid and keeps statistics peaks.
     */
    public interface EntryListener {
        default void added(Connection conn, String name) { }

        default void removed(Connection conn, String name) { }
    }

    public void setEntryListener(EntryListener listener) {
        this.entries = listener;
    }

    /** Owner entries over all queues. */
    public int ownerEntries() {
        return ownerEntries;
    }

    /**
     * RequestName for a well-known name. The caller has validated the name and the limits.
     * Returns one of the REPLY_* codes; appends the resulting changes to {@code changes}.
     */
    public int request(Connection conn, String name, int flags, List<NameChange> changes) {
        int reply = requestEntry(conn, name, flags, changes);
        assert holdsFor(name, conn);
        return reply;
    }

    private int requestEntry(Connection conn, String name, int flags, List<NameChange> changes) {
        int stored = flags & (FLAG_ALLOW_REPLACEMENT | FLAG_DO_NOT_QUEUE);
        ArrayList<Owner> queue = names.get(name);
        if (queue == null) {
            queue = new ArrayList<>(2);
            queue.add(new Owner(conn, stored));
            names.put(name, queue);
            namesHighWater = Math.max(namesHighWater, names.size());
            conn.addOwnedName(name);
            ownerEntries++;
            entries.added(conn, name);
            changes.add(changed(name, null, conn));
            return REPLY_PRIMARY_OWNER;
        }
        Owner primary = queue.get(0);
        if (primary.conn == conn) {
            primary.flags = stored;
            return REPLY_ALREADY_OWNER;
        }
        boolean doNotQueue = (flags & FLAG_DO_NOT_QUEUE) != 0;
        boolean replace = (flags & FLAG_REPLACE_EXISTING) != 0;
        int existing = indexOf(queue, conn);
        if (doNotQueue && (!primary.allowReplacement() || !replace)) {
            if (existing >= 0) {
                queue.remove(existing);
                conn.removeOwnedName(name);
                ownerEntries--;
                entries.removed(conn, name);
            }
            return REPLY_EXISTS;
        }
        if (!doNotQueue && (!replace || !primary.allowReplacement())) {
            enqueue(queue, existing, conn, stored, replace, name);
            return REPLY_IN_QUEUE;
        }
        // Replace the primary: the newcomer goes to position 2, then the primary steps aside.
        enqueue(queue, existing, conn, stored, true, name);
        queue.remove(0);
        if (primary.doNotQueue()) {
            primary.conn.removeOwnedName(name);
            ownerEntries--;
            entries.removed(primary.conn, name);
        } else {
            queue.add(1, primary);
        }
        changes.add(changed(name, primary.conn, conn));
        return REPLY_PRIMARY_OWNER;
    }

    private void enqueue(ArrayList<Owner> queue, int existing, Connection conn, int stored,
                                boolean jump, String name) {
        Owner owner;
        if (existing >= 0) {
            owner = queue.get(existing);
            owner.flags = stored;
            if (jump) {
                queue.remove(existing);
                queue.add(1, owner);
            }
            return;
        }
        owner = new Owner(conn, stored);
        if (jump) {
            queue.add(1, owner);
        } else {
            queue.add(owner);
        }
        conn.addOwnedName(name);
        ownerEntries++;
        entries.added(conn, name);
    }

    /**
     * Whether {@link #request} with these arguments would give {@code conn} a new owner entry
     * (primary or queued) for {@code name}: what the caller's quota check needs to know before
     * anything changes. Re-requesting a name it is already in the queue of adds none.
     */
    public boolean wouldAddEntry(Connection conn, String name, int flags) {
        ArrayList<Owner> queue = names.get(name);
        if (queue == null) {
            return true;
        }
        if (indexOf(queue, conn) >= 0) {
            return false;
        }
        boolean doNotQueue = (flags & FLAG_DO_NOT_QUEUE) != 0;
        boolean replace = (flags & FLAG_REPLACE_EXISTING) != 0;
        return !doNotQueue || (replace && queue.get(0).allowReplacement());
    }

    /** ReleaseName; returns one of the RELEASE_* codes. */
    public int release(Connection conn, String name, List<NameChange> changes) {
        ArrayList<Owner> queue = names.get(name);
        if (queue == null) {
            return RELEASE_NON_EXISTENT;
        }
        int idx = indexOf(queue, conn);
        if (idx < 0) {
            return RELEASE_NOT_OWNER;
        }
        remove(queue, idx, name, changes);
        assert holdsFor(name, conn);
        return RELEASE_RELEASED;
    }

    /** Drops every name of a closing connection, most recently acquired first. */
    public void releaseAll(Connection conn, List<NameChange> changes) {
        releaseAll(conn, false, changes);
    }

    /**
     * Drops every name of {@code conn}, in acquisition order if {@code oldestFirst}, else most
     * recent first; O(names + their queues), however many names the connection holds.
     */
    public void releaseAll(Connection conn, boolean oldestFirst, List<NameChange> changes) {
        List<String> owned = conn.ownedNames();
        String[] all = owned.toArray(new String[0]);
        for (int k = 0; k < all.length; k++) {
            String name = all[oldestFirst ? k : all.length - 1 - k];
            ArrayList<Owner> queue = names.get(name);
            int idx = queue == null ? -1 : indexOf(queue, conn);
            if (idx >= 0) {
                removeEntry(queue, idx, name, changes);
            }
        }
        conn.clearOwnedNames();
        assert ownerEntries >= 0 : ownerEntries + " owner entries";
    }

    private void remove(ArrayList<Owner> queue, int idx, String name, List<NameChange> changes) {
        Connection gone = removeEntry(queue, idx, name, changes);
        gone.removeOwnedName(name);
    }

    /**
     * After a flood of names has gone, rebuilds the map at its present size, so the table sized
     * for the flood (a MiB or two for 100k names) goes back: only once 7/8 of the most it held
     * have gone, so it is amortized O(1) per removal.
     */
    private void compactIfSparse() {
        if (namesHighWater > 4096 && names.size() < namesHighWater / 8) {
            names = new HashMap<>(names);
            namesHighWater = names.size();
        }
    }

    /** Takes entry {@code idx} out of {@code name}'s queue (not out of the connection's list). */
    private Connection removeEntry(ArrayList<Owner> queue, int idx, String name, List<NameChange> changes) {
        Owner gone = queue.remove(idx);
        ownerEntries--;
        entries.removed(gone.conn, name);
        if (idx != 0) {
            return gone.conn;
        }
        if (queue.isEmpty()) {
            names.remove(name);
            compactIfSparse();
            changes.add(changed(name, gone.conn, null));
        } else {
            changes.add(changed(name, gone.conn, queue.get(0).conn));
        }
        return gone.conn;
    }

    /**
     * A primary-owner change of {@code name}: both sides forget their cached primary-names list
     * (AttachMetadata's names item), so the next message of either computes it afresh.
     */
    private static NameChange changed(String name, Connection oldOwner, Connection newOwner) {
        if (oldOwner != null) {
            oldOwner.primaryNamesChanged();
        }
        if (newOwner != null) {
            newOwner.primaryNamesChanged();
        }
        return new NameChange(name, oldOwner, newOwner);
    }

    /**
     * Hand-over restore: {@code name}'s queue exactly as it was (primary first, each owner's
     * stored flags), with no signals; each owner is charged as a new entry would be. The owners'
     * {@link Connection#ownedNames} are not touched: the caller rebuilds them in their own
     * carried order, then {@link #checkInvariants} proves both sides agree.
     */
    public void restore(String name, List<Connection> owners, int[] flags) {
        if (names.containsKey(name) || owners.isEmpty() || owners.size() != flags.length) {
            throw new IllegalStateException("cannot restore the queue of " + name);
        }
        ArrayList<Owner> queue = new ArrayList<>(Math.max(2, owners.size()));
        for (int i = 0; i < owners.size(); i++) {
            queue.add(new Owner(owners.get(i), flags[i]));
        }
        names.put(name, queue);
        namesHighWater = Math.max(namesHighWater, names.size());
        for (Owner o : queue) {
            ownerEntries++;
            entries.added(o.conn, name);
        }
    }

    /** The primary owner, or null. */
    public Connection owner(String name) {
        ArrayList<Owner> queue = names.get(name);
        return queue == null ? null : queue.get(0).conn;
    }

    /** Unique names of everyone queued for {@code name}, primary first; empty if none. */
    public List<Connection> queue(String name) {
        ArrayList<Owner> queue = names.get(name);
        List<Connection> out = new ArrayList<>();
        if (queue != null) {
            for (Owner o : queue) {
                out.add(o.conn);
            }
        }
        return out;
    }

    /** Every name that has a primary owner. */
    public List<String> names() {
        return new ArrayList<>(names.keySet());
    }

    /** How many names have a primary owner. */
    public int nameCount() {
        return names.size();
    }

    /** Adds every name that has a primary owner to {@code out}, without an intermediate array. */
    public void addNamesTo(java.util.Collection<String> out) {
        for (String n : names.keySet()) {
            out.add(n);
        }
    }

    /** The stored flags of {@code conn} in the queue of {@code name}, or -1. */
    public int storedFlags(Connection conn, String name) {
        ArrayList<Owner> queue = names.get(name);
        if (queue == null) {
            return -1;
        }
        int idx = indexOf(queue, conn);
        return idx < 0 ? -1 : queue.get(idx).flags;
    }

    /**
     * The invariants for one name and one connection, cheap enough to assert on every change:
     * the queue is absent or non-empty with a valid primary, {@code conn} is in it at most once,
     * and lists the name iff it is in it.
     */
    private boolean holdsFor(String name, Connection conn) {
        ArrayList<Owner> queue = names.get(name);
        int at = queue == null ? -1 : indexOf(queue, conn);
        if (queue != null && (queue.isEmpty() || (at >= 0 && lastIndexOf(queue, conn) != at))) {
            throw new IllegalStateException("queue of " + name + " is empty or holds " + conn + " twice");
        }
        if (conn.ownsName(name) != (at >= 0) || ownerEntries < 0) {
            throw new IllegalStateException(conn + (at >= 0 ? " is" : " is not") + " in the queue of " + name
                    + " but " + (at >= 0 ? "does not list" : "lists") + " it");
        }
        return true;
    }

    private static int lastIndexOf(ArrayList<Owner> queue, Connection conn) {
        for (int i = queue.size() - 1; i >= 0; i--) {
            if (queue.get(i).conn == conn) {
                return i;
            }
        }
        return -1;
    }

    /** Checks the invariants over every queue and every connection in one. */
    public void checkInvariants() {
        checkInvariants(List.of());
    }

    /**
     * As {@link #checkInvariants()}, and also every connection of {@code others} (say, all the
     * bus's connections): one in no queue must hold no names.
     */
    public void checkInvariants(java.util.Collection<Connection> others) {
        Map<Connection, Integer> entriesOf = new java.util.IdentityHashMap<>();
        int total = 0;
        for (Map.Entry<String, ArrayList<Owner>> e : names.entrySet()) {
            String name = e.getKey();
            ArrayList<Owner> queue = e.getValue();
            if (queue == null || queue.isEmpty()) {
                throw new IllegalStateException(name + " has no owner but is registered");
            }
            java.util.Set<Connection> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
            for (int i = 0; i < queue.size(); i++) {
                Owner o = queue.get(i);
                if (!seen.add(o.conn)) {
                    throw new IllegalStateException(o.conn + " is in the queue of " + name + " twice");
                }
                if ((o.flags & ~(FLAG_ALLOW_REPLACEMENT | FLAG_DO_NOT_QUEUE)) != 0 || (i > 0 && o.doNotQueue())) {
                    throw new IllegalStateException(o.conn + " at " + i + " of " + name + " has flags " + o.flags);
                }
                if (!o.conn.ownsName(name)) {
                    throw new IllegalStateException(o.conn + " is in the queue of " + name + " but does not list it");
                }
                entriesOf.merge(o.conn, 1, Integer::sum);
            }
            total += queue.size();
        }
        if (total != ownerEntries) {
            throw new IllegalStateException(ownerEntries + " owner entries counted but " + total + " in the queues");
        }
        for (Connection c : others) {
            entriesOf.putIfAbsent(c, 0);
        }
        for (Map.Entry<Connection, Integer> e : entriesOf.entrySet()) {
            Connection c = e.getKey();
            List<String> owned = c.ownedNames();
            if (owned.size() != e.getValue() || new java.util.HashSet<>(owned).size() != owned.size()) {
                throw new IllegalStateException(c + " lists " + owned + " but is in " + e.getValue() + " queues");
            }
            for (String name : owned) {
                ArrayList<Owner> queue = names.get(name);
                if (queue == null || indexOf(queue, c) < 0 || !c.ownsName(name)) {
                    throw new IllegalStateException(c + " lists " + name + " but is not in its queue");
                }
            }
        }
    }

    private static int indexOf(ArrayList<Owner> queue, Connection conn) {
        for (int i = 0; i < queue.size(); i++) {
            if (queue.get(i).conn == conn) {
                return i;
            }
        }
        return -1;
    }
}
