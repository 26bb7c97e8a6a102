/*
 * kbb-load: the native (sd-bus) load generator of kdbus-bridge's bus benchmark.
 * Our own code; built by bin/kdbus-bridge-bench:
 *   gcc -O2 -o kbb-load kbb-load.c $(pkg-config --cflags --libs libsystemd)
 *
 * Every client mode connects, prints "READY ..." on stdout, waits for a line "GO" on stdin,
 * runs, prints one "RESULT key=value ..." line and exits. Times are CLOCK_MONOTONIC
 * nanoseconds, the clock of Java's System.nanoTime on Linux, so the runner can combine them.
 *
 * Modes:
 *   echo ADDR NAME                       service: owns NAME, answers every method call with its
 *                                        body (fast path for "ay"), "Sync" with an empty reply
 *                                        (READY names its unique name)
 *   call ADDR DEST INFLIGHT CALLS SIZE [fd]
 *                                        caller: CALLS calls of Echo(ay SIZE bytes) with INFLIGHT
 *                                        in flight (1 = blocking sd_bus_call, latency histogram);
 *                                        "fd": each call also carries a pipe fd (signature "hay")
 *                                        READY names its unique name (after its NameAcquired
 *                                        arrived); RESULT adds sentBytes= and receivedBytes=, the
 *                                        socket's bytes from GO on (see sendmsg below); with
 *                                        KBB_LOAD_HOLD=1 it stays connected after RESULT until a
 *                                        line or EOF on stdin (the bench's --check-metrics)
 *   subscribe ADDR UNRELATED             signal subscriber: one matching rule + UNRELATED rules
 *                                        that never match; counts Tick signals and their ay
                                        payload bytes until Done
 *   emit ADDR SIGNALS WINDOW SIZE SUBS   signal emitter: SIGNALS Tick(ay SIZE) signals; after
 *                                        every WINDOW signals a Sync call to every subscriber
 *                                        (comma list of unique names); at most 2 windows un-acked,
 *                                        so the bus never buffers more than 2 windows per reader
                                        (SIZE 1048576, UNRELATED 0: the 1 MiB fan-out workload)
 *   rawcall ADDR DEST INFLIGHT CALLS SIZE
 *                                        as "call" without fds, on plain libc with a step-by-step
 *                                        SASL exchange (xdg-dbus-proxy 0.1.4 cannot serve sd-bus's
 *                                        pipelined one): the endpoint workload's caller (issue 18)
 *   connect ADDR LOOPS NAME              LOOPS x (connect + Hello + RequestName(NAME) + close)
 *   probe SOCKETPATH                     start-up probe: waits (inotify) for the socket, then
 *                                        connects + Hello as soon as possible; prints helloNs
 *   journal-sink PATH                    binds a datagram socket at PATH, forks a child that
 *                                        discards everything sent to it, parent exits 0
 *
 * Scale modes (ScaleBenchmark, issue 14). Each prints READY, waits for GO, runs, prints RESULT
 * and then, where it holds connections, keeps them open until stdin closes or the process is
 * killed. One process holds all connections (RLIMIT_NOFILE is raised as far as allowed):
 *   idle ADDR N                          opens N connections (connect + SASL + Hello), 64 at a time
 *   rules ADDR CONNS R                   R distinct AddMatch rules spread over CONNS connections,
 *                                        128 in flight per connection; counts ok / LimitsExceeded
 *                                        / other errors
 *   names ADDR CONNS K                   K distinct RequestName(DO_NOT_QUEUE) the same way
 *   listnames ADDR M                     M blocking ListNames calls; reports the reply's length
 *   sink ADDR NAME                       owns NAME, reads every call and never answers
 *   pending ADDR DEST CALLERS CALLS      CALLERS connections, each sends CALLS calls to DEST that
 *                                        expect a reply, then a blocking GetId round trip (the bus
 *                                        has routed them all); READY; on GO prints the time and
 *                                        exits, so all callers disconnect at once
 *   watch ADDR N                         counts NameOwnerChanged signals of unique names that
 *                                        leave; after N of them one GetId round trip, then RESULT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <libgen.h>
#include <systemd/sd-bus.h>

#define BENCH_PATH "/org/kdbusbridge/Bench"
#define BENCH_IFACE "org.kdbusbridge.Bench"

/*
 * Socket byte counts, independent of the bus (the metrics check, issue 20). sd-bus moves its
 * stream with sendmsg/recvmsg (readv/writev only on a non-socket fd), which the kernel does not
 * count in /proc/PID/io's wchar/rchar (those are vfs read/write only). So this executable defines
 * those four functions itself: libsystemd calls them through its PLT, the dynamic linker binds
 * them to these definitions (an executable's symbols come first), and each passes straight to
 * the system call and adds the byte count the kernel returned. Only sd-bus's bus socket goes
 * through them here (stdio uses read/write). A plain add per call: no lock, one thread.
 */
static unsigned long long io_sent, io_received;

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    ssize_t n = syscall(SYS_sendmsg, fd, msg, flags);
    if (n > 0) io_sent += (unsigned long long) n;
    return n;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    ssize_t n = syscall(SYS_recvmsg, fd, msg, flags);
    if (n > 0) io_received += (unsigned long long) n;
    return n;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    ssize_t n = syscall(SYS_writev, fd, iov, iovcnt);
    if (n > 0) io_sent += (unsigned long long) n;
    return n;
}

ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
    ssize_t n = syscall(SYS_readv, fd, iov, iovcnt);
    if (n > 0) io_received += (unsigned long long) n;
    return n;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static void die(const char *what, int r) {
    fprintf(stderr, "kbb-load: %s: %s\n", what, strerror(r < 0 ? -r : r));
    printf("FAILED %s\n", what);
    fflush(stdout);
    exit(1);
}

