package org.kdbusbridge.core.bus;

import org.kdbusbridge.core.connection.QueueQuota;
import org.kdbusbridge.core.match.MatchRule;

/**
 * How much heap the match rules, name-queue entries and reply slots of one uid, and of all uids
 * together, may make the bus hold. Every AddMatch and every name / queue entry is charged to its
 * connection's uid, every call awaiting a reply to its caller's uid, at a measured cost (docs/performance.md, "Per-uid quota"); a request that
 * would exceed either budget is refused with LimitsExceeded. The busconfig per-connection
 * limits still apply; where they allow more than this, this wins.
 *
 * {@link #forHeap} keeps names and rules of one uid to an eighth of the heap and of all uids
 * to a quarter; queued messages the same again ({@link QueueQuota#forLimits}, with an eighth and
 * a quarter of the fd limit for the fds they carry); frames read into the heap outside the
 * shared buffers (and partial-frame carries) a sixteenth per uid and an eighth in all. What is
 * left, at least three eighths of the heap, is a reserve never handed out: the driver's replies,
 * refusing, disconnecting and the collector.
 *
 * @param perUserBytes  what one uid may hold
 * @param busBytes      what all uids together may hold
 * @param matchRuleBase the charge of one match rule besides its strings
 * @param nameEntryBase the charge of one name or queue entry besides the name's characters
 * @param queues        what the queued messages of one uid, and of all, may hold
 * @param framePerUserBytes heap bytes the connections of one uid may hold in frames being read
 *                      (the bridge's heap fallback and partial-frame carries)
 * @param frameBusBytes the same for all uids together
 */
public record UserQuota(long perUserBytes, long busBytes, int matchRuleBase, int nameEntryBase, QueueQuota queues,
        long framePerUserBytes, long frameBusBytes) {
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
    /** The system property that overrides the per-uid budget of queued messages (bytes), read by the bridge only. */
    public static final String QUEUE_PER_USER_PROPERTY = "kdbus.queueQuotaBytes";

    /** Rules, names and reply slots bounded; queues and frames held to their busconfig limits only. */
    public UserQuota(long perUserBytes, long busBytes, int matchRuleBase, int nameEntryBase) {
        this(perUserBytes, busBytes, matchRuleBase, nameEntryBase, QueueQuota.UNLIMITED, Long.MAX_VALUE,
                Long.MAX_VALUE);
    }

    /** Budgets derived from the heap the JVM may use ({@code Runtime.maxMemory()}); fds unbounded. */
    public static UserQuota forHeap(long maxMemory) {
        return forHeap(maxMemory, null, null, 0);
    }

    /** As {@link #forHeap}, with the per-uid budget taken from {@code perUserOverride} if not null. */
    public static UserQuota forHeap(long maxMemory, String perUserOverride) {
        return forHeap(maxMemory, perUserOverride, null, 0);
    }

    /**
     * Budgets from the heap and the process's fd limit ({@code fdLimit <= 0}: unknown), with the
     * per-uid budgets of rules and names, and of queued messages, overridden if not null. A larger
     * override cannot eat the reserve: the bus-wide budgets still bound it.
     */
    public static UserQuota forHeap(long maxMemory, String perUserOverride, String queuePerUserOverride, long fdLimit) {
        long perUser = isSet(perUserOverride) ? Long.parseLong(perUserOverride.trim()) : maxMemory / 8;
        QueueQuota queues = QueueQuota.forLimits(maxMemory, fdLimit);
        if (isSet(queuePerUserOverride)) {
            queues = new QueueQuota(Long.parseLong(queuePerUserOverride.trim()), queues.busBytes(),
                    queues.perUserFds(), queues.busFds());
        }
        return new UserQuota(perUser, maxMemory / 4, MATCH_RULE_BASE, NAME_ENTRY_BASE, queues, maxMemory / 16,
                maxMemory / 8);
    }

    private static boolean isSet(String s) {
        return s != null && !s.isBlank();
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
        String names = namesNote(limits);
        String queued = queuesNote(limits);
        if (names == null || queued == null) {
            return names == null ? queued : names;
        }
        return names + "; " + queued;
    }

    /**
     * The note for queued messages: when max_outgoing_bytes (one receiver's queue) or
     * max_incoming_bytes (one sender's messages in flight) times max_connections_per_user lets one
     * uid queue more than its budget, or null.
     */
    private String queuesNote(BusLimits limits) {
        long conns = Math.max(0, limits.maxConnectionsPerUser);
        long each = Math.max(0, limits.maxIncomingBytes);
        long bytes = conns > 0 && each > Long.MAX_VALUE / conns ? Long.MAX_VALUE : conns * each; // saturating
        if (bytes <= queues.perUserBytes()) {
            return null;
        }
        return "max_connections_per_user=" + limits.maxConnectionsPerUser + " with max_incoming_bytes="
                + limits.maxIncomingBytes + " and max_outgoing_bytes=" + limits.maxOutgoingBytes
                + " would let one uid queue up to " + bytes + " bytes of messages; the per-uid queue quota of "
                + queues.perUserBytes() + " bytes (all uids: " + queues.busBytes() + ", fds " + queues.perUserFds()
                + " per uid, " + queues.busFds() + " in all) wins, messages beyond it are refused as by a full queue";
    }

    private String namesNote(BusLimits limits) {
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
