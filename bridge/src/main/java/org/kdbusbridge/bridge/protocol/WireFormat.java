// Invariants: constants only, values fixed by the D-Bus specification; never instantiated.
package org.kdbusbridge.bridge.protocol;

/** D-Bus wire-format constants (message types, flags, header field codes, limits). */
public final class WireFormat {
    private WireFormat() {}

    public static final byte LITTLE_ENDIAN = 'l';
    public static final byte BIG_ENDIAN = 'B';
    public static final int PROTOCOL_VERSION = 1;

    // Message types.
    public static final int INVALID = 0;
    public static final int METHOD_CALL = 1;
    public static final int METHOD_RETURN = 2;
    public static final int ERROR = 3;
    public static final int SIGNAL = 4;

    // Flags.
    public static final int NO_REPLY_EXPECTED = 0x1;
    public static final int NO_AUTO_START = 0x2;
    public static final int ALLOW_INTERACTIVE_AUTHORIZATION = 0x4;

    // Header field codes.
    public static final int FIELD_INVALID = 0;
    public static final int PATH = 1;
    public static final int INTERFACE = 2;
    public static final int MEMBER = 3;
    public static final int ERROR_NAME = 4;
    public static final int REPLY_SERIAL = 5;
    public static final int DESTINATION = 6;
    public static final int SENDER = 7;
    public static final int SIGNATURE = 8;
    public static final int UNIX_FDS = 9;
    /** Highest header field code this implementation knows; higher codes are skipped/dropped. */
    public static final int MAX_KNOWN_FIELD = 9;

    // Limits.
    public static final int MAX_MESSAGE_SIZE = 134217728; // 2^27
    public static final int MAX_ARRAY = 67108864;         // 2^26
    public static final int MAX_SIGNATURE_LENGTH = 255;
    public static final int MAX_NAME_LENGTH = 255;
    public static final int MAX_ARRAY_DEPTH = 32;
    public static final int MAX_STRUCT_DEPTH = 32;
    public static final int MAX_TOTAL_DEPTH = 64;
    /** Fixed header: endian, type, flags, version, body length, serial, fields array length. */
    public static final int FIXED_HEADER_SIZE = 16;

    // Reserved names (the Local rules).
    public static final String DRIVER_NAME = "org.freedesktop.DBus";
    public static final String DRIVER_PATH = "/org/freedesktop/DBus";
    public static final String LOCAL_PATH = "/org/freedesktop/DBus/Local";
    public static final String LOCAL_INTERFACE = "org.freedesktop.DBus.Local";

    /** Signature type code that a known header field must carry, or 0 for unknown/invalid codes. */
    public static byte fieldTypeCode(int code) {
        switch (code) {
            case PATH: return 'o';
            case INTERFACE: case MEMBER: case ERROR_NAME: case DESTINATION: case SENDER: return 's';
            case REPLY_SERIAL: case UNIX_FDS: return 'u';
            case SIGNATURE: return 'g';
            default: return 0;
        }
    }

    static int align(int pos, int a) {
        return (pos + a - 1) & -a;
    }
}
