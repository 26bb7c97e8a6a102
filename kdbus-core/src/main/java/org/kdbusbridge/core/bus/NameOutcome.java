package org.kdbusbridge.core.bus;

import java.util.List;

import org.kdbusbridge.core.name.NameChange;

/**
 * What RequestName or ReleaseName did: the reply code (NameRegistry.REPLY_* or RELEASE_*) and
 * the ownership changes to render, in order; or the denial, and then nothing changed
 * ({@code reply} is 0 and {@code changes} empty).
 */
public record NameOutcome(int reply, List<NameChange> changes, Denial denial) {
    static NameOutcome denied(Denial d) {
        return new NameOutcome(0, List.of(), d);
    }

    public boolean denied() {
        return denial != null;
    }
}
