package org.kdbusbridge.bridge.server;

import org.kdbusbridge.core.bus.DisconnectReason;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What one part of a session (its input, or its output) holds on the heap against the peer's
 * uid in the bus's {@link InputHeap}. Past the uid's or the bus's budget (growth only) the
 * session is closed with one log line per uid per minute: the heap keeps room for everyone else.
 *
 * Invariant: {@code held} is exactly what this hold has charged to the ledger; {@link #release}
 * gives it all back.
 */
final class HeapHold {
    // Session log lines keep the logger name they had before the session was split.
    private static final Logger LOG = LoggerFactory.getLogger(ClientSession.class);

    private final ClientSession session;
    private final InputHeap heap;
    /** The warning, with placeholders for the session, the bytes wanted, the uid and the ledger's figures. */
    private final String refusal;
    private final String closeReason;
    private long held;

    HeapHold(ClientSession session, InputHeap heap, String refusal, String closeReason) {
        this.session = session;
        this.heap = heap;
        this.refusal = refusal;
        this.closeReason = closeReason;
    }

    long held() {
        return held;
    }

    /** Charges {@code want} bytes in all; false (and the session closed) when the budget refuses the growth. */
    boolean set(long want) {
        if (want == held) {
            return true;
        }
        if (session.isClosed()) {
            return false; // closing gave the hold back; charging again would leak it
        }
        long uid = session.peerUid();
        if (heap.resize(uid, held, want)) {
            held = want;
            return true;
        }
        if (heap.shouldLog(uid, System.nanoTime() / 1_000_000)) {
            LOG.warn(refusal, session, want, uid, heap.perUserBytes(), heap.used(uid), heap.busBytes(), heap.total());
        }
        session.close(DisconnectReason.LIMITS, closeReason);
        return false;
    }

    /**
     * Charges {@code want} bytes in all if the budget allows; false leaves the hold as it was and
     * the session open (the caller does without: a metadata copy is then not made).
     */
    boolean trySet(long want) {
        if (want == held) {
            return true;
        }
        if (session.isClosed() || !heap.resize(session.peerUid(), held, want)) {
            return false;
        }
        held = want;
        return true;
    }

    /** On close: everything charged goes back. */
    void release() {
        if (held != 0) {
            heap.resize(session.peerUid(), held, 0);
            held = 0;
        }
    }
}
