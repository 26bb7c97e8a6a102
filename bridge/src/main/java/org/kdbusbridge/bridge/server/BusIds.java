package org.kdbusbridge.bridge.server;

import java.nio.charset.StandardCharsets;
import java.util.Locale;

import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.bridge.transport.Urandom;

/**
 * The bus's identifiers, as the D-Bus specification has them: one bus ID ({@code GetId}) and,
 * for every address the bus listens on, a server GUID of its own ({@code guid=} in the printed
 * address and in the SASL {@code OK} line), none of them related to another for a client. All
 * are UUIDs in dbus's format: 32 lower-case hex digits, the last 8 a big-endian count of seconds
 * since the epoch at the UUID's creation.
 *
 * <p>A bus has one secret GUID (the one the hand-over snapshot carries, {@link BusServer#guid()});
 * the bus ID and every listener's GUID are <b>derived</b> from it by a keyed hash (HMAC-SHA-256,
 * the secret as key, a label as message), not drawn at random. The reason: a hand-over
 * (docs/handover.md) must keep the bus ID and every address's GUID, and its snapshot format
 * carries only the one GUID; derived, they come out the same on the new bus without a format
 * change. A listener's label is its bound socket name (kind and path or abstract name), which
 * the adopted socket reports again after a hand-over and which no two of the bus's listeners
 * share. Without the secret the values cannot be linked to each other or to it. The last 8
 * digits of each are the secret's own (its creation time), as dbus-daemon's bus ID and server
 * GUIDs made in the same second share theirs.
 *
 * <p>SHA-256 is implemented here (FIPS 180-4, HMAC as in RFC 2104) because the JDK's cost
 * start-up: their security providers load first. Measured 2026-12-04 with a one-class program
 * in a fresh JDK 17 JVM, 3 runs each, 2 CPUs at load about 14: {@code MessageDigest} SHA-256
 * 54 to 88 ms, {@code Mac} HmacSHA256 154 to 284 ms; this class, loaded and used in the same
 * way, 1.4 to 6 ms for {@link #newGuid()} with the class load and 0.9 to 4.4 ms for two
 * derivations. The bus derives one value per listener at start; the bus ID only when first
 * asked for. The unit test checks this SHA-256 and HMAC against the JDK's.
 */
public final class BusIds {
    private static final char[] HEX = "0123456789abcdef".toCharArray();
    private static final int[] K = new int[64];
    private static final int[] H0 = new int[8];

    static {
        // The first 32 bits of the fractional parts of the cube roots (K) and square roots (H0)
        // of the first primes (FIPS 180-4, 4.2.2 and 5.3.3); the test compares with the JDK's.
        int n = 0;
        for (int p = 2; n < 64; p++) {
            if (isPrime(p)) {
                K[n] = fraction32(Math.cbrt(p));
                if (n < 8) {
                    H0[n] = fraction32(Math.sqrt(p));
                }
                n++;
            }
        }
    }

    private BusIds() {
    }

    /** A new secret GUID: 12 random bytes and the time in seconds, big-endian, as dbus's UUIDs. */
    public static String newGuid() {
        byte[] b = new byte[16];
        System.arraycopy(Urandom.bytes(12), 0, b, 0, 12);
        long now = System.currentTimeMillis() / 1000L;
        b[12] = (byte) (now >>> 24);
        b[13] = (byte) (now >>> 16);
        b[14] = (byte) (now >>> 8);
        b[15] = (byte) now;
        return hex(b, 16);
    }

    /** The bus ID GetId returns for the bus whose secret GUID is {@code guid}. */
    public static String busId(String guid) {
        return derive(guid, "bus-id");
    }

    /**
     * The server GUID of the listener bound at {@code bound} (a PATH or ABSTRACT address; its own
     * guid key, if any, is ignored) on the bus whose secret GUID is {@code guid}.
     */
    public static String listenerGuid(String guid, UnixAddress bound) {
        return derive(guid, "listener\0" + bound.kind().name() + "\0" + bound.value());
    }

