// Invariants: thin binding of the few libc calls the transport needs, through our JNI library
// (JniLibC) when it can be loaded and jnr-ffi otherwise; every buffer argument is a raw native
// address (from a DIRECT ByteBuffer or native memory) so calls are allocation-free; errno is
// saved after each failing call and read with errno() on the SAME thread right after it. Constants are the Linux generic values, identical
// on x86_64 and aarch64 (the only supported platforms).
package org.kdbusbridge.bridge.transport;

import java.nio.ByteBuffer;

import com.kenai.jffi.MemoryIO;

import jnr.ffi.LibraryLoader;
import jnr.ffi.types.size_t;
import jnr.ffi.types.ssize_t;

/** libc functions, bound through JNI or jnr-ffi. Obtain the instance with {@link LibC#INSTANCE}. */
public interface LibC {

    // ---- errno values (Linux) ----
    int EINTR = 4;
    int EBADF = 9;
    int EAGAIN = 11;
    int ENOENT = 2;
    int EEXIST = 17;
    int ENFILE = 23;
    int EMFILE = 24;
    int EPIPE = 32;
    int EADDRINUSE = 98;
    int ECONNABORTED = 103;
    int ECONNRESET = 104;
    int ENOBUFS = 105;
    int ENOMEM = 12;
    int ERANGE = 34;
    int ENOPROTOOPT = 92;
    int ESRCH = 3;
    int ENOSYS = 38;
    int EPERM = 1;
    int ECONNREFUSED = 111;

    // ---- epoll ----
    int EPOLL_CLOEXEC = 02000000;
    int EPOLL_CTL_ADD = 1;
    int EPOLL_CTL_DEL = 2;
    int EPOLL_CTL_MOD = 3;
    int EPOLLIN = 0x001;
    int EPOLLOUT = 0x004;
    int EPOLLERR = 0x008;
    int EPOLLHUP = 0x010;

    // ---- eventfd / fcntl / sockets ----
    int EFD_CLOEXEC = 02000000;
    int EFD_NONBLOCK = 04000;
    int F_GETFD = 1;
    int F_SETFD = 2;
    int F_GETFL = 3;
    int F_SETFL = 4;
    int FD_CLOEXEC = 1;
    int O_NONBLOCK = 04000;
    int SOCK_NONBLOCK = 04000;
    int SOCK_CLOEXEC = 02000000;
    int SOL_SOCKET = 1;
    int SO_PEERCRED = 17;
    /** The peer's LSM label (Linux 2.6.2); ENOPROTOOPT where no LSM labels sockets. */
    int SO_PEERSEC = 31;
    /** The peer's supplementary gids as of connect() (Linux 4.13). */
    int SO_PEERGROUPS = 59;
    /** A pidfd (O_CLOEXEC) of the peer as of connect() (Linux 6.5). */
    int SO_PEERPIDFD = 77;
    /** fcntl: dup to the lowest free fd, close-on-exec. */
    int F_DUPFD_CLOEXEC = 1030;
    /** pidfd_open(2) (Linux 5.3); the same number on x86_64 and aarch64. */
    long SYS_PIDFD_OPEN = 434;
    /** Ask the kernel for the writer's pid/uid/gid with every recvmsg (SCM_CREDENTIALS). */
    int SO_PASSCRED = 16;
    /** cmsg type of a struct ucred (pid, uid, gid: three ints). */
    int SCM_CREDENTIALS = 2;
    int SO_SNDBUF = 7;
    /** struct timeval (16 bytes on LP64): a blocking read gives EAGAIN after it. */
    int SO_RCVTIMEO = 20;
    int SO_TYPE = 3;
    int SO_ACCEPTCONN = 30;
    int SO_DOMAIN = 39;
    int SOCK_STREAM = 1;
    int AF_UNIX = 1;
    int MSG_NOSIGNAL = 0x4000;
    int MSG_CTRUNC = 0x8;
    int MSG_CMSG_CLOEXEC = 0x40000000;
    int SCM_RIGHTS = 1;
    /** The kernel's cap on fds in one SCM_RIGHTS message (SCM_MAX_FD). */
    int SCM_MAX_FD = 253;
    /** shutdown(2): both directions; wakes a thread blocked reading or writing the socket. */
    int SHUT_RDWR = 2;

