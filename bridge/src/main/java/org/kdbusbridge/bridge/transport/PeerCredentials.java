// Invariants: immutable snapshot of SO_PEERCRED taken when the connection was accepted
// (the credentials of the peer process at connect() time, as the kernel recorded them).
package org.kdbusbridge.bridge.transport;

/** Peer process credentials of a unix socket connection. */
public record PeerCredentials(int pid, int uid, int gid) {
}
