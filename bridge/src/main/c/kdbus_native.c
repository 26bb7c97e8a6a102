/*
 * libkdbus-bridge-native: the bus's libc surface as plain JNI (org.kdbusbridge.bridge.transport.JniLibC).
 * Why: jnr-ffi generates call stubs at start (about 150 ms of CPU and ~10 MiB of RSS); these
 * natives are bound once by RegisterNatives in JNI_OnLoad. Every call is the libc call itself;
 * on failure errno is kept in a thread-local that Java reads with lastErrno(), because the JVM
 * may make its own libc calls between our return and the Java side's errno read.
 * Buffers are raw addresses (direct buffers, native memory): no copying, no pinning.
 */
#define _GNU_SOURCE
#include <jni.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

static __thread int last_errno;

#define PTR(a) ((void *) (intptr_t) (a))
/* Keeps errno of a failed call (result -1) for lastErrno(); returns the result unchanged. */
#define KEEP(expr) ({ __typeof__(expr) r_ = (expr); if (r_ < 0) last_errno = errno; r_; })

static jint JNICALL j_lastErrno(JNIEnv *e, jclass c) { return last_errno; }
static jint JNICALL j_epollCreate1(JNIEnv *e, jclass c, jint flags) { return KEEP(epoll_create1(flags)); }
static jint JNICALL j_epollCtl(JNIEnv *e, jclass c, jint epfd, jint op, jint fd, jlong ev) {
    return KEEP(epoll_ctl(epfd, op, fd, PTR(ev)));
}
static jint JNICALL j_epollWait(JNIEnv *e, jclass c, jint epfd, jlong evs, jint max, jint timeout) {
    return KEEP(epoll_wait(epfd, PTR(evs), max, timeout));
}
static jint JNICALL j_eventfd(JNIEnv *e, jclass c, jint init, jint flags) { return KEEP(eventfd((unsigned) init, flags)); }
static jlong JNICALL j_read(JNIEnv *e, jclass c, jint fd, jlong buf, jlong n) { return KEEP(read(fd, PTR(buf), (size_t) n)); }
static jlong JNICALL j_write(JNIEnv *e, jclass c, jint fd, jlong buf, jlong n) { return KEEP(write(fd, PTR(buf), (size_t) n)); }
static jlong JNICALL j_writev(JNIEnv *e, jclass c, jint fd, jlong iov, jint n) { return KEEP(writev(fd, PTR(iov), n)); }
static jlong JNICALL j_send(JNIEnv *e, jclass c, jint fd, jlong buf, jlong n, jint flags) {
    return KEEP(send(fd, PTR(buf), (size_t) n, flags));
}
static jlong JNICALL j_sendmsg(JNIEnv *e, jclass c, jint fd, jlong msg, jint flags) { return KEEP(sendmsg(fd, PTR(msg), flags)); }
static jlong JNICALL j_recvmsg(JNIEnv *e, jclass c, jint fd, jlong msg, jint flags) { return KEEP(recvmsg(fd, PTR(msg), flags)); }
static jint JNICALL j_accept4(JNIEnv *e, jclass c, jint fd, jlong addr, jlong len, jint flags) {
    return KEEP(accept4(fd, PTR(addr), PTR(len), flags));
}
static jint JNICALL j_socket(JNIEnv *e, jclass c, jint d, jint t, jint p) { return KEEP(socket(d, t, p)); }
static jint JNICALL j_bind(JNIEnv *e, jclass c, jint fd, jlong addr, jint len) { return KEEP(bind(fd, PTR(addr), (socklen_t) len)); }
static jint JNICALL j_listen(JNIEnv *e, jclass c, jint fd, jint backlog) { return KEEP(listen(fd, backlog)); }
/* The client side (bridge.transport.ClientSocket): abstract names, which JDK 17's channels cannot reach. */
static jint JNICALL j_connect(JNIEnv *e, jclass c, jint fd, jlong addr, jint len) { return KEEP(connect(fd, PTR(addr), (socklen_t) len)); }
static jint JNICALL j_shutdown(JNIEnv *e, jclass c, jint fd, jint how) { return KEEP(shutdown(fd, how)); }
static jint JNICALL j_close(JNIEnv *e, jclass c, jint fd) { return KEEP(close(fd)); }
static jint JNICALL j_socketpair(JNIEnv *e, jclass c, jint d, jint t, jint p, jlong sv) { return KEEP(socketpair(d, t, p, PTR(sv))); }
static jint JNICALL j_getsockopt(JNIEnv *e, jclass c, jint fd, jint level, jint name, jlong val, jlong len) {
    return KEEP(getsockopt(fd, level, name, PTR(val), PTR(len)));
}
static jint JNICALL j_setsockopt(JNIEnv *e, jclass c, jint fd, jint level, jint name, jlong val, jint len) {
    return KEEP(setsockopt(fd, level, name, PTR(val), (socklen_t) len));
}
static jint JNICALL j_fcntl(JNIEnv *e, jclass c, jint fd, jint cmd, jint arg) { return KEEP(fcntl(fd, cmd, arg)); }
static jlong JNICALL j_syscall(JNIEnv *e, jclass c, jlong nr, jlong a1, jlong a2) { return KEEP(syscall(nr, a1, a2)); }
static jint JNICALL j_ioctl(JNIEnv *e, jclass c, jint fd, jlong req, jlong arg) { return KEEP(ioctl(fd, (unsigned long) req, PTR(arg))); }
static jint JNICALL j_getsockname(JNIEnv *e, jclass c, jint fd, jlong addr, jlong len) {
    return KEEP(getsockname(fd, PTR(addr), PTR(len)));
}
static jint JNICALL j_getuid(JNIEnv *e, jclass c) { return (jint) getuid(); }
static jint JNICALL j_schedYield(JNIEnv *e, jclass c) { return sched_yield(); }
static jint JNICALL j_raise(JNIEnv *e, jclass c, jint sig) { return KEEP(raise(sig)); }
static void JNICALL j_exit(JNIEnv *e, jclass c, jint status) { _exit(status); }
static jint JNICALL j_setsid(JNIEnv *e, jclass c) { return KEEP(setsid()); }
static jint JNICALL j_dup2(JNIEnv *e, jclass c, jint a, jint b) { return KEEP(dup2(a, b)); }
static jint JNICALL j_setgid(JNIEnv *e, jclass c, jint g) { return KEEP(setgid((gid_t) g)); }
static jint JNICALL j_setuid(JNIEnv *e, jclass c, jint u) { return KEEP(setuid((uid_t) u)); }
static jint JNICALL j_umask(JNIEnv *e, jclass c, jint m) { return (jint) umask((mode_t) m); }
static jlong JNICALL j_address(JNIEnv *e, jclass c, jobject buf) { return (jlong) (intptr_t) (*e)->GetDirectBufferAddress(e, buf); }

