// Invariants: immutable; every accessor answers exactly what the message's field 107 held under
// that key (empty when the key was absent or had another type than documented); arrays are
// copied in and out. parse() never changes the buffer it reads (nor its position or limit).
package org.kdbusbridge.bridge.metadata;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;

import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.protocol.WireFormat;

/**
 * Client side of AttachMetadata (docs/extensions.md, "Per-message metadata"): the facts the bus
 * attached to one received message, read from its header field {@link #FIELD_CODE} (value
 * {@code a{sv}}). A client that called {@code org.kdbusbridge.Extensions1.AttachMetadata} gets
 * the field on every message delivered to it; parse each received message's raw bytes with
 * {@link #parse(byte[])}; the text form ({@code format=text}: one string) is read into the same
 * values. dbus-java on its own cannot receive such messages in either form: in Java read them
 * with a client that keeps the raw bytes ({@code bridge.client.BusConnection}:
 * {@code BusMessage.metadata()}) or, with dbus-java, through
 * {@code bridge.client.dbusjava.DbusJavaMetadata}.
 */
public final class MessageMetadata {
    /** The header field code the bus uses ('k'). */
    public static final int FIELD_CODE = 107;

    private final Map<String, Object> items;

    private MessageMetadata(Map<String, Object> items) {
        this.items = items;
    }

    /**
     * The metadata of the message in {@code message} (it starts at index 0; the header must be
     * complete, the body may be cut off); empty when the message carries no field 107.
     *
     * @throws IllegalArgumentException if the header is malformed or field 107 is not {@code a{sv}}
     */
    public static Optional<MessageMetadata> parse(byte[] message) {
        return parse(ByteBuffer.wrap(message));
    }

    /** As {@link #parse(byte[])}, for the message starting at {@code message}'s position. */
    public static Optional<MessageMetadata> parse(ByteBuffer message) {
        ByteBuffer b = message.duplicate();
        int start = b.position();
        if (b.remaining() < WireFormat.FIXED_HEADER_SIZE) {
            throw new IllegalArgumentException("shorter than the 16-byte fixed header");
        }
        byte endian = b.get(start);
        ByteOrder order;
        if (endian == WireFormat.LITTLE_ENDIAN) {
            order = ByteOrder.LITTLE_ENDIAN;
        } else if (endian == WireFormat.BIG_ENDIAN) {
            order = ByteOrder.BIG_ENDIAN;
        } else {
            throw new IllegalArgumentException("not a D-Bus message (endianness byte " + (endian & 0xff) + ")");
        }
        long fieldsLength = b.duplicate().order(order).getInt(start + 12) & 0xffffffffL;
        long headerLength = WireFormat.FIXED_HEADER_SIZE + fieldsLength;
        if (headerLength > b.remaining()) {
            throw new IllegalArgumentException("header fields (" + fieldsLength + " bytes) pass the buffer's end");
        }
        int fieldsEnd = start + (int) headerLength;
        try {
            // Each field is a (yv) struct starting 8-aligned from the message start; a reader
            // based there aligns exactly as the message does.
            int p = start + WireFormat.FIXED_HEADER_SIZE;
            while (p < fieldsEnd) {
                p = start + ((p - start + 7) & ~7);
                BodyReader r = new BodyReader(b, p, fieldsEnd - p, order, "yv");
                int code = r.readByte() & 0xff;
                if (code != FIELD_CODE) {
                    r.skip();
                    p = r.position();
                    continue;
                }
                // The bus writes one such field (it drops any a client sends), so the first is it.
                if (isSignature(b, p + 1, fieldsEnd, "s")) {
                    return Optional.of(parseText((String) r.readValue())); // format=text
                }
                if (!isSignature(b, p + 1, fieldsEnd, "a{sv}")) {
                    throw new IllegalArgumentException("header field " + FIELD_CODE + " is neither a{sv} nor s");
                }
                return Optional.of(new MessageMetadata(copyOf((Map<?, ?>) r.readValue())));
            }
            return Optional.empty();
        } catch (ProtocolException e) {
            throw new IllegalArgumentException("malformed header: " + e.getMessage(), e);
        }
    }

