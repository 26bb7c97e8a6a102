package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.transport.UnixAddress;

/** The derivation of the bus ID and the listeners' guids from the bus's one GUID (BusIds). */
class BusIdsTest {
    private static final String UUID = "[0-9a-f]{32}";

    @Test
    void sha256AndHmacAgreeWithTheJdk() throws Exception {
        Random r = new Random(42);
        // Every length around the 55/56/64-byte padding edges, and a few blocks more.
        for (int len = 0; len < 200; len++) {
            byte[] data = new byte[len];
            r.nextBytes(data);
            assertArrayEquals(MessageDigest.getInstance("SHA-256").digest(data), BusIds.sha256(data), "length " + len);
            byte[] key = new byte[len % 90]; // keys shorter and longer than the 64-byte block
            r.nextBytes(key);
            if (key.length == 0) {
                continue; // SecretKeySpec refuses an empty key
            }
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            assertArrayEquals(mac.doFinal(data), BusIds.hmacSha256(key, data), "key " + key.length + ", length " + len);
        }
        // FIPS 180-4's example "abc".
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                hex(BusIds.sha256("abc".getBytes(StandardCharsets.US_ASCII))));
    }

    @Test
    void aNewGuidIsAUuidWithTheTimeInItsLast8Digits() {
        long before = System.currentTimeMillis() / 1000;
        String g = BusIds.newGuid();
        long after = System.currentTimeMillis() / 1000;
        assertTrue(g.matches(UUID), g);
        long stamp = Long.parseLong(g.substring(24), 16);
        assertTrue(stamp >= before && stamp <= after, g + " vs " + before + ".." + after);
        assertNotEquals(g, BusIds.newGuid());
    }

    @Test
    void derivedValuesAreStableDistinctAndKeepTheTimestamp() {
        String g = BusIds.newGuid();
        UnixAddress a = UnixAddress.path("/run/user/1000/bus", null);
        UnixAddress b = UnixAddress.path("/tmp/dbus-AbCdEf1234", null);
        UnixAddress abs = UnixAddress.abstractName("/run/user/1000/bus", null); // same text, other kind
        String busId = BusIds.busId(g);
        List<String> all = List.of(g, busId, BusIds.listenerGuid(g, a), BusIds.listenerGuid(g, b),
                BusIds.listenerGuid(g, abs));
        for (String v : all) {
            assertTrue(v.matches(UUID), v);
            assertEquals(g.substring(24), v.substring(24), "the GUID's timestamp: " + v);
        }
        assertEquals(all.size(), new HashSet<>(all).size(), "all distinct: " + all);

        // Stable: the same inputs give the same values (a hand-over derives them again), and a
        // guid= key on the bound address does not enter the derivation.
        assertEquals(busId, BusIds.busId(g));
        assertEquals(busId, BusIds.busId(g.toUpperCase()));
        assertEquals(BusIds.listenerGuid(g, a), BusIds.listenerGuid(g, UnixAddress.path("/run/user/1000/bus", g)));

        // Another bus's GUID gives other values.
        String other = BusIds.newGuid();
        assertNotEquals(busId, BusIds.busId(other));
        assertNotEquals(BusIds.listenerGuid(g, a), BusIds.listenerGuid(other, a));
        assertThrows(IllegalArgumentException.class, () -> BusIds.busId("0123"));
    }

    @Test
    void manyBusesNeverShareADerivedValue() {
        Set<String> seen = new HashSet<>();
        UnixAddress a = UnixAddress.path("/run/user/1000/bus", null);
        for (int i = 0; i < 2000; i++) {
            String g = BusIds.newGuid();
            assertTrue(seen.add(g) & seen.add(BusIds.busId(g)) & seen.add(BusIds.listenerGuid(g, a)), g);
        }
    }

    private static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02x", x));
        }
        return sb.toString();
    }
}
