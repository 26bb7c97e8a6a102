// Invariants: parsing is all or nothing and libdbus's (1.14, checked with dbus-send --address=):
// the whole list is checked for syntax before any entry is tried, so a malformed entry anywhere
// refuses the list; what an entry MEANS (a transport we don't connect to, a listen-only key) is
// decided per entry and only makes that entry fail, so the next one is tried. Keys and the
// transport name are taken as written (libdbus does not unescape them); values are unescaped.
// A repeated key: the first one counts, as in libdbus.
package org.kdbusbridge.bridge.client;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.bridge.transport.UnixAddress.BadAddressException;

/**
 * A D-Bus address list as a client reads it ({@code a;b;c}, tried in order): each entry is a
 * {@code unix:path=} or {@code unix:abstract=} socket to connect to, or a refusal saying why
 * this client cannot use it ({@code tmpdir=}, {@code dir=}, {@code runtime=yes} are for
 * listening; other transports are not ours to connect to).
 */
public final class ClientAddress {

    /** What an entry is. */
    public enum Kind { PATH, ABSTRACT, REFUSED }

    /** One entry of the list, in the order it is tried. */
    public static final class Entry {
        private final String text;
        private final Kind kind;
        private final byte[] value;
        private final String guid;
        private final String refusal;

        private Entry(String text, Kind kind, byte[] value, String guid, String refusal) {
            this.text = text;
            this.kind = kind;
            this.value = value;
            this.guid = guid;
            this.refusal = refusal;
        }

        /** The entry as written in the list. */
        public String text() {
            return text;
        }

        public Kind kind() {
            return kind;
        }

        /** The unescaped path or abstract name (UTF-8); null for a refused entry. */
        public String value() {
            return value == null ? null : new String(value, StandardCharsets.UTF_8);
        }

        /** The unescaped bytes of the path or abstract name; null for a refused entry. */
        public byte[] valueBytes() {
            return value == null ? null : value.clone();
        }

        /** The {@code guid=} value, unescaped and unchecked (libdbus compares it as a string), or null. */
        public String guid() {
            return guid;
        }

        /** Why this client cannot use the entry, or null. */
        public String refusal() {
            return refusal;
        }

        @Override
        public String toString() {
            return text;
        }
    }

    private ClientAddress() {
    }

    /**
     * Parses a client address list. Throws {@link BadAddressException} with libdbus's text when
     * the list is malformed (no colon, a pair without a value, a bad or missing %-escape).
     */
    public static List<Entry> parseList(String addresses) {
        Objects.requireNonNull(addresses, "addresses");
        if (addresses.isEmpty()) {
            throw new BadAddressException("Empty address ''");
        }
        String[] parts = addresses.split(";", -1);
        int n = parts.length;
        if (n > 1 && parts[n - 1].isEmpty()) {
            n--; // one trailing ';' is tolerated, as in libdbus
        }
        List<Entry> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(parseEntry(parts[i]));
        }
        return Collections.unmodifiableList(out);
    }

    private static Entry parseEntry(String text) {
        int colon = text.indexOf(':');
        if (colon < 0) {
            throw new BadAddressException("Address does not contain a colon");
        }
        String transport = text.substring(0, colon);
        Map<String, byte[]> kv = pairs(text.substring(colon + 1));
        return switch (transport) {
            case "unix" -> unixEntry(text, kv);
            case "tcp", "nonce-tcp", "unixexec", "autolaunch", "launchd", "systemd" -> refused(text, kv,
                    "kdbus-bridge's client does not connect to \"" + transport
                            + ":\" addresses, only to unix:path= and unix:abstract=");
            default -> refused(text, kv, "Unknown address type \"" + transport
                    + "\" (kdbus-bridge's client connects to unix:path= and unix:abstract=)");
        };
    }

    private static Map<String, byte[]> pairs(String rest) {
        Map<String, byte[]> kv = new LinkedHashMap<>();
        if (rest.isEmpty()) {
            return kv;
        }
        String[] pairs = rest.split(",", -1);
        int n = pairs.length;
        if (n > 1 && pairs[n - 1].isEmpty()) {
            n--; // "path=/x," is accepted by libdbus; an empty pair elsewhere is not
        }
        for (int i = 0; i < n; i++) {
            String pair = pairs[i];
            int eq = pair.indexOf('=');
            if (eq <= 0 || eq == pair.length() - 1) {
                throw new BadAddressException("'=' character not found or has no value following it");
            }
            byte[] value = UnixAddress.unescapeBytes(pair.substring(eq + 1));
            kv.putIfAbsent(pair.substring(0, eq), value);
        }
        return kv;
    }

    private static Entry unixEntry(String text, Map<String, byte[]> kv) {
        byte[] path = kv.get("path");
        byte[] abstractName = kv.get("abstract");
        // libdbus refuses tmpdir= in a client address even beside path=; dir= and runtime= only
        // without path= or abstract= (then it says "missing argument path or abstract": our text is
        // the tmpdir one for all three, which says what is wrong).
        for (String key : List.of("tmpdir", "dir", "runtime")) {
            if (kv.containsKey(key) && (key.equals("tmpdir") || (path == null && abstractName == null))) {
                return refused(text, kv, "Could not parse server address: cannot use the \"" + key
                        + "\" option for an address to connect to, only in an address to listen on");
            }
        }
        if (path != null && abstractName != null) {
            return refused(text, kv,
                    "Could not parse server address: can't specify both \"path\" and \"abstract\" options in an address");
        }
        byte[] value = path != null ? path : abstractName;
        if (value == null) {
            return refused(text, kv, "Server address of type unix was missing argument path or abstract");
        }
        for (byte b : value) {
            if (b == 0) { // libdbus would cut the name there; a NUL is never what was meant
                return refused(text, kv, "A NUL byte (%00) in the " + (path != null ? "path" : "abstract name")
                        + " of '" + text + "'");
            }
        }
        return new Entry(text, path != null ? Kind.PATH : Kind.ABSTRACT, value, guid(kv), null);
    }

    private static Entry refused(String text, Map<String, byte[]> kv, String why) {
        return new Entry(text, Kind.REFUSED, null, guid(kv), why);
    }

    private static String guid(Map<String, byte[]> kv) {
        byte[] g = kv.get("guid");
        return g == null ? null : new String(g, StandardCharsets.UTF_8);
    }
}
