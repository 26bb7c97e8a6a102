package org.kdbusbridge.core.connection;

import org.kdbusbridge.core.message.Message;

/**
 * A connection's bounded receive queue (the kdbus "pool").
 *
 * Invariants: messages leave in the order they entered (sequence order, except that messages
 * handed over from an activator keep their older numbers); the byte, fd and message counts
 * always equal the sums over queued messages, and the per-uid share table (below) holds exactly
 * the foreign uids with a queued message, each once, with their sums; an empty pool holds no
 * charge; the peaks are at least the current counts; a message stays charged until the
 * transport has written it completely ({@link #pop()}); the fd counts include each entry's
 * extra fds (AttachMetadata's pidfd, recorded per entry when it was queued, see
 * {@link #push(Message, int)}) as if they were the message's own; the same holds for unix fds: the pool
 * holds one reference on each queued message's {@code FdSet} and drops it on pop or clear, so
 * fds never outlive the last queue that holds them. The budgets bound what {@link #offer}
 * takes, not what is queued: {@link #push} and the first message of an empty pool may go over.
 * The owner's uid is set before the first message (the table depends on it).
 * {@link #checkInvariants} verifies the counts and the table.
 *
 * Fair share (docs/architecture.md, "Flow control"): every queued message from a client is
 * also charged to its sending uid in a small per-pool table, and released when it leaves.
 * A sender whose uid is the pool owner's uid (or the bus itself) is only held to the total
 * budget. Any other uid may take, of what is still free, at most a share that shrinks with the
 * number of foreign uids holding a charge here: with n such uids (counting itself) its charge
 * after the message must stay within (free + own charge) / (n + 1) - the quasilinear allocator
 * dbus-broker uses, so one flooding uid can never leave other uids without room. The table
 * holds only uids with a charge, so it is as small as the number of users talking to this
 * peer; lookups are linear scans over primitive arrays and allocate nothing.
 *
 * Bus-wide budget: a pool built with a {@link QueueLedger} also refuses a client's message
 * while its sender's uid, or all uids, hold more queued bytes or fds than the ledger's quota
 * allows, empty pool or not (the refusal is the same as a full pool's); each entry is charged
 * {@link QueueLedger#ENTRY_BYTES} there until it leaves.
 */
public final class ReceivePool {
    /** The uid of bus-originated messages: never charged to anybody. */
    public static final long BUS_UID = Long.MIN_VALUE;

    // The queue: a ring (power-of-two capacity) so the transport can look past the head in
    // O(1) (peek(i)) without taking anything out; slots outside head..head+count-1 are null.
    private Message[] ring = new Message[8];
    /**
     * Per ring slot: the fds the owner's copy of that message carries besides the message's own
     * (AttachMetadata's pidfd: 0 or 1, decided when it was queued, Connection.metadataFds), which
     * the fd counts and budgets include as the message's own fds. Null until a copy carries one:
     * a pool nobody asked a pidfd for (nearly all) pays nothing for it.
     */
    private byte[] extraFds;
    /** Messages ever queued here; {@code pushed - count} have left (written or cleared). */
    private long pushed;
    /** A ring this long or shorter is kept as it is (see resize). */
    private static final int SHRINK_ABOVE = 64;
    private int head;
    private int count;
    private final long maxBytes;
    private final int maxMessages;
    /** The bus-wide ledger of queued bytes and fds, or null (no budget beyond this pool's). */
    private final QueueLedger ledger;
    private int maxFds = Integer.MAX_VALUE;
    private long ownerUid = BUS_UID;
    private int fds;
    private long bytes;
    private long dropped;
    private long peakBytes;
    private int peakFds;
    // Per foreign sending uid: charge in bytes, fds and messages. Entries 0..users-1 are live.
    private long[] userUid = new long[4];
    private long[] userBytes = new long[4];
    private int[] userFds = new int[4];
    private int[] userMsgs = new int[4];
    private int users;

