// Invariants: yields one timestamp (microseconds since the epoch, or -1 where the record has
// none, as a pcapng Simple Packet Block) per packet that CaptureReader returns, in the same
// order, by skipping exactly the records CaptureReader skips (truncated ones); any layout it
// does not understand yields null, so the caller falls back to message order alone.
package org.kdbusbridge.bridge.draw;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/** The capture times CaptureReader does not keep: they give the diagram's time axis its labels. */
final class CaptureClock {
    private CaptureClock() { }

    static long[] times(byte[] data) {
        try {
            if (data.length < 24) return null;
            ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
            int magic = b.getInt(0);
            if (magic == 0x0A0D0D0A) return pcapng(b);
            for (ByteOrder o : new ByteOrder[] {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN}) {
                int m = b.order(o).getInt(0);
                if (m == 0xa1b2c3d4) return pcap(b, false);
                if (m == 0xa1b23c4d) return pcap(b, true);
            }
            return null;
        } catch (RuntimeException e) {
            return null; // a layout CaptureReader would refuse as well, or one we do not know
        }
    }

    private static long[] pcap(ByteBuffer b, boolean nanos) {
        List<Long> out = new ArrayList<>();
        int p = 24;
        while (p + 16 <= b.limit()) {
            long sec = b.getInt(p) & 0xffffffffL;
            long frac = b.getInt(p + 4) & 0xffffffffL;
            int incl = b.getInt(p + 8);
            int orig = b.getInt(p + 12);
            if (incl < 0 || p + 16 + incl > b.limit()) return null;
            if (incl >= orig) out.add(sec * 1_000_000 + (nanos ? frac / 1000 : frac));
            p += 16 + incl;
        }
        return toArray(out);
    }

    private static long[] pcapng(ByteBuffer b) {
        List<Long> out = new ArrayList<>();
        List<long[]> ifaces = new ArrayList<>(); // {units per second as a divisor numerator}
        int p = 0;
        while (p + 12 <= b.limit()) {
            if (b.order(ByteOrder.LITTLE_ENDIAN).getInt(p) == 0x0A0D0D0A) {
                b.order(b.getInt(p + 8) == 0x1A2B3C4D ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN);
                ifaces.clear();
            }
            int type = b.getInt(p);
            int len = b.getInt(p + 4);
            if (len < 12 || p + len > b.limit()) return null;
            if (type == 1) {
                ifaces.add(new long[] {unitsPerSecond(b, p + 16, p + len - 4)});
            } else if (type == 6) {
                int iface = b.getInt(p + 8);
                long ts = ((b.getInt(p + 12) & 0xffffffffL) << 32) | (b.getInt(p + 16) & 0xffffffffL);
                int cap = b.getInt(p + 20);
                int orig = b.getInt(p + 24);
                if (iface < 0 || iface >= ifaces.size()) return null;
                if (cap >= orig) out.add(toMicros(ts, ifaces.get(iface)[0]));
            } else if (type == 3) {
                int orig = b.getInt(p + 8);
                if (Math.min(orig, len - 16) >= orig) out.add(-1L);
            }
            p += len;
        }
        return toArray(out);
    }

    /** if_tsresol (option 9): 10^-n or, with the top bit set, 2^-n seconds; default microseconds. */
    private static long unitsPerSecond(ByteBuffer b, int p, int end) {
        while (p + 4 <= end) {
            int code = b.getShort(p) & 0xffff;
            int len = b.getShort(p + 2) & 0xffff;
            if (code == 0) break;
            if (code == 9 && len >= 1) {
                int v = b.get(p + 4) & 0xff;
                int n = v & 0x7f;
                if ((v & 0x80) != 0) return n >= 62 ? Long.MAX_VALUE : 1L << n;
                long u = 1;
                for (int i = 0; i < n && u < Long.MAX_VALUE / 10; i++) u *= 10;
                return u;
            }
            p += 4 + ((len + 3) & ~3);
        }
        return 1_000_000;
    }

    private static long toMicros(long ts, long unitsPerSecond) {
        if (unitsPerSecond == 1_000_000) return ts;
        return (long) (ts * (1_000_000.0 / unitsPerSecond));
    }

    private static long[] toArray(List<Long> l) {
        long[] a = new long[l.size()];
        for (int i = 0; i < a.length; i++) a[i] = l.get(i);
        return a;
    }
}
