package org.kdbusbridge.bridge.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The front's argv classifier (kdbus_front.c, built into target/ by gcc in process-classes):
 * which dbus-daemon command lines go to the warm host, which to a JVM of their own.
 */
class FrontClassifierTest {
    private static final Path FRONT = Path.of("target", "kdbus-bridge-front");

    private static String classify(String args) throws IOException, InterruptedException {
        assumeTrue(Files.isExecutable(FRONT), "front not built");
        List<String> cmd = new ArrayList<>(List.of(FRONT.toString(), "--classify"));
        if (!args.isEmpty()) {
            cmd.addAll(List.of(args.split(" ")));
        }
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().remove("LISTEN_FDS");
        pb.environment().remove("LISTEN_PID");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertEquals(0, p.waitFor());
        return out;
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "--config-file=/tmp/c.conf --print-address --nofork       | host",
        "--session --print-address=3 --print-pid=4 --nopidfile      | host",
        "--session --print-address 3 --print-pid 4                  | host",
        "--config-file /tmp/c.conf --print-address                  | host",
        "--session --address=unix:tmpdir=/tmp                        | host",
        "--session --address=unix:path=/run/x,guid=00ff               | host",
        "--session --nosyslog --syslog-only                          | host",
        "--system                                                    | jvm",
        "--session --fork                                            | jvm",
        "--session --systemd-activation                              | host",
        "--session --address=systemd:                                | jvm",
        "--session --address=tcp:host=localhost                      | jvm",
        "--session --address=unix:path=relative                      | jvm",
        "--session --address=unix:abstract=x                         | jvm",
        "--session --address=unix:tmpdir=/tmp;unix:tmpdir=/var/tmp   | jvm",
        "--session --kdbus-containers                                | jvm",
        "--session --kdbus-capture=/tmp/x.pcapng                     | jvm",
        "--version                                                   | jvm",
        "--introspect                                                | jvm",
        "run-session                                                 | jvm",
        "--session --session                                         | jvm",
        "--session --config-file=/x                                  | jvm",
        "--session --print-address=x                                 | jvm",
        "--session --print-address --print-address                   | jvm",
        "--print-address                                             | jvm",
        "--config-file=                                              | jvm",
        "--session --bogus                                           | jvm",
    })
    void classifies(String args, String expected) throws Exception {
        assertEquals(expected, classify(args.trim()));
    }
}