    /**
     * The field's text form ({@code AttachMetadata(["format=text", ...])}, docs/extensions.md):
     * {@code KEY=VALUE} entries separated by single spaces; read into the same values the
     * dictionary form gives, so every accessor answers alike.
     *
     * @throws IllegalArgumentException if an entry has no {@code =} or a value does not parse
     */
    public static MessageMetadata parseText(String text) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (!text.isEmpty()) {
            for (String entry : text.split(" ", -1)) {
                int eq = entry.indexOf('=');
                if (eq <= 0) {
                    throw new IllegalArgumentException("text metadata entry without KEY=: '" + entry + "'");
                }
                String key = entry.substring(0, eq);
                out.put(key, textValue(key, entry.substring(eq + 1)));
            }
        }
        return new MessageMetadata(Collections.unmodifiableMap(out));
    }

    private static Object textValue(String key, String v) {
        try {
            switch (key) {
                case "pid": case "uid": case "gid": case "seq":
                    return Long.parseUnsignedLong(digits(v));
                case "pidfd":
                    return Integer.parseInt(digits(v));
                case "creds-at-send": case "names-truncated":
                    if (!v.equals("true") && !v.equals("false")) {
                        throw new IllegalArgumentException("not a boolean: " + key + "=" + v);
                    }
                    return v.equals("true");
                case "groups": {
                    List<Object> l = new ArrayList<>();
                    for (String g : list(v)) {
                        l.add(Long.parseUnsignedLong(digits(g)));
                    }
                    return List.copyOf(l);
                }
                case "names": {
                    List<Object> l = new ArrayList<>();
                    for (String n : list(v)) {
                        l.add(new String(unescape(n), StandardCharsets.UTF_8));
                    }
                    return List.copyOf(l);
                }
                case "timestamp": {
                    String[] two = v.split(",", -1);
                    if (two.length != 2) {
                        throw new IllegalArgumentException("timestamp is not MONO,REAL: " + v);
                    }
                    return new Object[] {Long.parseUnsignedLong(digits(two[0])), Long.parseUnsignedLong(digits(two[1]))};
                }
                case "cmdline": case "seclabel":
                    return unescape(v);
                default: {
                    // comm, exe, cgroup and keys of later versions: text when it is UTF-8, else its bytes.
                    byte[] b = unescape(v);
                    java.nio.charset.CharsetDecoder d = StandardCharsets.UTF_8.newDecoder();
                    try {
                        String str = d.decode(ByteBuffer.wrap(b)).toString();
                        return str.indexOf('\0') < 0 ? str : b;
                    } catch (java.nio.charset.CharacterCodingException e) {
                        return b;
                    }
                }
            }
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("text metadata " + key + "=" + v + ": " + e.getMessage(), e);
        }
    }

    private static String[] list(String v) {
        return v.isEmpty() ? new String[0] : v.split(",", -1);
    }

    /**
     * {@code v} if it is decimal digits only (the text form writes numbers so): Java's parsers
     * would also take a sign ("+5", and "-1" for {@code pidfd}), which the bus never writes.
     */
    private static String digits(String v) {
        if (v.isEmpty()) {
            throw new NumberFormatException("empty number");
        }
        for (int i = 0; i < v.length(); i++) {
            if (v.charAt(i) < '0' || v.charAt(i) > '9') {
                throw new NumberFormatException("not decimal digits: '" + v + "'");
            }
        }
        return v;
    }

    /**
     * %XX escapes back to bytes (XX two hex digits, as the bus writes them upper-case; lower-case
     * is taken too, a sign never: Integer.parseInt would read "%+F" or "%-1"); every other
     * character is one ASCII byte.
     */
    private static byte[] unescape(String v) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(v.length());
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            if (c == '%') {
                if (i + 3 > v.length()) {
                    throw new IllegalArgumentException("cut %XX escape in '" + v + "'");
                }
                int hi = Character.digit(v.charAt(i + 1), 16);
                int lo = Character.digit(v.charAt(i + 2), 16);
                if (hi < 0 || lo < 0 || v.charAt(i + 1) > 0x7f || v.charAt(i + 2) > 0x7f) {
                    throw new IllegalArgumentException("not a %XX escape (two hex digits) in '" + v + "'");
                }
                out.write(hi << 4 | lo);
                i += 2;
            } else {
                out.write(c);
            }
        }
        return out.toByteArray();
    }

    /** The variant signature at {@code at} (length byte, then the type codes) is exactly {@code sig}. */
    private static boolean isSignature(ByteBuffer b, int at, int end, String sig) {
        byte[] want = sig.getBytes(StandardCharsets.US_ASCII);
        if (at + 1 + want.length > end || b.get(at) != want.length) {
            return false;
        }
        for (int i = 0; i < want.length; i++) {
            if (b.get(at + 1 + i) != want[i]) {
                return false;
            }
        }
        return true;
    }

    private static Map<String, Object> copyOf(Map<?, ?> m) {
        Map<String, Object> out = new LinkedHashMap<>();
        m.forEach((k, v) -> out.put((String) k, v));
        return Collections.unmodifiableMap(out);
    }

    /** The keys the field held, in wire order (see docs/extensions.md for each). */
    public Set<String> keys() {
        return items.keySet();
    }

    /** The sending process's pid when it wrote the message ({@code creds}). */
    public OptionalLong pid() {
        return uint("pid");
    }

    public OptionalLong uid() {
        return uint("uid");
    }

    public OptionalLong gid() {
        return uint("gid");
    }

    /**
     * True: pid/uid/gid are what the kernel stamped on the write ({@code SCM_CREDENTIALS});
     * false: the bus had none for these bytes and the connect-time ids stood in.
     */
    public Optional<Boolean> credsAtSend() {
        return items.get("creds-at-send") instanceof Boolean v ? Optional.of(v) : Optional.empty();
    }

    /**
     * The index, among the message's unix fds, of a pidfd of the sending process ({@code pidfd});
     * the fd itself is the receiver's (close it when done).
     */
    public OptionalInt pidfd() {
        return items.get("pidfd") instanceof Integer v ? OptionalInt.of(v) : OptionalInt.empty();
    }

    /** Supplementary gids ({@code groups}). */
    public Optional<long[]> groups() {
        if (!(items.get("groups") instanceof List<?> l)) {
            return Optional.empty();
        }
        long[] out = new long[l.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(l.get(i) instanceof Long v)) {
                return Optional.empty();
            }
            out[i] = v;
        }
        return Optional.of(out);
    }

    /** {@code /proc/PID/comm}; bytes that were not UTF-8 are decoded with replacement characters. */
    public Optional<String> comm() {
        return text("comm");
    }

    public Optional<String> exe() {
        return text("exe");
    }

    public Optional<String> cgroup() {
        return text("cgroup");
    }

    /** The exact bytes of a text item ({@code comm}, {@code exe}, {@code cgroup}), whichever way it came. */
    public Optional<byte[]> textBytes(String key) {
        Object v = items.get(key);
        if (v instanceof String s) {
            return Optional.of(s.getBytes(StandardCharsets.UTF_8));
        }
        return v instanceof byte[] b ? Optional.of(b.clone()) : Optional.empty();
    }

    /** {@code /proc/PID/cmdline} as is: the arguments, each NUL-terminated. */
    public Optional<byte[]> cmdline() {
        return bytes("cmdline");
    }

    /** {@link #cmdline()} split into its arguments (UTF-8, with replacement). */
    public Optional<List<String>> cmdlineArgs() {
        return cmdline().map(b -> {
            List<String> args = new ArrayList<>();
            int from = 0;
            for (int i = 0; i < b.length; i++) {
                if (b[i] == 0) {
                    args.add(new String(b, from, i - from, StandardCharsets.UTF_8));
                    from = i + 1;
                }
            }
            if (from < b.length) {
                args.add(new String(b, from, b.length - from, StandardCharsets.UTF_8));
            }
            return List.copyOf(args);
        });
    }

    /** The connection's LSM label ({@code SO_PEERSEC}). */
    public Optional<byte[]> seclabel() {
        return bytes("seclabel");
    }

    /** The well-known names the sender was primary owner of when the bus admitted the message. */
    public Optional<List<String>> names() {
        if (!(items.get("names") instanceof List<?> l) || !l.stream().allMatch(x -> x instanceof String)) {
            return Optional.empty();
        }
        List<String> out = new ArrayList<>();
        l.forEach(x -> out.add((String) x));
        return Optional.of(List.copyOf(out));
    }

    /** The bus's global sequence number (admission order over every message of the bus). */
    public OptionalLong seq() {
        return items.get("seq") instanceof Long v ? OptionalLong.of(v) : OptionalLong.empty();
    }

    /** CLOCK_MONOTONIC and CLOCK_REALTIME at admission. */
    public Optional<Timestamp> timestamp() {
        if (items.get("timestamp") instanceof Object[] t && t.length == 2
                && t[0] instanceof Long mono && t[1] instanceof Long real) {
            return Optional.of(new Timestamp(mono, real));
        }
        return Optional.empty();
    }

    /** Admission time, in nanoseconds of both clocks. */
    public record Timestamp(long monotonicNs, long realtimeNs) { }

    private OptionalLong uint(String key) {
        return items.get(key) instanceof Long v ? OptionalLong.of(v) : OptionalLong.empty();
    }

    private Optional<String> text(String key) {
        Object v = items.get(key);
        if (v instanceof String s) {
            return Optional.of(s);
        }
        return v instanceof byte[] b ? Optional.of(new String(b, StandardCharsets.UTF_8)) : Optional.empty();
    }

    private Optional<byte[]> bytes(String key) {
        return items.get(key) instanceof byte[] b ? Optional.of(b.clone()) : Optional.empty();
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("MessageMetadata{");
        boolean first = true;
        for (Map.Entry<String, Object> e : items.entrySet()) {
            if (!first) {
                sb.append(", ");
            }
            first = false;
            sb.append(e.getKey()).append('=');
            Object v = e.getValue();
            if (v instanceof byte[] b) {
                sb.append(b.length).append(" bytes");
            } else if (v instanceof Object[] a) {
                sb.append(java.util.Arrays.toString(a));
            } else {
                sb.append(v);
            }
        }
        return sb.append('}').toString();
    }
}
