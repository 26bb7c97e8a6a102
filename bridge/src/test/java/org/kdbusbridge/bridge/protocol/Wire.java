// Test helper: hand-crafts D-Bus messages in either byte order, including malformed ones.
// Alignment is relative to index 0, i.e. the message start.
package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.Consumer;

final class Wire {
    final ByteOrder order;
    byte[] a = new byte[64];
    int pos;

    Wire(ByteOrder order) {
        this.order = order;
    }

    private void ensure(int n) {
        if (pos + n > a.length) a = Arrays.copyOf(a, Math.max(a.length * 2, pos + n));
    }

    Wire y(int v) {
        ensure(1);
        a[pos++] = (byte) v;
        return this;
    }

    Wire pad(int al) {
        while (pos % al != 0) y(0);
        return this;
    }

    Wire raw(byte[] b) {
        ensure(b.length);
        System.arraycopy(b, 0, a, pos, b.length);
        pos += b.length;
        return this;
    }

    Wire u16(int v) {
        pad(2);
        ByteBuffer bb = ByteBuffer.allocate(2).order(order).putShort((short) v);
        return raw(bb.array());
    }

    Wire u32(long v) {
        pad(4);
        ByteBuffer bb = ByteBuffer.allocate(4).order(order).putInt((int) v);
        return raw(bb.array());
    }

    Wire u64(long v) {
        pad(8);
        ByteBuffer bb = ByteBuffer.allocate(8).order(order).putLong(v);
        return raw(bb.array());
    }

    Wire strBytes(byte[] b) {
        u32(b.length);
        raw(b);
        return y(0);
    }

    Wire str(String s) {
        return strBytes(s.getBytes(StandardCharsets.UTF_8));
    }

    Wire sig(String s) {
        y(s.length());
        raw(s.getBytes(StandardCharsets.US_ASCII));
        return y(0);
    }

    /** Reserves a u32 (after 4-alignment) and returns its index for patch(). */
    int slot() {
        u32(0);
        return pos - 4;
    }

    void patch(int slot, long v) {
        byte[] b = ByteBuffer.allocate(4).order(order).putInt((int) v).array();
        System.arraycopy(b, 0, a, slot, 4);
    }

    /** Array helper: length slot, element padding, contents, patch. */
    Wire array(int elemAlign, Consumer<Wire> contents) {
        int s = slot();
        pad(elemAlign);
        int start = pos;
        contents.accept(this);
        patch(s, pos - start);
        return this;
    }

    byte[] bytes() {
        return Arrays.copyOf(a, pos);
    }

    // ---- messages ----

    record F(int code, String sig, Consumer<Wire> val) {}

    static F s(int code, String v) {
        return new F(code, "s", w -> w.str(v));
    }

    static F path(String v) {
        return new F(WireFormat.PATH, "o", w -> w.str(v));
    }

    static F u(int code, long v) {
        return new F(code, "u", w -> w.u32(v));
    }

    static F g(String v) {
        return new F(WireFormat.SIGNATURE, "g", w -> w.sig(v));
    }

    static byte[] msg(ByteOrder o, int type, int flags, long serial, byte[] body, F... fields) {
        Wire w = new Wire(o);
        w.y(o == ByteOrder.LITTLE_ENDIAN ? 'l' : 'B').y(type).y(flags).y(1).u32(body.length).u32(serial);
        int slot = w.slot();
        int start = w.pos;
        for (F f : fields) {
            w.pad(8);
            w.y(f.code());
            w.sig(f.sig());
            f.val().accept(w);
        }
        w.patch(slot, w.pos - start);
        w.pad(8);
        w.raw(body);
        return w.bytes();
    }

    static byte[] body(ByteOrder o, Consumer<Wire> c) {
        Wire w = new Wire(o);
        c.accept(w);
        return w.bytes();
    }

    /** A valid method call with the given body signature and body, plus extra fields. */
    static byte[] call(ByteOrder o, String sig, byte[] body, F... extra) {
        F[] base = {path("/org/example/Obj"), s(WireFormat.INTERFACE, "org.example.Iface"),
                s(WireFormat.MEMBER, "Method"), s(WireFormat.DESTINATION, "org.example.Service")};
        F[] all = Arrays.copyOf(base, base.length + extra.length + (sig == null ? 0 : 1));
        System.arraycopy(extra, 0, all, base.length, extra.length);
        if (sig != null) all[all.length - 1] = g(sig);
        return msg(o, WireFormat.METHOD_CALL, 0, 7, body, all);
    }

    static ByteBuffer buf(byte[] m, ByteOrder bufferOrder) {
        return ByteBuffer.wrap(m).order(bufferOrder);
    }

    static ByteOrder other(ByteOrder o) {
        return o == ByteOrder.LITTLE_ENDIAN ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
    }

    /** Wraps m (with the buffer's ByteOrder opposite to the message's) and returns the header. */
    static MessageHeader wrap(byte[] m) throws ProtocolException {
        ByteOrder mo = m[0] == 'l' ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN;
        MessageHeader h = new MessageHeader();
        h.wrap(buf(m, other(mo)), 0, m.length);
        return h;
    }

    static String hex(String s) {
        StringBuilder sb = new StringBuilder();
        for (byte b : s.getBytes(StandardCharsets.US_ASCII)) sb.append(String.format("%02x", b));
        return sb.toString();
    }
}
