package org.kdbusbridge.bridge.transport;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;

/**
 * {@link LibC} through our own JNI library (bridge/src/main/c/kdbus_native.c), bound by
 * RegisterNatives when it is loaded: no stub generation at start, unlike jnr-ffi. Each method
 * is the libc call itself; a failed call returns -1 and leaves its errno for {@link #lastErrno}
 * on the same thread. Strings are passed as NUL-terminated bytes in the file-name encoding.
 */
public final class JniLibC implements LibC {
    /** What the JVM uses to encode file names (the same as the C library sees them). */
    private static final Charset PATHS = pathCharset();

    /** Whether the JNI library is what {@link LibC#INSTANCE} uses (then the statics here work). */
    public static boolean loaded() {
        return LibC.Native.binding().equals("jni");
    }

    JniLibC() {
    }

    static Charset pathCharset() {
        String name = System.getProperty("sun.jnu.encoding");
        try {
            return name == null ? StandardCharsets.UTF_8 : Charset.forName(name);
        } catch (RuntimeException e) {
            return StandardCharsets.UTF_8;
        }
    }

    public static byte[] cString(String s) {
        byte[] b = s.getBytes(PATHS);
        byte[] z = new byte[b.length + 1];
        System.arraycopy(b, 0, z, 0, b.length);
        return z;
    }

    static native int lastErrno();

    static native long address0(Buffer direct);

    static long address(ByteBuffer direct) {
        return address0(direct);
    }

    private static native int epollCreate1(int flags);

    private static native int epollCtl(int epfd, int op, int fd, long event);

    private static native int epollWait(int epfd, long events, int max, int timeout);

    private static native int eventfd0(int init, int flags);

    private static native long read0(int fd, long buf, long n);

    private static native long write0(int fd, long buf, long n);

    private static native long writev0(int fd, long iov, int n);

    private static native long send0(int fd, long buf, long n, int flags);

    private static native long sendmsg0(int fd, long msg, int flags);

    private static native long recvmsg0(int fd, long msg, int flags);

    private static native int accept40(int fd, long addr, long len, int flags);

    private static native int socket0(int domain, int type, int protocol);

    private static native int bind0(int fd, long addr, int len);

    private static native int listen0(int fd, int backlog);

    private static native int connect0(int fd, long addr, int len);

    private static native int shutdown0(int fd, int how);

    public static native int close0(int fd);

    private static native int socketpair0(int domain, int type, int protocol, long sv);

    private static native int getsockopt0(int fd, int level, int name, long val, long len);

    private static native int setsockopt0(int fd, int level, int name, long val, int len);

    public static native int fcntl0(int fd, int cmd, int arg);

    private static native long syscall0(long nr, long a1, long a2);

    private static native int ioctl0(int fd, long req, long arg);

    private static native int getsockname0(int fd, long addr, long len);

    public static native int getuid0();

    private static native int schedYield();

    private static native int raise0(int sig);

    private static native void exit0(int status);

    public static native int setsid0();

    public static native int dup20(int oldfd, int newfd);

    public static native int setgid0(int gid);

    public static native int setuid0(int uid);

    public static native int umask0(int mask);

    public static native int setgroups0(int[] groups);

    private static native int unsetenv0(byte[] name);

    private static native int chmod0(byte[] path, int mode);

    public static native int open0(byte[] path, int flags);

    public static native int memfdCreate0(byte[] name, int flags);

    /** Hand-over: see kdbus_native.c; returns only on failure, with minus errno. Use {@link LibC.Native#execveKeeping}. */
    static native int execve0(byte[] path, byte[][] argv, byte[][] envp, int[] keep);

    /** waitid(P_PIDFD, pidfd, WEXITED|options): 0 with out = {si_code, si_status, si_pid}, or minus errno. */
    static native int waitid0(int pidfd, int options, int[] out);

    /** sigaction(sig, SIG_DFL): 0 or minus errno. */
    static native int resetSignal0(int sig);

    /** poll(2) of one fd: its revents, 0 on timeout, or minus errno. Use {@link LibC.Native#pollOne}. */
    static native int poll1(int fd, int events, int timeoutMillis);

    /** posix_spawn with stdout/stderr dup2'd from outFd/errFd: the pid or minus errno. Use {@link LibC.Native#spawn}. */
    static native int spawn0(byte[] path, byte[][] argv, byte[][] envp, byte[] cwd, int outFd, int errFd);

    @Override public int epoll_create1(int flags) { return epollCreate1(flags); }
    @Override public int epoll_ctl(int epfd, int op, int fd, long ev) { return epollCtl(epfd, op, fd, ev); }
    @Override public int epoll_wait(int epfd, long evs, int max, int timeout) { return epollWait(epfd, evs, max, timeout); }
    @Override public int eventfd(int initval, int flags) { return eventfd0(initval, flags); }
    @Override public long read(int fd, long buf, long count) { return read0(fd, buf, count); }
    @Override public long write(int fd, long buf, long count) { return write0(fd, buf, count); }
    @Override public long writev(int fd, long iov, int iovcnt) { return writev0(fd, iov, iovcnt); }
    @Override public long send(int fd, long buf, long count, int flags) { return send0(fd, buf, count, flags); }
    @Override public long sendmsg(int fd, long msg, int flags) { return sendmsg0(fd, msg, flags); }
    @Override public long recvmsg(int fd, long msg, int flags) { return recvmsg0(fd, msg, flags); }
    @Override public int accept4(int fd, long addr, long len, int flags) { return accept40(fd, addr, len, flags); }
    @Override public int socket(int domain, int type, int protocol) { return socket0(domain, type, protocol); }
    @Override public int bind(int fd, long addr, int len) { return bind0(fd, addr, len); }
    @Override public int listen(int fd, int backlog) { return listen0(fd, backlog); }
    @Override public int connect(int fd, long addr, int len) { return connect0(fd, addr, len); }
    @Override public int shutdown(int fd, int how) { return shutdown0(fd, how); }
    @Override public int close(int fd) { return close0(fd); }
    @Override public int socketpair(int domain, int type, int protocol, long sv) { return socketpair0(domain, type, protocol, sv); }
    @Override public int getsockopt(int fd, int level, int name, long val, long len) { return getsockopt0(fd, level, name, val, len); }
    @Override public int setsockopt(int fd, int level, int name, long val, int len) { return setsockopt0(fd, level, name, val, len); }
    @Override public int fcntl(int fd, int cmd, int arg) { return fcntl0(fd, cmd, arg); }
    @Override public long syscall(long number, long arg1, long arg2) { return syscall0(number, arg1, arg2); }
    @Override public int ioctl(int fd, long request, long arg) { return ioctl0(fd, request, arg); }
    @Override public int getsockname(int fd, long addr, long len) { return getsockname0(fd, addr, len); }
    @Override public int unsetenv(String name) { return unsetenv0(cString(name)); }
    @Override public int chmod(String path, int mode) { return chmod0(cString(path), mode); }
    @Override public int getuid() { return getuid0(); }
    @Override public int sched_yield() { return schedYield(); }
    @Override public int raise(int sig) { return raise0(sig); }
    @Override public void _exit(int status) { exit0(status); }
}
