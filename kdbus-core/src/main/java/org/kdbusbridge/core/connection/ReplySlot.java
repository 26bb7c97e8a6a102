package org.kdbusbridge.core.connection;

/**
 * One open reply slot: {@code callee} owes {@code caller} the reply to call {@code serial}.
 *
 * Invariants: while open it is in exactly one callee index ({@link ReplySlotIndex}, in opening
 * order) and in its caller's list of outgoing slots, so either side can drop all of its slots
 * without looking at any other connection; once closed it is in neither and is never reopened.
 * The bus's reply_timeout FIFO may still hold a closed slot (it skips it).
 */
public final class ReplySlot {
    final Connection callee;
    final Connection caller;
    final long callerId;
    final long serial;
    private long deadline;
    /** Whether reply_timeout applies (it was set when the slot opened): the slot is in the bus's FIFO. */
    private boolean timed;
    boolean open = true;
    /** Neighbours in the callee's opening order. */
    ReplySlot prevIn, nextIn;
    /** Neighbours in the caller's outgoing list (order irrelevant). */
    ReplySlot prevOut, nextOut;

    ReplySlot(Connection callee, Connection caller, long serial) {
        this.callee = callee;
        this.caller = caller;
        this.callerId = caller.id();
        this.serial = serial;
    }

    public Connection callee() { return callee; }
    public Connection caller() { return caller; }
    public long serial() { return serial; }
    public boolean isOpen() { return open; }

    /** When reply_timeout closes it (bus clock milliseconds); set once by the bus. */
    public long deadline() { return deadline; }
    public void setDeadline(long d) {
        deadline = d;
        timed = true;
    }

    /** Whether it has a reply_timeout deadline ({@link #deadline} means nothing otherwise). */
    public boolean hasDeadline() { return timed; }

    /** The next slot the same callee opened after this one, or null. */
    public ReplySlot nextIncoming() { return nextIn; }

    /** The next open slot of a call the same caller made (on any callee), or null. */
    public ReplySlot nextOutgoing() { return nextOut; }
}