static sd_bus *open_bus(const char *address) {
    sd_bus *bus = NULL;
    int r = sd_bus_new(&bus);
    if (r < 0) die("sd_bus_new", r);
    r = sd_bus_set_address(bus, address);
    if (r < 0) die("sd_bus_set_address", r);
    r = sd_bus_set_bus_client(bus, 1);
    if (r < 0) die("sd_bus_set_bus_client", r);
    r = sd_bus_negotiate_fds(bus, 1);
    if (r < 0) die("sd_bus_negotiate_fds", r);
    r = sd_bus_start(bus);
    if (r < 0) die("sd_bus_start", r);
    /* sd_bus_start sends Hello asynchronously: a round trip makes sure it is done. */
    const char *unique = NULL;
    r = sd_bus_get_unique_name(bus, &unique);
    if (r < 0) die("Hello", r);
    return bus;
}

static void wait_go(void) {
    char line[64];
    if (!fgets(line, sizeof line, stdin)) exit(0);
}

/* Runs the bus until *done is set. */
static void run_until(sd_bus *bus, const int *done) {
    while (!*done) {
        int r = sd_bus_process(bus, NULL);
        if (r < 0) die("sd_bus_process", r);
        if (r > 0) continue;
        r = sd_bus_wait(bus, UINT64_MAX);
        if (r < 0 && r != -EINTR) die("sd_bus_wait", r);
    }
    int r = sd_bus_flush(bus);
    if (r < 0) die("sd_bus_flush", r);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------- echo service */

static int echo_handler(sd_bus_message *m, void *userdata, sd_bus_error *err) {
    (void) userdata;
    (void) err;
    uint8_t type = 0;
    if (sd_bus_message_get_type(m, &type) < 0 || type != SD_BUS_MESSAGE_METHOD_CALL) return 0;
    if (sd_bus_message_get_expect_reply(m) == 0) return 1;
    sd_bus_message *reply = NULL;
    int r = sd_bus_message_new_method_return(m, &reply);
    if (r < 0) return r;
    const char *sig = sd_bus_message_get_signature(m, 1);
    if (sig && strcmp(sig, "ay") == 0) {
        const void *p = NULL;
        size_t n = 0;
        r = sd_bus_message_read_array(m, 'y', &p, &n);
        if (r >= 0) r = sd_bus_message_append_array(reply, 'y', p, n);
    } else if (sig && sig[0] != 0) {
        r = sd_bus_message_copy(reply, m, 1);
    }
    if (r >= 0) r = sd_bus_send(NULL, reply, NULL);
    sd_bus_message_unref(reply);
    return r < 0 ? r : 1;
}

static int mode_echo(int argc, char **argv) {
    if (argc < 4) return 2;
    sd_bus *bus = open_bus(argv[2]);
    int r = sd_bus_add_filter(bus, NULL, echo_handler, NULL);
    if (r < 0) die("sd_bus_add_filter", r);
    r = sd_bus_request_name(bus, argv[3], 0);
    if (r < 0) die("RequestName", r);
    const char *unique = NULL;
    sd_bus_get_unique_name(bus, &unique);
    printf("READY name=%s\n", unique);
    fflush(stdout);
    int never = 0;
    run_until(bus, &never);
    return 0;
}

/* ---------------------------------------------------------------- caller */

struct caller {
    sd_bus *bus;
    const char *dest;
    long calls, sent, done_calls;
    int inflight_max, inflight;
    size_t size;
    uint8_t *payload;
    int pipefd;
    uint64_t *lat;
    uint64_t *start;
    int done;
};

static int new_call(struct caller *c, sd_bus_message **out) {
    sd_bus_message *m = NULL;
    int r = sd_bus_message_new_method_call(c->bus, &m, c->dest, BENCH_PATH, BENCH_IFACE, "Echo");
    if (r < 0) return r;
    if (c->pipefd >= 0) {
        r = sd_bus_message_append_basic(m, 'h', &c->pipefd);
        if (r < 0) return r;
    }
    r = sd_bus_message_append_array(m, 'y', c->payload, c->size);
    if (r < 0) return r;
    *out = m;
    return 0;
}

static int send_one(struct caller *c);

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *err) {
    (void) err;
    struct caller *c = userdata;
    uint64_t t = now_ns();
    if (sd_bus_message_is_method_error(m, NULL)) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        fprintf(stderr, "kbb-load: call failed: %s: %s\n", e ? e->name : "?", e ? e->message : "?");
        printf("FAILED call error %s\n", e ? e->name : "?");
        fflush(stdout);
        exit(1);
    }
    long i = c->done_calls++;
    c->lat[i] = t - c->start[i % (c->inflight_max * 2 + 1)];
    c->inflight--;
    if (c->done_calls == c->calls) {
        c->done = 1;
        return 1;
    }
    while (c->sent < c->calls && c->inflight < c->inflight_max) {
        int r = send_one(c);
        if (r < 0) die("send", r);
    }
    return 1;
}

static int send_one(struct caller *c) {
    sd_bus_message *m = NULL;
    int r = new_call(c, &m);
    if (r < 0) return r;
    /* replies come back in order (one echo service), so a ring of start times is enough */
    c->start[c->sent % (c->inflight_max * 2 + 1)] = now_ns();
    r = sd_bus_call_async(c->bus, NULL, m, on_reply, c, 0);
    sd_bus_message_unref(m);
    if (r < 0) return r;
    c->sent++;
    c->inflight++;
    return 0;
}

static int on_name_acquired(sd_bus_message *m, void *userdata, sd_bus_error *err) {
    (void) err;
    if (sd_bus_message_is_signal(m, "org.freedesktop.DBus", "NameAcquired")) *(int *) userdata = 1;
    return 0;
}

/*
 * Waits (at most 5 s) for the bus's NameAcquired of our unique name, which it sends after Hello's
 * reply: then nothing the bus queued to us before READY is still unread, and the bytes counted
 * from GO on are the workload's alone (the metrics check compares them with the bus's delta).
 */
static void await_name_acquired(sd_bus *bus) {
    int seen = 0;
    sd_bus_slot *slot = NULL;
    int r = sd_bus_add_filter(bus, &slot, on_name_acquired, &seen);
    if (r < 0) die("sd_bus_add_filter", r);
    uint64_t deadline = now_ns() + 5000000000ull;
    while (!seen && now_ns() < deadline) {
        r = sd_bus_process(bus, NULL);
        if (r < 0) die("sd_bus_process", r);
        if (r > 0) continue;
        r = sd_bus_wait(bus, 100000);
        if (r < 0 && r != -EINTR) die("sd_bus_wait", r);
    }
    sd_bus_slot_unref(slot);
}

