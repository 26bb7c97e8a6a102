package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.Pipelined;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Our extension {@code --kdbus-metrics=unix:path=PATH} (issue 20): the dump read from the
 * socket is parsed without error by the prometheus_client OpenMetrics parser (Debian's
 * python3-prometheus-client), its bus-wide counters agree exactly with the dbus-send traffic
 * driven through the bus, gdbus's show up, a pipelined load of 20,000 calls is counted exactly
 * on its connection (messages, and bytes exactly against the frames the client wrote and read),
 * and a storm of 5,000 connections kept open gets 50 per-connection series and one "other" for
 * the gauges, not 5,000 (the top-N cap). Over HTTP
 * ({@code --kdbus-metrics=http://127.0.0.1:PORT}, fetched with python's urllib) the same dump
 * comes with the OpenMetrics content type and parses, other paths are 404 and POST 405; real
 * activations (a service that takes its name, one that cannot be executed, one that exits, one
 * killed, one too slow) are counted by outcome with their start durations in the histogram.
 */
class MetricsTest {
    private static final String PYTHON = "/usr/bin/python3";
    private static final Duration T = Duration.ofSeconds(120);

    /** Prints every sample as {@code name{k="v",...} value} (labels sorted), then the family count. */
    private static final String PARSE = """
            import sys
            from prometheus_client.openmetrics.parser import text_string_to_metric_families
            text = open(sys.argv[1], encoding='utf-8').read()
            n = 0
            for f in text_string_to_metric_families(text):
                n += 1
                for s in f.samples:
                    labels = ','.join('%s="%s"' % (k, s.labels[k]) for k in sorted(s.labels))
                    print('%s{%s} %d' % (s.name, labels, int(s.value)))
            print('FAMILIES %d' % n)
            """;

    /**
     * Opens argv[2] connections to argv[1] (SASL EXTERNAL + Hello, in batches), keeps them open,
     * waits until the metrics socket argv[3] reports them all, parses that dump and prints what
     * the test checks.
     */
    private static final String STORM = """
            import os, resource, selectors, socket, struct, sys, time
            from prometheus_client.openmetrics.parser import text_string_to_metric_families
            bus, count, metrics = sys.argv[1], int(sys.argv[2]), sys.argv[3]
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            print('NOFILE %d' % resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            def hello(serial):
                fields = b''
                for code, sig, val in ((1, b'o', '/org/freedesktop/DBus'), (6, b's', 'org.freedesktop.DBus'),
                                       (2, b's', 'org.freedesktop.DBus'), (3, b's', 'Hello')):
                    fields += b'\\0' * (-len(fields) % 8)
                    v = val.encode()
                    fields += bytes([code, 1]) + sig + b'\\0' + struct.pack('<I', len(v)) + v + b'\\0'
                head = b'l\\x01\\x00\\x01' + struct.pack('<III', 0, serial, len(fields)) + fields
                return head + b'\\0' * (-len(head) % 8)
            auth = b'\\0AUTH EXTERNAL ' + str(os.getuid()).encode().hex().encode() + b'\\r\\nBEGIN\\r\\n' + hello(1)
            socks = []
            sel = selectors.DefaultSelector()  # epoll: select() stops at fd 1024
            def drain(timeout):
                for key, _ in sel.select(timeout):
                    key.fileobj.recv(65536)
            for i in range(count):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(bus)
                s.sendall(auth)
                s.setblocking(False)
                socks.append(s)
                sel.register(s, selectors.EVENT_READ)
                if i % 200 == 199:
                    drain(0.05)
            def dump():
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(metrics)
                out = b''
                while True:
                    b = c.recv(65536)
                    if not b:
                        return out.decode()
                    out += b
            deadline = time.monotonic() + 60
            while True:
                text = dump()
                active = [s for f in text_string_to_metric_families(text) if f.name == 'kdbus_active_connections'
                          for s in f.samples][0].value
                if active >= count or time.monotonic() > deadline:
                    break
                drain(0.1)
            names = set()
            samples = 0
            other = None
            for f in text_string_to_metric_families(text):
                for s in f.samples:
                    samples += 1
                    if 'unique_name' in s.labels:
                        names.add(s.labels['unique_name'])
                    if f.name == 'kdbus_connection_series_other':
                        other = int(s.value)
            print('ACTIVE %d' % active)
            print('SERIES %d' % len(names))
            print('OTHER %d' % other)
            print('SAMPLES %d' % samples)
            print('BYTES %d' % len(text.encode()))
            for s in socks:
                s.close()
            """;

    @Test
    void dumpParsesAndCountsTheTrafficAndAStormStaysUnderTheCap(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(Cmd.run(List.of(PYTHON, "-c", "import prometheus_client"), Buses.T).ok(),
                "python3-prometheus-client is not installed (.ci/run installs it)");
        Path metrics = dir.resolve("metrics");
        try (Background bus = Background.start(List.of(DropInTest.BIN + "/kdbus-bridge", "--session", "--nofork",
                "--print-address", "--address=unix:path=" + dir.resolve("bus"), "--kdbus-metrics=unix:path=" + metrics,
                "--kdbus-metrics-top=50"), null)) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            Map<String, String> env = Map.of("DBUS_SESSION_BUS_ADDRESS", address);

            // Exactly known traffic: each dbus-send says Hello, sends one message and hangs up.
            int calls = 5;
            int signals = 3;
            for (int i = 0; i < calls; i++) {
                Cmd.Result r = Cmd.run(List.of("dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
                        "/org/freedesktop/DBus", "org.freedesktop.DBus.GetId"), env, Buses.T);
                assertTrue(r.ok(), r.describe());
            }
            for (int i = 0; i < signals; i++) {
                Cmd.Result r = Cmd.run(List.of("dbus-send", "--session", "--type=signal", "/org/example",
                        "org.example.Metrics.Tick"), env, Buses.T);
                assertTrue(r.ok(), r.describe());
            }
            Map<String, Long> s = parse(dir, dump(metrics, dir, "first"));
            int clients = calls + signals;
            assertEquals(calls + clients, s.get("kdbus_messages_in_total{type=\"method_call\"}"), s.toString());
            assertEquals(signals, s.get("kdbus_messages_in_total{type=\"signal\"}"), s.toString());
            // Replies to the Hellos and the GetIds; NameAcquired to every client.
            assertEquals(calls + clients, s.get("kdbus_messages_out_total{type=\"method_return\"}"), s.toString());
            assertEquals(clients, s.get("kdbus_messages_out_total{type=\"signal\"}"), s.toString());
            assertEquals(clients, s.get("kdbus_disconnects_total{reason=\"hang_up\"}"), s.toString());
            assertEquals(0, s.get("kdbus_unicasts_refused_total{reason=\"access_denied\"}"), s.toString());
            assertEquals(0, s.get("kdbus_active_connections{}"), s.toString());
            // Departed connections stay in the bus totals; counters have no "other" series (it
            // would fall when a connection entered the top N: a counter reset to a scraper).
            assertTrue(s.keySet().stream().noneMatch(k -> k.contains("_total{") && k.contains("unique_name=\"other\"")),
                    s.toString());
            assertTrue(s.get("kdbus_in_bytes_total{type=\"method_call\"}") > 0, s.toString());

            // gdbus: one more client with calls of its own.
            Cmd.Result g = Cmd.run(List.of("gdbus", "call", "--session", "--dest", "org.freedesktop.DBus",
                    "--object-path", "/org/freedesktop/DBus", "--method", "org.freedesktop.DBus.ListNames"), env, Buses.T);
            assertTrue(g.ok(), g.describe());
            Map<String, Long> s2 = parse(dir, dump(metrics, dir, "second"));
            assertTrue(s2.get("kdbus_messages_in_total{type=\"method_call\"}") >= calls + clients + 2, s2.toString());
            assertEquals(clients + 1, s2.get("kdbus_disconnects_total{reason=\"hang_up\"}"), s2.toString());

            // A pipelined load (the bench's shape): 20,000 calls, 32 in flight, counted exactly.
            int pipelined = 20_000;
            String caller;
            try (RawClient c = RawClient.connectHello(address, Buses.T)) {
                caller = c.uniqueName();
                Pipelined.Outcome o = Pipelined.calls(c, pipelined, 32,
                        i -> Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "GetId"), 1000, n -> { },
                        Buses.T);
                assertEquals(pipelined, o.ok(), o.toString());
                Map<String, Long> s3 = parse(dir, dump(metrics, dir, "pipelined"));
                assertEquals(pipelined + 1, series(s3, "kdbus_connection_messages_in_total", caller, "method_call"));
                assertEquals(pipelined + 1, series(s3, "kdbus_connection_messages_out_total", caller, "method_return"));
                // Bytes, against what the client put on and took off its socket. The bus counts
                // whole frames (fixed header, header fields and their padding, body): a driver call
                // as read (ClientSession: the frame's length), a message to the connection as
                // queued to its pool (Message.size(), the frame written; nothing is added here, as
                // the connection asked for no metadata). SASL is not a message and is not counted.
                // Every reply was read before the dump, and nothing else was queued to the
                // connection (Hello's reply, NameAcquired, the GetId returns), so both directions
                // match exactly, which is stricter than the "within 1%".
                long in = allTypes(s3, "kdbus_connection_in_bytes_total", caller);
                long out = allTypes(s3, "kdbus_connection_out_bytes_total", caller);
                assertEquals(c.messageBytesSent(), in, "bytes in: the frames the client wrote");
                assertEquals(c.messageBytesReceived(), out, "bytes out: the frames the client read");
                // And those frames are all the socket carried besides the SASL lines.
                long saslWritten = RawClient.authLine().length + "BEGIN\r\n".length();
                long saslRead = ("OK " + c.guid() + "\r\n").length();
                assertEquals(c.socketBytesWritten() - saslWritten, in, "every byte written but SASL is counted");
                assertEquals(c.socketBytesRead() - saslRead, out, "every byte read but SASL is counted");
                // No separate "within 1%" check: the exact equalities above are stronger than the
                // issue's bound, and a 1% assertion after them could never fail.
                System.out.println("pipelined bytes: in " + in + " out " + out + " for " + (pipelined + 1) + " calls");
            }

            // The storm: 5,000 peers (the figure) kept open; at most 50 of them get series of
            // their own. The script raises its RLIMIT_NOFILE soft limit to the hard one (5,000 sockets
            // and the dumps need more than the usual 1,024); the JVM bus runs with its soft limit at
            // the hard one already (HotSpot's MaxFDLimit), and session.conf's max_completed_connections
            // and max_connections_per_user (100,000 each) leave room. Both checks are in the output.
            int storm = 5000;
            long stormStart = System.nanoTime();
            Cmd.Result r = Cmd.run(List.of(PYTHON, "-c", STORM, dir.resolve("bus").toString(), String.valueOf(storm),
                    metrics.toString()), Map.of(), T);
            assertTrue(r.ok(), r.describe());
            System.out.println("storm: " + r.stdout().replace('\n', ' ') + " in "
                    + (System.nanoTime() - stormStart) / 1_000_000 + " ms");
            Map<String, Long> st = new HashMap<>();
            for (String line : r.stdout().split("\n")) {
                String[] kv = line.split(" ");
                st.put(kv[0], Long.parseLong(kv[1]));
            }
            assertTrue(st.get("NOFILE") > storm + 64, "the storm's fd limit leaves room: " + r.describe());
            assertTrue(st.get("ACTIVE") >= storm, r.describe());
            assertEquals(50 + 1, st.get("SERIES"), r.describe()); // the top 50 and "other" (gauges only)
            assertEquals(st.get("ACTIVE") - 50, st.get("OTHER"), r.describe());
            assertTrue(st.get("BYTES") < 256 * 1024, r.describe());
        }
    }

    /**
     * GETs (or POSTs, with argv[3] "POST") argv[1] with urllib; prints the status and the
     * Content-Type, and writes the body to argv[2].
     */
    private static final String FETCH = """
            import sys, urllib.request, urllib.error
            req = urllib.request.Request(sys.argv[1], method=sys.argv[3] if len(sys.argv) > 3 else 'GET')
            try:
                r = urllib.request.urlopen(req, timeout=20)
            except urllib.error.HTTPError as e:
                r = e
            body = r.read()
            open(sys.argv[2], 'wb').write(body)
            print(r.status, r.headers.get('Content-Type'))
            """;

    /** Status and Content-Type of a request, its body in {@code dir/name.om}. */
    private static String fetch(Path dir, String url, String name, String method) {
        Cmd.Result r = Cmd.run(List.of(PYTHON, "-c", FETCH, url, dir.resolve(name + ".om").toString(), method), Buses.T);
        assertTrue(r.ok(), r.describe());
        return r.stdout().strip();
    }

    private static int freePort() throws Exception {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    @Test
    void httpServesTheDumpAndActivationsAreCountedByOutcome(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(Cmd.run(List.of(PYTHON, "-c", "import prometheus_client"), Buses.T).ok(),
                "python3-prometheus-client is not installed (.ci/run installs it)");
        Path conf = ActivationTest.config(dir, Map.of("service_start_timeout", "1500"));
        ActivationTest.service(dir, "com.example.IdleEcho", ActivationTest.idleService(dir, "byebye", 60_000));
        ActivationTest.service(dir, "com.example.Missing", "/nonexistent/binary --flag");
        ActivationTest.service(dir, "com.example.Exits", "/bin/sh -c 'exit 3'");
        ActivationTest.service(dir, "com.example.Killed", "/bin/sh -c 'kill -KILL $$'");
        ActivationTest.service(dir, "com.example.Slow", "/bin/sh -c 'exec sleep 5'");
        int port = freePort();
        String url = "http://127.0.0.1:" + port + "/metrics";
        try (Background bus = Background.start(List.of(DropInTest.BIN + "/kdbus-bridge", "--config-file=" + conf,
                "--nofork", "--print-address", "--kdbus-metrics=" + url,
                "--kdbus-metrics=unix:path=" + dir.resolve("metrics")), null)) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            try (RawClient c = RawClient.connectHello(address, Buses.T)) {
                Message ok = c.callBus("StartServiceByName", Buses.T, "su", "com.example.IdleEcho", 0L);
                assertEquals(1L, ok.arg(0), "SUCCESS " + ok);
                for (String n : List.of("com.example.Missing", "com.example.Exits", "com.example.Killed",
                        "com.example.Slow")) {
                    Message r = c.call(Message.call(n, "/x", "com.example.I", "M"), Buses.T);
                    assertNotNull(r.errorName, r.toString());
                }
            }
            assertEquals("200 application/openmetrics-text; version=1.0.0; charset=utf-8",
                    fetch(dir, url, "http", "GET"), bus.describe());
            Map<String, Long> h = parse(dir, dir.resolve("http.om").toString());
            assertEquals(5, h.get("kdbus_activations_started_total{}"), h.toString());
            for (String o : List.of("acquired", "exec_failed", "exited", "signaled", "timeout")) {
                assertEquals(1, h.get("kdbus_activations_total{outcome=\"" + o + "\"}"), o + " " + h);
            }
            assertEquals(0, h.get("kdbus_activations_running{}"), h.toString());
            assertEquals(1, h.get("kdbus_activation_start_seconds_count{result=\"success\"}"), h.toString());
            assertEquals(4, h.get("kdbus_activation_start_seconds_count{result=\"failure\"}"), h.toString());
            // The timeout took 1.5 s: in the 2.5 s bucket, not the 1 s one.
            assertEquals(1, h.get("kdbus_activation_start_seconds_bucket{le=\"2.5\",result=\"failure\"}")
                    - h.get("kdbus_activation_start_seconds_bucket{le=\"1\",result=\"failure\"}"), h.toString());
            assertTrue(h.keySet().stream().anyMatch(k -> k.startsWith("kdbus_gc_collections_total{gc=")), h.toString());
            assertTrue(h.containsKey("kdbus_loop_busy_seconds_total{}") && h.containsKey("kdbus_loop_run_seconds_total{}"),
                    h.toString());
            // The unix socket serves the same counters.
            Map<String, Long> u = parse(dir, dump(dir.resolve("metrics"), dir, "unix"));
            assertEquals(h.get("kdbus_activations_total{outcome=\"timeout\"}"),
                    u.get("kdbus_activations_total{outcome=\"timeout\"}"));
            assertTrue(fetch(dir, "http://127.0.0.1:" + port + "/", "root", "GET").startsWith("404 "));
            assertTrue(fetch(dir, url, "post", "POST").startsWith("405 "));
        }
    }

    private static String dump(Path socket, Path dir, String name) throws Exception {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket));
             InputStream in = Channels.newInputStream(ch)) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            Path file = dir.resolve(name + ".om");
            Files.write(file, out.toByteArray());
            return file.toString();
        }
    }

    /** The sample of {@code family} for connection {@code unique} and message type {@code type}. */
    private static long series(Map<String, Long> samples, String family, String unique, String type) {
        for (Map.Entry<String, Long> e : samples.entrySet()) {
            String k = e.getKey();
            if (k.startsWith(family + "{") && k.contains("type=\"" + type + "\"")
                    && k.contains("unique_name=\"" + unique + "\"")) {
                return e.getValue();
            }
        }
        throw new AssertionError("no " + family + " for " + unique + " " + type + " in " + samples.keySet());
    }

    /** The sum of {@code family} for connection {@code unique} over every message type it has. */
    private static long allTypes(Map<String, Long> samples, String family, String unique) {
        long sum = 0;
        int found = 0;
        for (Map.Entry<String, Long> e : samples.entrySet()) {
            String k = e.getKey();
            if (k.startsWith(family + "{") && k.contains("unique_name=\"" + unique + "\"")) {
                sum += e.getValue();
                found++;
            }
        }
        assertTrue(found > 0, "no " + family + " for " + unique + " in " + samples.keySet());
        return sum;
    }

    /** Parses the dump with prometheus_client; samples by name and sorted labels. */
    private static Map<String, Long> parse(Path dir, String file) {
        Cmd.Result r = Cmd.run(List.of(PYTHON, "-c", PARSE, file), Buses.T);
        assertTrue(r.ok(), "the OpenMetrics parser refused the dump\n" + r.describe());
        Map<String, Long> out = new HashMap<>();
        for (String line : r.stdout().split("\n")) {
            int sp = line.lastIndexOf(' ');
            out.put(line.substring(0, sp), Long.parseLong(line.substring(sp + 1)));
        }
        assertTrue(out.get("FAMILIES") > 10, r.stdout());
        return out;
    }
}
