// Invariants: reads whole files only; accepts pcapng (any byte order, sections may repeat, EPB
// and SPB packets) and classic pcap (µs or ns magic, either byte order) whose link type is
// DLT_DBUS (231); returns every complete packet as one message's bytes, in file order; a
// truncated packet (captured < original length) is skipped and counted, never half-returned.
package org.kdbusbridge.bridge.migration;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Reads D-Bus captures: {@code busctl capture}, {@code dbus-monitor --pcap}, {@code --kdbus-capture}. */
public final class CaptureReader {
    public static final int LINKTYPE_DBUS = 231;

    /** The messages of a capture, and how many packets were truncated and skipped. */
    public record Capture(String format, List<byte[]> messages, int truncated) { }

    private CaptureReader() { }

    public static Capture read(Path file) throws IOException {
        return parse(Files.readAllBytes(file));
    }

    public static Capture parse(byte[] data) throws IOException {
        if (data.length < 24) throw new IOException("not a capture file (too short)");
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        int magic = b.getInt(0);
        if (magic == 0x0A0D0D0A) return pcapng(b);
        if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) return pcap(b.order(ByteOrder.LITTLE_ENDIAN));
        if (Integer.reverseBytes(magic) == 0xa1b2c3d4 || Integer.reverseBytes(magic) == 0xa1b23c4d) {
            return pcap(b.order(ByteOrder.BIG_ENDIAN));
        }
        throw new IOException("not a pcap or pcapng file (magic " + Integer.toHexString(magic) + ")");
    }

    private static Capture pcap(ByteBuffer b) throws IOException {
        int link = b.getInt(20) & 0x0fffffff;
        if (link != LINKTYPE_DBUS) throw new IOException("pcap link type " + link + ", expected DLT_DBUS (231)");
        List<byte[]> out = new ArrayList<>();
        int truncated = 0;
        int p = 24;
        while (p + 16 <= b.limit()) {
            int incl = b.getInt(p + 8);
            int orig = b.getInt(p + 12);
            p += 16;
            if (incl < 0 || p + incl > b.limit()) throw new IOException("pcap record overruns the file");
            if (incl < orig) {
                truncated++;
            } else {
                byte[] m = new byte[incl];
                b.get(p, m);
                out.add(m);
            }
            p += incl;
        }
        return new Capture("pcap", out, truncated);
    }

    private static Capture pcapng(ByteBuffer b) throws IOException {
        List<byte[]> out = new ArrayList<>();
        List<Integer> links = new ArrayList<>();
        int truncated = 0;
        int p = 0;
        while (p + 12 <= b.limit()) {
            if (b.order(ByteOrder.LITTLE_ENDIAN).getInt(p) == 0x0A0D0D0A) {
                int bom = b.getInt(p + 8);
                b.order(bom == 0x1A2B3C4D ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN);
                links.clear();
            }
            int type = b.getInt(p);
            int len = b.getInt(p + 4);
            if (len < 12 || p + len > b.limit()) throw new IOException("pcapng block overruns the file at " + p);
            switch (type) {
                case 1 -> links.add(b.getShort(p + 8) & 0xffff);
                case 6 -> {
                    int iface = b.getInt(p + 8);
                    int cap = b.getInt(p + 20);
                    int orig = b.getInt(p + 24);
                    if (iface >= links.size() || links.get(iface) != LINKTYPE_DBUS) {
                        throw new IOException("pcapng packet on an interface that is not DLT_DBUS");
                    }
                    if (cap < orig) {
                        truncated++;
                    } else {
                        byte[] m = new byte[cap];
                        b.get(p + 28, m);
                        out.add(m);
                    }
                }
                case 3 -> {
                    int orig = b.getInt(p + 8);
                    int cap = Math.min(orig, len - 16);
                    if (links.isEmpty() || links.get(0) != LINKTYPE_DBUS) {
                        throw new IOException("pcapng packet on an interface that is not DLT_DBUS");
                    }
                    if (cap < orig) {
                        truncated++;
                    } else {
                        byte[] m = new byte[cap];
                        b.get(p + 12, m);
                        out.add(m);
                    }
                }
                default -> { }
            }
            p += len;
        }
        return new Capture("pcapng", out, truncated);
    }
}
