package org.kdbusbridge.core.policy;

/**
 * The message types a {@code send_type}/{@code receive_type} attribute can name.
 *
 * Invariants: the config names are exactly dbus_message_type_from_string's; the codes are the
 * wire codes of the D-Bus specification.
 */
public enum MessageKind {
    METHOD_CALL("method_call", 1),
    METHOD_RETURN("method_return", 2),
    ERROR("error", 3),
    SIGNAL("signal", 4);

    private final String configName;
    private final int code;

    MessageKind(String configName, int code) {
        this.configName = configName;
        this.code = code;
    }

    public String configName() { return configName; }

    public int code() { return code; }

    /** The kind for a config value, or null if dbus-daemon would say "Bad message type". */
    public static MessageKind fromConfig(String value) {
        for (MessageKind k : values()) {
            if (k.configName.equals(value)) {
                return k;
            }
        }
        return null;
    }

    /** The kind for a wire code, or null for an invalid one. */
    public static MessageKind fromCode(int code) {
        for (MessageKind k : values()) {
            if (k.code == code) {
                return k;
            }
        }
        return null;
    }
}
