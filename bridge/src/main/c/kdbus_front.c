/*
 * kdbus-bridge-front: the process a test runner starts as "dbus-daemon" when the bus can run in
 * the warm bus host (org.kdbusbridge.bridge.host.BusHost): a private bus without a JVM start.
 *
 *   kdbus-bridge-front LAUNCHER JAR JVM-OPTIONS-FILE [dbus-daemon options...]
 *   ROOT/bin/dbus-daemon [dbus-daemon options...]   (the distribution's copy: no sh before it;
 *                                                     LAUNCHER, JAR, OPTIONS found from ROOT)
 *   kdbus-bridge-front --classify [dbus-daemon options...]     (prints "host" or "jvm"; tests)
 *
 * bin/dbus-daemon execs it. A start the host can run (a private bus on a config file, unix
 * sockets at absolute paths) is sent to the host socket
 * ${KDBUS_BRIDGE_HOST_DIR:-/run/user/UID or /tmp}/kdbus-bridge-host-UID/KEY with argv, working directory, environment
 * and our fds 0-2; we print the address and our own pid as dbus-daemon would and stay until a
 * signal (SIGTERM: exit 0 after the host stopped the bus; SIGINT: then die by SIGINT; SIGHUP:
 * reload). Anything else, no host yet (one is started in the background, detached), a host that
 * answers "not hostable" or goes away before answering: we exec LAUNCHER (the JVM bus) with the
 * same options, so the caller sees exactly the bus it would have had.
 *
 * KEY is a hash of the jar (path, size, mtime), the JVM options file's text, the JDK (JAVA_HOME
 * or java on PATH, resolved, and its mtime) and the variables that change the JVM
 * (KDBUS_BRIDGE_JAVA_OPTS, JAVA_TOOL_OPTIONS, JDK_JAVA_OPTIONS): any change gets a new host.
 * The wire format is described in org.kdbusbridge.bridge.host.HostProtocol.
 *
 * The JVM path is exec'd with the caller's environment unchanged (no KDBUS_BRIDGE_HOST=0 added):
 * LAUNCHER never execs the front (only bin/dbus-daemon does), so there is no loop to break, and
 * the bus's activated services see exactly the environment dbus-daemon's would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *launcher;
static char **bus_argv; /* the dbus-daemon options */
static int bus_argc;
static sigset_t old_mask;

/* ---- the options a hosted start may have ---- */

struct opts {
    int conf;
    int print_address, print_pid;
    const char *address_fd, *pid_fd; /* NULL or "": stdout */
    int address, nofork, nopidfile;
};

static int digits(const char *s) {
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return 0;
        }
    }
    return 1;
}

/* unix:path=/..., unix:dir=/..., unix:tmpdir=/... (one address, optional guid) */
static int hostable_address(const char *a) {
    if (strncmp(a, "unix:", 5) != 0 || strchr(a, ';') != NULL) {
        return 0;
    }
    char buf[4096];
    if (strlen(a + 5) >= sizeof buf) {
        return 0;
    }
    strcpy(buf, a + 5);
    int where = 0;
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        if (strncmp(kv, "path=/", 6) == 0 || strncmp(kv, "dir=/", 5) == 0 || strncmp(kv, "tmpdir=/", 8) == 0) {
            where++;
        } else if (strncmp(kv, "guid=", 5) != 0) {
            return 0;
        }
    }
    return where == 1;
}

