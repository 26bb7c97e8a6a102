package org.kdbusbridge.core.bus;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.MessageFacts;

/**
 * How many connections want each metadata item (AttachMetadata), so admission asks one int
 * whether anybody wants anything at all: with nobody opted in, {@link #wanted()} is 0 and no
 * message gets facts.
 *
 * Invariants: {@code counts[i]} is the number of live connections whose attach set has bit i;
 * {@code wanted} has bit i iff {@code counts[i] > 0}; a connection's set changes only here, and
 * each time a bit leaves {@code wanted} the listener hears it once (whatever the cause: a new set,
 * a departure, BecomeMonitor).
 */
final class AttachDemand {
    private final int[] counts = new int[MessageFacts.ITEMS];
    private int wanted;
    private Bus.DemandListener listener = items -> { };

    void setListener(Bus.DemandListener listener) { this.listener = listener; }

    int wanted() { return wanted; }

    /** How many connections want {@code item} (one MessageFacts bit); 0 for 0 or a bit that is no item. */
    int count(int item) {
        int i = Integer.numberOfTrailingZeros(item);
        return i < MessageFacts.ITEMS ? counts[i] : 0;
    }

    AttachChange set(Connection c, int items) {
        int before = c.attachedMetadata();
        int wantedBefore = wanted;
        for (int i = 0; i < MessageFacts.ITEMS; i++) {
            int bit = 1 << i;
            int delta = ((items & bit) != 0 ? 1 : 0) - ((before & bit) != 0 ? 1 : 0);
            counts[i] += delta;
            if (counts[i] > 0) {
                wanted |= bit;
            } else {
                wanted &= ~bit;
            }
        }
        c.setAttachedMetadata(items);
        int gone = wantedBefore & ~wanted;
        if (gone != 0) {
            listener.noLongerWanted(gone); // the last connection that wanted them let go
        }
        return new AttachChange(before, items, wanted);
    }

    /** The connection left (idempotent: its set is empty afterwards). */
    void drop(Connection c) {
        if (c.attachedMetadata() != 0) {
            set(c, 0);
        }
    }
}
