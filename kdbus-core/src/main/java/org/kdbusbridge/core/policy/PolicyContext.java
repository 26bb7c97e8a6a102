package org.kdbusbridge.core.policy;

/**
 * Which {@code <policy>} element a rule came from: {@code context="default"},
 * {@code context="mandatory"}, {@code user=} (a uid), {@code group=} (a gid) or
 * {@code at_console="true|false"}.
 *
 * Invariants: {@code id} is a uid for USER, a gid for GROUP, 1/0 for CONSOLE (true/false) and
 * 0 for DEFAULT and MANDATORY, so equal contexts are equal records.
 */
public record PolicyContext(Kind kind, long id) {
    public enum Kind { DEFAULT, MANDATORY, USER, GROUP, CONSOLE }

    public static final PolicyContext DEFAULT = new PolicyContext(Kind.DEFAULT, 0);
    public static final PolicyContext MANDATORY = new PolicyContext(Kind.MANDATORY, 0);

    public PolicyContext {
        if (kind == null) {
            throw new IllegalArgumentException("kind");
        }
        if ((kind == Kind.DEFAULT || kind == Kind.MANDATORY) && id != 0) {
            throw new IllegalArgumentException(kind + " takes no id");
        }
        if (kind == Kind.CONSOLE && id != 0 && id != 1) {
            throw new IllegalArgumentException("console id must be 0 or 1");
        }
        if ((kind == Kind.USER || kind == Kind.GROUP) && id < 0) {
            throw new IllegalArgumentException("negative " + kind + " id");
        }
    }

    public static PolicyContext user(long uid) { return new PolicyContext(Kind.USER, uid); }

    public static PolicyContext group(long gid) { return new PolicyContext(Kind.GROUP, gid); }

    public static PolicyContext atConsole(boolean atConsole) { return new PolicyContext(Kind.CONSOLE, atConsole ? 1 : 0); }
}
