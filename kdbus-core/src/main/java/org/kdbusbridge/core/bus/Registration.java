package org.kdbusbridge.core.bus;

import org.kdbusbridge.core.name.NameChange;

/**
 * What Hello did: the unique name's arrival, or (arrival null) the connection limit that
 * refused it. A refused connection stays unregistered: it may say Hello again, and it still
 * counts as incomplete (max_incomplete_connections, auth_timeout), as in dbus-daemon.
 */
public record Registration(NameChange arrival, Limit refusedBy) {
    /** The limits checked at Hello, in dbus-daemon's order. */
    public enum Limit { MAX_COMPLETED_CONNECTIONS, MAX_CONNECTIONS_PER_USER }

    public boolean refused() {
        return refusedBy != null;
    }
}