    public ReceivePool(long maxBytes, int maxMessages) {
        this(maxBytes, maxMessages, null);
    }

    /** A pool whose clients' messages are also held to {@code ledger}'s budgets (null: none). */
    public ReceivePool(long maxBytes, int maxMessages, QueueLedger ledger) {
        this.maxBytes = maxBytes;
        this.maxMessages = maxMessages;
        this.ledger = ledger;
    }

    /** The bus-wide ledger this pool charges, or null. */
    public QueueLedger ledger() {
        return ledger;
    }

    /** The fd budget (dbus-daemon's max_outgoing_unix_fds). */
    public void setMaxFds(int maxFds) {
        this.maxFds = maxFds;
    }

    /** The uid of the connection that reads this pool; its own uid's messages take no share. */
    public void setOwnerUid(long uid) {
        assert count == 0 : "the owner's uid changes under queued messages";
        this.ownerUid = uid;
    }

    /** The uid a message is charged to: its sender's, or {@link #BUS_UID} for the bus. */
    public static long chargedUid(Message m) {
        Connection s = m.sender();
        if (s == null) {
            return BUS_UID;
        }
        return s.credentials() == null ? -1 : s.credentials().uid();
    }

    /** Whether a message of {@code size} bytes fits the budget now (as the owner's own). */
    public boolean fits(int size) {
        return fits(ownerUid, size, 0);
    }

    /** Whether a message of {@code size} bytes carrying {@code nfds} fds fits (as the owner's own). */
    public boolean fits(int size, int nfds) {
        return fits(ownerUid, size, nfds);
    }

    /** Whether {@code m} fits the budget and its sender's share now. */
    public boolean fits(Message m) {
        return fits(m, 0);
    }

    /** Whether {@code m}, its copy carrying {@code metaFds} more fds (AttachMetadata's pidfd), fits now. */
    public boolean fits(Message m, int metaFds) {
        return fits(chargedUid(m), m.size(), m.unixFds() + metaFds);
    }

    /** Whether {@code size} bytes with {@code nfds} fds from {@code uid} fit now. */
    public boolean fits(long uid, int size, int nfds) {
        if (ledger != null && uid != BUS_UID && overBudget(uid)) {
            return false; // the uid's (or the bus's) queued bytes or fds are spent: as a full queue
        }
        // An empty pool always takes one message, so a single large message can't wedge a peer.
        if (count == 0) {
            return true;
        }
        if (bytes + size > maxBytes || count >= maxMessages || (long) fds + nfds > maxFds) {
            return false;
        }
        if (uid == ownerUid || uid == BUS_UID) {
            return true; // self-charge: only the total budget applies
        }
        int i = indexOf(uid);
        int actors = i < 0 ? users + 1 : users;
        long qb = i < 0 ? 0 : userBytes[i];
        long qf = i < 0 ? 0 : userFds[i];
        long qm = i < 0 ? 0 : userMsgs[i];
        return withinShare(maxBytes - bytes, actors, qb, size)
                && withinShare((long) maxFds - fds, actors, qf, nfds)
                && withinShare((long) maxMessages - count, actors, qm, 1);
    }

    /**
     * Whether the ledger refuses {@code uid}'s next message here: its budget or the bus's is
     * spent and this queue is not a short one, or even short queues are past the ceiling.
     */
    private boolean overBudget(long uid) {
        if (ledger.allows(uid, QueueLedger.ENTRY_BYTES)) {
            return false;
        }
        return bytes >= ledger.quota().shortQueueBytes() || !ledger.withinCeiling(QueueLedger.ENTRY_BYTES);
    }

    /** (actors + 1) * (charge + amount) - charge <= remaining, i.e. charge + amount <= (remaining + charge) / (actors + 1). */
    private static boolean withinShare(long remaining, int actors, long charge, long amount) {
        if (amount == 0) {
            return true;
        }
        return (actors + 1L) * (charge + amount) - charge <= remaining;
    }

