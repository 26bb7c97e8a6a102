package org.kdbusbridge.compat.harness;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

/** The benchmark's worker processes, over {@link RawClient} in direct (blocking) mode. */
public final class BenchWorker {
    private BenchWorker() { }

    /** Path, interface and member of the benchmark echo method. */
    public static final String ECHO_PATH = "/org/kdbusbridge/Bench";
    public static final String ECHO_IFACE = "org.kdbusbridge.Bench";
    public static final String ECHO_MEMBER = "Echo";

    /**
     * {@code echo ADDRESS NAME}: requests NAME, prints "READY", answers every method call with a
     * return echoing its body until EOF.
     * {@code caller ADDRESS DEST CALLS INFLIGHT}: prints "READY", waits for "GO" on stdin, makes CALLS calls
     * keeping INFLIGHT in flight, prints "RESULT calls=N startNs=.. endNs=.. p50ns=.. p99ns=..".
     */
    public static void main(String[] args) throws Exception {
        if (args.length >= 3 && args[0].equals("echo")) {
            runEcho(args[1], args[2]);
        } else if (args.length >= 5 && args[0].equals("caller")) {
            runCaller(args[1], args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]));
        } else {
            System.err.println("usage: BenchWorker echo ADDRESS NAME | caller ADDRESS DEST CALLS INFLIGHT");
            System.exit(2);
        }
    }

    static void runEcho(String address, String name) throws IOException {
        try (RawClient c = RawClient.connectDirect(address)) {
            long hs = c.send(Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "Hello"));
            long rs = c.send(Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "RequestName").body("su", name, 4L));
            Message m;
            boolean ready = false;
            while ((m = c.next()) != null) {
                if (m.type == Message.METHOD_CALL) {
                    Message r = new Message();
                    r.type = Message.METHOD_RETURN;
                    r.flags = Message.FLAG_NO_REPLY_EXPECTED;
                    r.destination = m.sender;
                    r.replySerial = m.serial;
                    r.signature = m.signature;
                    r.body = m.body;
                    if ((m.flags & Message.FLAG_NO_REPLY_EXPECTED) == 0) {
                        c.send(r);
                    }
                } else if (!ready && m.replySerial == rs) {
                    if (m.type != Message.METHOD_RETURN) {
                        System.out.println("FAILED " + m);
                        System.out.flush();
                        return;
                    }
                    ready = true;
                    System.out.println("READY " + name);
                    System.out.flush();
                } else if (m.replySerial == hs && m.type != Message.METHOD_RETURN) {
                    System.out.println("FAILED " + m);
                    return;
                }
            }
        }
    }

    static void runCaller(String address, String dest, int calls, int inflight) throws IOException {
        try (RawClient c = RawClient.connectDirect(address)) {
            long hs = c.send(Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "Hello"));
            Message m;
            while ((m = c.next()) != null && m.replySerial != hs) {
                // skip until the Hello reply
            }
            System.out.println("READY " + (m == null ? "?" : m.arg(0)));
            System.out.flush();
            BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String go = stdin.readLine();
            if (go == null || !go.startsWith("GO")) {
                return;
            }
            long[] sentAt = new long[calls];
            long[] lat = new long[calls];
            long firstSerial = -1;
            Message proto = Message.call(dest, ECHO_PATH, ECHO_IFACE, ECHO_MEMBER)
                    .body("su", "ping-pong-payload-0123456789abcdef", 42L);
            long start = System.nanoTime();
            int sent = 0;
            int done = 0;
            while (sent < Math.min(inflight, calls)) {
                sentAt[sent] = System.nanoTime();
                long s = c.send(proto);
                if (firstSerial < 0) {
                    firstSerial = s;
                }
                sent++;
            }
            while (done < calls) {
                Message r = c.next();
                if (r == null) {
                    throw new IOException("disconnected after " + done + " calls");
                }
                if (r.type == Message.ERROR && r.replySerial >= firstSerial) {
                    throw new IOException("call failed: " + r + " " + r.args());
                }
                if (r.type != Message.METHOD_RETURN || r.replySerial < firstSerial) {
                    continue;
                }
                int idx = (int) (r.replySerial - firstSerial);
                lat[idx] = System.nanoTime() - sentAt[idx];
                done++;
                if (sent < calls) {
                    sentAt[sent] = System.nanoTime();
                    c.send(proto);
                    sent++;
                }
            }
            long end = System.nanoTime();
            Arrays.sort(lat);
            System.out.println("RESULT calls=" + calls + " startNs=" + start + " endNs=" + end
                    + " p50ns=" + lat[calls / 2] + " p99ns=" + lat[Math.min(calls - 1, (int) (calls * 0.99))]);
            System.out.flush();
        }
    }
}