    int epoll_create1(int flags);

    int epoll_ctl(int epfd, int op, int fd, long eventAddress);

    int epoll_wait(int epfd, long eventsAddress, int maxevents, int timeoutMillis);

    int eventfd(int initval, int flags);

    @ssize_t long read(int fd, long bufAddress, @size_t long count);

    @ssize_t long write(int fd, long bufAddress, @size_t long count);

    /** Can raise SIGPIPE on a dead peer; prefer SocketConnection.write(ByteBuffer[],..) (sendmsg + MSG_NOSIGNAL). */
    @ssize_t long writev(int fd, long iovAddress, int iovcnt);

    @ssize_t long send(int fd, long bufAddress, @size_t long count, int flags);

    /** msghdr is 56 bytes on LP64 Linux (x86_64, aarch64): name, namelen(+pad), iov, iovlen, control, controllen, flags(+pad). */
    @ssize_t long sendmsg(int fd, long msghdrAddress, int flags);

    /** Same 56-byte msghdr layout as sendmsg; msg_flags (offset 48) is written back. */
    @ssize_t long recvmsg(int fd, long msghdrAddress, int flags);

    int accept4(int fd, long addrAddress, long addrLenAddress, int flags);

    /** Listening sockets are made here rather than through jnr-unixsocket: binding its and
     *  jnr-enxio's interfaces cost ~20 ms each at first use (at start, and again at close). */
    int socket(int domain, int type, int protocol);

    int bind(int fd, long addrAddress, int addrLen);

    int listen(int fd, int backlog);

    /** The client side (ClientSocket): an abstract name, which JDK 17's UnixDomainSocketAddress cannot name. */
    int connect(int fd, long addrAddress, int addrLen);

    int shutdown(int fd, int how);

    int close(int fd);

    /** Writes the two fds into the 8 bytes at svAddress (tests and the fd-passing helpers). */
    int socketpair(int domain, int type, int protocol, long svAddress);

    int getsockopt(int fd, int level, int optname, long optvalAddress, long optlenAddress);

    int setsockopt(int fd, int level, int optname, long optvalAddress, int optlen);

    int fcntl(int fd, int cmd, int arg);

    /** For syscalls libc has no wrapper for (pidfd_open): two integer arguments. */
    long syscall(long number, long arg1, long arg2);

    /** FIONREAD: bytes queued for reading on a socket (tests). */
    long FIONREAD = 0x541B;

    /** Only for requests whose argument is a pointer. */
    int ioctl(int fd, long request, long argAddress);

    int getsockname(int fd, long addrAddress, long addrLenAddress);

    /** Removes a variable from the C environment (what exec'd children and native code see). */
    int unsetenv(String name);

    int chmod(String path, int mode);

    /** The real uid: one cheap syscall, unlike UnixSystem, which also reads /etc/passwd. */
    int getuid();

    int sched_yield();

    /** The launcher's end after its clean-up (cli.StopSignals): SIGINT re-raised, or _exit(0)
     *  on SIGTERM. Here because this interface is bound already; binding another costs ~20 ms. */
    int raise(int sig);

    void _exit(int status);

    /** The loaded libc (loaded on first use of this field). */
    LibC INSTANCE = Native.load();

    /** Static helpers; a nested class so jnr-ffi never sees them as functions to bind. */
    final class Native {
        /** -Dkdbus.nativeLibrary: the JNI library's path, or "none" for jnr-ffi only. */
        public static final String LIBRARY_PROPERTY = "kdbus.nativeLibrary";
        /** The JNI library's file name, looked for next to the jar (or classes directory's parent). */
        public static final String LIBRARY_FILE = "libkdbus-bridge-native.so";