    /** Queues if it fits; returns false (and counts a drop) otherwise. */
    public boolean offer(Message m) {
        return offer(m, 0);
    }

    /** As {@link #offer(Message)}, its copy carrying {@code metaFds} more fds (see {@link #push(Message, int)}). */
    public boolean offer(Message m, int metaFds) {
        if (!fits(m, metaFds)) {
            countRefusal(m, metaFds);
            return false;
        }
        push(m, metaFds);
        return true;
    }

    /**
     * Counts {@code m} as refused here (a drop, and the ledger's rate-limited log line when its
     * uid's or the bus's budget is what refused it), never queueing it, whether or not it would
     * fit now: for a caller that already found it does not ({@link #fits(Message, int)}).
     * {@code metaFds} is unused for the count, kept so the call reads as the offer it replaces.
     */
    public void countRefusal(Message m, int metaFds) {
        dropped++;
        long uid = chargedUid(m);
        if (ledger != null && uid != BUS_UID && overBudget(uid)) {
            ledger.refused(m, uid);
        }
    }

    /** Queues regardless of the budget (bus-originated replies and name signals). */
    public void push(Message m) {
        push(m, 0);
    }

    /**
     * As {@link #push(Message)}; {@code metaFds}: the owner's copy carries that many fds besides
     * the message's own (AttachMetadata's pidfd, 0 or 1), charged here like its own fds until it
     * leaves, and readable by the transport ({@link #extraFds(int)}).
     */
    public void push(Message m, int metaFds) {
        if (count == ring.length) {
            grow();
        }
        int slot = (head + count) & (ring.length - 1);
        ring[slot] = m;
        if (metaFds != 0 && extraFds == null) {
            extraFds = new byte[ring.length];
        }
        if (extraFds != null) {
            extraFds[slot] = (byte) metaFds;
        }
        count++;
        pushed++;
        bytes += m.size();
        if (m.fds() != null) {
            m.fds().retain();
        }
        int nfds = m.unixFds() + metaFds;
        if (nfds > 0) {
            fds += nfds;
            if (fds > peakFds) {
                peakFds = fds;
            }
        }
        if (bytes > peakBytes) {
            peakBytes = bytes;
        }
        long uid = chargedUid(m);
        if (uid != ownerUid && uid != BUS_UID) {
            charge(uid, m.size(), nfds, 1);
        }
        if (ledger != null && uid != BUS_UID) {
            ledger.add(uid, QueueLedger.ENTRY_BYTES, 0);
        }
        Connection.holdQueued(m);
    }

    public Message peek() {
        return ring[head]; // null when empty
    }

    /**
     * The message {@code i} places behind the head (0: the head), or null past the last: lets
     * the transport copy several queued messages into one send and pop only those that went.
     */
    public Message peek(int i) {
        return i < 0 || i >= count ? null : ring[(head + i) & (ring.length - 1)];
    }

    /**
     * The fds the owner's copy of the message {@code i} places behind the head carries besides
     * its own, as charged when it was queued (AttachMetadata's pidfd: 0 or 1); 0 past the last.
     */
    public int extraFds(int i) {
        return i < 0 || i >= count || extraFds == null ? 0 : extraFds[(head + i) & (ring.length - 1)];
    }

    private int extraAtHead() {
        return extraFds == null ? 0 : extraFds[head];
    }

    /** Removes the head once it has been written out, releasing its charge. */
    public Message pop() {
        int extra = extraAtHead();
        Message m = pollFirst();
        if (m != null) {
            release(m, extra);
        }
        return m;
    }

    private Message pollFirst() {
        Message m = ring[head];
        if (m != null) {
            ring[head] = null;
            if (extraFds != null) {
                extraFds[head] = 0;
            }
            head = (head + 1) & (ring.length - 1);
            count--;
            if (ring.length > SHRINK_ABOVE && count < ring.length >>> 3) {
                resize(ring.length >>> 1);
            }
        }
        return m;
    }

