package org.kdbusbridge.compat.harness;

/** Minimal D-Bus address parsing: only what the harness needs. */
public final class Addresses {
    private Addresses() {}

    /** Returns the {@code path=} value of a {@code unix:} address (first transport only). */
    public static String unixPath(String address) {
        String first = address.split(";", 2)[0].trim();
        if (!first.startsWith("unix:")) {
            throw new IllegalArgumentException("not a unix: address: " + address);
        }
        for (String kv : first.substring("unix:".length()).split(",")) {
            int eq = kv.indexOf('=');
            if (eq > 0 && kv.substring(0, eq).equals("path")) {
                return unescape(kv.substring(eq + 1));
            }
        }
        throw new IllegalArgumentException("no path= in address (abstract sockets are not supported here): " + address);
    }

    private static String unescape(String v) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            if (c == '%' && i + 2 < v.length()) {
                sb.append((char) Integer.parseInt(v.substring(i + 1, i + 3), 16));
                i += 2;
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }
}