/* 1 if argv is a start the host runs; the parsed options in *o. */
static int classify(int argc, char **argv, struct opts *o) {
    memset(o, 0, sizeof *o);
    if (getenv("LISTEN_FDS") != NULL || getenv("LISTEN_PID") != NULL) {
        return 0; /* systemd socket activation: the sockets belong to a process of its own */
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--session") == 0) {
            if (o->conf++) {
                return 0;
            }
        } else if (strncmp(a, "--config-file=", 14) == 0) {
            if (o->conf++ || a[14] == '\0') {
                return 0;
            }
        } else if (strcmp(a, "--config-file") == 0) {
            if (o->conf++ || next == NULL || strncmp(next, "--", 2) == 0) {
                return 0;
            }
            i++;
        } else if (strcmp(a, "--print-address") == 0 || strncmp(a, "--print-address=", 16) == 0) {
            if (o->print_address++) {
                return 0;
            }
            o->address_fd = a[15] == '=' ? a + 16 : NULL;
            if (o->address_fd == NULL && next != NULL && next[0] != '\0' && digits(next)) {
                o->address_fd = argv[++i];
            }
            if (o->address_fd != NULL && !digits(o->address_fd)) {
                return 0;
            }
        } else if (strcmp(a, "--print-pid") == 0 || strncmp(a, "--print-pid=", 12) == 0) {
            if (o->print_pid++) {
                return 0;
            }
            o->pid_fd = a[11] == '=' ? a + 12 : NULL;
            if (o->pid_fd == NULL && next != NULL && next[0] != '\0' && digits(next)) {
                o->pid_fd = argv[++i];
            }
            if (o->pid_fd != NULL && !digits(o->pid_fd)) {
                return 0;
            }
        } else if (strncmp(a, "--address=", 10) == 0) {
            if (o->address++ || !hostable_address(a + 10)) {
                return 0;
            }
        } else if (strcmp(a, "--address") == 0) {
            if (o->address++ || next == NULL || !hostable_address(next)) {
                return 0;
            }
            i++;
        } else if (strcmp(a, "--nofork") == 0) {
            o->nofork = 1;
        } else if (strcmp(a, "--nopidfile") == 0) {
            o->nopidfile = 1;
        } else if (strcmp(a, "--nosyslog") == 0 || strcmp(a, "--syslog") == 0 || strcmp(a, "--syslog-only") == 0) {
            /* the bus logs to stderr either way */
        } else if (strcmp(a, "--systemd-activation") == 0) {
            /* one bus's activation mode, nothing of the process: dbus's own test suite passes it to every bus */
        } else {
            return 0; /* --system, --fork, --kdbus-*, --version, ... */
        }
    }
    return o->conf == 1;
}

/* ---- the JVM path ---- */

static void run_jvm(void) {
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    char **argv = calloc((size_t) bus_argc + 2, sizeof *argv);
    if (argv == NULL) {
        _exit(1);
    }
    argv[0] = (char *) launcher;
    for (int i = 0; i < bus_argc; i++) {
        argv[i + 1] = bus_argv[i];
    }
    execv(launcher, argv);
    fprintf(stderr, "kdbus-bridge: cannot run %s: %s\n", launcher, strerror(errno));
    _exit(1);
}

/* KDBUS_BRIDGE_FRONT_DEBUG=1: say on stderr why a start runs in a JVM of its own. */
static void fallback(const char *why) {
    const char *debug = getenv("KDBUS_BRIDGE_FRONT_DEBUG");
    if (debug != NULL && strcmp(debug, "1") == 0) {
        fprintf(stderr, "kdbus-bridge-front: running the bus in a JVM: %s%s%s%s\n", why, errno ? " (" : "",
                errno ? strerror(errno) : "", errno ? ")" : "");
    }
    run_jvm();
}

/* ---- the key ---- */

static uint64_t hash = 1469598103934665603ULL;

static void mix(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        hash = (hash ^ b[i]) * 1099511628211ULL;
    }
    unsigned char sep = 0;
    hash = (hash ^ sep) * 1099511628211ULL;
}

static void mix_str(const char *s) {
    mix(s ? s : "", s ? strlen(s) : 0);
}

static int mix_file_stamp(const char *path) {
    struct stat st;
    if (path == NULL || stat(path, &st) != 0) {
        return -1;
    }
    mix_str(path);
    mix(&st.st_size, sizeof st.st_size);
    mix(&st.st_mtim, sizeof st.st_mtim);
    return 0;
}

static void mix_file_text(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mix_str("-");
        return;
    }
    char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        mix(buf, (size_t) n);
    }
    close(fd);
}

/* The java binary the launcher would run, resolved. */
static void mix_jdk(void) {
    char path[PATH_MAX], real[PATH_MAX];
    const char *home = getenv("JAVA_HOME");
    path[0] = '\0';
    if (home != NULL && home[0] != '\0') {
        snprintf(path, sizeof path, "%s/bin/java", home);
    } else {
        const char *p = getenv("PATH");
        while (p != NULL && *p) {
            const char *end = strchr(p, ':');
            size_t len = end ? (size_t) (end - p) : strlen(p);
            if (len > 0 && len + 6 < sizeof path) {
                memcpy(path, p, len);
                strcpy(path + len, "/java");
                if (access(path, X_OK) == 0) {
                    break;
                }
            }
            path[0] = '\0';
            p = end ? end + 1 : NULL;
        }
    }
    if (path[0] != '\0' && realpath(path, real) != NULL) {
        mix_file_stamp(real);
    } else {
        mix_str("no-java");
    }
}

