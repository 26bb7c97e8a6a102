package org.kdbusbridge.compat.harness;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Makes transcripts comparable between buses: unique names ({@code :1.N}) become {@code :U0, :U1, ...} in
 * order of first appearance, or the label given for a known connection; serials and GUIDs are masked.
 */
public final class Normalizer {
    private static final Pattern UNIQUE = Pattern.compile(":\\d+\\.\\d+");
    private static final Pattern SERIAL = Pattern.compile("\\b(serial)=\\d+");
    private static final Pattern GUID = Pattern.compile("\\b[0-9a-f]{32}\\b");

    private final Map<String, String> names = new LinkedHashMap<>();

    /** Pre-assigns a readable label (e.g. "A") to a connection's unique name. */
    public Normalizer label(String uniqueName, String label) {
        if (uniqueName != null) {
            names.put(uniqueName, ":" + label);
        }
        return this;
    }

    public String line(String s) {
        Matcher m = UNIQUE.matcher(s);
        StringBuilder sb = new StringBuilder();
        while (m.find()) {
            String u = m.group();
            String n = names.computeIfAbsent(u, k -> ":U" + names.size());
            m.appendReplacement(sb, Matcher.quoteReplacement(n));
        }
        m.appendTail(sb);
        String out = SERIAL.matcher(sb.toString()).replaceAll("$1=N");
        return GUID.matcher(out).replaceAll("<guid>");
    }

    public List<String> lines(List<String> in) {
        List<String> out = new ArrayList<>();
        for (String s : in) {
            out.add(line(s));
        }
        return out;
    }
}
