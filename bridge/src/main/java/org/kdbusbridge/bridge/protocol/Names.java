// Invariants: stateless, allocation-free on the ByteBuffer overloads; implements the D-Bus
// specification's syntax for object paths, interface, member, error and bus names (ASCII only).
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** Syntax checks for D-Bus names and object paths. */
public final class Names {
    private Names() {}

    private static boolean isAlpha(int c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    }

    private static boolean isDigit(int c) {
        return c >= '0' && c <= '9';
    }

    /** "/" or "/"-separated non-empty elements of [A-Za-z0-9_], no trailing slash. */
    public static boolean isValidObjectPath(ByteBuffer b, int off, int len) {
        if (len == 0 || b.get(off) != '/') return false;
        if (len == 1) return true;
        int prev = '/';
        for (int i = 1; i < len; i++) {
            int c = b.get(off + i) & 0xff;
            if (c == '/') {
                if (prev == '/') return false;
            } else if (!isAlpha(c) && !isDigit(c)) {
                return false;
            }
            prev = c;
        }
        return prev != '/';
    }

    /** Two or more '.'-separated elements of [A-Za-z0-9_] not starting with a digit; at most 255. */
    public static boolean isValidInterfaceName(ByteBuffer b, int off, int len) {
        if (len == 0 || len > WireFormat.MAX_NAME_LENGTH) return false;
        int elements = 1;
        boolean elementStart = true;
        for (int i = 0; i < len; i++) {
            int c = b.get(off + i) & 0xff;
            if (c == '.') {
                if (elementStart) return false;
                elements++;
                elementStart = true;
            } else if (isAlpha(c) || (!elementStart && isDigit(c))) {
                elementStart = false;
            } else {
                return false;
            }
        }
        return !elementStart && elements >= 2;
    }

    /** Error names follow the interface-name rules. */
    public static boolean isValidErrorName(ByteBuffer b, int off, int len) {
        return isValidInterfaceName(b, off, len);
    }

    /** One element of [A-Za-z0-9_] not starting with a digit; 1..255 bytes. */
    public static boolean isValidMemberName(ByteBuffer b, int off, int len) {
        if (len == 0 || len > WireFormat.MAX_NAME_LENGTH) return false;
        for (int i = 0; i < len; i++) {
            int c = b.get(off + i) & 0xff;
            if (!(isAlpha(c) || (i > 0 && isDigit(c)))) return false;
        }
        return true;
    }

    /**
     * Unique (":" + two or more elements of [A-Za-z0-9_-], digits may lead) or well-known
     * (two or more elements of [A-Za-z0-9_-], no leading digit in an element); at most 255.
     */
    public static boolean isValidBusName(ByteBuffer b, int off, int len) {
        if (len == 0 || len > WireFormat.MAX_NAME_LENGTH) return false;
        boolean unique = b.get(off) == ':';
        int i = unique ? 1 : 0;
        if (i == len) return false;
        int elements = 1;
        boolean elementStart = true;
        for (; i < len; i++) {
            int c = b.get(off + i) & 0xff;
            if (c == '.') {
                if (elementStart) return false;
                elements++;
                elementStart = true;
            } else if (isAlpha(c) || c == '-' || (isDigit(c) && (unique || !elementStart))) {
                elementStart = false;
            } else {
                return false;
            }
        }
        return !elementStart && elements >= 2;
    }

    public static boolean isUniqueName(CharSequence s) {
        return s.length() > 0 && s.charAt(0) == ':';
    }

    private static ByteBuffer ascii(String s) {
        if (s == null) return null;
        for (int i = 0; i < s.length(); i++) if (s.charAt(i) > 0x7e) return null;
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.US_ASCII));
    }

    public static boolean isValidObjectPath(String s) {
        ByteBuffer b = ascii(s);
        return b != null && isValidObjectPath(b, 0, b.capacity());
    }

    public static boolean isValidInterfaceName(String s) {
        ByteBuffer b = ascii(s);
        return b != null && isValidInterfaceName(b, 0, b.capacity());
    }

    public static boolean isValidErrorName(String s) {
        return isValidInterfaceName(s);
    }

    public static boolean isValidMemberName(String s) {
        ByteBuffer b = ascii(s);
        return b != null && isValidMemberName(b, 0, b.capacity());
    }

    public static boolean isValidBusName(String s) {
        ByteBuffer b = ascii(s);
        return b != null && isValidBusName(b, 0, b.capacity());
    }
}