static int mode_call(int argc, char **argv) {
    if (argc < 7) return 2;
    struct caller c = {0};
    c.bus = open_bus(argv[2]);
    c.dest = argv[3];
    c.inflight_max = atoi(argv[4]);
    c.calls = atol(argv[5]);
    c.size = (size_t) atol(argv[6]);
    c.pipefd = -1;
    if (argc > 7 && strcmp(argv[7], "fd") == 0) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) die("pipe", errno);
        c.pipefd = p[0];
    }
    c.payload = malloc(c.size ? c.size : 1);
    for (size_t i = 0; i < c.size; i++) c.payload[i] = (uint8_t) i;
    c.lat = calloc((size_t) c.calls, sizeof(uint64_t));
    c.start = calloc((size_t) c.inflight_max * 2 + 1, sizeof(uint64_t));
    if (c.inflight_max < 1 || c.calls < 1) return 2;
    await_name_acquired(c.bus);
    const char *unique = NULL;
    sd_bus_get_unique_name(c.bus, &unique);
    printf("READY name=%s\n", unique);
    fflush(stdout);
    wait_go();
    /* the socket's bytes from GO on (SASL, Hello and its reply are before) */
    unsigned long long sent0 = io_sent, received0 = io_received;
    uint64_t t0 = now_ns();
    if (c.inflight_max == 1) {
        /* synchronous ping-pong: the blocking call a typical client makes */
        for (long i = 0; i < c.calls; i++) {
            sd_bus_message *m = NULL, *reply = NULL;
            sd_bus_error e = SD_BUS_ERROR_NULL;
            int r = new_call(&c, &m);
            if (r < 0) die("new call", r);
            uint64_t s = now_ns();
            r = sd_bus_call(c.bus, m, 0, &e, &reply);
            c.lat[i] = now_ns() - s;
            if (r < 0) {
                fprintf(stderr, "kbb-load: call: %s %s\n", e.name ? e.name : "", e.message ? e.message : "");
                die("sd_bus_call", r);
            }
            sd_bus_message_unref(reply);
            sd_bus_message_unref(m);
        }
    } else {
        while (c.sent < c.calls && c.inflight < c.inflight_max) {
            int r = send_one(&c);
            if (r < 0) die("send", r);
        }
        run_until(c.bus, &c.done);
    }
    uint64_t t1 = now_ns();
    qsort(c.lat, (size_t) c.calls, sizeof(uint64_t), cmp_u64);
    printf("RESULT calls=%ld startNs=%llu endNs=%llu p50ns=%llu p99ns=%llu sentBytes=%llu receivedBytes=%llu\n",
           c.calls, (unsigned long long) t0, (unsigned long long) t1,
           (unsigned long long) c.lat[c.calls / 2], (unsigned long long) c.lat[(c.calls * 99) / 100],
           io_sent - sent0, io_received - received0);
    fflush(stdout);
    /* KBB_LOAD_HOLD=1 (the metrics check): stay connected until a line or EOF on stdin, so the
       bus still has this connection's series when the runner reads the dump */
    const char *hold = getenv("KBB_LOAD_HOLD");
    if (hold && strcmp(hold, "1") == 0) {
        char line[64];
        if (!fgets(line, sizeof line, stdin)) { /* EOF: close as below */ }
    }
    sd_bus_flush_close_unref(c.bus);
    return 0;
}

/* ---------------------------------------------------------------- signals */

struct subscriber {
    long received;
    unsigned long long bytes;
    uint64_t first, last;
    int done;
};

static int sub_filter(sd_bus_message *m, void *userdata, sd_bus_error *err) {
    (void) err;
    struct subscriber *s = userdata;
    uint8_t type = 0;
    sd_bus_message_get_type(m, &type);
    if (type == SD_BUS_MESSAGE_SIGNAL && sd_bus_message_is_signal(m, BENCH_IFACE, NULL)) {
        const char *member = sd_bus_message_get_member(m);
        if (strcmp(member, "Tick") == 0) {
            uint64_t t = now_ns();
            if (s->received++ == 0) s->first = t;
            s->last = t;
            const void *p = NULL;
            size_t sz = 0;
            if (sd_bus_message_read_array(m, 'y', &p, &sz) >= 0) s->bytes += sz;
        } else if (strcmp(member, "Done") == 0) {
            s->done = 1;
        }
        return 1;
    }
    if (type == SD_BUS_MESSAGE_METHOD_CALL && sd_bus_message_is_method_call(m, BENCH_IFACE, "Sync")) {
        int r = sd_bus_reply_method_return(m, NULL);
        return r < 0 ? r : 1;
    }
    return 0;
}

static void add_match(sd_bus *bus, const char *rule) {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "AddMatch", &e, NULL, "s", rule);
    if (r < 0) {
        fprintf(stderr, "kbb-load: AddMatch %s: %s\n", rule, e.message ? e.message : "");
        die("AddMatch", r);
    }
}

static int mode_subscribe(int argc, char **argv) {
    if (argc < 4) return 2;
    sd_bus *bus = open_bus(argv[2]);
    int unrelated = atoi(argv[3]);
    struct subscriber s = {0};
    int r = sd_bus_add_filter(bus, NULL, sub_filter, &s);
    if (r < 0) die("sd_bus_add_filter", r);
    char rule[256];
    pid_t pid = getpid();
    /* rules that never match the Tick signals, spread over the keys a bus can index on */
    for (int i = 0; i < unrelated; i++) {
        switch (i % 5) {
        case 0: snprintf(rule, sizeof rule, "type='signal',interface='org.kdbusbridge.Unrelated%d_%d'", (int) pid, i); break;
        case 1: snprintf(rule, sizeof rule, "type='signal',member='Unrelated%d_%d'", (int) pid, i); break;
        case 2: snprintf(rule, sizeof rule, "type='signal',sender='org.kdbusbridge.Nobody%d_%d'", (int) pid, i); break;
        case 3: snprintf(rule, sizeof rule, "type='signal',interface='" BENCH_IFACE "',member='Tock%d_%d'", (int) pid, i); break;
        default: snprintf(rule, sizeof rule, "type='signal',path='/org/kdbusbridge/Unrelated%d/%d'", (int) pid, i); break;
        }
        add_match(bus, rule);
    }
    add_match(bus, "type='signal',interface='" BENCH_IFACE "',path='" BENCH_PATH "'");
    const char *unique = NULL;
    sd_bus_get_unique_name(bus, &unique);
    printf("READY name=%s\n", unique);
    fflush(stdout);
    run_until(bus, &s.done);
    printf("RESULT received=%ld firstNs=%llu lastNs=%llu bytes=%llu\n", s.received, (unsigned long long) s.first,
           (unsigned long long) s.last, s.bytes);
    fflush(stdout);
    sd_bus_flush_close_unref(bus);
    return 0;
}

