package org.kdbusbridge.core.bus;

/**
 * Why a bus operation refused and changed nothing: the kind of D-Bus error the driver answers
 * with and dbus-daemon's text for it. {@code byQuota}: refused by the uid's memory quota, which
 * the bus already logged (rate-limited), where a per-connection limit is logged each time by
 * whoever renders it, as dbus-daemon does.
 */
public record Denial(Reason reason, String text, boolean byQuota) {
    /** The error each refusal is answered with (the driver maps them to D-Bus error names). */
    public enum Reason { INVALID_ARGS, ACCESS_DENIED, LIMITS_EXCEEDED, MATCH_RULE_NOT_FOUND }

    static Denial invalidArgs(String text) {
        return new Denial(Reason.INVALID_ARGS, text, false);
    }

    static Denial accessDenied(String text) {
        return new Denial(Reason.ACCESS_DENIED, text, false);
    }

    static Denial limitsExceeded(String text, boolean byQuota) {
        return new Denial(Reason.LIMITS_EXCEEDED, text, byQuota);
    }

    /** A refusal by a per-connection limit: dbus-daemon logs each one. */
    public boolean shouldLog() {
        return reason == Reason.LIMITS_EXCEEDED && !byQuota;
    }
}