    /** Doubles the ring, the head moving to slot 0. */
    private void grow() {
        resize(ring.length * 2);
    }

    /**
     * Memory follows use: a burst's ring is halved once it is seven-eighths empty, so a drained
     * queue does not keep its peak array (uncharged) for the connection's lifetime. Halving only
     * below an eighth keeps grow/shrink amortized O(1) per message.
     */
    private void resize(int length) {
        Message[] to = new Message[length];
        int first = Math.min(count, ring.length - head);
        System.arraycopy(ring, head, to, 0, first);
        System.arraycopy(ring, 0, to, first, count - first);
        if (extraFds != null) {
            byte[] extraTo = new byte[length];
            System.arraycopy(extraFds, head, extraTo, 0, first);
            System.arraycopy(extraFds, 0, extraTo, first, count - first);
            extraFds = extraTo;
        }
        ring = to;
        head = 0;
    }

    private void release(Message m, int extra) {
        bytes -= m.size();
        int nfds = m.unixFds() + extra;
        fds -= nfds;
        if (m.fds() != null) {
            m.fds().release();
        }
        long uid = chargedUid(m);
        if (uid != ownerUid && uid != BUS_UID) {
            charge(uid, -m.size(), -nfds, -1);
        }
        if (ledger != null && uid != BUS_UID) {
            ledger.add(uid, -QueueLedger.ENTRY_BYTES, 0);
        }
        Connection.releaseQueued(m);
        assert bytes >= 0 && fds >= 0 && (count > 0 || (bytes == 0 && fds == 0 && users == 0))
                : bytes + " bytes, " + fds + " fds, " + users + " uids charged with " + count + " messages";
    }

    /**
     * Checks the invariants: recounts bytes, fds and the per-uid table from the queued messages,
     * checks that each queued message's fds are still referenced, that the table has no uid twice
     * and no empty entry, and that the peaks are not below the counts. Throws
     * IllegalStateException naming the first difference.
     */
    public void checkInvariants() {
        long b = 0;
        long f = 0;
        java.util.Map<Long, long[]> foreign = new java.util.HashMap<>();
        for (int i = 0; i < ring.length; i++) {
            Message m = ring[(head + i) & (ring.length - 1)];
            if ((m == null) != (i >= count)) {
                throw new IllegalStateException("ring slot " + i + " behind the head is "
                        + (m == null ? "empty" : "taken") + " with " + count + " messages");
            }
            if (m == null) {
                continue;
            }
            b += m.size();
            int extra = extraFds == null ? 0 : extraFds[(head + i) & (ring.length - 1)];
            f += m.unixFds() + extra;
            if (m.fds() != null && m.fds().references() < 1) {
                throw new IllegalStateException("a queued message's fds are closed");
            }
            if (extra > 0 && (m.facts() == null || m.facts().pidfd() == null)) {
                throw new IllegalStateException("an entry charged for a pidfd its message no longer holds");
            }
            long uid = chargedUid(m);
            if (uid != ownerUid && uid != BUS_UID) {
                long[] sums = foreign.computeIfAbsent(uid, k -> new long[3]);
                sums[0] += m.size();
                sums[1] += m.unixFds() + extra;
                sums[2]++;
            }
        }
        if (b != bytes || f != fds) {
            throw new IllegalStateException("counts " + bytes + " bytes and " + fds + " fds but " + count
                    + " messages hold " + b + " and " + f);
        }
        if (users != foreign.size()) {
            throw new IllegalStateException(users + " uids in the share table but " + foreign.size() + " hold messages");
        }
        for (int i = 0; i < users; i++) {
            long[] sums = foreign.remove(userUid[i]);
            if (sums == null || sums[0] != userBytes[i] || sums[1] != userFds[i] || sums[2] != userMsgs[i]) {
                throw new IllegalStateException("uid " + userUid[i] + " charged " + userBytes[i] + " bytes, " + userFds[i]
                        + " fds, " + userMsgs[i] + " messages but holds " + java.util.Arrays.toString(sums));
            }
        }
        if (peakBytes < bytes || peakFds < fds || dropped < 0) {
            throw new IllegalStateException("peaks " + peakBytes + "/" + peakFds + " below " + bytes + "/" + fds);
        }
    }

