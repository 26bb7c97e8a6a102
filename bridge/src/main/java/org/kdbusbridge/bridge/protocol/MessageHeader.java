// Invariants: a reusable flyweight, single-threaded. After a successful wrap() every accessor
// reflects a header that passed full validation (fixed header, field types, no duplicate known
// fields, required fields, name syntax, Local rules); only offsets are stored and strings are
// decoded lazily. After a failed wrap() the flyweight is invalid until the next successful wrap().
// The wrapped buffer must not be modified while wrapped.
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/** Aeron-style flyweight over one complete D-Bus message in a ByteBuffer. */
public final class MessageHeader {
    private static final int N = WireFormat.MAX_KNOWN_FIELD + 1;

    private ByteBuffer buf;
    private int offset;
    private int length;
    private ByteOrder order;
    private int type;
    private int flags;
    private long bodyLength;
    private long serial;
    private int fieldsEnd;
    private int bodyOffset;
    private boolean valid;

    /** Bit (1 << code) set when the known field is present. */
    private int present;
    /** Absolute offset of a field's value: string bytes for s/o/g, the uint32 for u. */
    private final int[] valueOffset = new int[N];
    /** Byte length of a string-like value (without NUL); unused for u. */
    private final int[] valueLength = new int[N];
    /** Absolute [start, end) of each known field's (yv) struct, for splicing. */
    private final int[] structStart = new int[N];
    private final int[] structEnd = new int[N];
    /** Known field codes in order of appearance. */
    private final byte[] fieldOrder = new byte[N];
    private int fieldCount;
    private final String[] cache = new String[N];
    /**
     * Each field's string from the last message that had it, kept across wraps: a connection
     * tends to repeat its destination, path, interface and member (a client pipelining AddMatch
     * repeats all of them), so an equal field reuses the String instead of decoding a new one.
     */
    private final String[] previous = new String[N];
    private final ValueValidator validator = new ValueValidator();

    /**
     * Parses and fully validates the header of the message at [offset, offset+length).
     * length must be the value returned by {@link MessageFraming#frameLength}.
     */
    public void wrap(ByteBuffer buf, int offset, int length) throws ProtocolException {
        valid = false;
        present = 0;
        fieldCount = 0;
        Arrays.fill(cache, null);
        if (offset < 0 || length < 0 || length > buf.limit() - offset) {
            throw new IllegalArgumentException("message region outside the buffer's limit");
        }
        this.buf = buf;
        this.offset = offset;
        this.length = length;
        long frame = MessageFraming.frameLength(buf, offset, length);
        if (frame < 0) throw new ProtocolException("message shorter than the 16-byte fixed header");
        if (frame != length) throw new ProtocolException("message length " + length + " does not match framed length " + frame);
        order = Bytes.orderOf(buf.get(offset));
        type = buf.get(offset + 1) & 0xff;
        flags = buf.get(offset + 2) & 0xff;
        bodyLength = Bytes.getUint32(buf, offset + 4, order);
        serial = Bytes.getUint32(buf, offset + 8, order);
        int fieldsLength = Bytes.getInt(buf, offset + 12, order); // <= 2^26, checked by framing
        if (type == WireFormat.INVALID) throw new ProtocolException("message type 0 (INVALID)");
        if (type > WireFormat.SIGNAL) throw new ProtocolException("unknown message type " + type);
        if (serial == 0) throw new ProtocolException("message serial is 0");
        fieldsEnd = offset + WireFormat.FIXED_HEADER_SIZE + fieldsLength;
        bodyOffset = offset + WireFormat.align(WireFormat.FIXED_HEADER_SIZE + fieldsLength, 8);
        parseFields();
        for (int i = fieldsEnd; i < bodyOffset; i++) {
            if (buf.get(i) != 0) throw new ProtocolException("non-zero padding after header fields");
        }
        checkRequired();
        if (bodyLength > 0 && !has(WireFormat.SIGNATURE)) throw new ProtocolException("message has a body but no SIGNATURE field");
        valid = true;
    }