/* ---- I/O ---- */

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static void put_bytes(struct buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->len + n) {
            cap *= 2;
        }
        b->p = realloc(b->p, cap);
        if (b->p == NULL) {
            run_jvm();
        }
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_u32(struct buf *b, uint32_t v) {
    unsigned char le[4] = {(unsigned char) v, (unsigned char) (v >> 8), (unsigned char) (v >> 16),
                           (unsigned char) (v >> 24)};
    put_bytes(b, le, 4);
}

static void put_str(struct buf *b, const char *s) {
    size_t n = strlen(s);
    put_u32(b, (uint32_t) n);
    put_bytes(b, s, n);
}

static void put_link(struct buf *b, const char *path) {
    char link[256];
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n < 0 ? 0 : n] = '\0';
    put_str(b, n < 0 ? "?" : link);
}

static int read_full(int fd, void *p, size_t n) {
    unsigned char *q = p;
    while (n > 0) {
        ssize_t r = read(fd, q, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        q += r;
        n -= (size_t) r;
    }
    return 0;
}

static int write_full(int fd, const void *p, size_t n) {
    const unsigned char *q = p;
    while (n > 0) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        q += w;
        n -= (size_t) w;
    }
    return 0;
}

/* One reply: type and payload (malloc'd, NUL-terminated). -1 at EOF or on an error. */
static int read_reply(int fd, char *type, char **payload, uint32_t *len) {
    unsigned char h[5];
    if (read_full(fd, h, 5) != 0) {
        return -1;
    }
    *type = (char) h[0];
    *len = (uint32_t) h[1] | (uint32_t) h[2] << 8 | (uint32_t) h[3] << 16 | (uint32_t) h[4] << 24;
    if (*len > (1u << 20)) {
        return -1;
    }
    *payload = malloc(*len + 1);
    if (*payload == NULL || read_full(fd, *payload, *len) != 0) {
        return -1;
    }
    (*payload)[*len] = '\0';
    return 0;
}

static uint32_t u32_of(const char *p, uint32_t len) {
    if (len < 4) {
        return 1;
    }
    const unsigned char *u = (const unsigned char *) p;
    return (uint32_t) u[0] | (uint32_t) u[1] << 8 | (uint32_t) u[2] << 16 | (uint32_t) u[3] << 24;
}

/* dbus-daemon's --print-address/--print-pid: one write of the line; an fd > 2 is closed after. */
static int print_to(const char *fd, const char *text) {
    int n = fd == NULL || fd[0] == '\0' ? 1 : atoi(fd);
    size_t len = strlen(text);
    char *line = malloc(len + 2);
    if (line == NULL) {
        return -1;
    }
    memcpy(line, text, len);
    line[len] = '\n';
    const char *q = line;
    size_t left = len + 1;
    while (left > 0) {
        ssize_t w = write(n, q, left);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            free(line);
            return -1;
        }
        q += w;
        left -= (size_t) w;
    }
    free(line);
    if (n > 2) {
        close(n);
    }
    return 0;
}

/* ---- the host ---- */

/* Starts "LAUNCHER host SOCKET" detached (own session, stdio /dev/null, no other fds), unless a
 * host holds the lock already (it runs or is starting). Never waits for it. */
static void start_host(const char *sock) {
    char lockpath[PATH_MAX];
    snprintf(lockpath, sizeof lockpath, "%s.lock", sock);
    int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock >= 0) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        int held = fcntl(lock, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
        close(lock);
        if (held) {
            return;
        }
    }
    pid_t child = fork();
    if (child < 0) {
        return;
    }
    if (child == 0) {
        setsid();
        if (fork() != 0) {
            _exit(0); /* the host is not our child: nothing waits for it */
        }
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        /* the first caller's directory (a test's temporary one) is not the host's for its whole life */
        if (chdir("/") != 0) {
            _exit(127);
        }
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        /* a test harness's pipe kept open by the host would hang the harness */
        if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
            for (int fd = 3; fd < 65536; fd++) {
                close(fd);
            }
        }
        execl(launcher, launcher, "host", sock, (char *) NULL);
        _exit(127);
    }
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* 1 if path is a directory (not a symlink) of ours that nobody else may enter. */
static int private_dir(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid() && (st.st_mode & 077) == 0;
}

