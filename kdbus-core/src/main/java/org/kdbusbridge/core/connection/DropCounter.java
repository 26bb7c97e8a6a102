package org.kdbusbridge.core.connection;

/**
 * The broadcasts a connection that asked for drop notices (WatchDrops, or AttachMetadata's
 * {@code drops} item) missed since it was last told: how many, and the sequence numbers of the
 * first and the last. A connection that did not ask has none of these (zero cost).
 *
 * Invariants: {@code count == 0} means nothing is unreported (then the sequence numbers mean
 * nothing); otherwise {@code firstSeq <= lastSeq}, since the bus's sequence only grows, and
 * every missed message between them that the receiver's rules selected is counted. Touched on
 * the bus thread only.
 */
public final class DropCounter {
    private long count;
    private long firstSeq;
    private long lastSeq;

    /** Counts one missed message; true if it is the first since the last report. */
    boolean skipped(long seq) {
        if (count++ == 0) {
            firstSeq = seq;
        }
        lastSeq = seq;
        return count == 1;
    }

    /** Missed messages not yet reported. */
    public long count() { return count; }

    /** Sequence number of the first unreported missed message (valid while count() > 0). */
    public long firstSeq() { return firstSeq; }

    /** Sequence number of the last unreported missed message (valid while count() > 0). */
    public long lastSeq() { return lastSeq; }

    /** Hand-over restore: the unreported drops as they were. */
    public void restore(long count, long firstSeq, long lastSeq) {
        this.count = count;
        this.firstSeq = firstSeq;
        this.lastSeq = lastSeq;
    }

    /** The bus reported them: start counting afresh. */
    public void reset() { count = 0; }
}
