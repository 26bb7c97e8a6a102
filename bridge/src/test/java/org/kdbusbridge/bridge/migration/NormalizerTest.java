// Invariants: synthetic transcripts only (no bus): each test builds messages with
// MessageBuilder, normalises them and asserts on the rendered streams or the report.
package org.kdbusbridge.bridge.migration;

import org.kdbusbridge.bridge.client.BusMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;

class NormalizerTest {
    static final String D = BusMessage.DRIVER;
    static final String P = "/org/freedesktop/DBus";

    static BusMessage msg(byte[] raw) {
        try {
            return BusMessage.decode(raw);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    static byte[] s(String... strings) {
        BodyWriter w = new BodyWriter();
        for (String x : strings) w.writeString(x);
        return w.toByteArray();
    }

    /** A client u1 that says Hello, emits a signal and calls a peer u2 that answers. */
    static List<BusMessage> run(String u1, String u2, long s1, long s2, boolean signalFirst) {
        List<BusMessage> l = new ArrayList<>();
        l.add(msg(MessageBuilder.methodCall(1, 0, D, P, D, "Hello", u1, null, null)));
        l.add(msg(MessageBuilder.methodReturn(7, 1, u1, D, "s", s(u1))));
        l.add(msg(MessageBuilder.signal(8, P, D, "NameOwnerChanged", null, D, "sss", s(u1, "", u1))));
        BusMessage sig = msg(MessageBuilder.signal(s1, "/a", "a.b", "Sig", null, u1, "s", s("x")));
        BusMessage call = msg(MessageBuilder.methodCall(s1 + 1, 0, u2, "/a", "a.b", "Do", u1, "s", s(u2)));
        BusMessage ret = msg(MessageBuilder.methodReturn(s2, s1 + 1, u1, u2, null, null));
        // u2's broadcast signal may interleave with u1's traffic (another peer: no order)
        BusMessage other = msg(MessageBuilder.signal(s2 + 1, "/b", "a.b", "Other", null, u2, null, null));
        if (signalFirst) l.add(other);
        l.add(sig);
        if (!signalFirst) l.add(other);
        l.add(call);
        l.add(ret);
        return l;
    }

    @Test
    void runsThatDifferOnlyInNamesSerialsAndCrossPeerOrderAreEqual() {
        NormalizedTranscript a = new Normalizer(AllowList.empty(), Set.of()).normalize(run(":1.4", ":1.9", 2, 40, true));
        NormalizedTranscript b = new Normalizer(AllowList.empty(), Set.of()).normalize(run(":1.17", ":1.3", 5, 3, false));
        assertEquals(a.streams(), b.streams(), a.render() + "\n---\n" + b.render());
        assertTrue(DiffReport.compare(a, b, 0, 0).matches());
        List<String> peerA = a.streams().get("peer :A");
        assertEquals(List.of("call c1 -> org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.Hello () []",
                "signal -> * /a a.b.Sig (s) [\"x\"]",
                "call c2 -> :B /a a.b.Do (s) [\":B\"]"), peerA);
        assertEquals(List.of("signal -> * /b a.b.Other () []", "return re :A.c2 (a.b.Do) -> :A () []"), a.streams().get("peer :B"));
    }

    @Test
    void ownTrafficIsRemovedAndGuidsMasked() {
        List<BusMessage> l = new ArrayList<>(run(":1.4", ":1.9", 2, 40, true));
        l.add(0, msg(MessageBuilder.signal(3, P, D, "NameOwnerChanged", null, D, "sss", s(":1.0", ":1.0", ""))));
        l.add(msg(MessageBuilder.methodReturn(9, 3, ":1.4", D, "s", s("0123456789abcdef0123456789abcdef"))));
        NormalizedTranscript t = new Normalizer(AllowList.empty(), Set.of(":1.0")).normalize(l);
        assertFalse(t.render().contains(":1."), t.render());
        assertTrue(t.render().contains("<guid>"), t.render());
        assertEquals("peer :A", t.streams().keySet().iterator().next());
    }

    @Test
    void allowListMasksDropsAndCountsDriverDifferences() {
        AllowList allow = AllowList.parse("mask-reply org.freedesktop.DBus.GetId -- guid\n"
                + "drop-string x.Vendor1 -- ours\n"
                + "drop-call org.freedesktop.DBus.Debug.Stats.* -- stats\n"
                + "sort-reply org.freedesktop.DBus.ListNames -- unordered\n");
        List<BusMessage> ours = List.of(
                msg(MessageBuilder.methodCall(2, 0, D, P, D, "GetId", ":1.1", null, null)),
                msg(MessageBuilder.methodReturn(5, 2, ":1.1", D, "s", s("ffff"))),
                msg(MessageBuilder.methodCall(3, 0, D, P, "org.freedesktop.DBus.Debug.Stats", "GetStats", ":1.1", null, null)),
                msg(MessageBuilder.methodReturn(6, 3, ":1.1", D, null, null)),
                msg(MessageBuilder.methodCall(4, 0, D, P, D, "ListNames", ":1.1", null, null)),
                msg(MessageBuilder.methodReturn(7, 4, ":1.1", D, "as",
                        new BodyWriter().beginArray('s').writeString("b").writeString("x.Vendor1").writeString("a").endArray().toByteArray())));
        List<BusMessage> ref = List.of(
                msg(MessageBuilder.methodCall(2, 0, D, P, D, "GetId", ":1.1", null, null)),
                msg(MessageBuilder.methodReturn(5, 2, ":1.1", D, "s", s("eeee"))),
                msg(MessageBuilder.methodCall(3, 0, D, P, D, "ListNames", ":1.1", null, null)),
                msg(MessageBuilder.methodReturn(7, 3, ":1.1", D, "as",
                        new BodyWriter().beginArray('s').writeString("a").writeString("b").endArray().toByteArray())));
        NormalizedTranscript a = new Normalizer(allow, Set.of()).normalize(ref);
        NormalizedTranscript b = new Normalizer(allow, Set.of()).normalize(ours);
        DiffReport r = DiffReport.compare(a, b, 0, 0);
        assertTrue(r.matches(), r.render() + a.render() + b.render());
        assertEquals(4, b.allowances().size(), b.allowances().toString());
        assertTrue(r.render().contains("drop-call org.freedesktop.DBus.Debug.Stats.* -- stats"), r.render());
    }

    @Test
    void allowListLinesNeedAReason() {
        assertThrows(IllegalArgumentException.class, () -> AllowList.parse("mask-reply a.b.C\n"));
        assertThrows(IllegalArgumentException.class, () -> AllowList.parse("frobnicate a -- why\n"));
        assertFalse(AllowList.standard().rules().isEmpty());
        AllowList.standard().rules().forEach(rule -> assertFalse(rule.reason().isBlank(), rule.toString()));
    }

    @Test
    void labelsGoPastZ() {
        assertEquals("A", Normalizer.letters(0));
        assertEquals("Z", Normalizer.letters(25));
        assertEquals("AA", Normalizer.letters(26));
    }
}
