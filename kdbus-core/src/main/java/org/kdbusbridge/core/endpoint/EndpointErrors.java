package org.kdbusbridge.core.endpoint;

/**
 * The errors an endpoint answers refused messages with. The texts are xdg-dbus-proxy's:
 * it sends the error name as the message too (flatpak-proxy.c get_error_for_header).
 */
public final class EndpointErrors {
    private EndpointErrors() { }

    public static final String ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied";
    public static final String SERVICE_UNKNOWN = "org.freedesktop.DBus.Error.ServiceUnknown";
    public static final String NAME_HAS_NO_OWNER = "org.freedesktop.DBus.Error.NameHasNoOwner";
}
