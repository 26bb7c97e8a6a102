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
    CONNECTIONS(6, 1),
    NAMES(10, 1),
    MATCHES(11, 1),
    MONITORS(12, 1),
    SESSIONS(16, 1),
    /** Zero records or one: the Reexec call owed a reply (step 2). */
    REQUEST(19, 1);

    /** Section flag: a reader that does not know the section must refuse the snapshot. */
    public static final int MUST_UNDERSTAND = 0x1;

    public final int id;
    public final int version;

    Section(int id, int version) {
        this.id = id;
        this.version = version;
    }

    /** Every step-1 section is needed to rebuild the bus. */
    public int flags() {
        return MUST_UNDERSTAND;
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
