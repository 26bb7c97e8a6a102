package org.kdbusbridge.core.endpoint;

import java.util.Objects;

/**
 * A --call or --broadcast rule: which messages to (calls) or from (broadcasts) the names of
 * {@code pattern} it lets through. Each null field matches anything: {@code iface} null, any
 * interface; {@code member} null, any member of {@code iface}; {@code path} null, any path,
 * else exactly {@code path} or, with {@code pathSubtree}, it and every path below it
 * ("/org/foo/*" is {@code /org/foo} with subtree; "/*" is the empty path with subtree, which
 * matches every path). A member without an interface does not occur in the proxy's rule syntax
 * and is refused here. Having any rule for a name gives that name TALK visibility (SEE
 * everywhere, StartServiceByName), even though only matching messages pass.
 */
public record CallRule(NamePattern pattern, String iface, String member, String path, boolean pathSubtree) {
    public CallRule {
        Objects.requireNonNull(pattern, "pattern");
        if (member != null && iface == null) {
            throw new IllegalArgumentException("a member needs an interface");
        }
        if (pathSubtree && path == null) {
            throw new IllegalArgumentException("a path subtree needs a path");
        }
    }

    /** A rule matching every message of its kind for the names of {@code pattern}. */
    public static CallRule any(NamePattern pattern) {
        return new CallRule(pattern, null, null, null, false);
    }

    /** Whether a message with this path, interface and member (each may be null) matches. */
    public boolean matches(String msgPath, String msgIface, String msgMember) {
        if (path != null) {
            if (msgPath == null) {
                return false;
            }
            if (pathSubtree) {
                if (!msgPath.startsWith(path)
                        || (msgPath.length() != path.length() && msgPath.charAt(path.length()) != '/')) {
                    return false;
                }
            } else if (!path.equals(msgPath)) {
                return false;
            }
        }
        if (iface != null && !iface.equals(msgIface)) {
            return false;
        }
        return member == null || member.equals(msgMember);
    }
}
