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
 * same options, so the caller sees exactly the bus it would have had. Also the JVM path: fd 0-2
 * closed at exec (they become /dev/null first, as in dbus-daemon), a host in another pid or user
 * namespace or root directory, a host that does not answer within KDBUS_BRIDGE_HOST_WAIT_MS.
 * One front per key starts a host (spawn.lock); fronts arriving meanwhile wait for its socket.
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
#include <dirent.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *launcher;
static char **bus_argv; /* the dbus-daemon options */
static int bus_argc;
static sigset_t old_mask;
/* KDBUS_BRIDGE_HOST_WAIT_MS: how long the host may take to be reached, to answer, to stop a bus */
static long wait_ms = 5000;

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int fd_closed(int fd) {
    return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

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
    /* dbus-daemon handles SIGTERM and SIGHUP whatever it inherited; the JVM leaves an ignored one
     * ignored. SIGINT keeps the caller's disposition, as dbus-daemon's does. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
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

/* n bytes by the deadline (now_ms()), else -1 (errno ETIMEDOUT) */
static int read_full(int fd, void *p, size_t n, long deadline) {
    unsigned char *q = p;
    while (n > 0) {
        long left = deadline - now_ms();
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int ready = left > 0 ? poll(&pf, 1, (int) (left > INT_MAX ? INT_MAX : left)) : 0;
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (ready < 0 || (pf.revents & POLLNVAL)) {
            return -1;
        }
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

/* One reply: type and payload (malloc'd, NUL-terminated). -1 at EOF, on an error or past the deadline. */
static int read_reply(int fd, char *type, char **payload, uint32_t *len, long deadline) {
    unsigned char h[5];
    if (read_full(fd, h, 5, deadline) != 0) {
        return -1;
    }
    *type = (char) h[0];
    *len = (uint32_t) h[1] | (uint32_t) h[2] << 8 | (uint32_t) h[3] << 16 | (uint32_t) h[4] << 24;
    if (*len > (1u << 20)) {
        return -1;
    }
    *payload = malloc(*len + 1);
    if (*payload == NULL || read_full(fd, *payload, *len, deadline) != 0) {
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

/* Environment variables a new host keeps: what the launcher and the JVM read. Anything else
 * (LD_PRELOAD, a test's variables) is the first front's and would reach every later bus. Each
 * hosted bus gets its own front's environment with the request. */
static int host_env_var(const char *e) {
    static const char *const names[] = {"PATH=", "HOME=", "LANG=", "LANGUAGE=", "TZ=", "JAVA_HOME=",
                                         "XDG_CACHE_HOME=", "JAVA_TOOL_OPTIONS=", "JDK_JAVA_OPTIONS=", NULL};
    for (int i = 0; names[i]; i++) {
        if (strncmp(e, names[i], strlen(names[i])) == 0) {
            return 1;
        }
    }
    return strncmp(e, "LC_", 3) == 0 || strncmp(e, "KDBUS_BRIDGE_", 13) == 0;
}

/* The host process: default signal dispositions and mask, "/", stdio /dev/null, no other fds,
 * the kept environment; then "LAUNCHER host SOCKET". */
static void exec_host(const char *sock) {
    for (int sig = 1; sig < NSIG; sig++) {
        signal(sig, SIG_DFL); /* an ignored SIGINT or SIGTERM of the first caller is not the host's */
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
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
    size_t n = 0;
    for (char **e = environ; *e; e++) {
        n++;
    }
    char **env = calloc(n + 1, sizeof *env);
    if (env == NULL) {
        _exit(127);
    }
    n = 0;
    for (char **e = environ; *e; e++) {
        if (host_env_var(*e)) {
            env[n++] = *e;
        }
    }
    char *argv[] = {(char *) launcher, "host", (char *) sock, NULL};
    execve(launcher, argv, env);
    _exit(127);
}

/* The spawn lock: one byte per key of DIR/spawn.lock, an OFD lock, so a child can hold it. */
static int spawn_lock_file(int dirfd) {
    int fd = openat(dirfd, "spawn.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())) {
        close(fd);
        return -1;
    }
    return fd;
}

static int spawn_byte(int lock, uint64_t key, short type) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = (off_t) (key & 0x7fffffff), .l_len = 1};
    return fcntl(lock, F_OFD_SETLK, &fl) == 0;
}

/* 1 if a host holds NAME.lock (it runs, is starting or leaving). A lock file we cannot read as a
 * plain file of ours counts as held: no spawning over it. */
static int host_lock_held(int dirfd, const char *name) {
    char path[64];
    snprintf(path, sizeof path, "%s.lock", name);
    int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return errno != ENOENT;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    struct stat st;
    int held = fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || fcntl(fd, F_GETLK, &fl) != 0
            || fl.l_type != F_UNLCK;
    close(fd);
    return held;
}

/* Under the key's spawn byte, with no host holding the key's lock: what a dead host left (its
 * socket file, its lock file) goes. Other keys' leftovers (a killed host of an older jar) too. */
static void sweep_stale(int dirfd, int lock, uint64_t own) {
    int d = dup(dirfd);
    DIR *dir = d >= 0 ? fdopendir(d) : NULL;
    if (dir == NULL) {
        if (d >= 0) {
            close(d);
        }
        return;
    }
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char name[17];
        size_t len = strlen(e->d_name);
        if ((len != 16 && !(len == 21 && strcmp(e->d_name + 16, ".lock") == 0))
                || strspn(e->d_name, "0123456789abcdef") != 16) {
            continue;
        }
        memcpy(name, e->d_name, 16);
        name[16] = '\0';
        uint64_t key = strtoull(name, NULL, 16);
        int ours = (key & 0x7fffffff) == (own & 0x7fffffff); /* our byte: held already, kept */
        if (!ours && !spawn_byte(lock, key, F_WRLCK)) {
            continue; /* that key's host is being started */
        }
        if (!host_lock_held(dirfd, name)) {
            unlinkat(dirfd, e->d_name, 0);
        }
        if (!ours) {
            spawn_byte(lock, key, F_UNLCK);
        }
    }
    closedir(dir);
}

/*
 * Starts the host detached (own session, not our child). A watcher process holds the key's spawn
 * byte (the lock fd is inherited) until the host's socket is there, the host exited, or 30 s:
 * fronts arriving meanwhile wait for that socket instead of starting hosts of their own.
 */
static void start_host(const char *dir, const char *sock, int lock) {
    pid_t child = fork();
    if (child < 0) {
        return;
    }
    if (child == 0) {
        setsid();
        if (fork() != 0) {
            _exit(0); /* the watcher and the host are not our children: nothing waits for them */
        }
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            if (null > 2) {
                close(null);
            }
        }
        if (lock != 3) {
            dup2(lock, 3);
        }
        if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0) {
            for (int fd = 4; fd < 65536; fd++) {
                close(fd);
            }
        }
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, NULL);
        int sfd = signalfd(-1, &chld, SFD_CLOEXEC);
        int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ino >= 0) {
            inotify_add_watch(ino, dir, IN_CREATE | IN_MOVED_TO);
        }
        pid_t host = fork();
        if (host == 0) {
            exec_host(sock);
        }
        long deadline = now_ms() + 30000;
        struct stat st;
        while (host > 0 && sfd >= 0 && ino >= 0 && !(lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode))) {
            long left = deadline - now_ms();
            struct pollfd p[2] = {{.fd = ino, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
            if (left <= 0 || (poll(p, 2, (int) left) < 0 && errno != EINTR)) {
                break;
            }
            char events[4096];
            while (read(ino, events, sizeof events) > 0) {
            }
            if (p[1].revents & POLLIN) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof si) > 0 && waitpid(host, NULL, WNOHANG) == host) {
                    break; /* it left without a socket (another host won its lock) */
                }
            }
        }
        _exit(0);
    }
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* A socket connected to SA, or -1 (errno). SO_SNDTIMEO bounds connect (a wedged host's full
 * backlog) and each send of the request. */
