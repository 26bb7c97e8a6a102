package org.kdbusbridge.bridge.top;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.junit.jupiter.api.Test;

/** Rates from two snapshots, the sort keys and the filter of {@code kdbus-bridge top}. */
class TopModelTest {

    private static Snapshot.Conn conn(String u, String names, long msgs, long bytes, long drops) {
        return new Snapshot.Conn(u, names, "1000", -1, "prog" + u, msgs, bytes, 0, drops, 0);
    }

    private static List<String> order(TopModel m) {
        return m.rows().stream().map(r -> r.conn().unique()).toList();
    }

    @Test
    void ratesComeFromTwoSnapshotsAndSortAndFilter() {
        TopModel m = new TopModel();
        m.update(new Snapshot(0, List.of(conn(":1.1", "org.a", 100, 1000, 0), conn(":1.2", "", 5, 90_000, 7)),
                100, 91_000, ""));
        assertEquals(-1, m.rows().get(0).msgRate(), "one reading has no rate");
        assertEquals(-1, m.busMsgRate());
        // Half a second later: :1.1 sent 50 more, :1.2 900 more, :1.3 is new with 10.
        m.update(new Snapshot(500_000_000L, List.of(conn(":1.1", "org.a", 150, 1500, 0),
                conn(":1.2", "", 905, 90_100, 7), conn(":1.3", "org.b,org.c", 10, 100, 1)), 1065, 91_700, ""));
        assertEquals(List.of(":1.2", ":1.1", ":1.3"), order(m));
        TopModel.Row top = m.rows().get(0);
        assertEquals(1800.0, top.msgRate(), 1e-9);
        assertEquals(200.0, top.byteRate(), 1e-9);
        assertEquals(20.0, m.rows().get(2).msgRate(), 1e-9, "a new connection counts from zero");
        assertEquals(1930.0, m.busMsgRate(), 1e-9);
        assertEquals(1400.0, m.busByteRate(), 1e-9);

        m.sortBy(TopModel.sortForKey('b'));
        assertEquals(List.of(":1.1", ":1.2", ":1.3"), order(m));
        m.sortBy(TopModel.sortForKey('d'));
        assertEquals(List.of(":1.2", ":1.3", ":1.1"), order(m));
        m.sortBy(TopModel.sortForKey('n'));
        assertEquals(List.of(":1.1", ":1.2", ":1.3"), order(m));

        m.update(new Snapshot(1_000_000_000L, List.of(conn(":1.10", "", 0, 0, 0), conn(":1.9", "", 0, 0, 0)), 0, 0,
                ""));
        assertEquals(List.of(":1.9", ":1.10"), order(m), "unique names in connection order");
        m.update(new Snapshot(1_500_000_000L, List.of(conn(":1.1", "org.a", 150, 1500, 0),
                conn(":1.2", "", 905, 90_100, 7), conn(":1.3", "org.b,org.c", 10, 100, 1)), 1065, 91_700, ""));
        m.filter("ORG.C");
        assertEquals(List.of(":1.3"), order(m), "filter by well-known name, any case");
        m.filter("prog:1.2");
        assertEquals(List.of(":1.2"), order(m), "filter by comm");
        m.filter("");
        assertEquals(3, m.rows().size());
    }

    @Test
    void metricsDumpParsesPerConnectionSeries() {
        String dump = """
                # TYPE kdbus_messages_in counter
                kdbus_messages_in_total{type="signal"} 40
                kdbus_messages_in_total{type="method_call"} 2
                kdbus_in_bytes_total{type="signal"} 4000
                kdbus_connection_messages_in_total{unique_name=":1.4",names="org.x,org.y",uid="1000",comm="a \\"b\\"",type="signal"} 40
                kdbus_connection_messages_out_total{unique_name=":1.4",names="org.x,org.y",uid="1000",comm="a \\"b\\"",type="method_return"} 1
                kdbus_connection_in_bytes_total{unique_name=":1.4",names="org.x,org.y",uid="1000",comm="a \\"b\\"",type="signal"} 4000
                kdbus_connection_unicasts_refused_total{unique_name=":1.4",names="org.x,org.y",uid="1000",comm="a \\"b\\"",reason="access_denied"} 3
                kdbus_connection_broadcasts_skipped_total{unique_name=":1.4",names="org.x,org.y",uid="1000",comm="a \\"b\\"",reason="full"} 2
                kdbus_connection_pool_bytes{unique_name=":1.4",names="org.x,org.y",uid="1000",comm="a \\"b\\""} 512
                kdbus_connection_messages_in_total{unique_name="other",names="",uid="",comm="",type="signal"} 9
                # EOF
                """;
        Snapshot s = MetricsSource.parse(dump, 7);
        assertEquals(42, s.busMessages());
        assertEquals(4000, s.busBytes());
        assertEquals(1, s.conns().size(), "the other bucket is not a connection");
        assertEquals(new Snapshot.Conn(":1.4", "org.x,org.y", "1000", -1, "a \"b\"", 41, 4000, 512, 2, 3),
                s.conns().get(0));
    }

