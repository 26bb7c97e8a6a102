package org.kdbusbridge.core.message;

/**
 * Lazy access to a message's leading string-like arguments, for argN match keys.
 *
 * The bridge implements it by decoding the body only when a rule asks, so messages that
 * no argN rule looks at are never decoded.
 */
public interface ArgSource {
    ArgSource NONE = new ArgSource() {
        @Override
        public String arg(int index) {
            return null;
        }

        @Override
        public boolean isObjectPath(int index) {
            return false;
        }
    };

    /** The value of argument {@code index} if it is a STRING or OBJECT_PATH, else null. */
    String arg(int index);

    /** True if argument {@code index} is an OBJECT_PATH (argN matches strings only). */
    boolean isObjectPath(int index);
}