struct emitter {
    int nsubs;
    long *acked; /* per subscriber: windows acknowledged */
    int failed;
};

static int on_sync(sd_bus_message *m, void *userdata, sd_bus_error *err) {
    (void) err;
    long *acked = userdata;
    if (sd_bus_message_is_method_error(m, NULL)) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        fprintf(stderr, "kbb-load: Sync failed: %s\n", e ? e->name : "?");
        printf("FAILED sync %s\n", e ? e->name : "?");
        fflush(stdout);
        exit(1);
    }
    (*acked)++;
    return 1;
}

static long min_acked(struct emitter *e) {
    long m = LONG_MAX;
    for (int i = 0; i < e->nsubs; i++)
        if (e->acked[i] < m) m = e->acked[i];
    return m;
}

static int mode_emit(int argc, char **argv) {
    if (argc < 7) return 2;
    sd_bus *bus = open_bus(argv[2]);
    long signals = atol(argv[3]);
    long window = atol(argv[4]);
    size_t size = (size_t) atol(argv[5]);
    char *subs = strdup(argv[6]);
    char *names[256];
    int nsubs = 0;
    for (char *tok = strtok(subs, ","); tok && nsubs < 256; tok = strtok(NULL, ",")) names[nsubs++] = tok;
    struct emitter e = {.nsubs = nsubs, .acked = calloc((size_t) nsubs, sizeof(long))};
    uint8_t *payload = calloc(size ? size : 1, 1);
    printf("READY\n");
    fflush(stdout);
    wait_go();
    uint64_t t0 = now_ns();
    long sent = 0, windows = 0;
    while (sent < signals) {
        long n = window;
        if (n > signals - sent) n = signals - sent;
        for (long i = 0; i < n; i++) {
            sd_bus_message *m = NULL;
            int r = sd_bus_message_new_signal(bus, &m, BENCH_PATH, BENCH_IFACE, "Tick");
            if (r < 0) die("new signal", r);
            r = sd_bus_message_append_array(m, 'y', payload, size);
            if (r < 0) die("append", r);
            r = sd_bus_send(bus, m, NULL);
            if (r < 0) die("send signal", r);
            sd_bus_message_unref(m);
        }
        sent += n;
        for (int i = 0; i < nsubs; i++) {
            int r = sd_bus_call_method_async(bus, NULL, names[i], BENCH_PATH, BENCH_IFACE, "Sync", on_sync,
                                             &e.acked[i], "");
            if (r < 0) die("Sync", r);
        }
        windows++;
        /* at most 2 windows not yet acknowledged by every subscriber */
        while (windows - min_acked(&e) >= 2) {
            int r = sd_bus_process(bus, NULL);
            if (r < 0) die("sd_bus_process", r);
            if (r > 0) continue;
            r = sd_bus_wait(bus, UINT64_MAX);
            if (r < 0 && r != -EINTR) die("sd_bus_wait", r);
        }
    }
    while (min_acked(&e) < windows) {
        int r = sd_bus_process(bus, NULL);
        if (r < 0) die("sd_bus_process", r);
        if (r > 0) continue;
        r = sd_bus_wait(bus, UINT64_MAX);
        if (r < 0 && r != -EINTR) die("sd_bus_wait", r);
    }
    uint64_t t1 = now_ns();
    int r = sd_bus_emit_signal(bus, BENCH_PATH, BENCH_IFACE, "Done", "");
    if (r < 0) die("Done", r);
    sd_bus_flush(bus);
    printf("RESULT calls=%ld startNs=%llu endNs=%llu p50ns=0 p99ns=0\n", signals * nsubs,
           (unsigned long long) t0, (unsigned long long) t1);
    fflush(stdout);
    sd_bus_flush_close_unref(bus);
    return 0;
}

/* ---------------------------------------------------------------- connect loop */

static int mode_connect(int argc, char **argv) {
    if (argc < 5) return 2;
    const char *address = argv[2];
    long loops = atol(argv[3]);
    const char *name = argv[4];
    printf("READY\n");
    fflush(stdout);
    wait_go();
    uint64_t t0 = now_ns();
    for (long i = 0; i < loops; i++) {
        sd_bus *bus = open_bus(address); /* connect + SASL + Hello */
        int r = sd_bus_request_name(bus, name, 0);
        if (r < 0) die("RequestName", r);
        sd_bus_close_unref(bus);
    }
    uint64_t t1 = now_ns();
    printf("RESULT calls=%ld startNs=%llu endNs=%llu p50ns=0 p99ns=0\n", loops, (unsigned long long) t0,
           (unsigned long long) t1);
    fflush(stdout);
    return 0;
}

/* ---------------------------------------------------------------- start-up probe */

