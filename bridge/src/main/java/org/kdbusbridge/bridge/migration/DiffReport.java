// Invariants: immutable; matches() is true exactly when every stream is equal line for line,
// the error-name multisets are equal and (when both are known) the exit codes are equal;
// render() names, per differing stream, only the first divergent message.
package org.kdbusbridge.bridge.migration;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/** The differences between a reference transcript (dbus-daemon) and ours. */
public final class DiffReport {
    /** How the first divergent message of a stream differs. */
    public enum Kind {
        /** The reference has a message here that ours lacks (the rest lines up again). */
        MISSING_IN_OURS,
        /** Ours has an extra message here (the rest lines up again). */
        EXTRA_IN_OURS,
        /** Both have a message here, and they differ. */
        DIFFERS
    }

    /** The first divergence of one stream; a null line means "the stream ended". */
    public record StreamDiff(String stream, int index, Kind kind, String reference, String ours) {
        public String render() {
            StringBuilder sb = new StringBuilder(stream).append(": message ").append(index + 1).append(' ');
            switch (kind) {
                case MISSING_IN_OURS -> sb.append("missing on our bus\n    dbus-daemon: ").append(reference);
                case EXTRA_IN_OURS -> sb.append("only on our bus\n    kdbus-bridge: ").append(ours);
                default -> sb.append("differs\n    dbus-daemon:  ").append(reference == null ? "<end of stream>" : reference)
                        .append("\n    kdbus-bridge: ").append(ours == null ? "<end of stream>" : ours);
            }
            return sb.toString();
        }
    }

    private final List<StreamDiff> streams;
    private final List<String> errorsOnlyInReference;
    private final List<String> errorsOnlyInOurs;
    private final Integer referenceExit;
    private final Integer oursExit;
    private final Map<AllowList.Rule, Integer> allowances;

    private DiffReport(List<StreamDiff> streams, List<String> onlyRef, List<String> onlyOurs, Integer refExit,
                       Integer oursExit, Map<AllowList.Rule, Integer> allowances) {
        this.streams = List.copyOf(streams);
        this.errorsOnlyInReference = List.copyOf(onlyRef);
        this.errorsOnlyInOurs = List.copyOf(onlyOurs);
        this.referenceExit = refExit;
        this.oursExit = oursExit;
        this.allowances = Map.copyOf(allowances);
    }

    /** Compares two normalised transcripts; exit codes may be null (not compared). */
    public static DiffReport compare(NormalizedTranscript reference, NormalizedTranscript ours,
                                     Integer referenceExit, Integer oursExit) {
        Set<String> keys = new LinkedHashSet<>(reference.streams().keySet());
        keys.addAll(ours.streams().keySet());
        List<StreamDiff> diffs = new ArrayList<>();
        for (String k : keys) {
            StreamDiff d = firstDivergence(k, reference.streams().getOrDefault(k, List.of()),
                    ours.streams().getOrDefault(k, List.of()));
            if (d != null) diffs.add(d);
        }
        Map<String, Integer> counts = new HashMap<>();
        reference.errors().forEach(e -> counts.merge(e, 1, Integer::sum));
        List<String> onlyOurs = new ArrayList<>();
        for (String e : ours.errors()) {
            if (counts.getOrDefault(e, 0) > 0) {
                counts.merge(e, -1, Integer::sum);
            } else {
                onlyOurs.add(e);
            }
        }
        List<String> onlyRef = new ArrayList<>();
        for (String e : reference.errors()) {
            if (counts.getOrDefault(e, 0) > 0) {
                counts.merge(e, -1, Integer::sum);
                onlyRef.add(e);
            }
        }
        Map<AllowList.Rule, Integer> allowed = new HashMap<>(reference.allowances());
        ours.allowances().forEach((r, n) -> allowed.merge(r, n, Integer::sum));
        return new DiffReport(diffs, onlyRef, onlyOurs, referenceExit, oursExit, allowed);
    }

    static StreamDiff firstDivergence(String stream, List<String> ref, List<String> ours) {
        int n = Math.min(ref.size(), ours.size());
        int i = 0;
        while (i < n && ref.get(i).equals(ours.get(i))) i++;
        if (i == ref.size() && i == ours.size()) return null;
        if (i == ours.size()) return new StreamDiff(stream, i, Kind.MISSING_IN_OURS, ref.get(i), null);
        if (i == ref.size()) return new StreamDiff(stream, i, Kind.EXTRA_IN_OURS, null, ours.get(i));
        if (ref.subList(i + 1, ref.size()).equals(ours.subList(i, ours.size()))) {
            return new StreamDiff(stream, i, Kind.MISSING_IN_OURS, ref.get(i), null);
        }
        if (ref.subList(i, ref.size()).equals(ours.subList(i + 1, ours.size()))) {
            return new StreamDiff(stream, i, Kind.EXTRA_IN_OURS, null, ours.get(i));
        }
        return new StreamDiff(stream, i, Kind.DIFFERS, ref.get(i), ours.get(i));
    }

    public List<StreamDiff> streamDiffs() { return streams; }
    public List<String> errorsOnlyInReference() { return errorsOnlyInReference; }
    public List<String> errorsOnlyInOurs() { return errorsOnlyInOurs; }
    public Integer referenceExit() { return referenceExit; }
    public Integer oursExit() { return oursExit; }
    public Map<AllowList.Rule, Integer> allowances() { return allowances; }

    public boolean exitCodesDiffer() {
        return referenceExit != null && oursExit != null && !Objects.equals(referenceExit, oursExit);
    }

    public boolean matches() {
        return streams.isEmpty() && errorsOnlyInReference.isEmpty() && errorsOnlyInOurs.isEmpty() && !exitCodesDiffer();
    }

    /** A human-readable report (what `kdbus-bridge diff` prints). */
    public String render() {
        StringBuilder sb = new StringBuilder();
        if (matches()) {
            sb.append("IDENTICAL: the runs match");
            if (referenceExit != null) sb.append(" (exit status ").append(referenceExit).append(" on both)");
            sb.append('\n');
        } else {
            sb.append("DIFFERENT: ").append(streams.size()).append(" stream(s) diverge\n");
            if (exitCodesDiffer()) {
                sb.append("exit status: dbus-daemon ").append(referenceExit).append(", kdbus-bridge ").append(oursExit).append('\n');
            }
            for (StreamDiff d : streams) sb.append(d.render()).append('\n');
            if (!errorsOnlyInReference.isEmpty() || !errorsOnlyInOurs.isEmpty()) {
                sb.append("error names that differ:\n");
                for (String e : errorsOnlyInReference) sb.append("    only on dbus-daemon:  ").append(e).append('\n');
                for (String e : errorsOnlyInOurs) sb.append("    only on kdbus-bridge: ").append(e).append('\n');
            }
        }
        if (!allowances.isEmpty()) {
            sb.append("allowed differences applied (allowed-differences.txt):\n");
            allowances.entrySet().stream().sorted(Map.Entry.comparingByKey((a, b) -> Integer.compare(a.line(), b.line())))
                    .forEach(e -> sb.append("    ").append(e.getValue()).append("x ").append(e.getKey()).append('\n'));
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return render();
    }
}
