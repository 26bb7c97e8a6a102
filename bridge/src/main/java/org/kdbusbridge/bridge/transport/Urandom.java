package org.kdbusbridge.bridge.transport;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.SecureRandom;

/**
 * Random bytes for the bus GUID and socket names, read from /dev/urandom as dbus-daemon does.
 * Not a JCA SecureRandom: seeding one costs a few ms of start-up and loads the provider classes.
 * SecureRandom only if /dev/urandom cannot be read.
 */
public final class Urandom {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private Urandom() {
    }

    public static byte[] bytes(int n) {
        byte[] b = new byte[n];
        try (InputStream in = new FileInputStream("/dev/urandom")) {
            int off = 0;
            while (off < n) {
                int r = in.read(b, off, n - off);
                if (r < 0) {
                    throw new IOException("end of /dev/urandom");
                }
                off += r;
            }
            return b;
        } catch (IOException e) {
            new SecureRandom().nextBytes(b);
            return b;
        }
    }

    /** {@code n} random bytes as 2n lower-case hex digits (a D-Bus GUID is 16). */
    public static String hex(int n) {
        byte[] b = bytes(n);
        char[] c = new char[n * 2];
        for (int i = 0; i < n; i++) {
            c[2 * i] = HEX[(b[i] >> 4) & 0xf];
            c[2 * i + 1] = HEX[b[i] & 0xf];
        }
        return new String(c);
    }
}
