package org.kdbusbridge.bridge.top;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.bridge.client.BusConnection;

/**
 * Our bus's counters: one OpenMetrics dump per reading from its {@code --kdbus-metrics} socket, or
 * from its HTTP listener ({@code http://127.0.0.1:PORT}: GET /metrics); each reading bounded in time
 * (connect, read to end of file). Only the per-connection series and the bus totals are used.
 */
public final class MetricsSource implements TopSource {

    /** How long one reading may take, connect to end of file, unless told otherwise. */
    public static final long TIMEOUT_MS = 2_000;
    /** A dump larger than this is not read to its end (the bus's own is capped far below). */
    static final int MAX_DUMP_BYTES = 16 << 20;

    private final Path socket;
    /** {@code --metrics=http://127.0.0.1:PORT}: the bus's HTTP listener instead of the socket, or null. */
    private final org.kdbusbridge.bridge.metrics.HttpAddress http;
    private final long timeoutMs;

    public MetricsSource(String address) throws IOException {
        this(address, TIMEOUT_MS);
    }

    /** {@code timeoutMs}: a bus that has not sent its whole dump by then gets {@link NoAnswerException}. */
    public MetricsSource(String address, long timeoutMs) throws IOException {
        boolean isHttp = org.kdbusbridge.bridge.metrics.HttpAddress.isHttp(address);
        try {
            this.http = isHttp ? org.kdbusbridge.bridge.metrics.HttpAddress.parse(address) : null;
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage());
        }
        this.socket = isHttp ? null : BusConnection.socketPath(address);
        this.timeoutMs = timeoutMs;
    }

    /** The bus did not answer in time (a wedged loop): top shows "no answer" and keeps trying. */
    public static final class NoAnswerException extends IOException {
        NoAnswerException(String message) {
            super(message);
        }
    }

    @Override
    public Snapshot read() throws IOException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        if (http != null) {
            return parse(fetch(deadline), System.nanoTime());
        }
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
             Selector sel = Selector.open()) {
            ch.configureBlocking(false);
            // A unix socket's connect completes at once or fails (EAGAIN: the backlog is full).
            if (!ch.connect(UnixDomainSocketAddress.of(socket))) {
                ch.register(sel, SelectionKey.OP_CONNECT);
                await(sel, deadline);
                ch.finishConnect();
            }
            ch.register(sel, SelectionKey.OP_READ);
            ByteArrayOutputStream out = new ByteArrayOutputStream(1 << 16);
            ByteBuffer buf = ByteBuffer.allocate(1 << 16);
            while (true) {
                int n = ch.read(buf);
                if (n < 0) {
                    break;
                }
                if (n == 0) {
                    await(sel, deadline);
                    continue;
                }
                out.write(buf.array(), 0, buf.position());
                buf.clear();
                if (out.size() > MAX_DUMP_BYTES) {
                    throw new IOException("metrics dump over " + MAX_DUMP_BYTES + " bytes");
                }
            }
            return parse(out.toString(StandardCharsets.UTF_8), System.nanoTime());
        }
    }

    /** GET /metrics over HTTP/1.0, all within the deadline; the body of a 200. */
    private String fetch(long deadline) throws IOException {
        java.net.InetAddress ip = java.net.InetAddress.getByAddress(http.ip());
        try (java.net.Socket s = new java.net.Socket()) {
            s.connect(new java.net.InetSocketAddress(ip, http.port()), (int) Math.max(1, timeoutMs));
            s.getOutputStream().write(("GET " + org.kdbusbridge.bridge.metrics.HttpMetricsListener.PATH
                    + " HTTP/1.0\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            java.io.InputStream in = s.getInputStream();
            ByteArrayOutputStream out = new ByteArrayOutputStream(1 << 16);
            byte[] buf = new byte[1 << 16];
            while (true) {
                long left = (deadline - System.nanoTime()) / 1_000_000L;
                if (left <= 0) {
                    throw new NoAnswerException("no answer from " + http.url(http.port()) + " within " + timeoutMs + " ms");
                }
                s.setSoTimeout((int) left);
                int n;
                try {
                    n = in.read(buf);
                } catch (java.net.SocketTimeoutException e) {
                    throw new NoAnswerException("no answer from " + http.url(http.port()) + " within " + timeoutMs + " ms");
                }
                if (n < 0) {
                    break;
                }
                out.write(buf, 0, n);
                if (out.size() > MAX_DUMP_BYTES) {
                    throw new IOException("metrics answer over " + MAX_DUMP_BYTES + " bytes");
                }
            }
            String text = out.toString(StandardCharsets.UTF_8);
            int body = text.indexOf("\r\n\r\n");
            if (!text.startsWith("HTTP/1.1 200 ") || body < 0) {
                int eol = text.indexOf('\r');
                throw new IOException("metrics: " + (eol < 0 ? text : text.substring(0, eol)));
            }
            return text.substring(body + 4);
        }
    }

    /** Waits for the registered readiness until {@code deadline}; NoAnswerException after it. */
    private void await(Selector sel, long deadline) throws IOException {
        long left = (deadline - System.nanoTime()) / 1_000_000L;
        if (left <= 0 || sel.select(left) == 0 && System.nanoTime() - deadline >= 0) {
            throw new NoAnswerException("no answer from " + socket + " within " + timeoutMs + " ms");
        }
        sel.selectedKeys().clear();
    }

    /** A dump's text to a snapshot; package-private for the tests. */
    static Snapshot parse(String text, long nanos) {
        Map<String, long[]> counts = new LinkedHashMap<>(); // unique -> msgs, bytes, queue, drops, denials
        Map<String, String[]> labels = new HashMap<>(); // unique -> names, uid, comm
        long busMessages = 0;
        long busBytes = 0;
        for (String line : text.split("\n")) {
            if (line.isEmpty() || line.charAt(0) == '#') continue;
            int brace = line.indexOf('{');
            int space = line.lastIndexOf(' ');
            if (space < 0) continue;
            String name = brace < 0 ? line.substring(0, space) : line.substring(0, brace);
            long value;
            try {
                value = (long) Double.parseDouble(line.substring(space + 1));
            } catch (NumberFormatException e) {
                continue;
            }
            switch (name) {
                case "kdbus_messages_in_total" -> busMessages += value;
                case "kdbus_in_bytes_total" -> busBytes += value;
                default -> { }
            }
            if (!name.startsWith("kdbus_connection_") || brace < 0) continue;
            Map<String, String> l = labels(line.substring(brace + 1, line.lastIndexOf('}', space)));
            String unique = l.get("unique_name");
            if (unique == null || unique.equals("other")) continue;
            long[] c = counts.computeIfAbsent(unique, k -> new long[5]);
            labels.putIfAbsent(unique, new String[] {l.getOrDefault("names", ""), l.getOrDefault("uid", ""),
                    l.getOrDefault("comm", "")});
            switch (name) {
                case "kdbus_connection_messages_in_total", "kdbus_connection_messages_out_total" -> c[0] += value;
                case "kdbus_connection_in_bytes_total", "kdbus_connection_out_bytes_total" -> c[1] += value;
                case "kdbus_connection_pool_bytes" -> c[2] = value;
                case "kdbus_connection_broadcasts_skipped_total" -> c[3] += value;
                case "kdbus_connection_unicasts_refused_total" -> c[4] += value;
                default -> { }
            }
        }
        List<Snapshot.Conn> conns = new ArrayList<>(counts.size());
        for (Map.Entry<String, long[]> e : counts.entrySet()) {
            long[] c = e.getValue();
            String[] l = labels.get(e.getKey());
            conns.add(new Snapshot.Conn(e.getKey(), l[0], l[1], -1, l[2], c[0], c[1], c[2], c[3], c[4]));
        }
        return new Snapshot(nanos, conns, busMessages, busBytes, "");
    }

    /** {@code a="x",b="y\"z"} to a map, undoing OpenMetrics escapes. */
    static Map<String, String> labels(String s) {
        Map<String, String> out = new HashMap<>();
        int i = 0;
        while (i < s.length()) {
            int eq = s.indexOf("=\"", i);
            if (eq < 0) break;
            String key = s.substring(i, eq);
            StringBuilder v = new StringBuilder();
            int j = eq + 2;
            for (; j < s.length() && s.charAt(j) != '"'; j++) {
                char ch = s.charAt(j);
                if (ch == '\\' && j + 1 < s.length()) {
                    char n = s.charAt(++j);
                    v.append(n == 'n' ? '\n' : n);
                } else {
                    v.append(ch);
                }
            }
            out.put(key, v.toString());
            i = j + 1;
            if (i < s.length() && s.charAt(i) == ',') i++;
        }
        return out;
    }

    @Override
    public void close() {
    }
}