static int connect_host(const struct sockaddr_un *sa) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        return -1;
    }
    struct timeval tv = {.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(s, (const struct sockaddr *) sa, sizeof *sa) != 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}

/*
 * Connected to the host, or -1: take the JVM path. No host: the first front to take the key's
 * spawn byte starts one (and runs its own bus in a JVM); the others wait, up to wait_ms, for its
 * socket, woken by the directory's changes.
 */
static int reach_host(int dirfd, const char *dir, const char *name, uint64_t key, const struct sockaddr_un *sa) {
    int s = connect_host(sa);
    if (s >= 0 || (errno != ENOENT && errno != ECONNREFUSED)) {
        return s;
    }
    int lock = spawn_lock_file(dirfd);
    int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (lock < 0 || ino < 0 || inotify_add_watch(ino, dir, IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_CLOSE_WRITE) < 0) {
        if (lock >= 0) {
            close(lock);
        }
        if (ino >= 0) {
            close(ino);
        }
        return -1;
    }
    long deadline = now_ms() + wait_ms;
    for (;;) {
        s = connect_host(sa);
        if (s >= 0 || (errno != ENOENT && errno != ECONNREFUSED)) {
            break;
        }
        int refused = errno == ECONNREFUSED;
        int held = host_lock_held(dirfd, name);
        if (!held && spawn_byte(lock, key, F_WRLCK)) {
            if (!host_lock_held(dirfd, name)) {
                sweep_stale(dirfd, lock, key); /* the key's stale socket too: the watcher waits for the new one */
                start_host(dir, sa->sun_path, lock);
                errno = ENOENT;
                s = -1;
                break; /* this front runs its bus in a JVM */
            }
            spawn_byte(lock, key, F_UNLCK);
        }
        long left = deadline - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            break;
        }
        /* refused while a host holds its lock: bound, not listening yet; look again soon */
        struct pollfd p = {.fd = ino, .events = POLLIN};
        if (poll(&p, 1, refused && held && left > 10 ? 10 : (int) left) < 0 && errno != EINTR) {
            break;
        }
        char events[4096];
        while (read(ino, events, sizeof events) > 0) {
        }
    }
    close(ino);
    close(lock);
    return s;
}

