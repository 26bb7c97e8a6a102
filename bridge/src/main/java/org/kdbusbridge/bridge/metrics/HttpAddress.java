package org.kdbusbridge.bridge.metrics;

import java.util.Locale;

/**
 * {@code --kdbus-metrics=http://HOST:PORT[/metrics]}: where the HTTP listener binds. Only
 * loopback hosts are accepted (127.0.0.0/8, {@code localhost}, {@code [::1]}): the labels name
 * every peer, its uid and its command line, and plain HTTP has no peer credentials, so the
 * exposition is not put on a network interface. Port 0 binds a free port (logged at start).
 */
public record HttpAddress(byte[] ip, int port) {
    /** IPv4 (4 bytes) or IPv6 (16). */
    public boolean ipv6() {
        return ip.length == 16;
    }

    /** The address as a URL of the metrics page, with {@code boundPort} (the port actually bound). */
    public String url(int boundPort) {
        String host = ipv6() ? "[::1]" : (ip[0] & 0xff) + "." + (ip[1] & 0xff) + "." + (ip[2] & 0xff) + "." + (ip[3] & 0xff);
        return "http://" + host + ":" + boundPort + "/metrics";
    }

    /** True if {@code value} is meant for this listener (starts with {@code http://}). */
    public static boolean isHttp(String value) {
        return value.regionMatches(true, 0, "http://", 0, 7);
    }

    /** Parses the option's value; IllegalArgumentException naming what is wrong. */
    public static HttpAddress parse(String value) {
        if (!isHttp(value)) {
            throw new IllegalArgumentException("not an http:// address: " + value);
        }
        String rest = value.substring(7);
        int slash = rest.indexOf('/');
        String path = slash < 0 ? "" : rest.substring(slash);
        String hostPort = slash < 0 ? rest : rest.substring(0, slash);
        if (!path.isEmpty() && !path.equals("/") && !path.equals(HttpMetricsListener.PATH)) {
            throw new IllegalArgumentException("the metrics are served at " + HttpMetricsListener.PATH + " only: " + value);
        }
        String host;
        String port;
        if (hostPort.startsWith("[")) {
            int close = hostPort.indexOf(']');
            if (close < 0 || close + 1 >= hostPort.length() || hostPort.charAt(close + 1) != ':') {
                throw new IllegalArgumentException("expected http://[::1]:PORT: " + value);
            }
            host = hostPort.substring(1, close);
            port = hostPort.substring(close + 2);
        } else {
            int colon = hostPort.lastIndexOf(':');
            if (colon < 0) {
                throw new IllegalArgumentException("expected http://HOST:PORT: " + value);
            }
            host = hostPort.substring(0, colon);
            port = hostPort.substring(colon + 1);
        }
        int p;
        try {
            p = Integer.parseInt(port);
        } catch (NumberFormatException e) {
            p = -1;
        }
        if (p < 0 || p > 65535 || port.startsWith("+")) {
            throw new IllegalArgumentException("bad port: " + value);
        }
        return new HttpAddress(loopback(host, value), p);
    }

    private static byte[] loopback(String host, String value) {
        String h = host.toLowerCase(Locale.ROOT);
        if (h.equals("localhost")) {
            return new byte[] {127, 0, 0, 1};
        }
        if (h.equals("::1") || h.equals("0:0:0:0:0:0:0:1")) {
            byte[] a = new byte[16];
            a[15] = 1;
            return a;
        }
        String[] parts = h.split("\\.", -1);
        if (parts.length == 4) {
            byte[] a = new byte[4];
            for (int i = 0; i < 4; i++) {
                int v = -1;
                if (!parts[i].isEmpty() && parts[i].length() <= 3 && parts[i].chars().allMatch(Character::isDigit)) {
                    v = Integer.parseInt(parts[i]);
                }
                if (v < 0 || v > 255) {
                    throw new IllegalArgumentException("bad IPv4 address: " + value);
                }
                a[i] = (byte) v;
            }
            if (a[0] == 127) {
                return a;
            }
        }
        throw new IllegalArgumentException("only a loopback address (127.0.0.0/8, localhost, [::1]) is served,"
                + " the labels name every peer: " + value);
    }
}
