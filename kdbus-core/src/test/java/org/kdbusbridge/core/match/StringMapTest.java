package org.kdbusbridge.core.match;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class StringMapTest {

    @Test
    void stringMapBehavesLikeAHashMap() {
        Random rnd = new Random(11);
        StringMap map = new StringMap();
        Map<String, Object> ref = new HashMap<>();
        for (int step = 0; step < 200_000; step++) {
            int range = step < 100_000 ? 3000 : 40; // grow large, then shrink back
            if (step == 100_000) {
                for (String k : new ArrayList<>(ref.keySet())) {
                    if (Integer.parseInt(k.substring(3)) >= range) {
                        map.put(k, null);
                        ref.remove(k);
                    }
                }
            }
            String key = "/k/" + rnd.nextInt(range);
            if (rnd.nextInt(3) == 0) {
                map.put(key, null);
                ref.remove(key);
            } else if (rnd.nextBoolean()) {
                Object v = new Object();
                map.put(new String(key), v); // equal, not identical, keys
                ref.put(key, v);
            }
            assertEquals(ref.get(key), map.get(key));
            String probe = "/k/" + rnd.nextInt(range) + "/tail";
            int len = probe.length() - 5;
            assertEquals(ref.get(probe.substring(0, len)), map.getPrefix(probe, len, probe.substring(0, len).hashCode()));
            assertEquals(ref.size(), map.size());
            if (step % 97 == 0) {
                map.checkInvariants();
            }
        }
        map.checkInvariants();
        IdentityHashMap<Object, String> seen = new IdentityHashMap<>();
        for (int i = 0; i < map.capacity(); i++) {
            if (map.keyAt(i) != null) {
                assertEquals(ref.get(map.keyAt(i)), map.valueAt(i));
                seen.put(map.valueAt(i), map.keyAt(i));
            }
        }
        assertEquals(ref.size(), seen.size());
        assertTrue(map.capacity() <= 256, "shrank to " + map.capacity());
        for (String k : new ArrayList<>(ref.keySet())) {
            map.put(k, null);
        }
        assertEquals(0, map.size());
        assertEquals(0, map.capacity());
        assertNull(map.get("/k/1"));
    }

    @Test
    void equalHashesProbeAndShiftBack() {
        // "Aa" and "BB" have the same String hash: they share a home slot and a probe run.
        StringMap map = new StringMap();
        String[] keys = {"Aa", "BB", "AaAa", "AaBB", "BBAa", "BBBB"};
        for (String k : keys) {
            map.put(k, k + "!");
            map.checkInvariants();
        }
        for (String k : keys) {
            assertEquals(k + "!", map.get(k));
        }
        map.put("BB", null);
        map.checkInvariants();
        assertNull(map.get("BB"));
        assertEquals("Aa!", map.get("Aa"));
        assertEquals("AaBB!", map.getPrefix("AaBB/x", 4, "AaBB".hashCode()));
        assertEquals(keys.length - 1, map.size());
    }
}