static jint JNICALL j_setgroups(JNIEnv *e, jclass c, jintArray list) {
    jsize n = list == NULL ? 0 : (*e)->GetArrayLength(e, list);
    gid_t groups[n > 0 ? n : 1];
    if (n > 0) {
        jint tmp[n];
        (*e)->GetIntArrayRegion(e, list, 0, n, tmp);
        for (jsize i = 0; i < n; i++) groups[i] = (gid_t) tmp[i];
    }
    return KEEP(setgroups((size_t) n, groups));
}

/* Path-taking calls get a NUL-terminated byte[] encoded on the Java side (sun.jnu.encoding). */
#define WITH_PATH(arr, var, body) ({ \
    jbyte *var = (*e)->GetByteArrayElements(e, arr, NULL); \
    jint r_; if (var == NULL) { last_errno = ENOMEM; r_ = -1; } else { r_ = (body); \
    (*e)->ReleaseByteArrayElements(e, arr, var, JNI_ABORT); } r_; })

static jint JNICALL j_unsetenv(JNIEnv *e, jclass c, jbyteArray name) { return WITH_PATH(name, s, KEEP(unsetenv((char *) s))); }
static jint JNICALL j_chmod(JNIEnv *e, jclass c, jbyteArray path, jint mode) { return WITH_PATH(path, s, KEEP(chmod((char *) s, (mode_t) mode))); }
static jint JNICALL j_open(JNIEnv *e, jclass c, jbyteArray path, jint flags) { return WITH_PATH(path, s, KEEP(open((char *) s, flags))); }
static jint JNICALL j_memfdCreate(JNIEnv *e, jclass c, jbyteArray name, jint flags) {
    return WITH_PATH(name, s, KEEP((int) syscall(SYS_memfd_create, (char *) s, (unsigned) flags)));
}