    /** A wedged bus: its metrics socket accepts (the kernel does) but never writes. */
    @Test
    void aBusThatDoesNotAnswerShowsNoAnswerOverTheLastReading(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        java.nio.file.Path path = dir.resolve("metrics");
        try (java.nio.channels.ServerSocketChannel server = java.nio.channels.ServerSocketChannel.open(
                java.net.StandardProtocolFamily.UNIX)) {
            server.bind(java.net.UnixDomainSocketAddress.of(path)); // never accepted, never written
            MetricsSource source = new MetricsSource("unix:path=" + path, 300);
            long t0 = System.nanoTime();
            org.junit.jupiter.api.Assertions.assertThrows(MetricsSource.NoAnswerException.class, source::read);
            long took = (System.nanoTime() - t0) / 1_000_000;
            org.junit.jupiter.api.Assertions.assertTrue(took >= 250 && took < 5_000, "took " + took + " ms");
        }
        TopModel m = new TopModel();
        m.update(new Snapshot(0, List.of(conn(":1.1", "org.a", 100, 1000, 0)), 100, 1000, ""));
        m.answered(null);
        m.answered(null);
        assertEquals(2, m.unanswered());
        List<String> lines = TopScreen.render(m, "unix:path=x", null, 120, 10);
        org.junit.jupiter.api.Assertions.assertTrue(lines.get(1).startsWith("no answer from the bus (2 readings)"),
                lines.toString());
        assertEquals(List.of(":1.1"), order(m), "the last reading stays on screen");
        m.answered(new Snapshot(1_000_000_000L, List.of(conn(":1.1", "org.a", 200, 2000, 0)), 200, 2000, ""));
        assertEquals(0, m.unanswered());
        assertEquals(100.0, m.rows().get(0).msgRate(), 1e-9);
    }

    /** {@code --metrics=http://...}: the bus's HTTP listener (a real one, on a real loop), and a silent one. */
    @Test
    void readsTheHttpListenerAndTimesOutOnASilentOne() throws Exception {
        String dump = "kdbus_connection_messages_in_total{unique_name=\":1.7\",names=\"org.h\",uid=\"1\",comm=\"c\","
                + "type=\"signal\"} 42\n# EOF\n";
        org.kdbusbridge.bridge.transport.EventLoop loop = new org.kdbusbridge.bridge.transport.EventLoop("top-http-test");
        org.kdbusbridge.bridge.metrics.HttpMetricsListener l = new org.kdbusbridge.bridge.metrics.HttpMetricsListener(
                org.kdbusbridge.bridge.metrics.HttpAddress.parse("http://127.0.0.1:0"),
                new org.kdbusbridge.bridge.metrics.MetricsDump(
                        () -> dump.getBytes(java.nio.charset.StandardCharsets.UTF_8), null));
        l.bind();
        loop.start();
        try {
            loop.execute(() -> l.start(loop));
            Snapshot s = new MetricsSource("http://127.0.0.1:" + l.port(), 5_000).read();
            assertEquals(1, s.conns().size(), s.toString());
            assertEquals(":1.7", s.conns().get(0).unique());
            assertEquals(42, s.conns().get(0).messages());
        } finally {
            java.util.concurrent.CompletableFuture<Void> closed = new java.util.concurrent.CompletableFuture<>();
            loop.execute(() -> {
                l.close();
                closed.complete(null);
            });
            closed.get(10, java.util.concurrent.TimeUnit.SECONDS);
            loop.shutdown();
            loop.awaitTermination(5000);
        }
        // A listener that never answers: the kernel completes the connect, nothing is written.
        try (java.net.ServerSocket silent = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            MetricsSource source = new MetricsSource("http://127.0.0.1:" + silent.getLocalPort(), 300);
            org.junit.jupiter.api.Assertions.assertThrows(MetricsSource.NoAnswerException.class, source::read);
        }
    }
}
