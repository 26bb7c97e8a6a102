package org.kdbusbridge.bridge.cli;

import jnr.ffi.LibraryLoader;

/**
 * The few process-level calls the launcher needs (daemonizing, dropping privileges, pid files).
 * Bound once through jnr-ffi; never used on the message path.
 */
public interface Posix {
    Posix INSTANCE = LibraryLoader.create(Posix.class).load("c");

    int setsid();

    int dup2(int oldfd, int newfd);

    int open(String path, int flags);

    int close(int fd);

    int setgid(int gid);

    int setuid(int uid);

    int setgroups(long size, int[] list);

    int getuid();

    int umask(int mask);

    int O_RDWR = 2;
}
