package org.kdbusbridge.core.bus;

import org.kdbusbridge.core.match.MatchRule;

/**
 * How much heap the match rules, name-queue entries and reply slots of one uid, and of all uids
 * together, may make the bus hold. Every AddMatch and every name / queue entry is charged to its
 * connection's uid, every call awaiting a reply to its caller's uid, at a measured cost (docs/performance.md, "Per-uid quota"); a request that
 * would exceed either budget is refused with LimitsExceeded. The busconfig per-connection
 * limits still apply; where they allow more than this, this wins.
 *
 * {@link #forHeap} keeps names and rules of one uid to an eighth of the heap and of all uids
 * to a quarter: the rest is a reserve never handed out, room for the queues (bounded by their
 * own byte limits), the driver's replies, refusing, disconnecting and the collector.
 *
 * @param perUserBytes  what one uid may hold
 * @param busBytes      what all uids together may hold
 * @param matchRuleBase the charge of one match rule besides its strings
 * @param nameEntryBase the charge of one name or queue entry besides the name's characters
 */
public record UserQuota(long perUserBytes, long busBytes, int matchRuleBase, int nameEntryBase) {
    /** Measured heap per rule beyond its strings (MatchIndex entry, owner list slot, rule object). */
    public static final int MATCH_RULE_BASE = 140;
    /** Measured heap per name entry beyond the name's bytes (queue, owner record, map entry, owned list). */
    public static final int NAME_ENTRY_BASE = 120;
    /**
     * Measured heap per open reply slot, charged to the caller's uid: the slot object, its
     * callee-index table entry (kept at most half full) and its reply_timeout FIFO entry.
     */
    public static final int REPLY_SLOT_COST = 80;
    /** A String's header and array header on a 64-bit JVM with compressed oops. */
    private static final int STRING_OVERHEAD = 40;
    /** The system property that overrides the per-uid budget (bytes), read by the bridge only. */
    public static final String PER_USER_PROPERTY = "kdbus.userQuotaBytes";

    /** Budgets derived from the heap the JVM may use ({@code Runtime.maxMemory()}). */
    public static UserQuota forHeap(long maxMemory) {
        return new UserQuota(maxMemory / 8, maxMemory / 4, MATCH_RULE_BASE, NAME_ENTRY_BASE);
    }

    /** As {@link #forHeap}, with the per-uid budget taken from {@code perUserOverride} if not null. */
    public static UserQuota forHeap(long maxMemory, String perUserOverride) {
        UserQuota q = forHeap(maxMemory);
        if (perUserOverride == null || perUserOverride.isBlank()) {
            return q;
        }
        // A larger override cannot eat the reserve: the bus-wide budget still bounds it.
        return new UserQuota(Long.parseLong(perUserOverride.trim()), q.busBytes, MATCH_RULE_BASE, NAME_ENTRY_BASE);
    }

    /** The charge of one match rule. */
    public long cost(MatchRule rule) {
        return matchRuleBase + rule.retainedChars() + (long) rule.stringCount() * STRING_OVERHEAD;
    }

    /** The charge of one entry for {@code name} (primary owner or queued). */
    public long cost(String name) {
        return nameEntryBase + name.length() + STRING_OVERHEAD;
    }

    /**
     * A note for the log when the busconfig limits let one uid ask for more than its budget
     * (max_match_rules_per_connection or max_names_per_connection, times
     * max_connections_per_user, at the smallest charge), or null if they do not.
     */
    public String overcommitNote(BusLimits limits) {
        long conns = Math.max(0, limits.maxConnectionsPerUser);
        long rules = conns * Math.max(0, limits.maxMatchRulesPerConnection) * (matchRuleBase + STRING_OVERHEAD);
        long names = conns * Math.max(0, limits.maxNamesPerConnection) * (nameEntryBase + STRING_OVERHEAD);
        if (rules <= perUserBytes && names <= perUserBytes) {
            return null;
        }
        return "max_connections_per_user=" + limits.maxConnectionsPerUser + " with max_match_rules_per_connection="
                + limits.maxMatchRulesPerConnection + " and max_names_per_connection="
                + limits.maxNamesPerConnection + " would let one uid hold up to " + Math.max(rules, names)
                + " bytes of match rules or names; the per-uid quota of " + perUserBytes
                + " bytes (all uids: " + busBytes + ") wins, AddMatch and RequestName beyond it get LimitsExceeded";
    }
}