/* ---- hand-over (docs/handover.md section 4): execve in place, keeping only the carried fds ---- */
extern char **environ;

static void free_strings(char **v) {
    if (v == NULL) return;
    for (char **p = v; *p != NULL; p++) free(*p);
    free(v);
}

/* A byte[][] of NUL-terminated strings as a NULL-terminated char*[] (malloc'ed), or NULL on ENOMEM. */
static char **c_strings(JNIEnv *e, jobjectArray arr) {
    jsize n = (*e)->GetArrayLength(e, arr);
    char **v = calloc((size_t) n + 1, sizeof *v);
    if (v == NULL) return NULL;
    for (jsize i = 0; i < n; i++) {
        jbyteArray b = (jbyteArray) (*e)->GetObjectArrayElement(e, arr, i);
        jsize len = b == NULL ? 0 : (*e)->GetArrayLength(e, b);
        v[i] = malloc((size_t) len + 1);
        if (v[i] == NULL) { free_strings(v); return NULL; }
        if (len > 0) (*e)->GetByteArrayRegion(e, b, 0, len, (jbyte *) v[i]);
        v[i][len] = 0;
        (*e)->DeleteLocalRef(e, b);
    }
    return v;
}

/* Every fd from 3 up close-on-exec: close_range (Linux 5.11), else fcntl over /proc/self/fd. */
static int all_cloexec(void) {
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
    if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0) return 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) return -1;
    int own = dirfd(d);
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        int fd = atoi(ent->d_name);
        if (fd < 3 || fd == own) continue;
        int f = fcntl(fd, F_GETFD);
        if (f >= 0) fcntl(fd, F_SETFD, f | FD_CLOEXEC);
    }
    closedir(d);
    return 0;
}

/*
 * execve0(path, argv, envp or null for the C environment as it is now, keep): marks every fd
 * close-on-exec but the keep set, empties this thread's signal mask, ignores SIGHUP and SIGUSR2
 * (a handled signal would fall back to "terminate" while the new JVM starts), then execs. Returns
 * only on failure: -errno, with CLOEXEC on the keep set, the mask and the dispositions restored.
 * No JNI call between the first change and execve.
 */
static jint JNICALL j_execve(JNIEnv *e, jclass c, jbyteArray path, jobjectArray argv, jobjectArray envp, jintArray keep) {
    jsize nkeep = keep == NULL ? 0 : (*e)->GetArrayLength(e, keep);
    jint *fds = malloc(sizeof(jint) * (size_t) (nkeep > 0 ? nkeep : 1));
    jsize plen = (*e)->GetArrayLength(e, path);
    char *cpath = malloc((size_t) plen + 1);
    char **cargv = c_strings(e, argv);
    char **cenvp = envp == NULL ? NULL : c_strings(e, envp);
    if (fds == NULL || cpath == NULL || cargv == NULL || (envp != NULL && cenvp == NULL)) {
        free(fds); free(cpath); free_strings(cargv); free_strings(cenvp);
        return -ENOMEM;
    }
    if (nkeep > 0) (*e)->GetIntArrayRegion(e, keep, 0, nkeep, fds);
    (*e)->GetByteArrayRegion(e, path, 0, plen, (jbyte *) cpath);
    cpath[plen] = 0;

    int err = 0;
    if (all_cloexec() != 0) {
        err = errno;
    } else {
        for (jsize i = 0; i < nkeep; i++) {
            if (fcntl(fds[i], F_SETFD, 0) != 0) { err = errno; break; }
        }
    }
    if (err == 0) {
        sigset_t none, oldmask;
        sigemptyset(&none);
        struct sigaction ign, oldhup, oldusr2;
        memset(&ign, 0, sizeof ign);
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        pthread_sigmask(SIG_SETMASK, &none, &oldmask);
        sigaction(SIGHUP, &ign, &oldhup);
        sigaction(SIGUSR2, &ign, &oldusr2);
        execve(cpath, cargv, cenvp != NULL ? cenvp : environ);
        err = errno;
        sigaction(SIGUSR2, &oldusr2, NULL);
        sigaction(SIGHUP, &oldhup, NULL);
        pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    }
    for (jsize i = 0; i < nkeep; i++) fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    free(fds); free(cpath); free_strings(cargv); free_strings(cenvp);
    return -err;
}

