package org.kdbusbridge.bridge.driver;

import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.core.connection.Connection;

/**
 * One method call addressed to org.freedesktop.DBus, already validated by the protocol layer.
 * {@code body} reads the arguments; it is valid only during the call.
 */
public record DriverCall(Connection caller, int type, int flags, long serial, String path, String iface,
                         String member, String signature, BodyReader body, Runnable capture) {
    /** Without monitor capture (tests, internal calls). */
    public DriverCall(Connection caller, int type, int flags, long serial, String path, String iface,
                      String member, String signature, BodyReader body) {
        this(caller, type, flags, serial, path, iface, member, signature, body, () -> { });
    }

    public boolean noReplyExpected() {
        return (flags & 0x1) != 0;
    }
}
