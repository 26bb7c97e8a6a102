package org.kdbusbridge.core.policy;

/**
 * A policy rule that dbus-daemon's config parser would refuse (unknown attribute, bad value,
 * forbidden combination).
 *
 * Invariants: the message says what is wrong with the rule but not where it came from; the
 * caller (the config parser) adds the file and line.
 */
public final class PolicyException extends Exception {
    public PolicyException(String message) {
        super(message);
    }
}
