package org.kdbusbridge.core.bus;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.function.LongSupplier;
import java.util.function.Predicate;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ReplySlot;

/**
 * The bus's reply slots: which callee owes which caller the reply to which call, and when
 * reply_timeout gives up on it.
 *
 * A slot is linked on both sides: into its callee's index (by caller id and serial, in opening
 * order) and into its caller's list of outgoing slots (both kept by {@link Connection}), so
 * either side's departure closes exactly its own slots without looking at other connections.
 *
 * Invariants: {@link #openSlots} is the number of open slots, each of which is in its callee's
 * index and in its caller's outgoing list, and in neither once closed; a slot is never reopened;
 * every slot closed by this class is reported to the {@link Release} once (the bus gives its
 * caller's reply budget and quota charge back); the timeout FIFO is in deadline order while
 * reply_timeout is unchanged (every slot gets the same timeout on the same monotonic clock; a
 * ReloadConfig that changes it may put a later deadline first, and expiry then waits for the
 * head, as it always has), and may keep closed slots until their deadline or a compaction: it
 * holds at most {@code 2 * open + DEADLINE_SLACK + 1} entries as of the last open (answers and
 * departures close slots without shrinking it).
 * Opening a slot allocates the slot only (and amortized FIFO growth).
 */
final class ReplySlots {
    /** Closed slots the FIFO may keep beyond as many as are open, before it is compacted. */
    static final int DEADLINE_SLACK = 1024;

    private static final Predicate<ReplySlot> CLOSED = slot -> !slot.isOpen();

    /** Told when slots close without a reply reaching their caller, or by the reply itself. */
    interface Release {
        /** {@code n} replies {@code caller} was owed will not be waited for any more. */
        void noLongerExpected(Connection caller, int n);
    }

    /** reply_timeout in milliseconds, read at each open (not positive: slots never time out). */
    private final LongSupplier timeout;
    private final LongSupplier clock;
    private final Release release;
    /**
     * Slots in deadline order (only those opened while reply_timeout was set); a slot closed by
     * its reply or by a departure stays until its deadline comes up and is then skipped, or until
     * the FIFO is compacted (see {@link #open}).
     */
    private final ArrayDeque<ReplySlot> deadlines = new ArrayDeque<>();
    /** Slots open now, on all callees. */
    private long openSlots;

    ReplySlots(LongSupplier timeout, LongSupplier clock, Release release) {
        this.timeout = timeout;
        this.clock = clock;
        this.release = release;
    }

    /** The FIFO's size bound as of the last open (see the class invariants). */
    private long fifoBound = DEADLINE_SLACK + 1;

    /** Opens the slot; false if one with the same caller and serial is open already. */
    boolean open(Connection callee, Connection caller, long serial) {
        ReplySlot s = callee.openPendingIncoming(caller, serial);
        if (s == null) {
            return false;
        }
        openSlots++;
        long t = timeout.getAsLong();
        if (t > 0) {
            s.setDeadline(clock.getAsLong() + t);
            if (deadlines.size() > 2 * openSlots + DEADLINE_SLACK) {
                // Answered calls would otherwise keep their (uncharged) slots alive for a whole
                // reply_timeout; more than half are closed, so this is amortized O(1) per call.
                deadlines.removeIf(CLOSED);
            }
            deadlines.addLast(s);
            fifoBound = 2 * openSlots + DEADLINE_SLACK + 1;
        }
        return true;
    }

    /**
     * {@code callee} sends {@code caller} the reply to {@code serial}: closes the slot if one is
     * open (and releases it); whether it was, i.e. whether the reply is a requested one.
     */
    boolean answer(Connection callee, Connection caller, long serial) {
        if (callee.takePendingIncoming(caller.id(), serial) == null) {
            return false;
        }
        openSlots--;
        assert openSlots >= 0 : openSlots + " open reply slots";
        release.noLongerExpected(caller, 1);
        return true;
    }

    /** When the oldest slot in the FIFO times out (clock milliseconds), or -1 if none can. */
    long nextDeadline() {
        ReplySlot d = deadlines.peekFirst();
        return d == null ? -1 : d.deadline();
    }

    /** Closes every slot whose deadline has passed; returns the callers still connected. */
    List<DeadReply> expire() {
        long now = clock.getAsLong();
        List<DeadReply> dead = new ArrayList<>();
        ReplySlot d;
        while ((d = deadlines.peekFirst()) != null && d.deadline() <= now) {
            deadlines.pollFirst();
            if (!d.callee().closePendingIncoming(d)) {
                continue; // answered, or either side left (a new call with the same serial has its own slot)
            }
            openSlots--;
            release.noLongerExpected(d.caller(), 1);
            if (!d.caller().isClosed()) {
                dead.add(new DeadReply(d.caller(), d.serial()));
            }
        }
        return dead;
    }

