package org.kdbusbridge.bridge.transport;

import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

/**
 * The hand-over natives on the jnr-ffi fallback (no JNI library): the same steps as
 * kdbus_native.c's execve0, waitid0 and resetSignal0, made from Java with libc calls in between.
 * Struct sigaction is saved and restored as opaque bytes, so its layout does not matter here;
 * only a new one is built: handler first, then an empty mask and no flags (glibc on x86_64 and
 * aarch64). Bound on first use only: a bus that never hands over never pays for the stubs.
 */
public final class JnrExec {
    private static final int SIG_SETMASK = 2;
    private static final int SIGHUP = 1;
    private static final int SIGUSR2 = 12;
    private static final int SIGACTION_BYTES = 256; // >= sizeof(struct sigaction) (152 on x86_64)
    private static final int SIGSET_BYTES = 128;
    private static final int WEXITED = 4;
    private static final int P_PIDFD = 3;

    /** libc as jnr binds it; the names are the C functions. */
    public interface Calls {
        int execve(String path, Pointer argv, Pointer envp);

        int pthread_sigmask(int how, Pointer set, Pointer old);

        int sigaction(int sig, Pointer act, Pointer old);

        int waitid(int idtype, int id, Pointer info, int options);

        int fcntl(int fd, int cmd, int arg);
    }

    private static Calls calls;
    private static Runtime runtime;

    private JnrExec() {
    }

    private static synchronized Calls calls() {
        if (calls == null) {
            calls = LibraryLoader.create(Calls.class).load("c");
            runtime = Runtime.getRuntime(calls);
        }
        return calls;
    }

    private static int errno() {
        return runtime.getLastError();
    }

    /** As JniLibC.execve0 with envp null (libc's environ as it is now). */
    static int execve(String path, List<String> argv, int[] keep, Charset cs) {
        Calls c = calls();
        List<Pointer> alive = new java.util.ArrayList<>(); // native strings freed only after execve returns
        Pointer args = strings(argv, cs, alive);
        Pointer env = environ();
        if (env == null) {
            env = strings(environment(), cs, alive);
        }
        if (!allCloseOnExec(c)) {
            return -errno();
        }
        for (int fd : keep) {
            if (c.fcntl(fd, LibC.F_SETFD, 0) != 0) {
                int e = errno();
                closeOnExec(c, keep);
                return -e;
            }
        }
        Pointer none = Memory.allocateDirect(runtime, SIGSET_BYTES, true);
        Pointer oldMask = Memory.allocateDirect(runtime, SIGSET_BYTES, true);
        Pointer ignore = Memory.allocateDirect(runtime, SIGACTION_BYTES, true);
        ignore.putAddress(0, 1L); // SIG_IGN
        Pointer oldHup = Memory.allocateDirect(runtime, SIGACTION_BYTES, true);
        Pointer oldUsr2 = Memory.allocateDirect(runtime, SIGACTION_BYTES, true);
        c.pthread_sigmask(SIG_SETMASK, none, oldMask);
        c.sigaction(SIGHUP, ignore, oldHup);
        c.sigaction(SIGUSR2, ignore, oldUsr2);
        c.execve(path, args, env);
        int e = errno();
        c.sigaction(SIGUSR2, oldUsr2, null);
        c.sigaction(SIGHUP, oldHup, null);
        c.pthread_sigmask(SIG_SETMASK, oldMask, null);
        closeOnExec(c, keep);
        java.lang.ref.Reference.reachabilityFence(alive);
        java.lang.ref.Reference.reachabilityFence(args);
        return -e;
    }

    /** libc's environ (what unsetenv left), or null if the symbol cannot be found. */
    private static Pointer environ() {
        try {
            long symbol = com.kenai.jffi.Library.getDefault().getSymbolAddress("environ");
            if (symbol == 0) {
                return null;
            }
            long env = com.kenai.jffi.MemoryIO.getInstance().getAddress(symbol);
            return env == 0 ? null : Pointer.wrap(runtime, env);
        } catch (RuntimeException | LinkageError e) {
            return null;
        }
    }

    static int waitid(int pidfd, int options, int[] out) {
        Calls c = calls();
        Pointer info = Memory.allocateDirect(runtime, 128, true);
        if (c.waitid(P_PIDFD, pidfd, info, WEXITED | options) != 0) {
            return -errno();
        }
        // siginfo_t for SIGCHLD: si_code at 8, then (after padding to 16) si_pid, si_uid, si_status.
        out[0] = info.getInt(8);
        out[1] = info.getInt(24);
        out[2] = info.getInt(16);
        return 0;
    }

    static int resetSignal(int sig) {
        Calls c = calls();
        Pointer dfl = Memory.allocateDirect(runtime, SIGACTION_BYTES, true); // SIG_DFL is 0
        return c.sigaction(sig, dfl, null) == 0 ? 0 : -errno();
    }

    private static void closeOnExec(Calls c, int[] fds) {
        for (int fd : fds) {
            c.fcntl(fd, LibC.F_SETFD, LibC.FD_CLOEXEC);
        }
    }

    /** Every fd from 3 up close-on-exec, through /proc/self/fd (its own fd is close-on-exec already). */
    private static boolean allCloseOnExec(Calls c) {
        try (DirectoryStream<Path> d = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path p : d) {
                int fd = Integer.parseInt(p.getFileName().toString());
                if (fd >= 3) {
                    int flags = c.fcntl(fd, LibC.F_GETFD, 0);
                    if (flags >= 0) {
                        c.fcntl(fd, LibC.F_SETFD, flags | LibC.FD_CLOEXEC);
                    }
                }
            }
            return true;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** Without environ: the start-up environment less what SystemdSockets unsets. */
    private static List<String> environment() {
        List<String> out = new java.util.ArrayList<>();
        System.getenv().forEach((k, v) -> {
            if (!k.startsWith("LISTEN_")) {
                out.add(k + "=" + v);
            }
        });
        return out;
    }

    /** A NULL-terminated char*[] in native memory (kept reachable by the caller until execve). */
    private static Pointer strings(List<String> values, Charset cs, List<Pointer> alive) {
        int w = runtime.addressSize();
        Pointer array = Memory.allocateDirect(runtime, (long) (values.size() + 1) * w, true);
        alive.add(array);
        for (int i = 0; i < values.size(); i++) {
            byte[] b = values.get(i).getBytes(cs);
            Pointer s = Memory.allocateDirect(runtime, b.length + 1, true);
            s.put(0, b, 0, b.length);
            alive.add(s);
            array.putPointer((long) i * w, s);
        }
        return array;
    }
}
