package org.kdbusbridge.core.policy;

/**
 * One {@code <allow>} or {@code <deny>} element, as dbus-daemon's BusPolicyRule holds it.
 *
 * Invariants: immutable; a null string field is a wildcard (the config's {@code "*"} or an
 * absent attribute); a null {@link MessageKind} matches every type; the field combinations are
 * only those {@link PolicyRuleParser} accepts (no send_error with send_member/send_interface,
 * member only with interface or path, min_fds/max_fds within 0..{@link #MAX_FDS}).
 * USER and GROUP rules only decide who may connect; SEND, RECEIVE and OWN are per-connection.
 */
public sealed interface PolicyRule {
    /** DBUS_MAXIMUM_MESSAGE_UNIX_FDS: the default and the ceiling of max_fds/min_fds. */
    int MAX_FDS = 134_217_728 / 4;

    /** True for {@code <allow>}, false for {@code <deny>}. */
    boolean allow();

    /** False for USER/GROUP rules, which have bus-global (connect-time) semantics. */
    default boolean perClient() {
        return true;
    }

    /** send_broadcast: unset (any message), true (only broadcasts), false (only unicasts). */
    enum Broadcast { ANY, TRUE, FALSE }

    /**
     * A send_ rule. {@code destinationIsPrefix} is set for send_destination_prefix (the prefix
     * is never a wildcard). {@code requestedReply} defaults to {@code allow}, as in dbus-daemon.
     */
    record Send(boolean allow, String destination, boolean destinationIsPrefix, String interfaceName,
            String member, String error, String path, MessageKind type, boolean requestedReply,
            Broadcast broadcast, boolean eavesdrop, int minFds, int maxFds, boolean log) implements PolicyRule {
        public Send {
            if (destinationIsPrefix && destination == null) {
                throw new IllegalArgumentException("a destination prefix can't be a wildcard");
            }
            if (broadcast == null) {
                throw new IllegalArgumentException("broadcast");
            }
            checkFds(minFds, maxFds);
        }
    }

    /** A receive_ rule; {@code sender} is receive_sender. */
    record Receive(boolean allow, String sender, String interfaceName, String member, String error, String path,
            MessageKind type, boolean requestedReply, boolean eavesdrop, int minFds, int maxFds) implements PolicyRule {
        public Receive {
            checkFds(minFds, maxFds);
        }
    }

    /** own (name null = "*") or own_prefix (whole dot-separated words; never a wildcard). */
    record Own(boolean allow, String name, boolean prefix) implements PolicyRule {
        public Own {
            if (prefix && name == null) {
                throw new IllegalArgumentException("own_prefix needs a name");
            }
        }

        /** Whether this rule applies to {@code busName} (dbus-daemon's starts_with_words). */
        public boolean matches(String busName) {
            if (name == null) {
                return true;
            }
            if (!prefix) {
                return name.equals(busName);
            }
            return startsWithWords(busName, name);
        }
    }

    /** dbus-daemon's starts_with_words: {@code name} is {@code prefix} or below it (whole dot-separated words). */
    static boolean startsWithWords(String name, String prefix) {
        return name.startsWith(prefix) && (name.length() == prefix.length() || name.charAt(prefix.length()) == '.');
    }

    /** user=: {@code uid} -1 is "*". */
    record User(boolean allow, long uid) implements PolicyRule {
        public static final long ANY = -1;

        @Override
        public boolean perClient() {
            return false;
        }
    }

    /** group=: {@code gid} -1 is "*". */
    record Group(boolean allow, long gid) implements PolicyRule {
        public static final long ANY = -1;

        @Override
        public boolean perClient() {
            return false;
        }
    }

    private static void checkFds(int minFds, int maxFds) {
        if (minFds < 0 || minFds > MAX_FDS || maxFds < 0 || maxFds > MAX_FDS) {
            throw new IllegalArgumentException("fd bounds out of range: " + minFds + ".." + maxFds);
        }
    }
}