    /**
     * Closes every slot {@code c} is part of, and no other: callers it owes a reply are returned
     * (in the order the calls were made) if still connected, so they can be told; calls it made
     * will never be answered to it, so their callees stop owing them.
     */
    List<DeadReply> drop(Connection c) {
        List<DeadReply> dead = new ArrayList<>();
        for (ReplySlot s = c.firstPendingIncoming(); s != null; s = s.nextIncoming()) {
            Connection caller = s.caller();
            openSlots--;
            release.noLongerExpected(caller, 1);
            if (!caller.isClosed()) {
                dead.add(new DeadReply(caller, s.serial()));
            }
        }
        c.closeAllPendingIncoming();
        int owedToIt = c.closeAllPendingOutgoing();
        openSlots -= owedToIt;
        release.noLongerExpected(c, owedToIt);
        assert openSlots >= 0 : openSlots + " open reply slots";
        return dead;
    }

    /** A restored slot that has a deadline, for {@link #restoreDeadlines}. */
    record Timed(ReplySlot slot) {
    }

    /**
     * Hand-over restore: opens the slot as {@link #open} did in the old bus, with
     * {@code deadline} (bus clock ms; {@link Long#MIN_VALUE}: none), but leaves the FIFO to
     * {@link #restoreDeadlines}; the caller charges the reply budget. Returns the slot if timed.
     */
    Timed restore(Connection callee, Connection caller, long serial, long deadline) {
        ReplySlot s = callee.openPendingIncoming(caller, serial);
        if (s == null) {
            throw new IllegalStateException("reply slot " + caller + "/" + serial + " on " + callee + " restored twice");
        }
        openSlots++;
        if (deadline == Long.MIN_VALUE) {
            return null;
        }
        s.setDeadline(deadline);
        return new Timed(s);
    }

    /** Hand-over restore: the timed slots into the FIFO, in deadline order (a stable sort keeps opening order on ties). */
    void restoreDeadlines(List<Timed> slots) {
        if (!deadlines.isEmpty()) {
            throw new IllegalStateException("deadlines restored into a FIFO in use");
        }
        List<Timed> sorted = new ArrayList<>(slots);
        sorted.sort(java.util.Comparator.comparingLong(t -> t.slot().deadline()));
        for (Timed t : sorted) {
            deadlines.addLast(t.slot());
        }
        fifoBound = Math.max(fifoBound, 2 * openSlots + DEADLINE_SLACK + 1);
    }

    /** Slots open now. */
    long openCount() {
        return openSlots;
    }

    /** Entries in the timeout FIFO, closed ones not yet skipped included. */
    int deadlineEntries() {
        return deadlines.size();
    }

    /**
     * Checks the invariants against {@code connections}, every connection that may be part of a
     * slot (the bus's named connections): each one's own links are consistent; every open slot
     * is reachable from both its callee and its caller, both of them in {@code connections} and
     * not closed; the open count equals the slots seen from either side; no caller has fewer
     * replies counted against it than slots open for it; the FIFO is within its bound and its
     * open entries are distinct open slots (its order is not checked: a reload may change it).
     */
    void checkInvariants(Collection<Connection> connections) {
        Set<Connection> known = identitySet();
        known.addAll(connections);
        Set<ReplySlot> incoming = identitySet();
        for (Connection c : known) {
            c.checkReplySlotLinks();
            for (ReplySlot s = c.firstPendingIncoming(); s != null; s = s.nextIncoming()) {
                if (!incoming.add(s)) {
                    throw new IllegalStateException("slot " + s.serial() + " is owed by two callees");
                }
                if (!known.contains(s.caller()) || s.caller().isClosed() || c.isClosed()) {
                    throw new IllegalStateException(c + " owes " + s.caller() + " call " + s.serial()
                            + " but one of them left");
                }
            }
        }
        long outgoing = 0;
        for (Connection c : known) {
            int mine = 0;
            for (ReplySlot s = c.firstPendingOutgoing(); s != null; s = s.nextOutgoing()) {
                if (!incoming.contains(s)) {
                    throw new IllegalStateException(c + "'s call " + s.serial() + " to " + s.callee()
                            + " is not in its callee's index");
                }
                mine++;
            }
            if (c.pendingOutgoingReplies() < mine) {
                throw new IllegalStateException(c + " has " + mine + " open slots but " + c.pendingOutgoingReplies()
                        + " replies counted");
            }
            outgoing += mine;
        }
        if (outgoing != incoming.size() || openSlots != incoming.size()) {
            throw new IllegalStateException(openSlots + " open slots counted, " + incoming.size() + " owed by callees, "
                    + outgoing + " made by callers");
        }
        if (deadlines.size() > fifoBound) {
            throw new IllegalStateException(deadlines.size() + " FIFO entries, bound " + fifoBound);
        }
        Set<ReplySlot> timed = identitySet();
        for (ReplySlot s : deadlines) {
            if (s.isOpen() && (!incoming.contains(s) || !timed.add(s))) {
                throw new IllegalStateException("FIFO holds open slot " + s.serial() + " twice or unreachable");
            }
        }
    }

    private static <T> Set<T> identitySet() {
        return Collections.newSetFromMap(new IdentityHashMap<>());
    }
}
