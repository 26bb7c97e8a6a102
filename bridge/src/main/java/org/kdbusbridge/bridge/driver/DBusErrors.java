package org.kdbusbridge.bridge.driver;

/** Error names the bus sends, as dbus-daemon spells them. */
public final class DBusErrors {
    private DBusErrors() { }

    private static final String P = "org.freedesktop.DBus.Error.";
    public static final String FAILED = P + "Failed";
    public static final String SERVICE_UNKNOWN = P + "ServiceUnknown";
    public static final String NAME_HAS_NO_OWNER = P + "NameHasNoOwner";
    public static final String NO_REPLY = P + "NoReply";
    public static final String ACCESS_DENIED = P + "AccessDenied";
    public static final String LIMITS_EXCEEDED = P + "LimitsExceeded";
    public static final String UNKNOWN_METHOD = P + "UnknownMethod";
    public static final String UNKNOWN_INTERFACE = P + "UnknownInterface";
    public static final String UNKNOWN_PROPERTY = P + "UnknownProperty";
    public static final String PROPERTY_READ_ONLY = P + "PropertyReadOnly";
    public static final String INVALID_ARGS = P + "InvalidArgs";
    /** libdbus's name for EADDRINUSE (_dbus_error_from_errno). */
    public static final String ADDRESS_IN_USE = P + "AddressInUse";
    public static final String MATCH_RULE_INVALID = P + "MatchRuleInvalid";
    public static final String MATCH_RULE_NOT_FOUND = P + "MatchRuleNotFound";
    public static final String ADT_AUDIT_DATA_UNKNOWN = P + "AdtAuditDataUnknown";
    public static final String SELINUX_CONTEXT_UNKNOWN = P + "SELinuxSecurityContextUnknown";
    public static final String NOT_SUPPORTED = P + "NotSupported";
    public static final String TIMED_OUT = P + "TimedOut";
    /** dbus-daemon's text, missing space included. */
    public static final String FDS_NOT_SUPPORTED_TEXT =
            "Tried to send message with Unix file descriptorsto a client that doesn't support that.";
    public static final String SPAWN_EXEC_FAILED = P + "Spawn.ExecFailed";
    public static final String SPAWN_CHILD_EXITED = P + "Spawn.ChildExited";
    public static final String SPAWN_CHILD_SIGNALED = P + "Spawn.ChildSignaled";
    public static final String SPAWN_FAILED = P + "Spawn.Failed";
    /** Our extension: DisconnectIfIdle refused because something is queued or owed. */
    public static final String NOT_IDLE = "org.kdbusbridge.Error.NotIdle";
    /** Our extension: Extensions1.Reexec failed before the point of no return; the old bus keeps serving. */
    public static final String HAND_OVER_FAILED = "org.kdbusbridge.Extensions1.Error.HandOverFailed";
    /** Our extension: Extensions1.Reexec while another hand-over runs. */
    public static final String HAND_OVER_IN_PROGRESS = "org.kdbusbridge.Extensions1.Error.HandOverInProgress";
    /** Our extension: an unsealed memfd for a connection that asked for sealed ones only. */
    public static final String UNSEALED_PAYLOAD = "org.kdbusbridge.Error.UnsealedPayload";

    /** The error a core refusal is answered with. */
    static String of(org.kdbusbridge.core.bus.Denial.Reason reason) {
        return switch (reason) {
            case INVALID_ARGS -> INVALID_ARGS;
            case ACCESS_DENIED -> ACCESS_DENIED;
            case LIMITS_EXCEEDED -> LIMITS_EXCEEDED;
            case MATCH_RULE_NOT_FOUND -> MATCH_RULE_NOT_FOUND;
        };
    }
}