/* waitid(P_PIDFD, pidfd, WEXITED|options): 0 with out = {si_code, si_status, si_pid}, or -errno. */
static jint JNICALL j_waitid(JNIEnv *e, jclass c, jint pidfd, jint options, jintArray out) {
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid((idtype_t) P_PIDFD, (id_t) pidfd, &info, WEXITED | options) != 0) return -errno;
    jint v[3] = { info.si_code, info.si_status, (jint) info.si_pid };
    (*e)->SetIntArrayRegion(e, out, 0, 3, v);
    return 0;
}


/*
 * spawn0(path, argv, envp, cwd or null, outFd, errFd): posix_spawn of an activated service of a
 * hosted bus, whose stdout/stderr are the very descriptors its front passed (dup2, so the file
 * descriptions, offsets and O_APPEND are shared as a dbus-daemon's children share the daemon's);
 * stdin /dev/null, every other fd closed, empty signal mask, default dispositions. The pid, or
 * -errno (the exec's own errno too: glibc's posix_spawn reports it).
 */
static jint JNICALL j_spawn(JNIEnv *e, jclass c, jbyteArray path, jobjectArray argv, jobjectArray envp,
                            jbyteArray cwd, jint outFd, jint errFd) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    jsize plen = (*e)->GetArrayLength(e, path);
    jsize clen = cwd == NULL ? 0 : (*e)->GetArrayLength(e, cwd);
    char *cpath = malloc((size_t) plen + 1);
    char *ccwd = cwd == NULL ? NULL : malloc((size_t) clen + 1);
    char **cargv = c_strings(e, argv);
    char **cenvp = c_strings(e, envp);
    if (cpath == NULL || (cwd != NULL && ccwd == NULL) || cargv == NULL || cenvp == NULL) {
        free(cpath); free(ccwd); free_strings(cargv); free_strings(cenvp);
        return -ENOMEM;
    }
    (*e)->GetByteArrayRegion(e, path, 0, plen, (jbyte *) cpath);
    cpath[plen] = 0;
    if (ccwd != NULL) {
        (*e)->GetByteArrayRegion(e, cwd, 0, clen, (jbyte *) ccwd);
        ccwd[clen] = 0;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    pid_t pid = -1;
    int r = posix_spawn_file_actions_init(&fa);
    if (r == 0) {
        r = posix_spawnattr_init(&at);
        if (r != 0) posix_spawn_file_actions_destroy(&fa);
    }
    if (r == 0) {
        /* out/err are >= 3 (the host's own 0-2 are open), so the dup2s cannot clobber each other */
        if (r == 0) r = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        if (r == 0) r = posix_spawn_file_actions_adddup2(&fa, outFd, 1);
        if (r == 0) r = posix_spawn_file_actions_adddup2(&fa, errFd, 2);
        if (r == 0 && ccwd != NULL) r = posix_spawn_file_actions_addchdir_np(&fa, ccwd);
        if (r == 0) r = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        if (r == 0) r = posix_spawnattr_setsigmask(&at, &none);
        if (r == 0) r = posix_spawnattr_setsigdefault(&at, &all);
        if (r == 0) r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0) r = posix_spawn(&pid, cpath, &fa, &at, cargv, cenvp);
        posix_spawnattr_destroy(&at);
        posix_spawn_file_actions_destroy(&fa);
    }
    free(cpath); free(ccwd); free_strings(cargv); free_strings(cenvp);
    return r == 0 ? (jint) pid : -r;
#else
    return -ENOSYS;
#endif
}

