package org.kdbusbridge.core.connection;

import java.util.function.Consumer;
import java.util.function.LongSupplier;

import org.kdbusbridge.core.message.Message;

/**
 * The bytes and unix fds that queued messages hold, per sending uid and for the whole bus,
 * against a {@link QueueQuota}: what stops one uid from filling the heap (or the fd table)
 * through receivers that never read, within each receiver's own byte limits.
 *
 * What is charged, to the sender's uid ({@link ReceivePool#chargedUid}): a message's bytes ({@link #messageBytes}) and fds once, from its first hold to its last release ({@link Connection#holdQueued}, so the
 * routing step's own hold counts too, and a broadcast queued on a thousand receivers is counted
 * as the one copy it is), plus {@link #ENTRY_BYTES} per queue entry. Bus-originated messages are
 * never charged: they come out of the reserve.
 *
 * Invariants: every charge is released exactly once (a uid holding nothing has no entry);
 * {@link #totalBytes()} and {@link #totalFds()} are the sums over uids and {@link #messages(long)}
 * counts the distinct messages a uid's bytes hold; a receive pool queues a client's message
 * only while its uid's holdings, this message included, are within both budgets, or while it is
 * the uid's only message and all uids together stay under the ceiling ({@link #allows});
 * otherwise it is refused as a full queue refuses it. Primitive tables: a charge or a check
 * allocates nothing. Touched on the bus thread only.
 *
 * One message beyond the budget: as an empty receive pool always takes one message, a uid that
 * holds nothing else may always queue one message, whatever its size (D-Bus allows 128 MiB,
 * more than the per-uid budget of an -Xmx512m heap), held only to the bus-wide ceiling that
 * short queues are held to. The heap bound is therefore unchanged (all queued messages together
 * still stay under the ceiling, whether their payloads are on the heap or in direct memory), and
 * a uid can hold more than its budget only by that one message: while it holds it, the uid's
 * next message is over the budget and refused by every long queue.
 */
public final class QueueLedger {
    /**
     * A message's heap besides its wire bytes and its header strings' characters: the Message,
     * its payload and argument objects and the String objects it was decoded into, at worst
     * fresh ones (measured by QueueFootprintTest; docs/performance.md).
     */
    public static final int MESSAGE_BYTES = 336;
    /** One queue entry: its ReceivePool ring slot (4 bytes with compressed oops), at worst two per entry (the ring doubles; it halves again once seven-eighths empty). */
    public static final int ENTRY_BYTES = 8;
    /**
     * A receiver holding less than this still takes messages from a uid past its budget (up to
     * {@link #withinCeiling}): the heap is filled by receivers that do not read, and refusing
     * everyone that uid talks to would punish its own bystanders (on a session bus every peer
     * has the one uid).
     */
    public static final long SHORT_QUEUE_BYTES = 256 * 1024;
    /** A uid's refusals are logged at most once in this many milliseconds. */
    static final long LOG_INTERVAL_MILLIS = 60_000;

    private final QueueQuota quota;
    private final UidLedger bytes = new UidLedger();
    private final UidLedger fds = new UidLedger();
    /** Distinct messages charged per uid (not queue entries): 1 means the uid holds one message alone. */
    private final UidLedger messages = new UidLedger();
    /** When each uid's refusal was last logged (millis + 1, so a time of 0 still makes an entry). */
    private final UidLedger loggedAt = new UidLedger();
    private long totalBytes;
    private long totalFds;
    private long refusals;
    private Consumer<String> log = text -> { };
    private LongSupplier clock = () -> System.nanoTime() / 1_000_000;

    public QueueLedger(QueueQuota quota) {
        this.quota = quota;
    }

    public QueueQuota quota() {
        return quota;
    }

    /** Where refusals are logged (once per uid per minute) and the clock that rate-limits them. */
    public void setLog(Consumer<String> log, LongSupplier clockMillis) {
        this.log = log;
        this.clock = clockMillis;
    }

    /** Charges (positive) or releases (negative) {@code dBytes} and {@code dFds} for {@code uid}. */
    public void add(long uid, long dBytes, long dFds) {
        assert dBytes >= 0 || bytes.get(uid) >= -dBytes : "uid " + uid + " releases " + -dBytes + " bytes but holds "
                + bytes.get(uid);
        assert dFds >= 0 || fds.get(uid) >= -dFds : "uid " + uid + " releases " + -dFds + " fds but holds " + fds.get(uid);
        bytes.add(uid, dBytes);
        totalBytes += dBytes;
        if (dFds != 0) {
            fds.add(uid, dFds);
            totalFds += dFds;
        }
    }

