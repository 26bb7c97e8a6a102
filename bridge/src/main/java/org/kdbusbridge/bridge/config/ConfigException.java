package org.kdbusbridge.bridge.config;

/** A configuration file that can't be used; the message names the file and line. */
public final class ConfigException extends Exception {
    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