static int mode_probe(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *path = argv[2];
    char *dircopy = strdup(path);
    char *dir = dirname(dircopy);
    int in = inotify_init1(IN_CLOEXEC);
    if (in < 0) die("inotify_init1", errno);
    if (inotify_add_watch(in, dir, IN_CREATE | IN_MOVED_TO) < 0) die("inotify_add_watch", errno);
    printf("READY\n");
    fflush(stdout);
    char address[PATH_MAX + 16];
    snprintf(address, sizeof address, "unix:path=%s", path);
    struct stat st;
    for (;;) {
        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            sd_bus *bus = NULL;
            int r = sd_bus_new(&bus);
            if (r < 0) die("sd_bus_new", r);
            sd_bus_set_address(bus, address);
            sd_bus_set_bus_client(bus, 1);
            r = sd_bus_start(bus);
            const char *unique = NULL;
            if (r >= 0) r = sd_bus_get_unique_name(bus, &unique);
            if (r >= 0) {
                uint64_t t = now_ns();
                printf("RESULT helloNs=%llu\n", (unsigned long long) t);
                fflush(stdout);
                sd_bus_flush_close_unref(bus);
                return 0;
            }
            sd_bus_close_unref(bus);
            if (r != -ECONNREFUSED && r != -ENOENT) die("probe Hello", r);
            /* bound but not yet listening: yield the CPU to the starting bus, then retry */
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
            continue;
        }
        struct pollfd p = {.fd = in, .events = POLLIN};
        poll(&p, 1, 50); /* the socket may appear between stat and the watch: re-check regularly */
        if (p.revents & POLLIN) {
            char buf[4096];
            if (read(in, buf, sizeof buf) < 0 && errno != EAGAIN) die("read inotify", errno);
        }
    }
}

/* ---------------------------------------------------------------- journal sink */

static int mode_journal_sink(int argc, char **argv) {
    if (argc < 3) return 2;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket", errno);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, argv[2], sizeof a.sun_path - 1);
    unlink(argv[2]);
    if (bind(fd, (struct sockaddr *) &a, sizeof a) < 0) die("bind", errno);
    pid_t pid = fork();
    if (pid < 0) die("fork", errno);
    if (pid > 0) return 0; /* bound: the caller may go on */
    setsid();
    char buf[65536];
    for (;;) {
        if (recv(fd, buf, sizeof buf, 0) < 0 && errno != EINTR) _exit(0);
    }
}

/* ---------------------------------------------------------------- scale modes (issue 14) */

#define SCALE_WINDOW 128
#define SCALE_TIMEOUT_US (300ull * 1000000ull)

/* Raises the soft (and as root the hard) fd limit to at least want, as far as the kernel lets. */
static void raise_nofile(long want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) die("getrlimit", errno);
    if ((long) rl.rlim_cur >= want) return;
    if ((long) rl.rlim_max < want) {
        struct rlimit up = {(rlim_t) want, (rlim_t) want};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) return;
    }
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit", errno);
}

static sd_bus *start_bus(const char *address) {
    sd_bus *bus = NULL;
    int r = sd_bus_new(&bus);
    if (r < 0) die("sd_bus_new", r);
    r = sd_bus_set_address(bus, address);
    if (r < 0) die("sd_bus_set_address", r);
    r = sd_bus_set_bus_client(bus, 1);
    if (r < 0) die("sd_bus_set_bus_client", r);
    r = sd_bus_start(bus);
    if (r < 0) die("sd_bus_start", r);
    return bus;
}

/* Opens n connections, 64 started before the first is waited for; every one has done Hello. */
static sd_bus **open_many(const char *address, long n) {
    raise_nofile(n + 256);
    sd_bus **b = calloc((size_t) n, sizeof *b);
    for (long i = 0; i < n; i += 64) {
        long end = i + 64 < n ? i + 64 : n;
        for (long j = i; j < end; j++) b[j] = start_bus(address);
        for (long j = i; j < end; j++) {
            const char *unique = NULL;
            int r = sd_bus_get_unique_name(b[j], &unique);
            if (r < 0) {
                fprintf(stderr, "kbb-load: connection %ld of %ld\n", j, n);
                die("Hello", r);
            }
        }
    }
    return b;
}

static void hold_until_eof(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
    }
}

static int mode_idle(int argc, char **argv) {
    if (argc < 4) return 2;
    long n = atol(argv[3]);
    printf("READY\n");
    fflush(stdout);
    wait_go();
    uint64_t t0 = now_ns();
    sd_bus **b = open_many(argv[2], n);
    uint64_t t1 = now_ns();
    printf("RESULT calls=%ld startNs=%llu endNs=%llu p50ns=0 p99ns=0 ok=%ld limits=0 other=0\n", n,
           (unsigned long long) t0, (unsigned long long) t1, n);
    fflush(stdout);
    hold_until_eof();
    (void) b;
    return 0;
}

/* Pipelined driver calls (AddMatch or RequestName) on one connection. */
struct piped {
    sd_bus *bus;
    int kind; /* 0 AddMatch, 1 RequestName */
    long conn, next, end, done, count;
    int inflight;
    long *ok, *limits, *other;
};

static int piped_send(struct piped *p);

static int on_piped(sd_bus_message *m, void *userdata, sd_bus_error *err) {
    (void) err;
    struct piped *p = userdata;
    p->inflight--;
    p->done++;
    if (sd_bus_message_is_method_error(m, "org.freedesktop.DBus.Error.LimitsExceeded")) {
        (*p->limits)++;
    } else if (sd_bus_message_is_method_error(m, NULL)) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (*p->other == 0) fprintf(stderr, "kbb-load: first other error: %s: %s\n", e ? e->name : "?", e ? e->message : "?");
        (*p->other)++;
    } else {
        (*p->ok)++;
    }
    while (p->next < p->end && p->inflight < SCALE_WINDOW) {
        int r = piped_send(p);
        if (r < 0) die("send", r);
    }
    return 1;
}

