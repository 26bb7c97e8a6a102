package org.kdbusbridge.core.name;

import org.kdbusbridge.core.connection.Connection;

/**
 * One ownership change of one name, as computed inside a transaction.
 *
 * The driver renders it in dbus-daemon's order: NameLost to {@code oldOwner} (if any), then
 * NameOwnerChanged to matching rules, then NameAcquired to {@code newOwner} (if any).
 */
public record NameChange(String name, Connection oldOwner, Connection newOwner) {
    public String oldOwnerName() {
        return oldOwner == null ? "" : oldOwner.uniqueName();
    }

    public String newOwnerName() {
        return newOwner == null ? "" : newOwner.uniqueName();
    }
}