    private void parseFields() throws ProtocolException {
        int p = offset + WireFormat.FIXED_HEADER_SIZE;
        while (p < fieldsEnd) {
            int start = offset + WireFormat.align(p - offset, 8);
            for (int i = p; i < start; i++) {
                if (i >= fieldsEnd) throw new ProtocolException("header fields array ends in padding");
                if (buf.get(i) != 0) throw new ProtocolException("non-zero padding between header fields");
            }
            p = start;
            if (p + 4 > fieldsEnd) throw new ProtocolException("truncated header field");
            int code = buf.get(p) & 0xff;
            int sigLen = buf.get(p + 1) & 0xff;
            int sigOff = p + 2;
            if (sigOff + sigLen + 1 > fieldsEnd) throw new ProtocolException("truncated header field signature");
            if (buf.get(sigOff + sigLen) != 0) throw new ProtocolException("header field signature not NUL-terminated");
            if (code == WireFormat.FIELD_INVALID) throw new ProtocolException("header field code 0 (INVALID)");
            int valueStart = sigOff + sigLen + 1;
            if (code > WireFormat.MAX_KNOWN_FIELD) {
                // Unknown field: skipped, but its variant must still be well-formed.
                Signatures.validate(buf, sigOff, sigLen, true);
                validator.reset(buf, order, offset, valueStart, fieldsEnd);
                try {
                    validator.validateOne(sigOff, 3); // array > struct > variant
                    p = validator.p;
                } finally {
                    validator.release();
                }
                continue;
            }
            byte expected = WireFormat.fieldTypeCode(code);
            if (sigLen != 1 || buf.get(sigOff) != expected) {
                throw new ProtocolException("header field " + code + " has signature '" + Bytes.string(buf, sigOff, sigLen)
                        + "', expected '" + (char) expected + "'");
            }
            if ((present & (1 << code)) != 0) throw new ProtocolException("duplicate header field " + code);
            p = parseKnownValue(code, expected, valueStart);
            present |= 1 << code;
            structStart[code] = start;
            structEnd[code] = p;
            fieldOrder[fieldCount++] = (byte) code;
        }
        if (p != fieldsEnd) throw new ProtocolException("header field overruns the fields array");
    }

    private int parseKnownValue(int code, byte t, int p) throws ProtocolException {
        if (t == 'g') {
            int len = buf.get(p) & 0xff;
            if (p + len + 2 > fieldsEnd) throw new ProtocolException("truncated SIGNATURE field");
            if (buf.get(p + 1 + len) != 0) throw new ProtocolException("SIGNATURE field not NUL-terminated");
            Signatures.validate(buf, p + 1, len, false);
            valueOffset[code] = p + 1;
            valueLength[code] = len;
            return p + len + 2;
        }
        int a = offset + WireFormat.align(p - offset, 4);
        for (int i = p; i < a; i++) {
            if (i >= fieldsEnd || buf.get(i) != 0) throw new ProtocolException("bad padding in header field " + code);
        }
        p = a;
        if (p + 4 > fieldsEnd) throw new ProtocolException("truncated header field " + code);
        if (t == 'u') {
            if (code == WireFormat.REPLY_SERIAL && Bytes.getInt(buf, p, order) == 0) {
                throw new ProtocolException("REPLY_SERIAL is 0");
            }
            valueOffset[code] = p;
            return p + 4;
        }
        long len = Bytes.getUint32(buf, p, order);
        if (len + 1 > fieldsEnd - p - 4) throw new ProtocolException("truncated header field " + code);
        int so = p + 4;
        int sl = (int) len;
        if (buf.get(so + sl) != 0) throw new ProtocolException("header field " + code + " not NUL-terminated");
        boolean ok;
        String what;
        switch (code) {
            case WireFormat.PATH:
                ok = Names.isValidObjectPath(buf, so, sl);
                what = "object path";
                if (ok && Bytes.asciiEquals(buf, so, sl, WireFormat.LOCAL_PATH)) {
                    throw new ProtocolException("use of reserved path " + WireFormat.LOCAL_PATH);
                }
                break;
            case WireFormat.INTERFACE:
                ok = Names.isValidInterfaceName(buf, so, sl);
                what = "interface name";
                if (ok && Bytes.asciiEquals(buf, so, sl, WireFormat.LOCAL_INTERFACE)) {
                    throw new ProtocolException("use of reserved interface " + WireFormat.LOCAL_INTERFACE);
                }
                break;
            case WireFormat.MEMBER:
                ok = Names.isValidMemberName(buf, so, sl);
                what = "member name";
                break;
            case WireFormat.ERROR_NAME:
                ok = Names.isValidErrorName(buf, so, sl);
                what = "error name";
                break;
            default: // DESTINATION, SENDER
                ok = Names.isValidBusName(buf, so, sl);
                what = "bus name";
                break;
        }
        if (!ok) throw new ProtocolException("invalid " + what + " in header field " + code);
        valueOffset[code] = so;
        valueLength[code] = sl;
        return so + sl + 1;
    }

