package org.kdbusbridge.bridge.server;

import org.kdbusbridge.bridge.transport.LibC;

/**
 * Seal checks for fds that arrive with messages (our sealed-payload extension). A memfd
 * answers F_GET_SEALS; anything else (pipe, socket, file) fails it and is not a payload.
 */
final class Memfds {
    private Memfds() { }

    static final int F_GET_SEALS = 1034;
    static final int F_SEAL_SHRINK = 0x2;
    static final int F_SEAL_GROW = 0x4;
    static final int F_SEAL_WRITE = 0x8;
    static final int REQUIRED = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

    /** True if {@code fd} is a memfd lacking one of the write, shrink and grow seals. */
    static boolean isUnsealedMemfd(int fd) {
        int seals = LibC.INSTANCE.fcntl(fd, F_GET_SEALS, 0);
        return seals >= 0 && (seals & REQUIRED) != REQUIRED;
    }
}