    /**
     * {@code m}'s first hold ({@code sign} 1) or last release (-1), for {@code uid}: its
     * {@link #messageBytes} and fds, and one message in the uid's count.
     */
    public void addMessage(long uid, Message m, int sign) {
        assert sign == 1 || sign == -1 : sign;
        add(uid, sign * messageBytes(m), sign * (long) m.unixFds());
        messages.add(uid, sign);
    }

    /**
     * What {@code m} is charged once while queued anywhere: its wire bytes, {@link #MESSAGE_BYTES}
     * and its header strings' characters, which the decoded strings hold a second time.
     */
    public static long messageBytes(Message m) {
        return (long) m.size() + MESSAGE_BYTES + length(m.destination()) + length(m.path()) + length(m.iface())
                + length(m.member()) + length(m.errorName());
    }

    private static int length(String s) {
        return s == null ? 0 : s.length();
    }

    /**
     * Whether all uids together, {@code moreBytes} more included, are under the hard ceiling of
     * one and a half bus budgets (fds too): what short queues may still take once a budget is
     * spent. The rest of the heap stays a reserve whatever the receivers are.
     */
    public boolean withinCeiling(long moreBytes) {
        return totalBytes + moreBytes <= quota.busBytes() + quota.busBytes() / 2
                && (totalFds == 0 || totalFds <= quota.busFds() + quota.busFds() / 2);
    }

    /**
     * Whether {@code uid} may take {@code moreBytes} more (its message being already held): within
     * its budget and the bus's, or, when that message is the only one the uid holds, under the
     * ceiling whatever its size (see the class comment: one message beyond the budget).
     */
    public boolean allows(long uid, long moreBytes) {
        return withinBudgets(uid, moreBytes) || (messages.get(uid) == 1 && withinCeiling(moreBytes));
    }

    private boolean withinBudgets(long uid, long moreBytes) {
        return bytes.get(uid) + moreBytes <= quota.perUserBytes() && totalBytes + moreBytes <= quota.busBytes()
                && (totalFds == 0 || (fds.get(uid) <= quota.perUserFds() && totalFds <= quota.busFds()));
    }

    /**
     * Whether {@code m}, already held (and charged), may also wait on an activator: not while its
     * uid or the bus is past the budget (refused as a full queue is: counted, logged once per uid
     * per interval). An activator's queue is never a short one, so there is no ceiling exception.
     */
    public boolean admitsWaiting(Message m, long uid) {
        if (allows(uid, 0)) {
            return true;
        }
        refused(m, uid);
        return false;
    }

    /** A pool refused {@code m} because of this ledger: counted, and logged once per uid per interval. */
    void refused(Message m, long uid) {
        refusals++;
        long now = clock.getAsLong();
        long last = loggedAt.get(uid);
        if (last != 0 && now + 1 - last < LOG_INTERVAL_MILLIS) {
            return;
        }
        loggedAt.add(uid, now + 1 - last);
        log.accept(refusalText(m, uid));
    }

    private String refusalText(Message m, long uid) {
        boolean fdsOver = fds.get(uid) > quota.perUserFds() || totalFds > quota.busFds();
        boolean own = fdsOver ? fds.get(uid) > quota.perUserFds() : bytes.get(uid) + ENTRY_BYTES > quota.perUserBytes();
        String what = messages.get(uid) == 1 ? "the bus's ceiling of " + (quota.busBytes() + quota.busBytes() / 2)
                + " bytes and " + (quota.busFds() + quota.busFds() / 2) + " unix fds for all users (a uid's only message)"
                : fdsOver ? (own ? "its quota of " + quota.perUserFds() + " unix fds"
                        : "the bus's quota of " + quota.busFds() + " unix fds for all users")
                : (own ? "its memory quota of " + quota.perUserBytes() + " bytes"
                        : "the bus's memory quota of " + quota.busBytes() + " bytes for all users");
        Connection s = m.sender();
        return "Queued messages of uid " + uid + " reached " + what + " (uid holds " + bytes.get(uid) + " bytes and "
                + fds.get(uid) + " fds, all uids " + totalBytes + " bytes and " + totalFds + " fds); messages from "
                + (s == null ? "uid " + uid : "\"" + s.uniqueName() + "\" (" + s.logInfo() + ")")
                + " and its uid are refused as by a full queue (logged once a minute per uid)";
    }

    public long bytes(long uid) {
        return bytes.get(uid);
    }

    public long fds(long uid) {
        return fds.get(uid);
    }

    /** Distinct messages {@code uid}'s charge holds (the routing step's one included). */
    public long messages(long uid) {
        return messages.get(uid);
    }

    public long totalBytes() {
        return totalBytes;
    }

    public long totalFds() {
        return totalFds;
    }

    /** Uids holding something (a uid holding nothing has no entry). */
    public int holders() {
        return bytes.size();
    }

    /** Deliveries refused by this ledger so far. */
    public long refusals() {
        return refusals;
    }
}
