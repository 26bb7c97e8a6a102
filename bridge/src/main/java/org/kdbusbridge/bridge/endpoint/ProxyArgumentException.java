package org.kdbusbridge.bridge.endpoint;

/**
 * An xdg-dbus-proxy command line refused, with the proxy's own message (without its newline).
 * The proxy prints it to stderr and exits 1; {@code showUsage}: it prints its usage instead
 * (an empty command line).
 */
public final class ProxyArgumentException extends Exception {
    private static final long serialVersionUID = 1L;

    private final boolean showUsage;

    public ProxyArgumentException(String message) {
        this(message, false);
    }

    public ProxyArgumentException(String message, boolean showUsage) {
        super(message);
        this.showUsage = showUsage;
    }

    public boolean showUsage() {
        return showUsage;
    }
}
