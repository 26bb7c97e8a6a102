package org.kdbusbridge.core.connection;

/**
 * Peer credentials captured once at connect time (SO_PEERCRED), never re-read.
 * A value of -1 means unknown.
 */
public record Credentials(long uid, long gid, long pid) {
    public static final Credentials UNKNOWN = new Credentials(-1, -1, -1);
}
