// Invariants: pure tests of DiffReport on hand-made normalised transcripts; each asserts the
// kind, position and lines of the first divergence it expects.
package org.kdbusbridge.bridge.migration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

class DiffReportTest {
    static NormalizedTranscript t(Map<String, List<String>> streams, List<String> errors) {
        return new NormalizedTranscript(streams, errors, Map.of(), streams.values().stream().mapToInt(List::size).sum());
    }

    static Map<String, List<String>> one(String key, String... lines) {
        Map<String, List<String>> m = new LinkedHashMap<>();
        m.put(key, List.of(lines));
        return m;
    }

    @Test
    void aMissingMessageIsNamedOnce() {
        DiffReport r = DiffReport.compare(t(one("peer :A", "a", "b", "c"), List.of()), t(one("peer :A", "a", "c"), List.of()), 0, 0);
        assertFalse(r.matches());
        assertEquals(1, r.streamDiffs().size());
        DiffReport.StreamDiff d = r.streamDiffs().get(0);
        assertEquals(DiffReport.Kind.MISSING_IN_OURS, d.kind());
        assertEquals(1, d.index());
        assertEquals("b", d.reference());
        assertTrue(r.render().contains("peer :A: message 2 missing on our bus"), r.render());
    }

    @Test
    void extraDifferentAndEndedStreams() {
        assertEquals(DiffReport.Kind.EXTRA_IN_OURS, DiffReport.firstDivergence("s", List.of("a"), List.of("x", "a")).kind());
        DiffReport.StreamDiff d = DiffReport.firstDivergence("s", List.of("a", "b", "c"), List.of("a", "x", "y"));
        assertEquals(DiffReport.Kind.DIFFERS, d.kind());
        assertEquals("x", d.ours());
        assertEquals(DiffReport.Kind.MISSING_IN_OURS, DiffReport.firstDivergence("s", List.of("a", "b"), List.of("a")).kind());
        assertEquals(null, DiffReport.firstDivergence("s", List.of("a"), List.of("a")));
    }

    @Test
    void errorNamesAndExitCodesAreCompared() {
        NormalizedTranscript a = t(one("x", "1"), List.of("org.E.One to :A", "org.E.Two to :A"));
        NormalizedTranscript b = t(one("x", "1"), List.of("org.E.One to :A", "org.E.Three to :A"));
        DiffReport r = DiffReport.compare(a, b, 0, 0);
        assertEquals(List.of("org.E.Two to :A"), r.errorsOnlyInReference());
        assertEquals(List.of("org.E.Three to :A"), r.errorsOnlyInOurs());
        assertFalse(r.matches());
        DiffReport exit = DiffReport.compare(a, a, 0, 1);
        assertTrue(exit.exitCodesDiffer());
        assertFalse(exit.matches());
        assertTrue(exit.render().contains("exit status: dbus-daemon 0, kdbus-bridge 1"), exit.render());
        assertTrue(DiffReport.compare(a, a, 3, 3).matches());
    }
}
