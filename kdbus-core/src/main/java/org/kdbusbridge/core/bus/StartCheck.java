package org.kdbusbridge.core.bus;

/**
 * What StartServiceByName may do with a name ({@link Bus#startService}), in dbus-daemon's
 * order of checks (bus_activation_activate_service).
 */
public enum StartCheck {
    /** max_pending_service_starts is reached (LimitsExceeded). */
    LIMIT,
    /** No .service file provides the name, even if it is owned (ServiceUnknown). */
    UNKNOWN,
    /** The name has an owner already (reply ALREADY_RUNNING). */
    ALREADY_RUNNING,
    /** Start it: the caller waits for the owner, then {@link Bus#activate} starts it. */
    START
}
