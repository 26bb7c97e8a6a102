// Invariants: TEST-ONLY. Nothing in the bus creates one; it takes effect only when a caller
// hands one to BusServer.setFaultInjection before start() (the migration tools do so only for
// their hidden --x-test-drop-signal option). Used on the loop thread only. It drops exactly the
// Nth signal (counting from 1) whose member matches, and nothing else, ever.
package org.kdbusbridge.bridge.server;

import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.WireFormat;

/**
 * Deliberate misbehaviour for testing the migration tools (docs/migration.md, "Seeded
 * divergence"): the bus silently discards one signal a client sends, as if it had been lost,
 * so that a differential run must report exactly that message.
 */
public final class FaultInjection {
    private final String member;
    private final int nth;
    private int seen;
    private int dropped;

    private FaultInjection(String member, int nth) {
        if (member == null || member.isEmpty() || nth < 1) throw new IllegalArgumentException("member and n >= 1 required");
        this.member = member;
        this.nth = nth;
    }

    /** Drops the {@code nth} signal (1 = the first) with this member name that any client sends. */
    public static FaultInjection dropSignal(String member, int nth) {
        return new FaultInjection(member, nth);
    }

    /** "MEMBER" or "MEMBER:N", as the hidden command-line option takes it. */
    public static FaultInjection parse(String spec) {
        int colon = spec.lastIndexOf(':');
        if (colon > 0) return dropSignal(spec.substring(0, colon), Integer.parseInt(spec.substring(colon + 1)));
        return dropSignal(spec, 1);
    }

    /** Loop thread: true if this client message must vanish. */
    boolean drop(MessageHeader h) {
        if (h.type() != WireFormat.SIGNAL || !member.equals(h.member())) return false;
        if (++seen != nth) return false;
        dropped++;
        return true;
    }

    /** How many signals were dropped so far (0 or 1). */
    public int dropped() {
        return dropped;
    }
}
