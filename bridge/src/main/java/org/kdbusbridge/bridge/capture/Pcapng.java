package org.kdbusbridge.bridge.capture;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The pcapng blocks {@code busctl capture} writes: one Section Header Block (with shb_os and
 * shb_userappl), one Interface Description Block for link type DLT_DBUS (231), then one
 * Enhanced Packet Block per D-Bus message, with microsecond timestamps (the default
 * if_tsresol) on interface 0.
 *
 * Invariants: blocks are written in little-endian order (the byte-order magic says so); every
 * block length is a multiple of 4 and is repeated at the block's end; a record's captured
 * length never exceeds {@link #SNAPLEN}, and its original length is the message's full size.
 */
public final class Pcapng {
    /** Link type DLT_DBUS: each packet is one whole D-Bus message, header first. */
    public static final int LINKTYPE_DBUS = 231;
    /** The largest D-Bus message (2^27 bytes), so nothing the bus admits is ever truncated. */
    public static final int SNAPLEN = 1 << 27;
    static final int SHB = 0x0A0D0D0A;
    static final int IDB = 0x00000001;
    static final int EPB = 0x00000006;
    static final int BYTE_ORDER_MAGIC = 0x1A2B3C4D;
    private static final short OPT_END = 0;
    private static final short SHB_OS = 3;
    private static final short SHB_USERAPPL = 4;

    private Pcapng() { }

    /** The section header and interface description that open the file. */
    public static byte[] fileHeader(String userAppl) {
        String os = System.getProperty("os.name", "") + " " + System.getProperty("os.version", "");
        byte[] osBytes = os.trim().getBytes(StandardCharsets.UTF_8);
        byte[] appBytes = userAppl.getBytes(StandardCharsets.UTF_8);
        int shbOptions = option(osBytes.length) + option(appBytes.length) + 4;
        int shbLen = 12 + 16 + shbOptions;
        int idbLen = 12 + 8;
        ByteBuffer b = ByteBuffer.allocate(shbLen + idbLen).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(SHB).putInt(shbLen);
        b.putInt(BYTE_ORDER_MAGIC).putShort((short) 1).putShort((short) 0).putLong(-1L); // section length unknown
        putOption(b, SHB_OS, osBytes);
        putOption(b, SHB_USERAPPL, appBytes);
        b.putShort(OPT_END).putShort((short) 0);
        b.putInt(shbLen);
        b.putInt(IDB).putInt(idbLen);
        b.putShort((short) LINKTYPE_DBUS).putShort((short) 0).putInt(SNAPLEN);
        b.putInt(idbLen);
        return b.array();
    }

    /** The 28 bytes that precede a packet of {@code length} bytes captured at {@code micros}. */
    public static void packetHeader(ByteBuffer b, long micros, int length) {
        int captured = Math.min(length, SNAPLEN);
        b.putInt(EPB).putInt(packetBlockLength(captured));
        b.putInt(0); // interface 0
        b.putInt((int) (micros >>> 32)).putInt((int) micros);
        b.putInt(captured).putInt(length);
    }

    /** Padding after the packet data, then the trailing block length. */
    public static void packetTrailer(ByteBuffer b, int length) {
        int captured = Math.min(length, SNAPLEN);
        for (int i = captured; i % 4 != 0; i++) {
            b.put((byte) 0);
        }
        b.putInt(packetBlockLength(captured));
    }

    /** Bytes of a packet trailer for a {@code length}-byte packet (padding + 4). */
    public static int trailerLength(int length) {
        return pad(Math.min(length, SNAPLEN)) - Math.min(length, SNAPLEN) + 4;
    }

    public static final int PACKET_HEADER = 28;

    static int packetBlockLength(int captured) {
        return PACKET_HEADER + pad(captured) + 4;
    }

    private static int pad(int n) {
        return (n + 3) & ~3;
    }

    private static int option(int valueLength) {
        return 4 + pad(valueLength);
    }

    private static void putOption(ByteBuffer b, short code, byte[] value) {
        b.putShort(code).putShort((short) value.length).put(value);
        for (int i = value.length; i % 4 != 0; i++) {
            b.put((byte) 0);
        }
    }
}
