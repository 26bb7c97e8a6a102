// Invariants: immutable after parsing; every rule has a kind, an argument and a non-empty
// reason (a line without one is a parse error, never silently ignored); rules only ever touch
// messages the bus driver sends or calls addressed to the driver, and they are applied to both
// transcripts alike, so they can hide a difference but never create one.
package org.kdbusbridge.bridge.migration;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The known, intended differences between our bus and dbus-daemon, read from ONE file
 * ({@code allowed-differences.txt} next to this class; its header documents the grammar).
 */
public final class AllowList {
    public static final String RESOURCE = "allowed-differences.txt";

    public enum Kind { DROP_CALL, MASK_REPLY, MASK_PROPERTY, DROP_STRING, SORT_REPLY }

    /** One line of the file. */
    public record Rule(Kind kind, String argument, String reason, int line) {
        /** For DROP_CALL, MASK_REPLY and SORT_REPLY: does the rule cover {@code iface.member}? */
        public boolean coversMember(String qualified) {
            if (qualified == null) return false;
            if (argument.endsWith(".*")) {
                return qualified.startsWith(argument.substring(0, argument.length() - 1));
            }
            return argument.equals(qualified);
        }

        @Override
        public String toString() {
            return kind.name().toLowerCase().replace('_', '-') + " " + argument + " -- " + reason;
        }
    }

    private final List<Rule> rules;

    private AllowList(List<Rule> rules) {
        this.rules = List.copyOf(rules);
    }

    public static AllowList empty() {
        return new AllowList(List.of());
    }

    /** The allow-list shipped with the bridge. */
    public static AllowList standard() {
        try (InputStream in = AllowList.class.getResourceAsStream(RESOURCE)) {
            if (in == null) throw new IllegalStateException(RESOURCE + " is missing from the classpath");
            return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + RESOURCE, e);
        }
    }

    public static AllowList load(Path file) throws IOException {
        return parse(Files.readString(file));
    }

    public static AllowList parse(String text) {
        List<Rule> rules = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String l = lines[i].strip();
            if (l.isEmpty() || l.startsWith("#")) continue;
            int sep = l.indexOf(" -- ");
            if (sep < 0 || l.substring(sep + 4).isBlank()) {
                throw new IllegalArgumentException("allow-list line " + (i + 1) + " has no reason (RULE ARGUMENT -- REASON): " + l);
            }
            String[] head = l.substring(0, sep).trim().split("\\s+");
            if (head.length != 2) {
                throw new IllegalArgumentException("allow-list line " + (i + 1) + " needs exactly RULE ARGUMENT: " + l);
            }
            Kind kind = switch (head[0]) {
                case "drop-call" -> Kind.DROP_CALL;
                case "mask-reply" -> Kind.MASK_REPLY;
                case "mask-property" -> Kind.MASK_PROPERTY;
                case "drop-string" -> Kind.DROP_STRING;
                case "sort-reply" -> Kind.SORT_REPLY;
                default -> throw new IllegalArgumentException("allow-list line " + (i + 1) + ": unknown rule '" + head[0] + "'");
            };
            rules.add(new Rule(kind, head[1], l.substring(sep + 4).trim(), i + 1));
        }
        return new AllowList(rules);
    }

    public List<Rule> rules() {
        return rules;
    }

    /** The first rule of {@code kind} covering {@code qualifiedMember}, or null. */
    Rule memberRule(Kind kind, String qualifiedMember) {
        for (Rule r : rules) {
            if (r.kind() == kind && r.coversMember(qualifiedMember)) return r;
        }
        return null;
    }

    List<Rule> ofKind(Kind kind) {
        List<Rule> out = new ArrayList<>();
        for (Rule r : rules) {
            if (r.kind() == kind) out.add(r);
        }
        return out;
    }
}
