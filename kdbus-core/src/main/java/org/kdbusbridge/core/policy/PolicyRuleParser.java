package org.kdbusbridge.core.policy;

import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;

/**
 * Turns the attributes of one {@code <allow>}/{@code <deny>} element into a {@link PolicyRule},
 * accepting and refusing exactly what dbus-daemon's config parser does.
 *
 * Invariants: no XML and no I/O here (user and group names are resolved by the caller's
 * {@link Principals}); every refusal is a {@link PolicyException} without file or line;
 * an unknown user or group name is not an error but drops the rule with a warning, as in
 * dbus-daemon; {@code "*"} is a wildcard for every attribute except send_destination_prefix
 * and own_prefix; {@code log} is accepted everywhere and kept on send rules only (dbus-daemon
 * ignores it elsewhere).
 */
public final class PolicyRuleParser {
    /** Resolves names to ids at config time; numeric names must be taken as ids. */
    public interface Principals {
        OptionalLong uid(String userName);

        OptionalLong gid(String groupName);

        /** No user or group names known (rules naming one are dropped). */
        Principals NONE = new Principals() {
            @Override
            public OptionalLong uid(String userName) { return OptionalLong.empty(); }

            @Override
            public OptionalLong gid(String groupName) { return OptionalLong.empty(); }
        };
    }

    /** The rule, or null with a warning when the rule is dropped (unknown user/group). */
    public record Parsed(PolicyRule rule, String warning) { }

    private static final Set<String> SEND = Set.of("send_interface", "send_member", "send_error", "send_destination",
            "send_destination_prefix", "send_path", "send_type", "send_requested_reply", "send_broadcast");
    private static final Set<String> RECEIVE = Set.of("receive_interface", "receive_member", "receive_error",
            "receive_sender", "receive_path", "receive_type", "receive_requested_reply");
    private static final Set<String> OTHER = Set.of("eavesdrop", "max_fds", "min_fds", "own", "own_prefix", "user",
            "group", "log");

    private PolicyRuleParser() { }

    /** Every attribute name an {@code <allow>}/{@code <deny>} element may carry. */
    public static boolean isKnownAttribute(String name) {
        return SEND.contains(name) || RECEIVE.contains(name) || OTHER.contains(name);
    }

    /**
     * Parses one element. {@code element} is "allow" or "deny" (only used in messages and for
     * the allow flag); {@code attrs} maps attribute names to values.
     */
    public static Parsed parse(String element, Map<String, String> attrs, Principals principals)
            throws PolicyException {
        boolean allow;
        if ("allow".equals(element)) {
            allow = true;
        } else if ("deny".equals(element)) {
            allow = false;
        } else {
            throw new PolicyException("<" + element + "> is not a policy rule; use <allow> or <deny>");
        }
        for (String name : attrs.keySet()) {
            if (!isKnownAttribute(name)) {
                throw new PolicyException("unknown attribute \"" + name + "\" on <" + element + ">");
            }
        }
        boolean anySend = attrs.keySet().stream().anyMatch(SEND::contains);
        String eavesdrop = attrs.get("eavesdrop");
        // A bare eavesdrop="..." is a receive rule (as if receive_sender="*" were given);
        // with send_ attributes it modifies the send rule.
        boolean anyReceive = attrs.keySet().stream().anyMatch(RECEIVE::contains) || (!anySend && eavesdrop != null);
        boolean anyMessage = anySend || anyReceive || eavesdrop != null
                || attrs.containsKey("max_fds") || attrs.containsKey("min_fds");
        String own = attrs.get("own");
        String ownPrefix = attrs.get("own_prefix");
        String user = attrs.get("user");
        String group = attrs.get("group");

        if (!(anySend || anyReceive || own != null || ownPrefix != null || user != null || group != null)) {
            throw new PolicyException("<" + element + "> needs at least one rule attribute"
                    + " (send_*, receive_*, own, own_prefix, user or group)");
        }
        if ((attrs.containsKey("send_member") && !attrs.containsKey("send_interface") && !attrs.containsKey("send_path"))
                || (attrs.containsKey("receive_member") && !attrs.containsKey("receive_interface")
                        && !attrs.containsKey("receive_path"))) {
            throw new PolicyException("<" + element + ">: a member needs an interface or a path too"
                    + " (messages may have no interface)");
        }
        int exclusive = (anyMessage ? 1 : 0) + (own != null ? 1 : 0) + (ownPrefix != null ? 1 : 0)
                + (user != null ? 1 : 0) + (group != null ? 1 : 0);
        if (exclusive > 1) {
            throw new PolicyException("<" + element + ">: own, own_prefix, user, group and message attributes"
                    + " are mutually exclusive");
        }
        if (anySend && anyReceive) {
            throw new PolicyException("<" + element + ">: send_ and receive_ attributes can't be mixed in one rule");
        }
        if ((attrs.containsKey("send_member") || attrs.containsKey("send_interface")) && attrs.containsKey("send_error")) {
            throw new PolicyException("<" + element + ">: send_error can't be combined with send_member or send_interface");
        }
        if (attrs.containsKey("send_destination") && attrs.containsKey("send_destination_prefix")) {
            throw new PolicyException("<" + element + ">: send_destination and send_destination_prefix are exclusive");
        }
        if ((attrs.containsKey("receive_member") || attrs.containsKey("receive_interface"))
                && attrs.containsKey("receive_error")) {
            throw new PolicyException("<" + element
                    + ">: receive_error can't be combined with receive_member or receive_interface");
        }

        if (anySend) {
            MessageKind type = messageType(wild(attrs.get("send_type")), attrs.get("send_type"));
            boolean eaves = bool("eavesdrop", eavesdrop, false);
            String broadcastAttr = attrs.get("send_broadcast");
            boolean broadcastTrue = bool("send_broadcast", broadcastAttr, false);
            String destination = wild(attrs.get("send_destination"));
            if (destination != null && broadcastAttr != null && broadcastTrue) {
                throw new PolicyException("<" + element + ">: send_broadcast=\"true\" with send_destination=\""
                        + destination + "\" can never match (broadcasts have no destination)");
            }
            boolean requested = bool("send_requested_reply", attrs.get("send_requested_reply"), allow);
            int maxFds = fds("max_fds", attrs.get("max_fds"), PolicyRule.MAX_FDS);
            int minFds = fds("min_fds", attrs.get("min_fds"), 0);
            String prefix = attrs.get("send_destination_prefix");
            PolicyRule.Broadcast broadcast = broadcastAttr == null ? PolicyRule.Broadcast.ANY
                    : broadcastTrue ? PolicyRule.Broadcast.TRUE : PolicyRule.Broadcast.FALSE;
            return new Parsed(new PolicyRule.Send(allow, prefix != null ? prefix : destination, prefix != null,
                    wild(attrs.get("send_interface")), wild(attrs.get("send_member")), wild(attrs.get("send_error")),
                    wild(attrs.get("send_path")), type, requested, broadcast, eaves, minFds, maxFds,
                    "true".equals(attrs.get("log"))), null);
        }
        if (anyReceive) {
            MessageKind type = messageType(wild(attrs.get("receive_type")), attrs.get("receive_type"));
            boolean eaves = bool("eavesdrop", eavesdrop, false);
            boolean requested = bool("receive_requested_reply", attrs.get("receive_requested_reply"), allow);
            int maxFds = fds("max_fds", attrs.get("max_fds"), PolicyRule.MAX_FDS);
            int minFds = fds("min_fds", attrs.get("min_fds"), 0);
            return new Parsed(new PolicyRule.Receive(allow, wild(attrs.get("receive_sender")),
                    wild(attrs.get("receive_interface")), wild(attrs.get("receive_member")),
                    wild(attrs.get("receive_error")), wild(attrs.get("receive_path")), type, requested, eaves,
                    minFds, maxFds), null);
        }
        if (own != null) {
            return new Parsed(new PolicyRule.Own(allow, wild(own), false), null);
        }
        if (ownPrefix != null) {
            return new Parsed(new PolicyRule.Own(allow, ownPrefix, true), null);
        }
        if (user != null) {
            if (isWildcard(user)) {
                return new Parsed(new PolicyRule.User(allow, PolicyRule.User.ANY), null);
            }
            OptionalLong uid = principals.uid(user);
            return uid.isPresent() ? new Parsed(new PolicyRule.User(allow, uid.getAsLong()), null)
                    : new Parsed(null, "unknown user \"" + user + "\" on <" + element + ">, rule ignored");
        }
        if (isWildcard(group)) {
            return new Parsed(new PolicyRule.Group(allow, PolicyRule.Group.ANY), null);
        }
        OptionalLong gid = principals.gid(group);
        return gid.isPresent() ? new Parsed(new PolicyRule.Group(allow, gid.getAsLong()), null)
                : new Parsed(null, "unknown group \"" + group + "\" on <" + element + ">, rule ignored");
    }

