// Invariants: an immutable, validated unix: server address entry. Exactly one of the location
// keys (path, dir, tmpdir, abstract, runtime=yes) is present; values are stored UNESCAPED (raw
// text); guid, if present, is 32 hex digits (stored lower-case). Parsing follows the D-Bus spec
// escaping rules strictly, like libdbus: a byte outside the optionally-escaped set
// [-0-9A-Za-z_/.\*] must be written as %XX, and a malformed %-escape is an error.
//
// Decision on tmpdir=: the spec lets a server treat tmpdir like dir; dbus-daemon on Linux binds an
// ABSTRACT socket for tmpdir. We treat tmpdir exactly like dir (a path socket named
// dbus-XXXXXXXXXX in that directory), which works across network namespaces and is visible in
// the file system; clients only ever see the resolved unix:path= address, so this is compatible.
//
// The one non-unix transport accepted is systemd: (kind SYSTEMD, value ""), dbus-daemon's "use the
// listening sockets systemd passed us" (LISTEN_FDS/LISTEN_PID). It takes no keys except the guid
// that libdbus accepts on every server address; it is never bound, only expanded into adopted
// listeners (UnixListener.adopt) and never has a connect address of its own.
package org.kdbusbridge.bridge.transport;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/** One parsed {@code unix:} D-Bus server address. */
public final class UnixAddress {

    /** Which location key the address uses. */
    public enum Kind {
        PATH("path"), DIR("dir"), TMPDIR("tmpdir"), ABSTRACT("abstract"), RUNTIME("runtime"),
        /** {@code systemd:}: the sockets passed by systemd socket activation. */
        SYSTEMD("systemd");

        private final String key;

        Kind(String key) {
            this.key = key;
        }

        /** The address key, e.g. "path" (for SYSTEMD, the transport name). */
        public String key() {
            return key;
        }
    }

