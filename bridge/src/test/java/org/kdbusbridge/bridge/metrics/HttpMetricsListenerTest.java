// Invariants under test: GET /metrics answers 200 with the OpenMetrics content type, the exact
// dump and Content-Length, then closes; HEAD the same head without the body; another path 404,
// another method 405 (with Allow), a request line that does not parse 400, a head over
// MAX_REQUEST_BYTES 431; at most MAX_IN_FLIGHT clients are open at once (one more is closed
// unanswered) and a client that never finishes its request is closed by the timeout, freeing its
// slot; only loopback addresses parse. Checked with curl (a real HTTP client) and raw sockets.
package org.kdbusbridge.bridge.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.transport.EventLoop;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HttpMetricsListenerTest {
    @TempDir
    Path dir;

    private final EventLoop loop = new EventLoop("http-metrics-test");
    private HttpMetricsListener listener;
    private final List<Socket> open = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (Socket s : open) {
            s.close();
        }
        if (listener != null) {
            onLoop(() -> {
                listener.close();
                return null;
            });
        }
        loop.shutdown();
        loop.awaitTermination(5000);
    }

    private <T> T onLoop(Supplier<T> q) throws Exception {
        CompletableFuture<T> f = new CompletableFuture<>();
        loop.execute(() -> f.complete(q.get()));
        return f.get(10, TimeUnit.SECONDS);
    }

    private void await(String what, BooleanSupplier c) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!onLoop(c::getAsBoolean)) {
            if (System.nanoTime() > deadline) {
                fail("not within 20 s: " + what);
            }
            Thread.onSpinWait();
        }
    }

    private void start(String address, byte[] dump, long timeoutMs) throws Exception {
        listener = new HttpMetricsListener(HttpAddress.parse(address), new MetricsDump(() -> dump, null), timeoutMs);
        listener.bind();
        loop.start();
        onLoop(() -> {
            listener.start(loop);
            return null;
        });
    }

    private Socket connect() throws Exception {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", listener.port()), 10_000);
        s.setSoTimeout(20_000);
        open.add(s);
        return s;
    }

    /** Sends {@code request} and reads the whole answer (to end of stream). */
    private String exchange(String request) throws Exception {
        Socket s = connect();
        OutputStream out = s.getOutputStream();
        out.write(request.getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
        return new String(readAll(s), StandardCharsets.ISO_8859_1);
    }

    private static byte[] readAll(Socket s) throws Exception {
        InputStream in = s.getInputStream();
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        in.transferTo(b);
        return b.toByteArray();
    }

    private static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) ('a' + i % 26);
        }
        return b;
    }

    @Test
    void curlGetsTheDumpWithTheOpenMetricsContentType() throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/curl")), "curl is not installed");
        byte[] dump = pattern(3 << 20); // more than the socket buffers: written over several WRITE events
        start("http://127.0.0.1:0", dump, 30_000);
        assertTrue(listener.port() > 0);
        Path body = dir.resolve("body");
        Path head = dir.resolve("head");
        Process p = new ProcessBuilder("/usr/bin/curl", "-sS", "--max-time", "20", "-o", body.toString(),
                "-D", head.toString(), "-w", "%{http_code} %{content_type}", "http://127.0.0.1:" + listener.port()
                + "/metrics").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertEquals("200 " + OpenMetricsWriter.CONTENT_TYPE, out);
        assertArrayEquals(dump, Files.readAllBytes(body));
        assertTrue(Files.readString(head).contains("Content-Length: " + dump.length + "\r\n"), Files.readString(head));
        await("served", () -> listener.served() == 1 && listener.inFlight() == 0);
    }

    @Test
    void onlyGetAndHeadOfMetricsAreAnswered() throws Exception {
        byte[] dump = "kdbus_x 1\n# EOF\n".getBytes(StandardCharsets.US_ASCII);
        start("http://localhost:0/metrics", dump, 30_000);
        String ok = exchange("GET /metrics?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assertTrue(ok.startsWith("HTTP/1.1 200 OK\r\n"), ok);
        assertTrue(ok.endsWith("\r\n\r\nkdbus_x 1\n# EOF\n"), ok);
        String head = exchange("HEAD /metrics HTTP/1.0\n\n"); // bare LFs are accepted
        assertTrue(head.startsWith("HTTP/1.1 200 OK\r\n"), head);
        assertTrue(head.contains("Content-Length: " + dump.length + "\r\n") && head.endsWith("\r\n\r\n"), head);
        assertTrue(exchange("GET / HTTP/1.1\r\n\r\n").startsWith("HTTP/1.1 404 "));
        String post = exchange("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assertTrue(post.startsWith("HTTP/1.1 405 ") && post.contains("\r\nAllow: GET, HEAD\r\n"), post);
        assertTrue(exchange("hello\r\n\r\n").startsWith("HTTP/1.1 400 "));
        String big = "GET /metrics HTTP/1.1\r\nX: " + "y".repeat(HttpMetricsListener.MAX_REQUEST_BYTES) + "\r\n\r\n";
        assertTrue(exchange(big).startsWith("HTTP/1.1 431 "));
        await("counted", () -> listener.served() == 2 && listener.errors() == 4 && listener.inFlight() == 0);
    }

    @Test
    void clientsAreBoundedAndAnUnfinishedRequestTimesOut() throws Exception {
        start("http://127.0.0.1:0", pattern(100), 1_000);
        List<Socket> slow = new ArrayList<>();
        for (int i = 0; i < HttpMetricsListener.MAX_IN_FLIGHT; i++) {
            Socket s = connect();
            s.getOutputStream().write("GET /metrics HTTP/1.1\r\n".getBytes(StandardCharsets.US_ASCII)); // never ends
            slow.add(s);
        }
        await("all in flight", () -> listener.inFlight() == HttpMetricsListener.MAX_IN_FLIGHT);
        Socket late = connect();
        assertEquals(0, readAll(late).length); // closed unanswered
        await("refused", () -> listener.refused() == 1);
        for (Socket s : slow) {
            assertEquals(0, readAll(s).length); // closed by the timeout, nothing sent
        }
        await("timed out", () -> listener.inFlight() == 0);
        assertTrue(exchange("GET /metrics HTTP/1.1\r\n\r\n").endsWith(new String(pattern(100), StandardCharsets.US_ASCII)));
    }

    @Test
    void ipv6LoopbackServesToo() throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/curl")), "curl is not installed");
        byte[] dump = "kdbus_x 1\n# EOF\n".getBytes(StandardCharsets.US_ASCII);
        listener = new HttpMetricsListener(HttpAddress.parse("http://[::1]:0"), new MetricsDump(() -> dump, null));
        try {
            listener.bind();
        } catch (java.io.IOException e) {
            listener = null;
            Assumptions.abort("no IPv6 loopback here: " + e.getMessage());
        }
        loop.start();
        onLoop(() -> {
            listener.start(loop);
            return null;
        });
        assertEquals("http://[::1]:" + listener.port() + "/metrics", listener.url());
        Process p = new ProcessBuilder("/usr/bin/curl", "-sS", "-g", "--max-time", "20", listener.url())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals("kdbus_x 1\n# EOF\n", out);
    }

    @Test
    void onlyLoopbackAddressesParse() {
        assertEquals(9100, HttpAddress.parse("http://127.0.0.1:9100").port());
        assertEquals(4, HttpAddress.parse("http://127.1.2.3:1/metrics").ip().length);
        assertTrue(HttpAddress.parse("http://[::1]:9100/").ipv6());
        assertEquals("http://127.0.0.1:5/metrics", HttpAddress.parse("http://localhost:5").url(5));
        for (String bad : List.of("http://0.0.0.0:9100", "http://192.168.1.2:9100", "http://example.org:80",
                "http://[::]:9100", "http://127.0.0.1", "http://127.0.0.1:99999", "http://127.0.0.1:-1",
                "http://127.0.0.1:9100/other", "http://127.0.0.256:1", "unix:path=/x")) {
            assertThrows(IllegalArgumentException.class, () -> HttpAddress.parse(bad), bad);
        }
    }
}
