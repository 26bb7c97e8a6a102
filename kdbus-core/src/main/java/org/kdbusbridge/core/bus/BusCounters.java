package org.kdbusbridge.core.bus;

import org.kdbusbridge.core.connection.ConnectionCounters;

/**
 * The bus-wide counters: what departed connections counted (so bus totals never go down when a
 * peer leaves: live connections' counters plus these), disconnects by reason, and the messages
 * the bus itself originated. Bus thread only; plain fields.
 */
public final class BusCounters {
    private final ConnectionCounters departed = new ConnectionCounters();
    private final long[] disconnects = new long[DisconnectReason.values().length];
    private long busOriginated;

    /** What connections that left counted, summed. */
    public ConnectionCounters departed() { return departed; }

    /** Closed connections with this reason. */
    public long disconnects(DisconnectReason r) { return disconnects[r.ordinal()]; }

    /** Messages the bus originated (driver replies, errors, signals), before delivery. */
    public long busOriginated() { return busOriginated; }

    void noteDisconnect(DisconnectReason r) { disconnects[r.ordinal()]++; }

    void noteBusOriginated() { busOriginated++; }

    void fold(ConnectionCounters c) {
        if (c.foldOnce()) {
            departed.add(c);
        }
    }
}