        private static jnr.ffi.Runtime runtime;
        private static boolean jni;

        /** x86(_64) packs struct epoll_event to 12 bytes; other ABIs (aarch64) pad it to 16. */
        public static final boolean EPOLL_PACKED;
        /** sizeof(struct epoll_event) on this platform. */
        public static final int EPOLL_EVENT_SIZE;
        /** offset of epoll_event.data in struct epoll_event. */
        public static final int EPOLL_DATA_OFFSET;

        static {
            String arch = System.getProperty("os.arch", "");
            EPOLL_PACKED = arch.equals("amd64") || arch.equals("x86_64") || arch.equals("x86") || arch.matches("i[3-6]86");
            EPOLL_EVENT_SIZE = EPOLL_PACKED ? 12 : 16;
            EPOLL_DATA_OFFSET = EPOLL_PACKED ? 4 : 8;
        }

        private Native() {
        }

        static synchronized LibC load() {
            java.nio.file.Path lib = NativeLibrary.find(System.getProperty(LIBRARY_PROPERTY), LibC.class, LIBRARY_FILE);
            if (lib != null) {
                try {
                    System.load(lib.toString());
                    jni = true;
                    return new JniLibC();
                } catch (UnsatisfiedLinkError e) {
                    // A library of another architecture or libc: the jnr binding below works everywhere.
                    System.err.println("kdbus-bridge: " + lib + " not loaded (" + e.getMessage() + "); using jnr-ffi");
                }
            }
            LibC bound = LibraryLoader.create(LibC.class).load("c");
            runtime = jnr.ffi.Runtime.getRuntime(bound);
            return bound;
        }

        /** "jni" or "jnr": which binding {@link #INSTANCE} is (loads it if need be). */
        public static String binding() {
            LibC unused = INSTANCE;
            return jni ? "jni" : "jnr";
        }

        /** errno of the last failed libc call made through {@link #INSTANCE} on the calling thread. */
        public static int errno() {
            return jni ? JniLibC.lastErrno() : runtime.getLastError();
        }

        /** Human readable text for an errno value, e.g. "Broken pipe (EPIPE)". */
        public static String strerror(int errno) {
            jnr.constants.platform.Errno e = jnr.constants.platform.Errno.valueOf(errno);
            if (e == null || e == jnr.constants.platform.Errno.__UNKNOWN_CONSTANT__) {
                return "errno " + errno;
            }
            return e.description() + " (" + e.name() + ")";
        }

        /**
         * pidfd_open(pid, 0) (Linux 5.3): a pidfd (O_CLOEXEC) of the live process {@code pid},
         * or minus errno (ESRCH: no such process; ENOSYS: an older kernel). Both bindings make
         * the raw syscall (libc's wrapper is newer than some libcs we load), so neither lacks it.
         */
        public static int pidfdOpen(long pid) {
            long fd = INSTANCE.syscall(SYS_PIDFD_OPEN, pid, 0);
            return fd >= 0 ? (int) fd : -errno();
        }

        /** Why a hand-over native is unavailable here, or null if {@link #execveKeeping} works. */
        public static String handOverUnsupported() {
            if (!binding().equals("jni")) {
                return null; // JnrExec: the same steps through jnr-ffi
            }
            try {
                JniLibC.resetSignal0(0); // signal 0 is invalid: EINVAL proves the native is bound
                return null;
            } catch (UnsatisfiedLinkError e) {
                return "the loaded " + LIBRARY_FILE + " is older than this jar (no execve0): " + e.getMessage();
            }
        }