/* poll1(fd, events, timeout ms): the revents (0 on timeout) or -errno; for one blocking fd. */
static jint JNICALL j_poll1(JNIEnv *e, jclass c, jint fd, jint events, jint timeout) {
    struct pollfd p;
    p.fd = fd;
    p.events = (short) events;
    p.revents = 0;
    int r = poll(&p, 1, timeout);
    if (r < 0) return -errno;
    return r == 0 ? 0 : (jint) (unsigned short) p.revents;
}

/* Puts a signal back to its default action (resume: SIGHUP arrives ignored from execve0). */
static jint JNICALL j_resetSignal(JNIEnv *e, jclass c, jint sig) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    return sigaction(sig, &dfl, NULL) == 0 ? 0 : -errno;
}

static const JNINativeMethod METHODS[] = {
    {"lastErrno", "()I", (void *) j_lastErrno},
    {"epollCreate1", "(I)I", (void *) j_epollCreate1},
    {"epollCtl", "(IIIJ)I", (void *) j_epollCtl},
    {"epollWait", "(IJII)I", (void *) j_epollWait},
    {"eventfd0", "(II)I", (void *) j_eventfd},
    {"read0", "(IJJ)J", (void *) j_read},
    {"write0", "(IJJ)J", (void *) j_write},
    {"writev0", "(IJI)J", (void *) j_writev},
    {"send0", "(IJJI)J", (void *) j_send},
    {"sendmsg0", "(IJI)J", (void *) j_sendmsg},
    {"recvmsg0", "(IJI)J", (void *) j_recvmsg},
    {"accept40", "(IJJI)I", (void *) j_accept4},
    {"socket0", "(III)I", (void *) j_socket},
    {"bind0", "(IJI)I", (void *) j_bind},
    {"listen0", "(II)I", (void *) j_listen},
    {"connect0", "(IJI)I", (void *) j_connect},
    {"shutdown0", "(II)I", (void *) j_shutdown},
    {"close0", "(I)I", (void *) j_close},
    {"socketpair0", "(IIIJ)I", (void *) j_socketpair},
    {"getsockopt0", "(IIIJJ)I", (void *) j_getsockopt},
    {"setsockopt0", "(IIIJI)I", (void *) j_setsockopt},
    {"fcntl0", "(III)I", (void *) j_fcntl},
    {"syscall0", "(JJJ)J", (void *) j_syscall},
    {"ioctl0", "(IJJ)I", (void *) j_ioctl},
    {"getsockname0", "(IJJ)I", (void *) j_getsockname},
    {"getuid0", "()I", (void *) j_getuid},
    {"schedYield", "()I", (void *) j_schedYield},
    {"raise0", "(I)I", (void *) j_raise},
    {"exit0", "(I)V", (void *) j_exit},
    {"setsid0", "()I", (void *) j_setsid},
    {"dup20", "(II)I", (void *) j_dup2},
    {"setgid0", "(I)I", (void *) j_setgid},
    {"setuid0", "(I)I", (void *) j_setuid},
    {"umask0", "(I)I", (void *) j_umask},
    {"setgroups0", "([I)I", (void *) j_setgroups},
    {"address0", "(Ljava/nio/Buffer;)J", (void *) j_address},
    {"unsetenv0", "([B)I", (void *) j_unsetenv},
    {"chmod0", "([BI)I", (void *) j_chmod},
    {"open0", "([BI)I", (void *) j_open},
    {"memfdCreate0", "([BI)I", (void *) j_memfdCreate},
    {"execve0", "([B[[B[[B[I)I", (void *) j_execve},
    {"waitid0", "(II[I)I", (void *) j_waitid},
    {"resetSignal0", "(I)I", (void *) j_resetSignal},
    {"poll1", "(III)I", (void *) j_poll1},
    {"spawn0", "([B[[B[[B[BII)I", (void *) j_spawn},
};

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved) {
    JNIEnv *e;
    if ((*vm)->GetEnv(vm, (void **) &e, JNI_VERSION_1_8) != JNI_OK) return JNI_ERR;
    jclass c = (*e)->FindClass(e, "org/kdbusbridge/bridge/transport/JniLibC");
    if (c == NULL) return JNI_ERR;
    if ((*e)->RegisterNatives(e, c, METHODS, sizeof METHODS / sizeof METHODS[0]) != 0) return JNI_ERR;
    return JNI_VERSION_1_8;
}