static int piped_send(struct piped *p) {
    char arg[256];
    long i = p->next;
    sd_bus_message *m = NULL;
    int r;
    if (p->kind == 0) {
        switch (i % 5) { /* distinct rules over the keys a bus can index on, never matching */
        case 0: snprintf(arg, sizeof arg, "type='signal',interface='org.kdbusbridge.Scale.I%ld'", i); break;
        case 1: snprintf(arg, sizeof arg, "type='signal',member='Scale%ld'", i); break;
        case 2: snprintf(arg, sizeof arg, "type='signal',sender='org.kdbusbridge.Scale.Nobody%ld'", i); break;
        case 3: snprintf(arg, sizeof arg, "type='signal',interface='org.kdbusbridge.Scale',member='M%ld'", i); break;
        default: snprintf(arg, sizeof arg, "type='signal',path='/org/kdbusbridge/Scale/P%ld'", i); break;
        }
        r = sd_bus_message_new_method_call(p->bus, &m, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus", "AddMatch");
        if (r >= 0) r = sd_bus_message_append(m, "s", arg);
    } else {
        snprintf(arg, sizeof arg, "org.kdbusbridge.Scale.P%d.N%ld", (int) getpid(), i);
        r = sd_bus_message_new_method_call(p->bus, &m, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus", "RequestName");
        if (r >= 0) r = sd_bus_message_append(m, "su", arg, (uint32_t) 4);
    }
    if (r < 0) return r;
    r = sd_bus_call_async(p->bus, NULL, m, on_piped, p, SCALE_TIMEOUT_US);
    sd_bus_message_unref(m);
    if (r < 0) return r;
    p->next++;
    p->inflight++;
    return 0;
}

static int mode_piped(int argc, char **argv, int kind) {
    if (argc < 5) return 2;
    long conns = atol(argv[3]);
    long total = atol(argv[4]);
    if (conns < 1 || total < 0) return 2;
    printf("READY\n");
    fflush(stdout);
    wait_go();
    uint64_t t0 = now_ns();
    sd_bus **b = open_many(argv[2], conns);
    long ok = 0, limits = 0, other = 0;
    for (long c = 0; c < conns; c++) { /* one connection after the other, each pipelined */
        struct piped p = {.bus = b[c], .kind = kind, .conn = c, .next = total * c / conns,
                          .end = total * (c + 1) / conns, .ok = &ok, .limits = &limits, .other = &other};
        p.count = p.end - p.next;
        while (p.next < p.end && p.inflight < SCALE_WINDOW) {
            int r = piped_send(&p);
            if (r < 0) die("send", r);
        }
        while (p.done < p.count) {
            int r = sd_bus_process(p.bus, NULL);
            if (r < 0) die("sd_bus_process", r);
            if (r > 0) continue;
            r = sd_bus_wait(p.bus, UINT64_MAX);
            if (r < 0 && r != -EINTR) die("sd_bus_wait", r);
        }
    }
    uint64_t t1 = now_ns();
    printf("RESULT calls=%ld startNs=%llu endNs=%llu p50ns=0 p99ns=0 ok=%ld limits=%ld other=%ld\n", total,
           (unsigned long long) t0, (unsigned long long) t1, ok, limits, other);
    fflush(stdout);
    hold_until_eof();
    return 0;
}

static int mode_listnames(int argc, char **argv) {
    if (argc < 4) return 2;
    long calls = atol(argv[3]);
    sd_bus *bus = open_bus(argv[2]);
    printf("READY\n");
    fflush(stdout);
    wait_go();
    uint64_t t0 = now_ns();
    long names = 0;
    for (long i = 0; i < calls; i++) {
        sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                   "ListNames", &e, &reply, "");
        if (r < 0) {
            fprintf(stderr, "kbb-load: ListNames: %s\n", e.message ? e.message : "");
            die("ListNames", r);
        }
        r = sd_bus_message_enter_container(reply, 'a', "s");
        if (r < 0) die("ListNames reply", r);
        names = 0;
        const char *s = NULL;
        while ((r = sd_bus_message_read_basic(reply, 's', &s)) > 0) names++;
        if (r < 0) die("ListNames read", r);
        sd_bus_message_unref(reply);
    }
    uint64_t t1 = now_ns();
    printf("RESULT calls=%ld startNs=%llu endNs=%llu p50ns=0 p99ns=0 names=%ld\n", calls,
           (unsigned long long) t0, (unsigned long long) t1, names);
    fflush(stdout);
    sd_bus_flush_close_unref(bus);
    return 0;
}

static int sink_filter(sd_bus_message *m, void *userdata, sd_bus_error *err) {
    (void) err;
    long *n = userdata;
    uint8_t type = 0;
    sd_bus_message_get_type(m, &type);
    if (type != SD_BUS_MESSAGE_METHOD_CALL) return 0;
    (*n)++;
    return 1; /* handled: no reply, ever */
}

static int mode_sink(int argc, char **argv) {
    if (argc < 4) return 2;
    sd_bus *bus = open_bus(argv[2]);
    long n = 0;
    int r = sd_bus_add_filter(bus, NULL, sink_filter, &n);
    if (r < 0) die("sd_bus_add_filter", r);
    r = sd_bus_request_name(bus, argv[3], 0);
    if (r < 0) die("RequestName", r);
    printf("READY\n");
    fflush(stdout);
    int never = 0;
    run_until(bus, &never);
    return 0;
}

static void get_id(sd_bus *bus) {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetId", &e, NULL, "");
    if (r < 0) die("GetId", r);
}

static int mode_pending(int argc, char **argv) {
    if (argc < 6) return 2;
    const char *dest = argv[3];
    long callers = atol(argv[4]);
    long calls = atol(argv[5]);
    sd_bus **b = open_many(argv[2], callers);
    for (long c = 0; c < callers; c++) {
        for (long i = 0; i < calls; i++) {
            sd_bus_message *m = NULL;
            uint64_t cookie = 0;
            int r = sd_bus_message_new_method_call(b[c], &m, dest, BENCH_PATH, BENCH_IFACE, "NeverAnswered");
            if (r < 0) die("new call", r);
            r = sd_bus_send(b[c], m, &cookie); /* a cookie: the call still expects a reply */
            if (r < 0) die("send", r);
            sd_bus_message_unref(m);
        }
        get_id(b[c]); /* answered after the bus has routed this connection's calls */
    }
    printf("READY slots=%ld\n", callers * calls);
    fflush(stdout);
    wait_go();
    printf("RESULT calls=%ld startNs=%llu endNs=0 p50ns=0 p99ns=0\n", callers * calls, (unsigned long long) now_ns());
    fflush(stdout);
    _exit(0); /* every caller disconnects at once, with its calls open */
}

struct watcher {
    long left, want;
};

static int watch_filter(sd_bus_message *m, void *userdata, sd_bus_error *err) {
    (void) err;
    struct watcher *w = userdata;
    if (!sd_bus_message_is_signal(m, "org.freedesktop.DBus", "NameOwnerChanged")) return 0;
    const char *name = NULL, *old = NULL, *neu = NULL;
    if (sd_bus_message_read(m, "sss", &name, &old, &neu) < 0) return 0;
    if (name[0] == ':' && neu[0] == 0) w->left++;
    return 0;
}

static int mode_watch(int argc, char **argv) {
    if (argc < 4) return 2;
    sd_bus *bus = open_bus(argv[2]);
    struct watcher w = {.want = atol(argv[3])};
    int r = sd_bus_add_filter(bus, NULL, watch_filter, &w);
    if (r < 0) die("sd_bus_add_filter", r);
    add_match(bus, "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'");
    printf("READY\n");
    fflush(stdout);
    while (w.left < w.want) {
        r = sd_bus_process(bus, NULL);
        if (r < 0) die("sd_bus_process", r);
        if (r > 0) continue;
        r = sd_bus_wait(bus, UINT64_MAX);
        if (r < 0 && r != -EINTR) die("sd_bus_wait", r);
    }
    get_id(bus);
    printf("RESULT calls=%ld startNs=0 endNs=%llu p50ns=0 p99ns=0\n", w.left, (unsigned long long) now_ns());
    fflush(stdout);
    sd_bus_flush_close_unref(bus);
    return 0;
}

/* ---------------------------------------------------------------- raw caller (issue 18) */

/*
 * The caller of the "endpoint" workload, on plain libc: xdg-dbus-proxy 0.1.4 cannot serve sd-bus
 * clients, which send BEGIN before the server's OK (flatpak/xdg-dbus-proxy#21), so this one does
 * the SASL exchange a step at a time (AUTH EXTERNAL, wait for OK, BEGIN), then Hello, then the
 * same Echo(ay) calls as "call". It serves the direct and the fronted legs alike.
 */

struct raw {
    int fd;
    uint8_t *buf;
    size_t cap, start, end;
};

static uint32_t rd32(const uint8_t *p, int big) {
    return big ? ((uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3])
               : ((uint32_t) p[3] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[1] << 8 | p[0]);
}

static void wr32(uint8_t *p, uint32_t v) { /* our messages are little-endian */
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

static size_t align_to(uint8_t *b, size_t o, size_t a) {
    while (o % a) b[o++] = 0;
    return o;
}

/* One header field whose value is a string type: 's' or 'o' (u32 length) or 'g' (byte length). */
static size_t put_field(uint8_t *b, size_t o, uint8_t code, char sig, const char *s) {
    size_t n = strlen(s);
    o = align_to(b, o, 8);
    b[o++] = code;
    b[o++] = 1;
    b[o++] = (uint8_t) sig;
    b[o++] = 0;
    if (sig == 'g') {
        b[o++] = (uint8_t) n;
    } else {
        wr32(b + o, (uint32_t) n);
        o += 4;
    }
    memcpy(b + o, s, n + 1);
    return o + n + 1;
}

/* A method call with serial 0 (patched at offset 8 per send); returns its length. */
static size_t build_call(uint8_t *b, const char *dest, const char *path, const char *iface, const char *member,
                         const char *sig, const uint8_t *body, size_t blen) {
    b[0] = 'l';
    b[1] = 1; /* METHOD_CALL */
    b[2] = 0;
    b[3] = 1;
    wr32(b + 4, (uint32_t) blen);
    wr32(b + 8, 0);
    size_t o = 16;
    o = put_field(b, o, 1, 'o', path);
    o = put_field(b, o, 2, 's', iface);
    o = put_field(b, o, 3, 's', member);
    o = put_field(b, o, 6, 's', dest);
    if (sig[0]) o = put_field(b, o, 8, 'g', sig);
    wr32(b + 12, (uint32_t) (o - 16));
    o = align_to(b, o, 8);
    memcpy(b + o, body, blen);
    return o + blen;
}

static void write_all(int fd, const void *p, size_t n) {
    const uint8_t *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write", errno);
        c += w;
        n -= (size_t) w;
    }
}

/* Blocks for the next whole message; returns it (valid until the next call) and its length. */
static const uint8_t *raw_next(struct raw *r, size_t *len) {
    for (;;) {
        size_t have = r->end - r->start;
        if (have >= 16) {
            const uint8_t *m = r->buf + r->start;
            int big = m[0] == 'B';
            size_t fields = rd32(m + 12, big);
            size_t total = ((16 + fields + 7) & ~(size_t) 7) + rd32(m + 4, big);
            if (have >= total) {
                r->start += total;
                *len = total;
                return m;
            }
            if (total > r->cap) {
                r->cap = total * 2;
                r->buf = realloc(r->buf, r->cap);
                if (!r->buf) die("realloc", ENOMEM);
            }
        }
        if (r->start > 0) { /* compact: the partial message moves to the front */
            memmove(r->buf, r->buf + r->start, have);
            r->start = 0;
            r->end = have;
        }
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("read (connection closed)", n < 0 ? errno : EPIPE);
        r->end += (size_t) n;
    }
}

/* The message's type, and its REPLY_SERIAL field (0 if none). */
static int raw_type(const uint8_t *m, uint32_t *reply_serial) {
    int big = m[0] == 'B';
    size_t end = 16 + rd32(m + 12, big);
    size_t o = 16;
    *reply_serial = 0;
    while (o < end) {
        o = (o + 7) & ~(size_t) 7;
        uint8_t code = m[o];
        uint8_t slen = m[o + 1];
        char sig = (char) m[o + 2];
        o += 3 + slen;
        if (sig == 'g') {
            o += 1 + m[o] + 1;
        } else if (sig == 's' || sig == 'o') {
            o = (o + 3) & ~(size_t) 3;
            o += 4 + rd32(m + o, big) + 1;
        } else { /* 'u' (REPLY_SERIAL, UNIX_FDS) */
            o = (o + 3) & ~(size_t) 3;
            if (code == 5) *reply_serial = rd32(m + o, big);
            o += 4;
        }
    }
    return m[1];
}

static void raw_connect(struct raw *r, const char *address) {
    const char *p = strstr(address, "unix:path=");
    if (!p) die("rawcall: only unix:path= addresses", EINVAL);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, p + strlen("unix:path="), sizeof a.sun_path - 1);
    char *comma = strchr(a.sun_path, ',');
    if (comma) *comma = 0;
    r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0) die("socket", errno);
    if (connect(r->fd, (struct sockaddr *) &a, sizeof a) < 0) die("connect", errno);
    char uid[32], auth[96];
    snprintf(uid, sizeof uid, "%u", (unsigned) getuid());
    int n = snprintf(auth, sizeof auth, "%cAUTH EXTERNAL ", 0);
    for (const char *c = uid; *c; c++) n += snprintf(auth + n, sizeof auth - (size_t) n, "%02x", (unsigned char) *c);
    n += snprintf(auth + n, sizeof auth - (size_t) n, "\r\n");
    write_all(r->fd, auth, (size_t) n);
    char line[256];
    size_t l = 0;
    while (l < sizeof line - 1) { /* one byte at a time: nothing of the message stream is read */
        ssize_t k = read(r->fd, line + l, 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) die("auth read", k < 0 ? errno : EPIPE);
        if (line[l++] == '\n') break;
    }
    line[l] = 0;
    if (strncmp(line, "OK ", 3) != 0) die("auth not OK", EACCES);
    write_all(r->fd, "BEGIN\r\n", 7);
    r->cap = 1 << 16;
    r->buf = malloc(r->cap);
    uint8_t hello[256];
    size_t hl = build_call(hello, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello",
                           "", NULL, 0);
    wr32(hello + 8, 1);
    write_all(r->fd, hello, hl);
    for (;;) {
        size_t len;
        uint32_t rs;
        const uint8_t *m = raw_next(r, &len);
        int t = raw_type(m, &rs);
        if (rs == 1 && t == 3) die("Hello refused", EACCES);
        if (rs == 1 && t == 2) break;
    }
}