    private void checkRequired() throws ProtocolException {
        switch (type) {
            case WireFormat.METHOD_CALL:
                require(WireFormat.PATH, "PATH");
                require(WireFormat.MEMBER, "MEMBER");
                break;
            case WireFormat.SIGNAL:
                require(WireFormat.PATH, "PATH");
                require(WireFormat.INTERFACE, "INTERFACE");
                require(WireFormat.MEMBER, "MEMBER");
                break;
            case WireFormat.ERROR:
                require(WireFormat.ERROR_NAME, "ERROR_NAME");
                require(WireFormat.REPLY_SERIAL, "REPLY_SERIAL");
                break;
            default: // METHOD_RETURN
                require(WireFormat.REPLY_SERIAL, "REPLY_SERIAL");
                break;
        }
    }

    private void require(int code, String name) throws ProtocolException {
        if (!has(code)) throw new ProtocolException("message type " + type + " lacks required header field " + name);
    }

    /**
     * Validates the body against the SIGNATURE field: alignment, zero padding, booleans, strings,
     * object paths, signatures, array lengths, struct/dict rules, variants, nesting depth, and
     * that the body is consumed exactly. Requires a successful wrap().
     */
    public void validateBody() throws ProtocolException {
        checkValid();
        if (!has(WireFormat.SIGNATURE)) {
            if (bodyLength != 0) throw new ProtocolException("message has a body but no SIGNATURE field");
            return;
        }
        int end = bodyOffset + (int) bodyLength;
        validator.reset(buf, order, offset, bodyOffset, end);
        try {
            int so = valueOffset[WireFormat.SIGNATURE];
            validator.validateSequence(so, so + valueLength[WireFormat.SIGNATURE], 0);
            if (validator.p != end) throw new ProtocolException("body has " + (end - validator.p) + " trailing bytes beyond its signature");
        } finally {
            validator.release();
        }
    }

    private void checkValid() {
        if (!valid) throw new IllegalStateException("MessageHeader not wrapped over a valid message");
    }

    // ---- accessors ----

    public boolean isValid() { return valid; }
    public ByteBuffer buffer() { return buf; }
    public int offset() { return offset; }
    /** Total message length in bytes. */
    public int length() { return length; }
    public ByteOrder byteOrder() { return order; }
    public int type() { return type; }
    public int flags() { return flags; }
    public boolean hasFlag(int flag) { return (flags & flag) != 0; }
    public long bodyLength() { return bodyLength; }
    /** Serial as unsigned 32-bit value. */
    public long serial() { return serial; }
    /** Serial as raw int (same 32 bits). */
    public int serialInt() { return (int) serial; }
    /** Absolute offset of the body in the buffer (8-aligned relative to the message start). */
    public int bodyOffset() { return bodyOffset; }
    /** Absolute offset just past the header fields array (before padding). */
    public int fieldsEnd() { return fieldsEnd; }

