package org.kdbusbridge.compat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Predicate;

import org.kdbusbridge.compat.harness.Message;

/**
 * Reads a capture (classic pcap as {@code dbus-monitor --pcap} writes it, or pcapng as
 * {@code busctl capture} writes it) from a stream as it grows, and decodes its DLT_DBUS
 * packets into messages.
 *
 * Invariants: parsing is of whole records only (a partial record at the end waits for more
 * bytes); the format and link type are those of the header, checked before any packet.
 */
public final class PcapStream implements AutoCloseable {
    static final int DLT_DBUS = 231;

    /** What the file header said. */
    record Header(String format, int linkType, int snaplen) { }

    private final ByteArrayOutputStream buf = new ByteArrayOutputStream();
    private final Thread pump;
    private boolean eof;

    public PcapStream(InputStream in) {
        pump = new Thread(() -> {
            byte[] b = new byte[8192];
            try {
                int n;
                while ((n = in.read(b)) >= 0) {
                    synchronized (this) {
                        buf.write(b, 0, n);
                        notifyAll();
                    }
                }
            } catch (IOException ignored) {
                // process gone
            } finally {
                synchronized (this) {
                    eof = true;
                    notifyAll();
                }
            }
        }, "pcap-pump");
        pump.setDaemon(true);
        pump.start();
    }

    public synchronized byte[] bytes() {
        return buf.toByteArray();
    }

    /** Waits until the packets decoded so far satisfy {@code p}; returns them, or null at the deadline. */
    public synchronized List<Message> await(Predicate<List<Message>> p, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            List<Message> msgs = messages(buf.toByteArray());
            if (p.test(msgs)) {
                return msgs;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0 || eof) {
                return p.test(msgs) ? msgs : null;
            }
            wait(Math.max(1, left / 1_000_000));
        }
    }

    /** The file header: format ("pcap" or "pcapng"), link type and snaplen; null if incomplete. */
    static Header header(byte[] f) {
        if (f.length >= 24 && ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).getInt(0) == 0xa1b2c3d4) {
            ByteBuffer b = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN);
            return new Header("pcap", b.getInt(20), b.getInt(16));
        }
        if (f.length >= 12 && ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).getInt(0) == 0x0A0D0D0A) {
            ByteBuffer b = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN);
            if (b.getInt(8) != 0x1A2B3C4D) {
                return null; // big-endian section: not what these tools write here
            }
            int off = b.getInt(4);
            if (f.length >= off + 16 && b.getInt(off) == 1) {
                return new Header("pcapng", b.getShort(off + 8) & 0xffff, b.getInt(off + 12));
            }
        }
        return null;
    }

    /** The raw packets of a (possibly still growing) capture. */
    static List<byte[]> packets(byte[] f) {
        List<byte[]> out = new ArrayList<>();
        Header h = header(f);
        if (h == null) {
            return out;
        }
        ByteBuffer b = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN);
        if (h.format().equals("pcap")) {
            int off = 24;
            while (off + 16 <= f.length) {
                int incl = b.getInt(off + 8);
                if (off + 16 + incl > f.length) {
                    break;
                }
                out.add(Arrays.copyOfRange(f, off + 16, off + 16 + incl));
                off += 16 + incl;
            }
            return out;
        }
        int off = 0;
        while (off + 12 <= f.length) {
            int type = b.getInt(off);
            int len = b.getInt(off + 4);
            if (len < 12 || off + len > f.length) {
                break;
            }
            if (type == 6) {
                int cap = b.getInt(off + 20);
                out.add(Arrays.copyOfRange(f, off + 28, off + 28 + cap));
            }
            off += len;
        }
        return out;
    }

    public static List<Message> messages(byte[] f) {
        List<Message> out = new ArrayList<>();
        for (byte[] p : packets(f)) {
            out.add(Message.decode(p));
        }
        return out;
    }

    public static boolean hasMember(List<Message> msgs, int type, String member) {
        return msgs.stream().anyMatch(m -> m.type == type && member.equals(m.member));
    }

    public static boolean hasError(List<Message> msgs, String errorName) {
        return msgs.stream().anyMatch(m -> m.type == Message.ERROR && errorName.equals(m.errorName));
    }

    public static String describe(List<Message> msgs) {
        StringBuilder sb = new StringBuilder();
        for (Message m : msgs) {
            sb.append(m.transcript()).append('\n');
        }
        return sb.toString();
    }

    @Override
    public void close() throws InterruptedException {
        pump.join(5000);
    }
}
