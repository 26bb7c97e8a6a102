package org.kdbusbridge.compat.harness;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** Checks of the harness itself (no bus needed). */
class HarnessSelfTest {

    @Test
    void messageRoundTrip() {
        Map<String, Object> dict = new LinkedHashMap<>();
        dict.put("k", new Wire.Variant("u", 7L));
        Message m = Message.call("com.example.D", "/a/b", "com.example.I", "M")
                .body("sua{sv}(yi)as", "hello", 42L, dict, List.of((byte) 3, -5), List.of("x", "y"));
        Message d = Message.decode(m.encode(9));
        assertEquals(9, d.serial);
        assertEquals("com.example.D", d.destination);
        assertEquals("/a/b", d.path);
        assertEquals("sua{sv}(yi)as", d.signature);
        assertEquals(List.of("hello", 42L, dict, List.of((byte) 3, -5), List.of("x", "y")), d.args());
        assertEquals(m.encode(9).length, Message.totalLength(java.util.Arrays.copyOf(m.encode(9), 16)));
    }

    @Test
    void normalizerMapsUniqueNamesByFirstAppearance() {
        Normalizer n = new Normalizer().label(":1.7", "A");
        assertEquals("x :U1 :A :U1 :U2 serial=N reply_serial=3",
                n.line("x :1.9 :1.7 :1.9 :1.10 serial=12 reply_serial=3"));
    }

    @Test
    void addressParsingAndBusSelection() {
        assertEquals("/tmp/x y/bus", Addresses.unixPath("unix:path=/tmp/x%20y/bus,guid=0123"));
        assertThrows(IllegalArgumentException.class, () -> Addresses.unixPath("tcp:host=localhost"));
        assertEquals(BusKind.KDBUS_BRIDGE, BusKind.parse("ours"));
        assertEquals(BusKind.DBUS_DAEMON, BusKind.parse("DBUS_DAEMON"));
    }

    @Test
    void cmdKillsOnTimeout() {
        Cmd.Result r = Cmd.run(List.of("cat", "/dev/zero"), java.time.Duration.ofMillis(300));
        assertEquals(true, r.timedOut());
        Cmd.Result ok = Cmd.run(List.of("echo", "hi"), java.time.Duration.ofSeconds(10));
        assertEquals("hi\n", ok.stdout());
    }
}