/* 1 if path is a directory (not a symlink) of ours that nobody else may enter. */
static int private_dir(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 077) == 0;
}

/*
 * The host socket's directory: made if missing; ours (effective uid) and 0700, else no hosting;
 * opened (no symlink followed) and checked through its fd, which the lock files are opened at.
 * Never under $XDG_RUNTIME_DIR: test suites point it at a temporary directory of their own,
 * which they remove after each bus (dbus's installed-tests fail on anything left in it). The
 * user's /run/user/UID when logind made one, else /tmp; KDBUS_BRIDGE_HOST_DIR overrides (tests,
 * benchmarks: a private host).
 */
static int host_dir(char *dir, size_t size) {
    static char run_user[64];
    unsigned uid = (unsigned) geteuid();
    const char *base = getenv("KDBUS_BRIDGE_HOST_DIR");
    if (base == NULL || base[0] != '/') {
        snprintf(run_user, sizeof run_user, "/run/user/%u", uid);
        base = private_dir(run_user) ? run_user : "/tmp";
    }
    if ((size_t) snprintf(dir, size, "%s/kdbus-bridge-host-%u", base, uid) >= size) {
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || st.st_uid != uid || (st.st_mode & 0777) != 0700)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* NULL if the host (pid as SO_PEERCRED gave it) sees what we see: same pid and user namespace,
 * same root directory; else why not. Its pids and paths would be wrong for us. */
static const char *other_world(pid_t host) {
    if (host <= 0) {
        return "the host is in another pid namespace";
    }
    static const char *const kinds[] = {"pid", "user"};
    for (int i = 0; i < 2; i++) {
        char path[64], ours[128], theirs[128];
        snprintf(path, sizeof path, "/proc/self/ns/%s", kinds[i]);
        ssize_t a = readlink(path, ours, sizeof ours - 1);
        snprintf(path, sizeof path, "/proc/%ld/ns/%s", (long) host, kinds[i]);
        ssize_t b = readlink(path, theirs, sizeof theirs - 1);
        if (a <= 0 || b <= 0) {
            return "the host's namespaces cannot be read from here";
        }
        if (a != b || memcmp(ours, theirs, (size_t) a) != 0) {
            return i == 0 ? "the host is in another pid namespace" : "the host is in another user namespace";
        }
    }
    char root[64];
    snprintf(root, sizeof root, "/proc/%ld/root/", (long) host);
    struct stat mine, its;
    if (stat("/", &mine) != 0 || stat(root, &its) != 0 || mine.st_dev != its.st_dev || mine.st_ino != its.st_ino) {
        return "the host has another root directory";
    }
    return NULL;
}

int main(int argc, char **argv) {
    struct opts o;
    if (argc >= 2 && strcmp(argv[1], "--classify") == 0) {
        puts(classify(argc - 2, argv + 2, &o) ? "host" : "jvm");
        return 0;
    }
    /* Before anything opens an fd: a socket of ours must never become fd 0-2. */
    int std_closed = fd_closed(0) || fd_closed(1) || fd_closed(2);
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
    if (std_closed) {
        /* as dbus-daemon: the closed ones become /dev/null (lowest free fd first), and the bus is a
         * process of its own, so nothing else can take their numbers */
        for (int fd = 0; fd < 3; fd++) {
            if (fd_closed(fd)) {
                int null = open("/dev/null", O_RDWR);
                if (null >= 0 && null != fd) {
                    dup2(null, fd);
                    close(null);
                }
            }
        }
        errno = 0;
        fallback("fd 0, 1 or 2 was closed");
    }
    const char *flag = getenv("KDBUS_BRIDGE_HOST");
    if (flag != NULL && strcmp(flag, "0") == 0) {
        run_jvm(); /* turned off: nothing to say about it */
    }
    errno = 0;
    if (!classify(bus_argc, bus_argv, &o)) {
        fallback("not a start the host runs");
    }
    /* A print fd that is not open stays unusable but reserved (read-only /dev/null, inherited by
     * the JVM path too): no socket of ours takes its number, and the print fails with EBADF
     * after the bus is up, as dbus-daemon's does. */
    const char *print_fds[2] = {o.print_address ? o.address_fd : NULL, o.print_pid ? o.pid_fd : NULL};
    for (int i = 0; i < 2; i++) {
        if (print_fds[i] != NULL && print_fds[i][0] != '\0') {
            long fd = strlen(print_fds[i]) > 9 ? -1 : strtol(print_fds[i], NULL, 10);
            if (fd < 0 || fd > INT_MAX) {
                fallback("a --print-address/--print-pid fd out of range");
            }
            if (fd_closed((int) fd)) {
                int null = open("/dev/null", O_RDONLY);
                if (null >= 0 && null != fd) {
                    dup2(null, (int) fd);
                    close(null);
                }
            }
        }
    }
    const char *wait = getenv("KDBUS_BRIDGE_HOST_WAIT_MS");
    if (wait != NULL && wait[0] != '\0' && digits(wait) && strlen(wait) < 9) {
        wait_ms = atol(wait) < 1 ? 1 : atol(wait);
    }
    struct sigaction sigint;
    int int_ignored = sigaction(SIGINT, NULL, &sigint) == 0 && sigint.sa_handler == SIG_IGN;

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

    char dir[PATH_MAX], name[17];
    snprintf(name, sizeof name, "%016llx", (unsigned long long) hash);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int dirfd = host_dir(dir, sizeof dir);
    if (dirfd < 0 || (size_t) snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, name) >= sizeof sa.sun_path) {
        fallback("no usable host directory");
    }

    /* Signals wait in a signalfd from now on; the JVM path gets the caller's mask back. An
     * ignored SIGINT stays ignored, as dbus-daemon leaves it (it handles SIGTERM and SIGHUP). */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    if (!int_ignored) {
        sigaddset(&mask, SIGINT);
    }
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);

    int s = reach_host(dirfd, dir, name, hash, &sa);
    close(dirfd);
    if (s < 0) {
        fallback(sa.sun_path); /* no host there yet (one was started), or it is not reachable */
    }
    struct ucred cred;
    socklen_t credlen = sizeof cred;
    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) != 0 || cred.uid != geteuid()) {
        close(s);
        fallback("the host socket is not ours");
    }
    const char *why = other_world(cred.pid);
    if (why != NULL) {
        close(s);
        errno = 0;
        fallback(why);
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
        fallback("sending the request"); /* the host went away, or does not read (SO_SNDTIMEO) */
    }
    free(b.p);

    char type;
    char *payload;
    uint32_t len;
    if (read_reply(s, &type, &payload, &len, now_ms() + wait_ms) != 0) {
        /* It went away, or is wedged: nothing was printed yet, so the bus can still be a JVM's.
         * Our hang-up stops whatever the host may start later. */
        close(s);
        fallback(errno == ETIMEDOUT ? "the host did not answer in time (KDBUS_BRIDGE_HOST_WAIT_MS)"
                                    : "no answer from the host");
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
        fprintf(stderr, "Failed to start message bus: Writing to pipe: %s\n", strerror(errno));
        return 1; /* closing s stops the bus */
    }
    if (o.print_pid) {
        char pid[32];
        snprintf(pid, sizeof pid, "%ld", (long) getpid());
        if (print_to(o.pid_fd, pid) != 0) {
            fprintf(stderr, "Failed to start message bus: Writing to pipe: %s\n", strerror(errno));
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
    long stop_deadline = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = s, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        long left = stopping ? stop_deadline - now_ms() : -1;
        int ready = stopping && left <= 0 ? 0 : poll(p, stopping ? 1 : 2, stopping ? (int) left : -1);
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            return 1;
        }
        if (ready == 0) {
            fprintf(stderr, "kdbus-bridge: the bus host did not stop the bus within %ld ms\n", wait_ms);
            return 1;
        }
        if ((p[0].revents | (stopping ? 0 : p[1].revents)) & POLLNVAL) {
            fprintf(stderr, "kdbus-bridge: lost the bus host's socket\n"); /* never spin on a closed fd */
            return 1;
        }
        if (!stopping && (p[1].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t) sizeof si) {
                char cmd = si.ssi_signo == SIGHUP ? 'H' : si.ssi_signo == SIGINT ? 'I' : 'T';
                if (cmd != 'H') {
                    stopping = (int) si.ssi_signo;
                    stop_deadline = now_ms() + wait_ms;
                }
                if (write_full(s, &cmd, 1) != 0) {
                    fprintf(stderr, "kdbus-bridge: the bus host went away\n");
                    return 1;
                }
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (read_reply(s, &type, &payload, &len, now_ms() + wait_ms) != 0) {
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
