package org.kdbusbridge.core.endpoint;

/**
 * What an endpoint's client may do with a name, each level implying the ones before it
 * (xdg-dbus-proxy's FlatpakPolicy): NONE, the name does not exist for it; SEE, it is listed,
 * its owner can be asked for and its NameOwnerChanged is shown; TALK, calls and signals may be
 * sent to it and its broadcasts are received; OWN, it may be requested, released and its queue
 * listed.
 */
public enum Level {
    NONE, SEE, TALK, OWN;

    public boolean atLeast(Level other) {
        return compareTo(other) >= 0;
    }

    public Level max(Level other) {
        return compareTo(other) >= 0 ? this : other;
    }
}
