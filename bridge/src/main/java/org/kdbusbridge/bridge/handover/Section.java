package org.kdbusbridge.bridge.handover;

/**
 * The sections of snapshot format v1 (docs/handover.md section 3), with their ids, the version
 * this writer writes, and whether a reader that does not know one must refuse the snapshot.
 * Ids are the design table's numbers and never change; step 1 writes only these.
 */
public enum Section {
    BUS(1, 1),
    FDS(3, 1),
    LISTENERS(4, 1),
    /** Step 4: senders that left while their messages are queued. Optional while empty. */
    DEPARTED(5, 1, true),
    /** Version 2 (step 4): each record ends with the PeekQueued answer's pool position. */
    CONNECTIONS(6, 2),
    /** Step 4: each queued message once. Optional while empty (an older snapshot has none). */
    MESSAGES(8, 1, true),
    /** Step 4: each connection's pool as message places. Optional while empty. */
    POOLS(9, 1, true),
    NAMES(10, 1),
    MATCHES(11, 1),
    MONITORS(12, 1),
    /** Step 4: the open reply slots. Optional while empty. */
    REPLY_SLOTS(13, 1, true),
    /**
     * Version 2 (step 4): each record ends with the committed output bytes and the head offset;
     * version 3 (step 5) appends the partial I/O (SASL, input, pending fds, the committed fds).
     */
    SESSIONS(16, 3),
    /** Zero records or one: the Reexec call owed a reply (step 2). */
    REQUEST(19, 1),
    /**
     * Step 5: the ids of the sessions whose SESSIONS v3 record carries partial I/O a v2 reader
     * would skip (SASL, input bytes, fds). Nothing but a guard: MUST_UNDERSTAND while non-empty,
     * so an older program refuses exactly those snapshots instead of losing bytes (section 7).
     */
    PARTIAL_IO(20, 1, true);

    /** Section flag: a reader that does not know the section must refuse the snapshot. */
    public static final int MUST_UNDERSTAND = 0x1;

    public final int id;
    public final int version;
    /**
     * Added after format 1 was first written (step 4): a snapshot may lack it (read as empty),
     * and it is MUST_UNDERSTAND only when it holds records, so a reader that does not know it
     * refuses exactly the snapshots it could not restore without loss.
     */
    public final boolean optionalWhenEmpty;

    Section(int id, int version) {
        this(id, version, false);
    }

    Section(int id, int version, boolean optionalWhenEmpty) {
        this.id = id;
        this.version = version;
        this.optionalWhenEmpty = optionalWhenEmpty;
    }

    /** Every section is needed to rebuild the bus, but an optional one that is empty. */
    public int flags(int records) {
        return optionalWhenEmpty && records == 0 ? 0 : MUST_UNDERSTAND;
    }

    /** The section with {@code id}, or null if this reader does not know it. */
    public static Section byId(int id) {
        for (Section s : values()) {
            if (s.id == id) {
                return s;
            }
        }
        return null;
    }
}