/*
 * The host socket's directory: made if missing; ours and 0700, else no hosting. Never under
 * $XDG_RUNTIME_DIR: test suites point it at a temporary directory of their own, which they
 * remove after each bus (dbus's installed-tests fail on anything left in it). The user's
 * /run/user/UID when logind made one, else /tmp; KDBUS_BRIDGE_HOST_DIR overrides (tests,
 * benchmarks: a private host).
 */
static int host_dir(char *dir, size_t size) {
    static char run_user[64];
    const char *base = getenv("KDBUS_BRIDGE_HOST_DIR");
    if (base == NULL || base[0] != '/') {
        snprintf(run_user, sizeof run_user, "/run/user/%u", (unsigned) getuid());
        base = private_dir(run_user) ? run_user : "/tmp";
    }
    if ((size_t) snprintf(dir, size, "%s/kdbus-bridge-host-%u", base, (unsigned) getuid()) >= size) {
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 0777) != 0700) {
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    struct opts o;
    if (argc >= 2 && strcmp(argv[1], "--classify") == 0) {
        puts(classify(argc - 2, argv + 2, &o) ? "host" : "jvm");
        return 0;
    }
    const char *jar, *options;
    static char self[PATH_MAX], launcher_path[PATH_MAX + 32], jar_path[PATH_MAX + 32], options_path[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n < 0 ? 0 : n] = '\0';
    const char *base = strrchr(self, '/');
    if (n > 0 && base != NULL && strcmp(base + 1, "kdbus-bridge-front") != 0) {
        /* Installed as the distribution's bin/dbus-daemon (no sh in front of us): ROOT/bin/this,
         * ROOT/bin/kdbus-bridge, ROOT/lib/kdbus-bridge.jar, ROOT/conf/jvm.options. */
        *strrchr(self, '/') = '\0';
        char *bin = strrchr(self, '/');
        if (bin == NULL) {
            fprintf(stderr, "kdbus-bridge: cannot find the distribution around %s\n", self);
            return 1;
        }
        snprintf(launcher_path, sizeof launcher_path, "%s/kdbus-bridge", self);
        *bin = '\0';
        snprintf(jar_path, sizeof jar_path, "%s/lib/kdbus-bridge.jar", self);
        snprintf(options_path, sizeof options_path, "%s/conf/jvm.options", self);
        launcher = launcher_path;
        jar = jar_path;
        options = options_path;
        bus_argv = argv + 1;
        bus_argc = argc - 1;
    } else {
        if (argc < 4) {
            fprintf(stderr, "usage: kdbus-bridge-front LAUNCHER JAR JVM-OPTIONS [dbus-daemon options]\n");
            return 1;
        }
        launcher = argv[1];
        jar = argv[2];
        options = argv[3];
        bus_argv = argv + 4;
        bus_argc = argc - 4;
    }
    sigprocmask(SIG_SETMASK, NULL, &old_mask);
    const char *flag = getenv("KDBUS_BRIDGE_HOST");
    errno = 0;
    if ((flag != NULL && strcmp(flag, "0") == 0) || !classify(bus_argc, bus_argv, &o)) {
        fallback("not a start the host runs");
    }

    mix_str("kdbus-bridge-host-1");
    if (mix_file_stamp(jar) != 0) {
        fallback("no jar"); /* not built yet: the launcher builds it */
    }
    mix_file_text(options);
    mix_jdk();
    mix_str(getenv("KDBUS_BRIDGE_JAVA_OPTS"));
    mix_str(getenv("JAVA_TOOL_OPTIONS"));
    mix_str(getenv("JDK_JAVA_OPTIONS"));
    mix_str(launcher);

    char dir[PATH_MAX];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (host_dir(dir, sizeof dir) != 0
            || (size_t) snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%016llx", dir, (unsigned long long) hash)
                   >= sizeof sa.sun_path) {
        fallback("no usable host directory");
    }

    /* Signals wait in a signalfd from now on; the JVM path gets the caller's mask back. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);

    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        fallback("socket");
    }
    if (connect(s, (struct sockaddr *) &sa, sizeof sa) != 0) {
        int e = errno;
        close(s);
        start_host(sa.sun_path);
        errno = e;
        fallback(sa.sun_path); /* no host there yet: one was started */
    }
    struct ucred cred;
    socklen_t credlen = sizeof cred;
    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) != 0 || cred.uid != getuid()) {
        close(s);
        fallback("the host socket is not ours");
    }

    /* the request */
    struct buf b = {0};
    put_u32(&b, 0x3148424bU);
    put_u32(&b, 0);
    put_link(&b, "/proc/self/ns/mnt");
    put_link(&b, "/proc/self/ns/net");
    put_u32(&b, (uint32_t) bus_argc);
    for (int i = 0; i < bus_argc; i++) {
        put_str(&b, bus_argv[i]);
    }
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        close(s);
        fallback("getcwd");
    }
    put_str(&b, cwd);
    uint32_t envc = 0;
    for (char **e = environ; *e; e++) {
        envc++;
    }
    put_u32(&b, envc);
    for (char **e = environ; *e; e++) {
        put_str(&b, *e);
    }
    uint32_t body = (uint32_t) (b.len - 8);
    unsigned char le[4] = {(unsigned char) body, (unsigned char) (body >> 8), (unsigned char) (body >> 16),
                           (unsigned char) (body >> 24)};
    memcpy(b.p + 4, le, 4);

    /* fds 0-2 ride on the first bytes */
    int fds[3] = {0, 1, 2};
    char control[CMSG_SPACE(sizeof fds)];
    memset(control, 0, sizeof control);
    struct iovec iov = {.iov_base = b.p, .iov_len = b.len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    ssize_t sent;
    do {
        sent = sendmsg(s, &msg, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent <= 0 || write_full(s, b.p + sent, b.len - (size_t) sent) != 0) {
        close(s);
        fallback("sending the request"); /* a closed fd 0-2 (EBADF), or the host went away */
    }
    free(b.p);

    char type;
    char *payload;
    uint32_t len;
    if (read_reply(s, &type, &payload, &len) != 0) {
        close(s);
        fallback("no answer from the host"); /* it went away before answering: nothing was started */
    }
    if (type == 'E') {
        return (int) u32_of(payload, len);
    }
    if (type != 'A') {
        close(s);
        const char *debug = getenv("KDBUS_BRIDGE_FRONT_DEBUG");
        if (debug != NULL && strcmp(debug, "1") == 0) {
            fprintf(stderr, "kdbus-bridge-front: the host does not run this bus: %s\n", payload);
        }
        run_jvm(); /* 'N': not hostable after all */
    }
    signal(SIGPIPE, SIG_IGN); /* as dbus-daemon: a reader gone is an error to report, not a death */
    if ((o.print_address && print_to(o.address_fd, payload) != 0)) {
        fprintf(stderr, "Failed to start message bus: failed to print: %s\n", strerror(errno));
        return 1; /* closing s stops the bus */
    }
    if (o.print_pid) {
        char pid[32];
        snprintf(pid, sizeof pid, "%ld", (long) getpid());
        if (print_to(o.pid_fd, pid) != 0) {
            fprintf(stderr, "Failed to start message bus: failed to print: %s\n", strerror(errno));
            return 1;
        }
    }
    free(payload);

    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, "kdbus-bridge: signalfd: %s\n", strerror(errno));
        return 1;
    }
    int stopping = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = s, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(p, stopping ? 1 : 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return 1;
        }
        if (!stopping && (p[1].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t) sizeof si) {
                char cmd = si.ssi_signo == SIGHUP ? 'H' : si.ssi_signo == SIGINT ? 'I' : 'T';
                if (cmd != 'H') {
                    stopping = (int) si.ssi_signo;
                }
                if (write_full(s, &cmd, 1) != 0) {
                    fprintf(stderr, "kdbus-bridge: the bus host went away\n");
                    return 1;
                }
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (read_reply(s, &type, &payload, &len) != 0) {
                fprintf(stderr, "kdbus-bridge: the bus host went away\n");
                return 1;
            }
            if (type == 'S' || type == 'E') {
                uint32_t status = u32_of(payload, len);
                if (stopping == SIGINT && status == 0) {
                    /* as dbus-daemon, which has no SIGINT handler: killed by the signal */
                    signal(SIGINT, SIG_DFL);
                    sigset_t only;
                    sigemptyset(&only);
                    sigaddset(&only, SIGINT);
                    raise(SIGINT);
                    sigprocmask(SIG_UNBLOCK, &only, NULL);
                    return 130;
                }
                return (int) status;
            }
            free(payload);
        }
    }
}
