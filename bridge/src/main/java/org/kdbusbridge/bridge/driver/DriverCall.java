package org.kdbusbridge.bridge.driver;

import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.FdSet;

/**
 * One method call addressed to org.freedesktop.DBus, already validated by the protocol layer.
 * {@code body} reads the arguments; {@code fds} are the unix fds that came with it (null: none);
 * both are valid only during the call (a handler that keeps an fd dups it).
 */
public record DriverCall(Connection caller, int type, int flags, long serial, String path, String iface,
                         String member, String signature, BodyReader body, Runnable capture, FdSet fds) {
    /** Without fds. */
    public DriverCall(Connection caller, int type, int flags, long serial, String path, String iface,
                      String member, String signature, BodyReader body, Runnable capture) {
        this(caller, type, flags, serial, path, iface, member, signature, body, capture, null);
    }

    /** Without monitor capture (tests, internal calls). */
    public DriverCall(Connection caller, int type, int flags, long serial, String path, String iface,
                      String member, String signature, BodyReader body) {
        this(caller, type, flags, serial, path, iface, member, signature, body, () -> { });
    }

    public boolean noReplyExpected() {
        return (flags & 0x1) != 0;
    }
}
