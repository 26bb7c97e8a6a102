package org.kdbusbridge.core.bus;

/** What AddMatch or RemoveMatch did: the rule was added or removed, or the denial (nothing changed). */
public record MatchChange(Denial denial) {
    static final MatchChange DONE = new MatchChange(null);

    public boolean done() {
        return denial == null;
    }
}
