package org.kdbusbridge.core.endpoint;

import java.util.Objects;

/**
 * The name part of a rule: one well-known name, or with {@code subtree} the name and every name
 * below it ("org.foo.*" is {@code org.foo} with subtree: org.foo, org.foo.bar, org.foo.bar.baz,
 * but not org.foobar). Unique names never match a pattern: the proxy looks rules up for
 * well-known names only and gives unique names their level another way (see
 * {@link EndpointPolicy#levelOf}). The name is not validated here: xdg-dbus-proxy validates
 * --see/--talk/--own names but takes --call/--broadcast names as they come.
 */
public record NamePattern(String name, boolean subtree) {
    public NamePattern {
        Objects.requireNonNull(name, "name");
    }

    public static NamePattern exact(String name) {
        return new NamePattern(name, false);
    }

    public static NamePattern subtreeOf(String name) {
        return new NamePattern(name, true);
    }

    /** Whether {@code busName} (a well-known name; a unique name or null never) matches. */
    public boolean matches(String busName) {
        if (busName == null || (!busName.isEmpty() && busName.charAt(0) == ':')) {
            return false;
        }
        if (busName.equals(name)) {
            return true;
        }
        return subtree && busName.length() > name.length() && busName.startsWith(name)
                && busName.charAt(name.length()) == '.';
    }

    /** The command-line spelling. */
    @Override
    public String toString() {
        return subtree ? name + ".*" : name;
    }
}