static int mode_rawcall(int argc, char **argv) {
    if (argc < 7) return 2;
    struct raw r = {0};
    const char *dest = argv[3];
    int inflight = atoi(argv[4]);
    long calls = atol(argv[5]);
    size_t size = (size_t) atol(argv[6]);
    if (inflight < 1 || calls < 1) return 2;
    raw_connect(&r, argv[2]);
    uint8_t *body = malloc(4 + size);
    wr32(body, (uint32_t) size);
    for (size_t i = 0; i < size; i++) body[4 + i] = (uint8_t) i;
    uint8_t *msg = malloc(1024 + size);
    size_t ml = build_call(msg, dest, BENCH_PATH, BENCH_IFACE, "Echo", "ay", body, 4 + size);
    size_t ring = (size_t) inflight * 2 + 1;
    uint64_t *start = calloc(ring, sizeof(uint64_t));
    uint64_t *lat = calloc((size_t) calls, sizeof(uint64_t));
    uint32_t serial = 1; /* Hello's */
    long sent = 0, done = 0;
    printf("READY\n");
    fflush(stdout);
    wait_go();
    uint64_t t0 = now_ns();
    while (done < calls) {
        while (sent < calls && sent - done < inflight) {
            wr32(msg + 8, ++serial);
            start[serial % ring] = now_ns();
            write_all(r.fd, msg, ml);
            sent++;
        }
        size_t len;
        uint32_t rs;
        const uint8_t *m = raw_next(&r, &len);
        int t = raw_type(m, &rs);
        if (rs == 0) continue; /* NameAcquired and other signals */
        if (t == 3) {
            printf("FAILED call error\n");
            fflush(stdout);
            exit(1);
        }
        if (t != 2) continue;
        if (rd32(m + 4, m[0] == 'B') != 4 + size) die("echo reply of the wrong size", EPROTO);
        lat[done++] = now_ns() - start[rs % ring];
    }
    uint64_t t1 = now_ns();
    qsort(lat, (size_t) calls, sizeof(uint64_t), cmp_u64);
    printf("RESULT calls=%ld startNs=%llu endNs=%llu p50ns=%llu p99ns=%llu\n", calls, (unsigned long long) t0,
           (unsigned long long) t1, (unsigned long long) lat[calls / 2], (unsigned long long) lat[(calls * 99) / 100]);
    fflush(stdout);
    close(r.fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: kbb-load echo|call|subscribe|emit|connect|probe|journal-sink|idle|rules|names|listnames|sink|pending|watch|rawcall ...\n");
        return 2;
    }
    const char *mode = argv[1];
    int r = 2;
    if (strcmp(mode, "echo") == 0) r = mode_echo(argc, argv);
    else if (strcmp(mode, "call") == 0) r = mode_call(argc, argv);
    else if (strcmp(mode, "subscribe") == 0) r = mode_subscribe(argc, argv);
    else if (strcmp(mode, "emit") == 0) r = mode_emit(argc, argv);
    else if (strcmp(mode, "connect") == 0) r = mode_connect(argc, argv);
    else if (strcmp(mode, "probe") == 0) r = mode_probe(argc, argv);
    else if (strcmp(mode, "journal-sink") == 0) r = mode_journal_sink(argc, argv);
    else if (strcmp(mode, "idle") == 0) r = mode_idle(argc, argv);
    else if (strcmp(mode, "rules") == 0) r = mode_piped(argc, argv, 0);
    else if (strcmp(mode, "names") == 0) r = mode_piped(argc, argv, 1);
    else if (strcmp(mode, "listnames") == 0) r = mode_listnames(argc, argv);
    else if (strcmp(mode, "sink") == 0) r = mode_sink(argc, argv);
    else if (strcmp(mode, "pending") == 0) r = mode_pending(argc, argv);
    else if (strcmp(mode, "watch") == 0) r = mode_watch(argc, argv);
    else if (strcmp(mode, "rawcall") == 0) r = mode_rawcall(argc, argv);
    if (r == 2) fprintf(stderr, "kbb-load: bad arguments for %s\n", mode);
    return r;
}
