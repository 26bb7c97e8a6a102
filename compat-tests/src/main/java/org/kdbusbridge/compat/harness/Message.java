package org.kdbusbridge.compat.harness;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One D-Bus message: header fields plus raw and (lazily) decoded body. */
public final class Message {
    public static final int METHOD_CALL = 1;
    public static final int METHOD_RETURN = 2;
    public static final int ERROR = 3;
    public static final int SIGNAL = 4;

    public static final int FLAG_NO_REPLY_EXPECTED = 0x1;
    public static final int FLAG_NO_AUTO_START = 0x2;

    public int type;
    public int flags;
    public long serial;
    public String path;
    public String iface;
    public String member;
    public String errorName;
    public long replySerial;
    public String destination;
    public String sender;
    public String signature = "";
    public long unixFds;
    public byte[] body = new byte[0];
    public boolean littleEndian = true;
    private List<Object> args;

    public static Message call(String dest, String path, String iface, String member) {
        Message m = new Message();
        m.type = METHOD_CALL;
        m.destination = dest;
        m.path = path;
        m.iface = iface;
        m.member = member;
        return m;
    }

    public Message body(String sig, Object... values) {
        this.signature = sig;
        this.body = new Wire.Writer().putAll(sig, values).toByteArray();
        this.args = null;
        return this;
    }

    public Message flags(int f) {
        this.flags = f;
        return this;
    }

    /** Decoded body values (according to the SIGNATURE field). */
    public List<Object> args() {
        if (args == null) {
            args = signature.isEmpty() ? List.of() : new Wire.Reader(body, 0, body.length, littleEndian).readAll(signature);
        }
        return args;
    }

    public Object arg(int i) {
        return args().get(i);
    }

    public String typeName() {
        return switch (type) {
            case METHOD_CALL -> "call";
            case METHOD_RETURN -> "return";
            case ERROR -> "error";
            case SIGNAL -> "signal";
            default -> "type" + type;
        };
    }

    /** Serializes as a little-endian message with the given serial. */
    public byte[] encode(long serialToUse) {
        this.serial = serialToUse;
        Wire.Writer w = new Wire.Writer();
        w.putByte('l').putByte(type).putByte(flags).putByte(1);
        w.putU32(body.length);
        w.putU32(serialToUse);
        Map<Integer, Wire.Variant> f = new LinkedHashMap<>();
        if (path != null) f.put(1, new Wire.Variant("o", path));
        if (iface != null) f.put(2, new Wire.Variant("s", iface));
        if (member != null) f.put(3, new Wire.Variant("s", member));
        if (errorName != null) f.put(4, new Wire.Variant("s", errorName));
        if (replySerial != 0) f.put(5, new Wire.Variant("u", replySerial));
        if (destination != null) f.put(6, new Wire.Variant("s", destination));
        if (sender != null) f.put(7, new Wire.Variant("s", sender));
        if (!signature.isEmpty()) f.put(8, new Wire.Variant("g", signature));
        if (unixFds != 0) f.put(9, new Wire.Variant("u", unixFds));
        List<Object> fields = new ArrayList<>();
        for (Map.Entry<Integer, Wire.Variant> e : f.entrySet()) {
            fields.add(List.of((byte) (int) e.getKey(), e.getValue()));
        }
        w.put("a(yv)", fields);
        w.align(8);
        w.putBytes(body);
        return w.toByteArray();
    }

    /** Length of the whole message given its first 16 bytes, or -1 if the fixed header is invalid. */
    public static long totalLength(byte[] fixed16) {
        boolean le;
        if (fixed16[0] == 'l') le = true;
        else if (fixed16[0] == 'B') le = false;
        else return -1;
        Wire.Reader r = new Wire.Reader(fixed16, 0, 16, le);
        r.u32(); // endian, type, flags, version
        long bodyLen = r.u32();
        r.u32(); // serial
        long fieldsLen = r.u32();
        long headerLen = 16 + fieldsLen;
        headerLen = (headerLen + 7) & ~7L;
        return headerLen + bodyLen;
    }

    public static Message decode(byte[] data) {
        Message m = new Message();
        m.littleEndian = data[0] == 'l';
        Wire.Reader r = new Wire.Reader(data, 0, data.length, m.littleEndian);
        r.u8();
        m.type = r.u8();
        m.flags = r.u8();
        r.u8();
        long bodyLen = r.u32();
        m.serial = r.u32();
        @SuppressWarnings("unchecked")
        List<Object> fields = (List<Object>) r.read("a(yv)");
        for (Object o : fields) {
            List<?> s = (List<?>) o;
            int code = ((Byte) s.get(0)) & 0xff;
            Object v = ((Wire.Variant) s.get(1)).value();
            switch (code) {
                case 1 -> m.path = (String) v;
                case 2 -> m.iface = (String) v;
                case 3 -> m.member = (String) v;
                case 4 -> m.errorName = (String) v;
                case 5 -> m.replySerial = ((Number) v).longValue();
                case 6 -> m.destination = (String) v;
                case 7 -> m.sender = (String) v;
                case 8 -> m.signature = (String) v;
                case 9 -> m.unixFds = ((Number) v).longValue();
                default -> { /* unknown fields are ignored, as the spec says */ }
            }
        }
        r.align(8);
        int bodyStart = r.position();
        m.body = java.util.Arrays.copyOfRange(data, bodyStart, (int) (bodyStart + bodyLen));
        return m;
    }

    /**
     * One-line transcript: type, sender, destination, path, interface, member, error name, reply serial,
     * signature and decoded args. The message's own serial is left out (it is the sender's counter);
     * error texts are left out (wording differs between implementations).
     */
    public String transcript() {
        StringBuilder sb = new StringBuilder(typeName());
        if (sender != null) sb.append(" sender=").append(sender);
        if (destination != null) sb.append(" dest=").append(destination);
        if (path != null) sb.append(" path=").append(path);
        if (iface != null) sb.append(" iface=").append(iface);
        if (member != null) sb.append(" member=").append(member);
        if (errorName != null) sb.append(" error=").append(errorName);
        if (replySerial != 0) sb.append(" reply_serial=").append(replySerial);
        sb.append(" sig=").append(signature);
        if (type != ERROR && !signature.isEmpty()) {
            StringBuilder a = new StringBuilder();
            for (Object o : args()) {
                if (a.length() > 0) a.append(' ');
                a.append(Wire.format(o));
            }
            sb.append(" args=").append(a);
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return transcript() + " serial=" + serial;
    }
}