    private int indexOf(long uid) {
        for (int i = 0; i < users; i++) {
            if (userUid[i] == uid) {
                return i;
            }
        }
        return -1;
    }

    private void charge(long uid, int size, int nfds, int msgs) {
        int i = indexOf(uid);
        if (i < 0) {
            if (users == userUid.length) {
                int n = users * 2;
                userUid = java.util.Arrays.copyOf(userUid, n);
                userBytes = java.util.Arrays.copyOf(userBytes, n);
                userFds = java.util.Arrays.copyOf(userFds, n);
                userMsgs = java.util.Arrays.copyOf(userMsgs, n);
            }
            i = users++;
            userUid[i] = uid;
            userBytes[i] = 0;
            userFds[i] = 0;
            userMsgs[i] = 0;
        }
        userBytes[i] += size;
        userFds[i] += nfds;
        userMsgs[i] += msgs;
        if (userMsgs[i] == 0) {
            int last = --users;
            userUid[i] = userUid[last];
            userBytes[i] = userBytes[last];
            userFds[i] = userFds[last];
            userMsgs[i] = userMsgs[last];
        }
    }

    /** Bytes queued here on behalf of {@code uid} (0 for the owner's own uid and the bus). */
    public long bytesOf(long uid) {
        int i = indexOf(uid);
        return i < 0 ? 0 : userBytes[i];
    }

    /** Foreign uids that hold a charge on this pool now. */
    public int chargedUsers() {
        return users;
    }

    public boolean isEmpty() {
        return count == 0;
    }

    public int messages() {
        return count;
    }

    /** The message-count budget (max_queued_messages). */
    public int maxMessages() {
        return maxMessages;
    }

    /** Shows up to {@code max} queued messages to {@code visitor}, oldest first; takes and reorders nothing (PeekQueued). */
    public void peekQueued(int max, java.util.function.Consumer<Message> visitor) {
        int n = Math.min(max, count);
        for (int i = 0; i < n; i++) {
            visitor.accept(ring[(head + i) & (ring.length - 1)]);
        }
    }

    /** Fds held by queued messages. */
    public int fds() {
        return fds;
    }

    public long bytes() {
        return bytes;
    }

    public long dropped() {
        return dropped;
    }

    public long peakBytes() {
        return peakBytes;
    }

    public int peakFds() {
        return peakFds;
    }

    public long maxBytes() {
        return maxBytes;
    }

    /** Hand-over restore into an empty pool: its counters as they were (the messages come later). */
    public void restoreCounters(long pushed, long dropped, long peakBytes, int peakFds) {
        if (count != 0 || this.pushed > pushed) {
            throw new IllegalStateException("restore counters into an empty, new pool");
        }
        this.pushed = pushed;
        this.dropped = dropped;
        this.peakBytes = Math.max(this.peakBytes, peakBytes);
        this.peakFds = Math.max(this.peakFds, peakFds);
    }

    /** How many messages were ever queued here: the position the next one will have. */
    public long pushedCount() {
        return pushed;
    }

    /** Whether the message queued at {@code position} (a {@link #pushedCount} taken before it was queued) is still here. */
    public boolean stillQueued(long position) {
        return position >= pushed - count && position < pushed;
    }

    /** Slots of the ring now (tests: memory follows use). */
    int ringCapacity() {
        return ring.length;
    }

    void clear() {
        while (count > 0) {
            int extra = extraAtHead();
            release(pollFirst(), extra);
        }
        bytes = 0;
        fds = 0;
        users = 0;
    }
}
