/*
 * An sd-bus service that opts in to AttachMetadata in its text form (AttachMetadataSdBusTest):
 * it asks for every item with "format=text", then serves org.kdbusbridge.MetaCompat.Echo(s) -> s
 * at /org/kdbusbridge/MetaCompat and prints one line per call and per Tick signal it receives.
 * Every message it gets from then on carries field 107 (a string), pidfd included (sd-bus
 * negotiates fds), so this shows sd-bus parses such messages and answers normally.
 * argv: ADDRESS. Prints "ready UNIQUE_NAME", then "CALL ARG" and "TICK" lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

static int echo(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    const char *s;
    int r = sd_bus_message_read(m, "s", &s);
    if (r < 0) return r;
    printf("CALL %s\n", s);
    fflush(stdout);
    char out[512];
    snprintf(out, sizeof out, "echo:%s", s);
    return sd_bus_reply_method_return(m, "s", out);
}

static int tick(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    printf("TICK %s\n", sd_bus_message_get_sender(m));
    fflush(stdout);
    return 0;
}

static const sd_bus_vtable vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Echo", "s", "s", echo, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END
};

int main(int argc, char **argv) {
    sd_bus *bus = NULL;
    sd_bus_error err = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    int r;
    if (argc != 2) return 2;
    if ((r = sd_bus_new(&bus)) < 0 || (r = sd_bus_set_address(bus, argv[1])) < 0
            || (r = sd_bus_set_bus_client(bus, 1)) < 0 || (r = sd_bus_negotiate_fds(bus, 1)) < 0
            || (r = sd_bus_start(bus)) < 0) {
        fprintf(stderr, "connect: %s\n", strerror(-r));
        return 1;
    }
    /* Its reply already carries the field: sd-bus must parse it for this call to return. */
    r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.kdbusbridge.Extensions1",
                           "AttachMetadata", &err, &reply, "as", 13, "format=text", "creds", "pidfd", "groups",
                           "comm", "exe", "cmdline", "cgroup", "seclabel", "names", "seq", "timestamp", "drops");
    if (r < 0) {
        fprintf(stderr, "AttachMetadata: %s %s\n", err.name ? err.name : "", err.message ? err.message : strerror(-r));
        return 1;
    }
    sd_bus_message_unref(reply);
    reply = NULL;
    r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.kdbusbridge.Extensions1",
                           "GetAttachedMetadata", &err, &reply, "");
    if (r < 0) {
        fprintf(stderr, "GetAttachedMetadata: %s\n", err.message ? err.message : strerror(-r));
        return 1;
    }
    char **items = NULL;
    if (sd_bus_message_read_strv(reply, &items) >= 0) {
        printf("attached");
        for (char **i = items; i && *i; i++) {
            printf(" %s", *i);
            free(*i);
        }
        printf("\n");
        free(items);
    }
    sd_bus_message_unref(reply);
    if ((r = sd_bus_add_object_vtable(bus, NULL, "/org/kdbusbridge/MetaCompat", "org.kdbusbridge.MetaCompat",
                                      vtable, NULL)) < 0
            || (r = sd_bus_match_signal(bus, NULL, NULL, NULL, "org.kdbusbridge.MetaCompat", "Tick", tick, NULL)) < 0) {
        fprintf(stderr, "setup: %s\n", strerror(-r));
        return 1;
    }
    const char *unique;
    sd_bus_get_unique_name(bus, &unique);
    printf("ready %s\n", unique);
    fflush(stdout);
    for (;;) {
        r = sd_bus_process(bus, NULL);
        if (r < 0) {
            fprintf(stderr, "process: %s\n", strerror(-r));
            return 1;
        }
        if (r > 0) continue;
        r = sd_bus_wait(bus, (uint64_t) -1);
        if (r < 0) {
            fprintf(stderr, "wait: %s\n", strerror(-r));
            return 1;
        }
    }
}
