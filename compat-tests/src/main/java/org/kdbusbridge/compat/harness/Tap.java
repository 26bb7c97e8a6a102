package org.kdbusbridge.compat.harness;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The outcome of one TAP stream (what GLib test programs print with {@code --tap}, and the
 * shell tests of dbus): the plan, each case's result, and a bail-out if one happened.
 */
public record Tap(int planned, Map<String, Case> cases, String bailOut, List<String> problems) {

    public enum Status { PASS, FAIL, SKIP, TODO }

    /** One test point; {@code reason} is the text after {@code # SKIP} / {@code # TODO}. */
    public record Case(int number, String name, Status status, String reason) {}

    private static final Pattern PLAN = Pattern.compile("^1\\.\\.(\\d+)(\\s*#.*)?$");
    private static final Pattern POINT = Pattern.compile("^(not ok|ok)\\s+(\\d+)\\s*(?:-\\s*)?([^#]*?)\\s*(?:#\\s*(SKIP|TODO)\\b\\s*(.*))?$",
            Pattern.CASE_INSENSITIVE);

    public static Tap parse(String stdout) {
        int planned = -1;
        Map<String, Case> cases = new LinkedHashMap<>();
        String bail = null;
        List<String> problems = new ArrayList<>();
        for (String line : stdout.split("\n", -1)) {
            if (line.startsWith("Bail out!")) {
                if (bail == null) {
                    bail = line;
                }
                continue;
            }
            Matcher p = PLAN.matcher(line);
            if (p.matches()) {
                if (planned >= 0) {
                    problems.add("second plan line: " + line);
                }
                planned = Integer.parseInt(p.group(1));
                continue;
            }
            Matcher m = POINT.matcher(line);
            if (!m.matches()) {
                continue;
            }
            int n = Integer.parseInt(m.group(2));
            String name = m.group(3).isBlank() ? "#" + n : m.group(3).trim();
            Status status;
            String directive = m.group(4);
            if (directive != null && directive.equalsIgnoreCase("SKIP")) {
                status = Status.SKIP;
            } else if (directive != null) {
                status = Status.TODO;
            } else {
                status = m.group(1).equalsIgnoreCase("ok") ? Status.PASS : Status.FAIL;
            }
            if (cases.put(name, new Case(n, name, status, m.group(5) == null ? "" : m.group(5).trim())) != null) {
                problems.add("case reported twice: " + name);
            }
        }
        if (planned < 0) {
            problems.add("no plan line");
        } else if (cases.size() != planned) {
            problems.add("planned " + planned + " cases, saw " + cases.size());
        }
        return new Tap(planned, cases, bail, problems);
    }

    /**
     * What is wrong with this run judged against a reference run of the same program: every
     * case must pass, or be skipped for the same reason as in the reference. Empty means good.
     */
    public List<String> failuresAgainst(Tap reference) {
        List<String> out = new ArrayList<>(problems);
        if (bailOut != null) {
            out.add(bailOut);
        }
        for (Case c : cases.values()) {
            switch (c.status()) {
                case PASS -> { }
                case SKIP -> {
                    Case r = reference.cases().get(c.name());
                    if (r == null || r.status() != Status.SKIP || !r.reason().equals(c.reason())) {
                        out.add("skipped here (" + c.reason() + ") but " + (r == null ? "absent" : r.status()
                                + (r.reason().isEmpty() ? "" : " (" + r.reason() + ")")) + " on the reference: " + c.name());
                    }
                }
                default -> out.add(c.status() + ": " + c.name());
            }
        }
        for (String name : reference.cases().keySet()) {
            if (!cases.containsKey(name)) {
                out.add("missing (the reference ran it): " + name);
            }
        }
        return out;
    }
}