    /** Thrown for a malformed or unsupported address; message is suitable for the user. */
    public static final class BadAddressException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        public BadAddressException(String message) {
            super(message);
        }
    }

    private final Kind kind;
    private final String value; // path / dir / abstract name; "yes" for RUNTIME
    private final String guid;  // null if absent

    private UnixAddress(Kind kind, String value, String guid) {
        this.kind = kind;
        this.value = value;
        this.guid = guid;
    }

    // ------------------------------------------------------------ factories

    /** A resolved path socket address. */
    public static UnixAddress path(String path, String guid) {
        return new UnixAddress(Kind.PATH, requireNonEmpty(path, "path"), checkGuid(guid));
    }

    /** An abstract socket address (name without the leading NUL). */
    public static UnixAddress abstractName(String name, String guid) {
        return new UnixAddress(Kind.ABSTRACT, requireNonEmpty(name, "abstract"), checkGuid(guid));
    }

    /** The {@code systemd:} address (guid may be null). */
    public static UnixAddress systemd(String guid) {
        return new UnixAddress(Kind.SYSTEMD, "", checkGuid(guid));
    }

    /**
     * Parses a {@code ;}-separated list of server addresses. Every entry must be a valid unix:
     * address (dbus-daemon would try them in order and listen on the first that works).
     */
    public static List<UnixAddress> parseList(String addresses) {
        Objects.requireNonNull(addresses, "addresses");
        List<UnixAddress> out = new ArrayList<>();
        int pos = 0;
        int len = addresses.length();
        while (pos < len) { // a trailing ';' is tolerated, as in libdbus
            int end = addresses.indexOf(';', pos);
            if (end < 0) {
                end = len;
            }
            out.add(parse(addresses.substring(pos, end)));
            pos = end + 1;
        }
        if (out.isEmpty()) {
            throw new BadAddressException("Empty address '" + addresses + "'");
        }
        return Collections.unmodifiableList(out);
    }

    /** Parses exactly one address entry (no {@code ;}). */
    public static UnixAddress parse(String entry) {
        Objects.requireNonNull(entry, "entry");
        if (entry.indexOf(';') >= 0) {
            throw new BadAddressException("Expected a single address, got a list: '" + entry + "'");
        }
        int colon = entry.indexOf(':');
        if (colon < 0) {
            throw new BadAddressException("Address does not contain a colon: '" + entry + "'");
        }
        String transport = entry.substring(0, colon);
        if (transport.isEmpty()) {
            throw new BadAddressException("Transport in address is empty: '" + entry + "'");
        }
        Map<String, String> kv = parseKeyValues(entry, entry.substring(colon + 1));
        if (transport.equals("systemd")) {
            for (String k : kv.keySet()) {
                if (!k.equals("guid")) {
                    throw new BadAddressException("Unknown key '" + k + "' in systemd address '" + entry
                            + "' (systemd: takes no keys)");
                }
            }
            return systemd(kv.get("guid"));
        }
        if (!transport.equals("unix")) {
            throw new BadAddressException("Unknown address type '" + transport
                    + "' (kdbus-bridge only listens on \"unix\" and \"systemd\" addresses)");
        }
        Kind kind = null;
        String value = null;
        String guid = null;
        for (Map.Entry<String, String> e : kv.entrySet()) {
            String k = e.getKey();
            String v = e.getValue();
            Kind found = null;
            switch (k) {
                case "path":
                    found = Kind.PATH;
                    break;
                case "dir":
                    found = Kind.DIR;
                    break;
                case "tmpdir":
                    found = Kind.TMPDIR;
                    break;
                case "abstract":
                    found = Kind.ABSTRACT;
                    break;
                case "runtime":
                    if (!v.equals("yes")) {
                        throw new BadAddressException("if given, runtime must be \"yes\", not '" + v + "'");
                    }
                    found = Kind.RUNTIME;
                    break;
                case "guid":
                    guid = checkGuid(v);
                    break;
                default:
                    throw new BadAddressException("Unknown key '" + k + "' in unix address '" + entry + "'");
            }
            if (found != null) {
                if (kind != null) {
                    throw new BadAddressException("Only one of \"path\", \"dir\", \"tmpdir\", \"abstract\" "
                            + "or \"runtime\" may be given in '" + entry + "'");
                }
                if (v.isEmpty()) {
                    throw new BadAddressException("Empty value for '" + k + "' in '" + entry + "'");
                }
                kind = found;
                value = v;
            }
        }
        if (kind == null) {
            throw new BadAddressException("unix address must specify \"path\", \"dir\", \"tmpdir\", "
                    + "\"abstract\" or \"runtime=yes\": '" + entry + "'");
        }
        return new UnixAddress(kind, value, guid);
    }

    private static Map<String, String> parseKeyValues(String entry, String rest) {
        Map<String, String> kv = new LinkedHashMap<>();
        if (rest.isEmpty()) {
            return kv;
        }
        for (String pair : rest.split(",", -1)) {
            int eq = pair.indexOf('=');
            if (eq < 0) {
                throw new BadAddressException("Key/value pair '" + pair + "' has no '=' in '" + entry + "'");
            }
            String key = unescape(pair.substring(0, eq));
            String val = unescape(pair.substring(eq + 1));
            if (key.isEmpty()) {
                throw new BadAddressException("Empty key in '" + entry + "'");
            }
            if (kv.put(key, val) != null) {
                throw new BadAddressException("Duplicate key '" + key + "' in '" + entry + "'");
            }
        }
        return kv;
    }

    // ------------------------------------------------------------ escaping

    /** True for the bytes the spec allows unescaped. */
    static boolean isOptionallyEscaped(int b) {
        return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
                || b == '-' || b == '_' || b == '/' || b == '\\' || b == '*' || b == '.';
    }

    /** Decodes %XX escapes (UTF-8 bytes); rejects unescaped bytes outside the optional set. */
    public static String unescape(String s) {
        return new String(unescapeBytes(s), StandardCharsets.UTF_8);
    }

    /** As {@link #unescape}, the bytes themselves (an abstract name need not be UTF-8). */
    public static byte[] unescapeBytes(String s) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '%') {
                if (i + 2 >= s.length()) {
                    throw new BadAddressException("In D-Bus address, percent character was not followed by two hex digits: '" + s + "'");
                }
                int hi = Character.digit(s.charAt(i + 1), 16);
                int lo = Character.digit(s.charAt(i + 2), 16);
                if (hi < 0 || lo < 0 || s.charAt(i + 1) > 0x7f || s.charAt(i + 2) > 0x7f) {
                    throw new BadAddressException("In D-Bus address, percent character was followed by characters other than hex digits: '" + s + "'");
                }
                out.write(hi * 16 + lo);
                i += 2;
            } else if (c < 0x80 && isOptionallyEscaped(c)) {
                out.write(c);
            } else {
                throw new BadAddressException("In D-Bus address, character '" + c + "' should have been escaped: '" + s + "'");
            }
        }
        return out.toByteArray();
    }

    /** Escapes a value per the spec: every UTF-8 byte outside the optional set becomes %xx. */
    public static String escape(String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        StringBuilder sb = new StringBuilder(bytes.length + 8);
        for (byte b : bytes) {
            int v = b & 0xff;
            if (isOptionallyEscaped(v)) {
                sb.append((char) v);
            } else {
                sb.append('%').append(Character.forDigit(v >> 4, 16)).append(Character.forDigit(v & 15, 16));
            }
        }
        return sb.toString();
    }

    private static String checkGuid(String guid) {
        if (guid == null) {
            return null;
        }
        if (guid.length() != 32) {
            throw new BadAddressException("guid must be 32 hex digits, got '" + guid + "'");
        }
        for (int i = 0; i < 32; i++) {
            if (Character.digit(guid.charAt(i), 16) < 0 || guid.charAt(i) > 0x7f) {
                throw new BadAddressException("guid must be 32 hex digits, got '" + guid + "'");
            }
        }
        return guid.toLowerCase(Locale.ROOT);
    }

    private static String requireNonEmpty(String v, String what) {
        if (v == null || v.isEmpty()) {
            throw new BadAddressException("Empty " + what);
        }
        return v;
    }

    // ------------------------------------------------------------ accessors

    public Kind kind() {
        return kind;
    }

    /** Unescaped value: the path, directory or abstract name; "yes" for RUNTIME; "" for SYSTEMD. */
    public String value() {
        return value;
    }

    /** The guid= key (lower-case hex), or null. */
    public String guid() {
        return guid;
    }

    /** Same address with a different guid (null removes it). */
    public UnixAddress withGuid(String newGuid) {
        return new UnixAddress(kind, value, checkGuid(newGuid));
    }

    /** True for PATH and ABSTRACT: a concrete socket a client can connect to. */
    public boolean isResolved() {
        return kind == Kind.PATH || kind == Kind.ABSTRACT;
    }

    /**
     * For RUNTIME, the PATH address {@code $XDG_RUNTIME_DIR/bus}; any other kind is returned as is.
     *
     * @param getenv environment lookup, normally {@code System::getenv}
     */
    public UnixAddress resolveRuntime(Function<String, String> getenv) {
        if (kind != Kind.RUNTIME) {
            return this;
        }
        String dir = getenv.apply("XDG_RUNTIME_DIR");
        if (dir == null || dir.isEmpty()) {
            throw new BadAddressException("unix:runtime=yes requires XDG_RUNTIME_DIR to be set");
        }
        String p = dir.endsWith("/") ? dir + "bus" : dir + "/bus";
        return new UnixAddress(Kind.PATH, p, guid);
    }

    /**
     * The escaped address string with guid: {@code unix:path=...,guid=...} (guid only if known).
     * Only for resolved (PATH/ABSTRACT) addresses.
     */
    public String toConnectString() {
        if (!isResolved()) {
            throw new IllegalStateException("address " + this + " must be bound before it has a connect address");
        }
        String s = "unix:" + kind.key() + "=" + escape(value);
        return guid == null ? s : s + ",guid=" + guid;
    }

    /** {@link #toConnectString()} with the given guid (overrides a guid= key). */
    public String toConnectString(String guid) {
        return withGuid(guid).toConnectString();
    }

    /**
     * The escaped address in listen form, e.g. {@code unix:dir=/tmp}, {@code unix:runtime=yes} or
     * {@code systemd:}.
     */
    @Override
    public String toString() {
        if (kind == Kind.SYSTEMD) {
            return guid == null ? "systemd:" : "systemd:guid=" + guid;
        }
        String s = "unix:" + kind.key() + "=" + escape(value);
        return guid == null ? s : s + ",guid=" + guid;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof UnixAddress)) {
            return false;
        }
        UnixAddress a = (UnixAddress) o;
        return kind == a.kind && value.equals(a.value) && Objects.equals(guid, a.guid);
    }

    @Override
    public int hashCode() {
        return Objects.hash(kind, value, guid);
    }
}
