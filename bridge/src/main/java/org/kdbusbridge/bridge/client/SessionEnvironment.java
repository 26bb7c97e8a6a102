// Invariants: stateless; touches only the D-Bus session variables of the map it is given.
package org.kdbusbridge.bridge.client;

import java.util.Map;

/** The environment a program run on a private session bus gets (run-session, the differential runner). */
public final class SessionEnvironment {
    private SessionEnvironment() { }

    /**
     * What dbus-run-session gives its program: the new bus as the session bus, and none of the
     * variables that would point it at another bus or a starter.
     */
    public static void apply(Map<String, String> env, String address) {
        env.put("DBUS_SESSION_BUS_ADDRESS", address);
        env.remove("DBUS_SESSION_BUS_PID");
        env.remove("DBUS_SESSION_BUS_WINDOWID");
        env.remove("DBUS_STARTER_ADDRESS");
        env.remove("DBUS_STARTER_BUS_TYPE");
    }
}
