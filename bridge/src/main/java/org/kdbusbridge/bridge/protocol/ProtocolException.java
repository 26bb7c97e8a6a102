// Invariants: the message is a human-readable reason, never null; checked so callers must decide
// whether to drop the message or disconnect the peer.
package org.kdbusbridge.bridge.protocol;

/** A D-Bus wire-protocol violation (malformed framing, header, body, or SASL exchange). */
public class ProtocolException extends Exception {
    private static final long serialVersionUID = 1L;

    public ProtocolException(String reason) {
        super(reason == null ? "protocol violation" : reason);
    }

    /** The human-readable reason, for log lines and the disconnect decision. */
    public String reason() {
        return getMessage();
    }
}
