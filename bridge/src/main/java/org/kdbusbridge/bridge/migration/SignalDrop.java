// Invariants: TEST-ONLY. Only FaultRelay consults one, so no bus knows about it. It drops
// exactly the Nth signal (counting from 1, over every connection of the relay together) whose
// member matches and whose destination is not the driver, and nothing else, ever. Thread-safe:
// each relayed connection has its own pump thread.
package org.kdbusbridge.bridge.migration;

import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.WireFormat;

/**
 * Deliberate misbehaviour for testing the migration tools (docs/migration.md, "Seeded
 * divergence"): one signal a client sends is silently discarded before the bus sees it, as if
 * it had been lost, so that a differential run must report exactly that message.
 */
public final class SignalDrop {
    private final String member;
    private final int nth;
    private int seen;
    private int dropped;

    private SignalDrop(String member, int nth) {
        if (member == null || member.isEmpty() || nth < 1) throw new IllegalArgumentException("member and n >= 1 required");
        this.member = member;
        this.nth = nth;
    }

    /** Drops the {@code nth} signal (1 = the first) with this member name that any client sends. */
    public static SignalDrop dropSignal(String member, int nth) {
        return new SignalDrop(member, nth);
    }

    /** "MEMBER" or "MEMBER:N", as the hidden command-line option takes it. */
    public static SignalDrop parse(String spec) {
        int colon = spec.lastIndexOf(':');
        if (colon > 0) return dropSignal(spec.substring(0, colon), Integer.parseInt(spec.substring(colon + 1)));
        return dropSignal(spec, 1);
    }

    /** True if this client message (a validated header) must vanish. */
    synchronized boolean drop(MessageHeader h) {
        if (h.type() != WireFormat.SIGNAL || !member.equals(h.member())) return false;
        // The bus answers a message to the driver itself; the in-bus check never counted those.
        if (WireFormat.DRIVER_NAME.equals(h.destination())) return false;
        if (++seen != nth) return false;
        dropped++;
        return true;
    }

    /** How many signals were dropped so far (0 or 1). */
    public synchronized int dropped() {
        return dropped;
    }

    @Override
    public String toString() {
        return "drop signal " + member + " #" + nth;
    }
}
