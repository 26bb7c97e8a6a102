// Invariants: the text is never longer than the limit given (plus a closing note); a body that
// does not decode gives the values read so far and the reason, never an exception.
package org.kdbusbridge.bridge.draw;

import java.util.List;
import java.util.Map;

import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.ProtocolException;

/** A message body as readable text: strings quoted, arrays [..], dicts {k: v}, structs (..). */
final class BodyText {
    private BodyText() { }

    static String of(MessageHeader h, int limit) {
        if (h.bodyLength() == 0) return "";
        StringBuilder sb = new StringBuilder();
        BodyReader r = BodyReader.of(h);
        try {
            boolean first = true;
            while (r.hasNext() && sb.length() <= limit) {
                if (!first) sb.append(", ");
                first = false;
                append(sb, r.readValue(), limit);
            }
        } catch (ProtocolException | RuntimeException e) {
            sb.append(" (body not decodable: ").append(e.getMessage()).append(')');
        }
        if (sb.length() > limit) {
            sb.setLength(limit);
            sb.append(" ... (cut at ").append(limit).append(" characters)");
        }
        return sb.toString();
    }

    private static void append(StringBuilder sb, Object v, int limit) {
        if (sb.length() > limit) return;
        if (v instanceof String s) {
            sb.append('\'');
            for (int i = 0; i < s.length() && sb.length() <= limit; i++) {
                char c = s.charAt(i);
                if (c == '\'' || c == '\\') sb.append('\\').append(c);
                else if (c < 0x20) sb.append(String.format("\\x%02x", (int) c));
                else sb.append(c);
            }
            sb.append('\'');
        } else if (v instanceof byte[] a) {
            sb.append("bytes ").append(a.length).append(" [");
            for (int i = 0; i < a.length && sb.length() <= limit; i++) {
                if (i > 0) sb.append(' ');
                sb.append(String.format("%02x", a[i] & 0xff));
            }
            sb.append(']');
        } else if (v instanceof Map<?, ?> m) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (sb.length() > limit) break;
                if (!first) sb.append(", ");
                first = false;
                append(sb, e.getKey(), limit);
                sb.append(": ");
                append(sb, e.getValue(), limit);
            }
            sb.append('}');
        } else if (v instanceof List<?> l) {
            sb.append('[');
            for (int i = 0; i < l.size() && sb.length() <= limit; i++) {
                if (i > 0) sb.append(", ");
                append(sb, l.get(i), limit);
            }
            sb.append(']');
        } else if (v instanceof Object[] s) {
            sb.append('(');
            for (int i = 0; i < s.length && sb.length() <= limit; i++) {
                if (i > 0) sb.append(", ");
                append(sb, s[i], limit);
            }
            sb.append(')');
        } else {
            sb.append(v);
        }
    }
}
