// Invariants: immutable; streams keep their lines in bus order; stream keys and lines contain
// no unique name, serial, GUID or timestamp of the run they came from, so two transcripts of
// the same behaviour are equal() whatever the run.
package org.kdbusbridge.bridge.migration;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A transcript after {@link Normalizer}: per-peer streams of rendered messages, the errors
 * the bus path carried, and how often each allow-list rule was applied.
 */
public final class NormalizedTranscript {
    private final Map<String, List<String>> streams;
    private final List<String> errors;
    private final Map<AllowList.Rule, Integer> allowances;
    private final int messages;

    NormalizedTranscript(Map<String, List<String>> streams, List<String> errors,
                         Map<AllowList.Rule, Integer> allowances, int messages) {
        Map<String, List<String>> copy = new LinkedHashMap<>();
        streams.forEach((k, v) -> copy.put(k, List.copyOf(v)));
        this.streams = Collections.unmodifiableMap(copy);
        this.errors = List.copyOf(errors);
        this.allowances = Collections.unmodifiableMap(new LinkedHashMap<>(allowances));
        this.messages = messages;
    }

    /** Stream key → rendered messages, streams in order of first appearance. */
    public Map<String, List<String>> streams() { return streams; }

    /** "ErrorName to :A (re iface.member)" for every error message, in bus order. */
    public List<String> errors() { return errors; }

    /** Each allow-list rule that changed something, with the number of messages it changed. */
    public Map<AllowList.Rule, Integer> allowances() { return allowances; }

    /** Messages kept after removing the tools' own traffic and dropped calls. */
    public int messageCount() { return messages; }

    /** Every stream, one "key: line" per message (for logs and debugging). */
    public String render() {
        StringBuilder sb = new StringBuilder();
        streams.forEach((k, lines) -> {
            sb.append(k).append('\n');
            for (String l : lines) sb.append("    ").append(l).append('\n');
        });
        return sb.toString();
    }

    @Override
    public String toString() {
        return render();
    }
}
