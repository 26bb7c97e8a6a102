package org.kdbusbridge.bridge.driver;

import java.util.List;
import java.util.Map;

import org.kdbusbridge.bridge.protocol.BodyWriter;

/**
 * Writes back an a{sv} that BodyReader decoded (Containers1's stored metadata). The decoded
 * values no longer carry their D-Bus types, so each is written with the type its Java value
 * stands for: Byte y, Boolean b, Short n, Integer i, Long x, Double d, String s, byte[] ay,
 * List a + the common element type (av if mixed, as if empty), Map a{Kv}, Object[] a struct.
 * Strings, booleans, bytes, doubles, byte and string arrays and nested a{sv} come back exactly;
 * q and h come back as i, u and t as x, o and g as s (docs/extensions.md says so).
 */
final class VariantDicts {
    private VariantDicts() { }

    /** Writes {@code dict} as an a{sv}. */
    static void write(BodyWriter w, Map<String, Object> dict) {
        w.beginArray('{');
        for (Map.Entry<String, Object> e : dict.entrySet()) {
            w.beginDictEntry();
            w.writeString(e.getKey());
            writeVariant(w, e.getValue());
            w.endDictEntry();
        }
        w.endArray();
    }

    private static void writeVariant(BodyWriter w, Object v) {
        String sig = signature(v);
        w.writeVariant(sig);
        write(w, v, sig, 0);
    }

    /** The D-Bus type {@code v}'s Java type stands for. */
    static String signature(Object v) {
        if (v instanceof Byte) return "y";
        if (v instanceof Boolean) return "b";
        if (v instanceof Short) return "n";
        if (v instanceof Integer) return "i";
        if (v instanceof Long) return "x";
        if (v instanceof Double) return "d";
        if (v instanceof String) return "s";
        if (v instanceof byte[]) return "ay";
        if (v instanceof Map<?, ?> m) {
            String key = m.isEmpty() ? "s" : signature(m.keySet().iterator().next());
            return "a{" + key + "v}";
        }
        if (v instanceof List<?> l) {
            if (l.isEmpty()) return "as";
            String first = signature(l.get(0));
            for (Object o : l) {
                if (!first.equals(signature(o))) return "av";
            }
            return "a" + first;
        }
        if (v instanceof Object[] fields && fields.length > 0) {
            StringBuilder b = new StringBuilder("(");
            for (Object f : fields) {
                b.append(signature(f));
            }
            return b.append(')').toString();
        }
        throw new IllegalArgumentException("no D-Bus type for " + v);
    }

    /** Writes the value of type sig[i..] (a complete type); returns the index after it. */
    private static int write(BodyWriter w, Object v, String sig, int i) {
        char c = sig.charAt(i);
        switch (c) {
            case 'y' -> w.writeByte((Byte) v);
            case 'b' -> w.writeBoolean((Boolean) v);
            case 'n' -> w.writeInt16((Short) v);
            case 'i' -> w.writeInt32((Integer) v);
            case 'x' -> w.writeInt64((Long) v);
            case 'd' -> w.writeDouble((Double) v);
            case 's' -> w.writeString((String) v);
            case 'v' -> writeVariant(w, v);
            case '(' -> {
                w.beginStruct();
                int j = i + 1;
                for (Object f : (Object[]) v) {
                    j = write(w, f, sig, j);
                }
                w.endStruct();
                return j + 1;
            }
            case 'a' -> {
                char e = sig.charAt(i + 1);
                if (e == 'y') {
                    w.writeByteArray((byte[]) v);
                    return i + 2;
                }
                int end = -1;
                w.beginArray(e);
                if (e == '{') {
                    for (Map.Entry<?, ?> entry : ((Map<?, ?>) v).entrySet()) {
                        w.beginDictEntry();
                        int j = write(w, entry.getKey(), sig, i + 2);
                        end = write(w, entry.getValue(), sig, j) + 1;
                        w.endDictEntry();
                    }
                } else {
                    for (Object o : (List<?>) v) {
                        end = write(w, o, sig, i + 1);
                    }
                }
                w.endArray();
                return end >= 0 ? end : skip(sig, i);
            }
            default -> throw new IllegalArgumentException("type " + c);
        }
        return i + 1;
    }

    /** The index after the complete type at sig[i..]. */
    private static int skip(String sig, int i) {
        char c = sig.charAt(i);
        if (c == 'a') {
            return skip(sig, i + 1);
        }
        if (c == '(' || c == '{') {
            int depth = 0;
            for (int j = i; j < sig.length(); j++) {
                char d = sig.charAt(j);
                if (d == '(' || d == '{') depth++;
                if (d == ')' || d == '}') depth--;
                if (depth == 0) return j + 1;
            }
        }
        return i + 1;
    }
}
