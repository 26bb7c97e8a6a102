package org.kdbusbridge.bridge.top;

import java.util.List;

/**
 * One reading of a bus: its connections' cumulative counters (-1 where the source has none)
 * and the bus-wide totals. Rates come from two of these ({@link TopModel}).
 */
public record Snapshot(long nanos, List<Conn> conns, long busMessages, long busBytes, String note) {

    /** A connection as one source saw it; counters cumulative, queueBytes a level. */
    public record Conn(String unique, String names, String uid, long pid, String comm,
                       long messages, long bytes, long queueBytes, long drops, long denials) {
        Conn withPid(long p, String c) {
            return new Conn(unique, names, uid, p, comm.isEmpty() ? c : comm, messages, bytes, queueBytes, drops,
                    denials);
        }
    }
}