    private static boolean isWildcard(String v) {
        return "*".equals(v);
    }

    private static String wild(String v) {
        return isWildcard(v) ? null : v;
    }

    private static MessageKind messageType(String value, String raw) throws PolicyException {
        if (value == null) {
            return null;
        }
        MessageKind k = MessageKind.fromConfig(value);
        if (k == null) {
            throw new PolicyException("bad message type \"" + raw
                    + "\" (expected method_call, method_return, signal, error or *)");
        }
        return k;
    }

    private static boolean bool(String name, String value, boolean def) throws PolicyException {
        if (value == null) {
            return def;
        }
        return switch (value) {
            case "true" -> true;
            case "false" -> false;
            default -> throw new PolicyException(name + "=\"" + value + "\" must be true or false");
        };
    }

    private static int fds(String name, String value, int def) throws PolicyException {
        if (value == null) {
            return def;
        }
        Long v = strtolPrefix(value);
        if (v == null || v < 0 || v > PolicyRule.MAX_FDS) {
            throw new PolicyException(name + "=\"" + value + "\" must be an integer from 0 to " + PolicyRule.MAX_FDS);
        }
        return (int) (long) v;
    }

    /**
     * C strtol(s, &end, 0) as dbus-daemon uses it: leading white space, a sign, then decimal,
     * 0x hex or 0 octal digits; anything after the number is ignored; null if no digits or
     * on overflow.
     */
    static Long strtolPrefix(String s) {
        int i = 0;
        int n = s.length();
        while (i < n && (s.charAt(i) == ' ' || (s.charAt(i) >= '\t' && s.charAt(i) <= '\r'))) {
            i++;
        }
        boolean neg = false;
        if (i < n && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
            neg = s.charAt(i) == '-';
            i++;
        }
        int radix = 10;
        if (i + 1 < n && s.charAt(i) == '0' && (s.charAt(i + 1) == 'x' || s.charAt(i + 1) == 'X')
                && i + 2 < n && Character.digit(s.charAt(i + 2), 16) >= 0) {
            radix = 16;
            i += 2;
        } else if (i < n && s.charAt(i) == '0') {
            radix = 8;
        }
        int start = i;
        long v = 0;
        while (i < n && Character.digit(s.charAt(i), radix) >= 0 && s.charAt(i) < 128) {
            v = v * radix + Character.digit(s.charAt(i), radix);
            if (v > Integer.MAX_VALUE * 4L) {
                return null; // far beyond every range we check: treat as overflow
            }
            i++;
        }
        if (i == start) {
            return null;
        }
        return neg ? -v : v;
    }
}