        /**
         * Hand-over exec (docs/handover.md section 4): every fd from 3 up becomes close-on-exec
         * except {@code keep}, the thread's signal mask is emptied, SIGHUP and SIGUSR2 are
         * ignored across the exec, and the process becomes {@code path} with {@code argv} (argv[0]
         * included) and the C environment as it is now (what unsetenv left). Returns only on
         * failure, with minus errno and everything put back; ENOSYS where the natives are missing.
         */
        public static int execveKeeping(String path, java.util.List<String> argv, int[] keep) {
            if (handOverUnsupported() != null) {
                return -ENOSYS;
            }
            if (!jni) {
                return JnrExec.execve(path, argv, keep, JniLibC.pathCharset());
            }
            byte[][] args = new byte[argv.size()][];
            for (int i = 0; i < args.length; i++) {
                args[i] = JniLibC.cString(argv.get(i));
            }
            return JniLibC.execve0(JniLibC.cString(path), args, null, keep);
        }

        /** waitid(P_PIDFD, pidfd, WEXITED|options): 0 with out = {si_code, si_status, si_pid}, or minus errno. */
        public static int waitidPidfd(int pidfd, int options, int[] out) {
            if (handOverUnsupported() != null) {
                return -ENOSYS;
            }
            return jni ? JniLibC.waitid0(pidfd, options, out) : JnrExec.waitid(pidfd, options, out);
        }

        /** Puts {@code sig} back to its default action (resume: SIGHUP arrives ignored); 0 or minus errno. */
        public static int resetSignal(int sig) {
            if (handOverUnsupported() != null) {
                return -ENOSYS;
            }
            return jni ? JniLibC.resetSignal0(sig) : JnrExec.resetSignal(sig);
        }

        /** poll(2)'s POLLOUT and POLLIN. */
        public static final int POLLIN = 0x1;
        public static final int POLLOUT = 0x4;

        /**
         * poll(2) of one descriptor: its revents, 0 on timeout, minus errno; minus ENOSYS where
         * the JNI library lacks it (jnr-ffi, or an older library), so the caller knows it must
         * not rely on it.
         */
        public static int pollOne(int fd, int events, int timeoutMillis) {
            if (!binding().equals("jni")) {
                return -ENOSYS;
            }
            try {
                return JniLibC.poll1(fd, events, timeoutMillis);
            } catch (UnsatisfiedLinkError e) {
                return -ENOSYS;
            }
        }

        /** Whether {@link #spawn} and {@link #pollOne} are there (the JNI library of this jar). */
        public static boolean spawnSupported() {
            return pollOne(-1, 0, 0) >= 0; // poll ignores a negative fd: 0 where the native exists
        }

        /**
         * posix_spawn of {@code path} with {@code argv} (argv[0] included) and exactly {@code env}
         * ("NAME=value"), in {@code cwd} (null: ours), stdin /dev/null, stdout and stderr dup2'd
         * from {@code outFd} and {@code errFd} (the same open files, not reopened), every other fd
         * closed. The pid, or minus errno (the exec's too); minus ENOSYS without the JNI native.
         */
        public static int spawn(String path, java.util.List<String> argv, java.util.List<String> env, String cwd,
                                int outFd, int errFd) {
            if (!binding().equals("jni")) {
                return -ENOSYS;
            }
            byte[][] a = new byte[argv.size()][];
            for (int i = 0; i < a.length; i++) {
                a[i] = JniLibC.cString(argv.get(i));
            }
            byte[][] v = new byte[env.size()][];
            for (int i = 0; i < v.length; i++) {
                v[i] = JniLibC.cString(env.get(i));
            }
            try {
                return JniLibC.spawn0(JniLibC.cString(path), a, v, cwd == null ? null : JniLibC.cString(cwd), outFd, errFd);
            } catch (UnsatisfiedLinkError e) {
                return -ENOSYS;
            }
        }

        /** Native address of a direct buffer's first byte (position is NOT added). */
        public static long address(ByteBuffer direct) {
            if (!direct.isDirect()) {
                throw new IllegalArgumentException("buffer must be direct");
            }
            LibC unused = INSTANCE;
            return jni ? JniLibC.address(direct) : MemoryIO.getInstance().getDirectBufferAddress(direct);
        }
    }
}
