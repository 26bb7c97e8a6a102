package org.kdbusbridge.bridge.cli;

import org.kdbusbridge.bridge.transport.JniLibC;

import jnr.ffi.LibraryLoader;

/**
 * The few process-level calls the launcher needs (daemonizing, dropping privileges, pid files).
 * Through our JNI library when the transport uses it, else bound through jnr-ffi; never used on
 * the message path.
 */
public interface Posix {
    Posix INSTANCE = JniLibC.loaded() ? new Jni() : LibraryLoader.create(Posix.class).load("c");

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

    /** The JNI binding (a nested class so jnr-ffi never sees it). */
    final class Jni implements Posix {
        @Override public int setsid() { return JniLibC.setsid0(); }
        @Override public int dup2(int oldfd, int newfd) { return JniLibC.dup20(oldfd, newfd); }
        @Override public int open(String path, int flags) { return JniLibC.open0(JniLibC.cString(path), flags); }
        @Override public int close(int fd) { return JniLibC.close0(fd); }
        @Override public int setgid(int gid) { return JniLibC.setgid0(gid); }
        @Override public int setuid(int uid) { return JniLibC.setuid0(uid); }
        @Override public int setgroups(long size, int[] list) {
            return JniLibC.setgroups0(list == null ? new int[0] : java.util.Arrays.copyOf(list, (int) size));
        }
        @Override public int getuid() { return JniLibC.getuid0(); }
        @Override public int umask(int mask) { return JniLibC.umask0(mask); }
    }
}
