package org.kdbusbridge.core.endpoint;

/**
 * How an endpoint treats each method call to the bus driver (flatpak-proxy.c
 * get_dbus_method_handler): run as usual, run with its reply filtered, or run only if the
 * client has {@link #needed()} on the name in the first argument. Every other method and every
 * other interface on the driver (Peer, Properties, Monitoring, Debug.Stats, vendor interfaces,
 * and a call with no interface at all) is {@link #DENY}: AccessDenied.
 */
public enum DriverAccess {
    /** Hello, RemoveMatch, GetId, and anything on org.freedesktop.DBus.Introspectable. */
    PASS(Level.NONE),
    /** AddMatch: refused with AccessDenied if the rule mentions eavesdrop= at all. */
    PASS_UNLESS_EAVESDROP(Level.NONE),
    /** ListNames, ListActivatableNames: run, then the reply lists only names the client may SEE. */
    FILTER_NAME_LIST(Level.NONE),
    /** NameHasOwner: run if arg0 is SEE, else answered false without running. */
    SEE_OR_FALSE(Level.SEE),
    /** GetNameOwner: run if arg0 is SEE, else answered NameHasNoOwner without running. */
    SEE_OR_NO_OWNER(Level.SEE),
    /** GetConnectionUnixUser, ...UnixProcessID, ...Credentials, GetAdtAuditSessionData, ...SELinuxSecurityContext. */
    NEEDS_SEE(Level.SEE),
    /** StartServiceByName. */
    NEEDS_TALK(Level.TALK),
    /** RequestName, ReleaseName, ListQueuedOwners. */
    NEEDS_OWN(Level.OWN),
    /** UpdateActivationEnvironment, BecomeMonitor, every unknown method or interface. */
    DENY(Level.NONE);

    public static final String DRIVER_NAME = "org.freedesktop.DBus";
    public static final String DRIVER_INTERFACE = "org.freedesktop.DBus";
    public static final String INTROSPECTABLE = "org.freedesktop.DBus.Introspectable";

    private final Level needed;

    DriverAccess(Level needed) {
        this.needed = needed;
    }

    /** The level the client needs on the name in arg0; NONE for methods that do not check one. */
    public Level needed() {
        return needed;
    }

    /** The treatment of a method call to the driver with this interface and member (either may be null). */
    public static DriverAccess of(String iface, String member) {
        if (INTROSPECTABLE.equals(iface)) {
            return PASS;
        }
        if (!DRIVER_INTERFACE.equals(iface) || member == null) {
            return DENY;
        }
        return switch (member) {
            case "Hello", "RemoveMatch", "GetId" -> PASS;
            case "AddMatch" -> PASS_UNLESS_EAVESDROP;
            case "ListNames", "ListActivatableNames" -> FILTER_NAME_LIST;
            case "NameHasOwner" -> SEE_OR_FALSE;
            case "GetNameOwner" -> SEE_OR_NO_OWNER;
            case "GetConnectionUnixProcessID", "GetConnectionCredentials", "GetAdtAuditSessionData",
                    "GetConnectionSELinuxSecurityContext", "GetConnectionUnixUser" -> NEEDS_SEE;
            case "StartServiceByName" -> NEEDS_TALK;
            case "RequestName", "ReleaseName", "ListQueuedOwners" -> NEEDS_OWN;
            default -> DENY; // UpdateActivationEnvironment, BecomeMonitor and anything unknown
        };
    }

    /**
     * Whether a match rule asks for eavesdropping as the proxy detects it: "eavesdrop", then any
     * spaces, tabs, CRs or LFs, then '='. Anywhere in the string, even inside a quoted value,
     * and whatever the value ("eavesdrop='false'" is refused too).
     */
    public static boolean mentionsEavesdrop(String rule) {
        int from = 0;
        while (true) {
            int at = rule.indexOf("eavesdrop", from);
            if (at < 0) {
                return false;
            }
            int i = at + "eavesdrop".length();
            while (i < rule.length() && isSpace(rule.charAt(i))) {
                i++;
            }
            if (i < rule.length() && rule.charAt(i) == '=') {
                return true;
            }
            from = at + "eavesdrop".length();
        }
    }

    private static boolean isSpace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
    }
}
