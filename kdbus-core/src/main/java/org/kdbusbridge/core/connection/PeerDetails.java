package org.kdbusbridge.core.connection;

import org.kdbusbridge.core.message.FdSet;

/**
 * What the transport knows about a peer beyond {@link Credentials}: its groups, its LSM
 * label and a process handle, for GetConnectionCredentials. The transport may read the first
 * two only when first asked (the kernel keeps them from connect()); the process handle is
 * taken at connect time and held by the connection until it closes.
 */
public interface PeerDetails {
    /** The peer's gids (primary and supplementary, ascending, unsigned), or null if unknown. */
    long[] groups();

    /** The peer's LSM label (without a trailing NUL), or null if it has none. */
    byte[] securityLabel();

    /**
     * A new reference to the peer's process handle (a pidfd) as a one-fd set the caller owns
     * (one reference), or null if there is none. The connection keeps its own copy.
     */
    FdSet processFd();

    /** For connections the transport knows nothing more about. */
    PeerDetails NONE = new PeerDetails() {
        @Override
        public long[] groups() {
            return null;
        }

        @Override
        public byte[] securityLabel() {
            return null;
        }

        @Override
        public FdSet processFd() {
            return null;
        }
    };
}
