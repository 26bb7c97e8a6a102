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

    @Test
    void tapParsingAndComparison() {
        Tap ref = Tap.parse("# comment\n1..3\nok 1 /a\nok 2 /b # SKIP uid 0 is immune\nok 3 - shell case\n");
        assertEquals(3, ref.planned());
        assertEquals(Tap.Status.SKIP, ref.cases().get("/b").status());
        assertEquals("uid 0 is immune", ref.cases().get("/b").reason());
        assertEquals(Tap.Status.PASS, ref.cases().get("shell case").status());
        assertEquals(List.of(), ref.failuresAgainst(ref));

        Tap same = Tap.parse("1..3\nok 1 /a\nok 2 /b # SKIP uid 0 is immune\nok 3 - shell case\n");
        assertEquals(List.of(), same.failuresAgainst(ref));
        Tap otherSkip = Tap.parse("1..3\nok 1 /a # SKIP not supported\nok 2 /b\nok 3 - shell case\n");
        assertEquals(1, otherSkip.failuresAgainst(ref).size(), otherSkip.failuresAgainst(ref).toString());
        Tap bailed = Tap.parse("1..3\nok 1 /a\nBail out! assertion failed\n");
        List<String> f = bailed.failuresAgainst(ref);
        assertEquals(List.of("planned 3 cases, saw 1", "Bail out! assertion failed",
                "missing (the reference ran it): /b", "missing (the reference ran it): shell case"), f);
        Tap failed = Tap.parse("1..3\nok 1 /a\nnot ok 2 /b\nok 3 - shell case\n");
        assertEquals(List.of("FAIL: /b"), failed.failuresAgainst(ref));
    }
}
