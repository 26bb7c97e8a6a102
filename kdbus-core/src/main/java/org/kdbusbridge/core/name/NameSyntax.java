package org.kdbusbridge.core.name;

/**
 * Syntax checks for D-Bus names and paths, as the specification defines them.
 * Pure functions; shared by the name registry, the match-rule parser and the bridge.
 */
public final class NameSyntax {
    private NameSyntax() { }

    public static final int MAX_NAME_LENGTH = 255;

    /** A unique (":1.4") or well-known ("org.example.App") bus name. */
    public static boolean isValidBusName(String s) {
        if (s == null || s.isEmpty() || s.length() > MAX_NAME_LENGTH) {
            return false;
        }
        boolean unique = s.charAt(0) == ':';
        int i = unique ? 1 : 0;
        if (i >= s.length()) {
            return false;
        }
        int elements = 0;
        int elementStart = i;
        for (; i <= s.length(); i++) {
            char c = i < s.length() ? s.charAt(i) : '.';
            if (c == '.') {
                if (i == elementStart) {
                    return false;
                }
                if (!unique && Character.isDigit(s.charAt(elementStart))) {
                    return false;
                }
                elements++;
                elementStart = i + 1;
            } else if (!(isAsciiAlnum(c) || c == '_' || c == '-')) {
                return false;
            }
        }
        return elements >= 2;
    }

    public static boolean isUniqueName(String s) {
        return s != null && !s.isEmpty() && s.charAt(0) == ':';
    }

    /** Interface names and error names share this syntax. */
    public static boolean isValidInterface(String s) {
        if (s == null || s.isEmpty() || s.length() > MAX_NAME_LENGTH) {
            return false;
        }
        int elements = 0;
        int elementStart = 0;
        for (int i = 0; i <= s.length(); i++) {
            char c = i < s.length() ? s.charAt(i) : '.';
            if (c == '.') {
                if (i == elementStart || Character.isDigit(s.charAt(elementStart))) {
                    return false;
                }
                elements++;
                elementStart = i + 1;
            } else if (!(isAsciiAlnum(c) || c == '_')) {
                return false;
            }
        }
        return elements >= 2;
    }

    public static boolean isValidErrorName(String s) {
        return isValidInterface(s);
    }

    public static boolean isValidMember(String s) {
        if (s == null || s.isEmpty() || s.length() > MAX_NAME_LENGTH || Character.isDigit(s.charAt(0))) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (!(isAsciiAlnum(c) || c == '_')) {
                return false;
            }
        }
        return true;
    }

    public static boolean isValidObjectPath(String s) {
        if (s == null || s.isEmpty() || s.charAt(0) != '/') {
            return false;
        }
        if (s.length() == 1) {
            return true;
        }
        if (s.charAt(s.length() - 1) == '/') {
            return false;
        }
        char prev = '/';
        for (int i = 1; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '/') {
                if (prev == '/') {
                    return false;
                }
            } else if (!(isAsciiAlnum(c) || c == '_')) {
                return false;
            }
            prev = c;
        }
        return true;
    }

    /** A namespace for arg0namespace: a well-known-name-like prefix (elements may be one). */
    public static boolean isValidNamespace(String s) {
        if (s == null || s.isEmpty() || s.length() > MAX_NAME_LENGTH) {
            return false;
        }
        // dbus-daemon accepts a bus name or a single element here.
        if (isValidBusName(s) && !isUniqueName(s)) {
            return true;
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (!(isAsciiAlnum(c) || c == '_' || c == '-')) {
                return false;
            }
        }
        return !Character.isDigit(s.charAt(0));
    }

    private static boolean isAsciiAlnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }
}