    private static String derive(String guid, String label) {
        String key = guid.toLowerCase(Locale.ROOT);
        if (key.length() != 32) {
            throw new IllegalArgumentException("bus GUID must be 32 hex digits: " + guid);
        }
        byte[] mac = hmacSha256(key.getBytes(StandardCharsets.US_ASCII), label.getBytes(StandardCharsets.UTF_8));
        return hex(mac, 12) + key.substring(24);
    }

    // ---------------------------------------------------------------- HMAC-SHA-256

    static byte[] hmacSha256(byte[] key, byte[] message) {
        byte[] k = key.length > 64 ? sha256(key) : key;
        byte[] inner = new byte[64 + message.length];
        byte[] outer = new byte[64 + 32];
        for (int i = 0; i < 64; i++) {
            byte b = i < k.length ? k[i] : 0;
            inner[i] = (byte) (b ^ 0x36);
            outer[i] = (byte) (b ^ 0x5c);
        }
        System.arraycopy(message, 0, inner, 64, message.length);
        System.arraycopy(sha256(inner), 0, outer, 64, 32);
        return sha256(outer);
    }

    static byte[] sha256(byte[] data) {
        long bits = (long) data.length * 8;
        int padded = ((data.length + 8) / 64 + 1) * 64; // data, 0x80, zeros, 64-bit length
        byte[] m = new byte[padded];
        System.arraycopy(data, 0, m, 0, data.length);
        m[data.length] = (byte) 0x80;
        for (int i = 0; i < 8; i++) {
            m[padded - 1 - i] = (byte) (bits >>> (8 * i));
        }
        int[] h = H0.clone();
        int[] w = new int[64];
        for (int off = 0; off < padded; off += 64) {
            for (int t = 0; t < 16; t++) {
                int j = off + 4 * t;
                w[t] = (m[j] & 0xff) << 24 | (m[j + 1] & 0xff) << 16 | (m[j + 2] & 0xff) << 8 | (m[j + 3] & 0xff);
            }
            for (int t = 16; t < 64; t++) {
                int s0 = Integer.rotateRight(w[t - 15], 7) ^ Integer.rotateRight(w[t - 15], 18) ^ (w[t - 15] >>> 3);
                int s1 = Integer.rotateRight(w[t - 2], 17) ^ Integer.rotateRight(w[t - 2], 19) ^ (w[t - 2] >>> 10);
                w[t] = w[t - 16] + s0 + w[t - 7] + s1;
            }
            int a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
            for (int t = 0; t < 64; t++) {
                int sum1 = Integer.rotateRight(e, 6) ^ Integer.rotateRight(e, 11) ^ Integer.rotateRight(e, 25);
                int ch = (e & f) ^ (~e & g);
                int t1 = hh + sum1 + ch + K[t] + w[t];
                int sum0 = Integer.rotateRight(a, 2) ^ Integer.rotateRight(a, 13) ^ Integer.rotateRight(a, 22);
                int maj = (a & b) ^ (a & c) ^ (b & c);
                int t2 = sum0 + maj;
                hh = g;
                g = f;
                f = e;
                e = d + t1;
                d = c;
                c = b;
                b = a;
                a = t1 + t2;
            }
            h[0] += a;
            h[1] += b;
            h[2] += c;
            h[3] += d;
            h[4] += e;
            h[5] += f;
            h[6] += g;
            h[7] += hh;
        }
        byte[] out = new byte[32];
        for (int i = 0; i < 8; i++) {
            out[4 * i] = (byte) (h[i] >>> 24);
            out[4 * i + 1] = (byte) (h[i] >>> 16);
            out[4 * i + 2] = (byte) (h[i] >>> 8);
            out[4 * i + 3] = (byte) h[i];
        }
        return out;
    }

    private static boolean isPrime(int p) {
        for (int d = 2; d * d <= p; d++) {
            if (p % d == 0) {
                return false;
            }
        }
        return true;
    }

    private static int fraction32(double x) {
        return (int) (long) ((x - Math.floor(x)) * 4294967296.0);
    }

    private static String hex(byte[] b, int n) {
        char[] c = new char[n * 2];
        for (int i = 0; i < n; i++) {
            c[2 * i] = HEX[(b[i] >> 4) & 0xf];
            c[2 * i + 1] = HEX[b[i] & 0xf];
        }
        return new String(c);
    }
}
