package org.kdbusbridge.core.endpoint;

import java.util.Objects;

/** A --see, --talk or --own rule: every name the pattern matches gets at least {@code level}. */
public record NameRule(NamePattern pattern, Level level) {
    public NameRule {
        Objects.requireNonNull(pattern, "pattern");
        Objects.requireNonNull(level, "level");
        if (level == Level.NONE) {
            throw new IllegalArgumentException("a name rule grants SEE, TALK or OWN");
        }
    }

    public static NameRule see(NamePattern p) {
        return new NameRule(p, Level.SEE);
    }

    public static NameRule talk(NamePattern p) {
        return new NameRule(p, Level.TALK);
    }

    public static NameRule own(NamePattern p) {
        return new NameRule(p, Level.OWN);
    }
}