    public boolean has(int fieldCode) {
        return fieldCode >= 0 && fieldCode < N && (present & (1 << fieldCode)) != 0;
    }

    /** Absolute offset of a string-like field's bytes, or -1 if absent. */
    public int fieldValueOffset(int code) { return has(code) ? valueOffset[code] : -1; }
    /** Byte length of a string-like field (no NUL), or -1 if absent. */
    public int fieldValueLength(int code) { return has(code) ? valueLength[code] : -1; }

    /** Allocation-free comparison of a string-like field against an ASCII string; false if absent. */
    public boolean fieldEquals(int code, CharSequence s) {
        return has(code) && Bytes.asciiEquals(buf, valueOffset[code], valueLength[code], s);
    }

    private String str(int code) {
        if (!has(code)) return null;
        String s = cache[code];
        if (s == null) {
            int off = valueOffset[code];
            int len = valueLength[code];
            // Every driver call names the driver twice (destination, interface) and its path:
            // shared constants instead of three fresh Strings per call.
            String prev = previous[code];
            if (prev != null && sameAscii(off, len, prev)) {
                s = prev;
            } else if (len == WireFormat.DRIVER_NAME.length() && Bytes.asciiEquals(buf, off, len, WireFormat.DRIVER_NAME)) {
                s = WireFormat.DRIVER_NAME;
            } else if (len == WireFormat.DRIVER_PATH.length() && Bytes.asciiEquals(buf, off, len, WireFormat.DRIVER_PATH)) {
                s = WireFormat.DRIVER_PATH;
            } else {
                s = Bytes.string(buf, off, len);
            }
            cache[code] = s;
            previous[code] = s;
        }
        return s;
    }

    /** Whether the field's bytes are exactly the ASCII string {@code s} (header names and paths are ASCII). */
    private boolean sameAscii(int off, int len, String s) {
        if (s.length() != len) return false;
        for (int i = 0; i < len; i++) {
            char c = s.charAt(i);
            if (c >= 0x80 || (buf.get(off + i) & 0xff) != c) return false;
        }
        return true;
    }

    public String path() { return str(WireFormat.PATH); }
    public String iface() { return str(WireFormat.INTERFACE); }
    public String member() { return str(WireFormat.MEMBER); }
    public String errorName() { return str(WireFormat.ERROR_NAME); }
    public String destination() { return str(WireFormat.DESTINATION); }
    public String sender() { return str(WireFormat.SENDER); }
    /** Body signature, or null if the field is absent (equivalent to ""). */
    public String signature() { return str(WireFormat.SIGNATURE); }

    public boolean hasReplySerial() { return has(WireFormat.REPLY_SERIAL); }
    /** Reply serial (unsigned), or 0 if absent. */
    public long replySerial() {
        return has(WireFormat.REPLY_SERIAL) ? Bytes.getUint32(buf, valueOffset[WireFormat.REPLY_SERIAL], order) : 0;
    }
    /** UNIX_FDS value (unsigned), or 0 if absent. */
    public long unixFds() {
        return has(WireFormat.UNIX_FDS) ? Bytes.getUint32(buf, valueOffset[WireFormat.UNIX_FDS], order) : 0;
    }

    // ---- package-private splice support ----

    int knownFieldCount() { return fieldCount; }
    int knownFieldCode(int i) { return fieldOrder[i]; }
    int structStart(int code) { return structStart[code]; }
    int structEnd(int code) { return structEnd[code]; }
    void requireValid() { checkValid(); }

    @Override
    public String toString() {
        if (!valid) return "MessageHeader[invalid]";
        return "MessageHeader[type=" + type + " flags=" + flags + " serial=" + serial + " path=" + path()
                + " iface=" + iface() + " member=" + member() + " error=" + errorName()
                + " replySerial=" + (hasReplySerial() ? replySerial() : "-") + " dest=" + destination()
                + " sender=" + sender() + " sig=" + signature() + " body=" + bodyLength + "]";
    }
}
