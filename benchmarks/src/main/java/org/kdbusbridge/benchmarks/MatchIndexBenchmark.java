package org.kdbusbridge.benchmarks;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.connection.ReceivePool;
import org.kdbusbridge.core.match.MatchIndex;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.match.MatchRuleException;
import org.kdbusbridge.core.message.ArgSource;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;
import org.kdbusbridge.core.name.NameChange;
import org.kdbusbridge.core.name.NameRegistry;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * {@link MatchIndex#collect} among 10,000 rules of 1,000 connections, with the rule shapes a
 * bus sees: {@code pathOnly} (every unrelated rule names only {@code type} and an exact
 * {@code path}) and {@code mixed} (path-only, NameOwnerChanged watchers with {@code arg0},
 * PropertiesChanged watchers with sender+path+arg0, interface+member, member, unique and
 * well-known sender, arg0-only and a few path_namespace rules). In both, 10 rules match the
 * Tick signal. Average time per lookup in ns.
 *
 * <p>{@link #main} instead prints the retained heap per rule (used heap after full GCs, before
 * and after adding 100,000 rules) for a few rule shapes:
 * {@code java -XX:+UseSerialGC -cp benchmarks/target/benchmarks.jar
 * org.kdbusbridge.benchmarks.MatchIndexBenchmark}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class MatchIndexBenchmark {
    static final String DRIVER = "org.freedesktop.DBus";
    static final String BENCH_PATH = "/org/kdbusbridge/Bench";
    static final SealedPayload PAYLOAD = new SealedPayload(new byte[128]);

    /** Fixed string arguments; never allocates (the bridge's decoder allocates once per message). */
    static final class FixedArgs implements ArgSource {
        private final String[] values;

        FixedArgs(String... values) {
            this.values = values;
        }

        @Override
        public String arg(int index) {
            return index < values.length ? values[index] : null;
        }

        @Override
        public boolean isObjectPath(int index) {
            return false;
        }
    }

    static final ArgSource TICK_ARGS = new FixedArgs("hello", "world");
    static final ArgSource NOC_ARGS = new FixedArgs("org.example.Name1", "", ":1.7");

    /** Rule {@code r} of connection {@code c} ({@code c + 2} is its id) in the given shape. */
    static String rule(String shape, int r, int c) {
        switch (shape) {
            case "pathOnly":
                return "type='signal',path='/org/example/P" + r + "'";
            case "member":
                return "type='signal',member='M" + r + "'";
            case "noc":
                return "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                        + "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.example.Name" + r + "'";
            case "mixed":
                if (r % 50 == 49) {
                    return "type='signal',path_namespace='/org/example/NS" + r + "'";
                }
                switch (r % 8) {
                    case 0:
                        return "type='signal',path='/org/example/P" + r + "'";
                    case 1:
                        return rule("noc", r, c);
                    case 2:
                        return "type='signal',sender=':1." + (c + 2) + "',path='/org/example/Obj" + r
                                + "',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                                + "arg0='org.example.Iface" + (r % 16) + "'";
                    case 3:
                        return "type='signal',interface='org.example.I" + (r % 100) + "',member='M" + r + "'";
                    case 4:
                        return "type='signal',member='Changed" + r + "'";
                    case 5:
                        return "type='signal',sender=':1." + (r % 1000 + 2) + "'";
                    case 6:
                        return "type='signal',sender='org.example.Svc" + (r % 50) + "'";
                    default:
                        return "type='signal',arg0='org.example.Key" + r + "'";
                }
            default:
                throw new IllegalArgumentException(shape);
        }
    }

    static Connection connection(int id) {
        Connection c = new Connection(id, Credentials.UNKNOWN, x -> { }, new ReceivePool(1 << 20, 1024));
        c.setUniqueNameOnce(":1." + id);
        return c;
    }

    @State(Scope.Thread)
    public static class Rules {
        @Param({"pathOnly", "mixed"})
        public String shape;

        MatchIndex index;
        NameRegistry names;
        Connection sender;
        Connection addressed;
        long seq;
        final List<Connection> out = new ArrayList<>();

        @Setup
        public void setup() throws MatchRuleException {
            index = new MatchIndex(DRIVER);
            names = new NameRegistry();
            sender = connection(1);
            List<NameChange> changes = new ArrayList<>();
            names.request(sender, "org.kdbusbridge.BenchService", 0, changes);
            names.request(sender, "org.kdbusbridge.BenchService2", 0, changes);
            int r = 0;
            for (int c = 0; c < 1000; c++) {
                Connection conn = connection(c + 2);
                if (c == 5) {
                    addressed = conn;
                }
                for (int i = 0; i < 10; i++, r++) {
                    String text = c < 10 && i == 0 ? "type='signal',path='" + BENCH_PATH + "'" : rule(shape, r, c);
                    index.add(conn, MatchRule.parse(text));
                }
            }
        }
    }

    /** A broadcast signal that 10 rules match. */
    @Benchmark
    public int signal(Rules s) {
        Message m = new Message(Message.SIGNAL, 0, 1, Message.NO_REPLY_SERIAL, null, BENCH_PATH,
                "org.kdbusbridge.Bench", "Tick", null, PAYLOAD, TICK_ARGS);
        return collect(s, m, null);
    }

    /** The driver's NameOwnerChanged for one name (one watcher in {@code mixed}, none in {@code pathOnly}). */
    @Benchmark
    public int nameOwnerChanged(Rules s) {
        Message m = new Message(Message.SIGNAL, 0, 1, Message.NO_REPLY_SERIAL, null, "/org/freedesktop/DBus",
                DRIVER, "NameOwnerChanged", null, PAYLOAD, NOC_ARGS);
        Connection from = s.sender;
        s.sender = null;
        try {
            return collect(s, m, null);
        } finally {
            s.sender = from;
        }
    }

    /** A method call to one connection: only eavesdropping rules could see it (there are none). */
    @Benchmark
    public int unicastCall(Rules s) {
        Message m = new Message(Message.METHOD_CALL, 0, 1, Message.NO_REPLY_SERIAL, ":1.7", BENCH_PATH,
                "org.kdbusbridge.Bench", "Tick", null, PAYLOAD, TICK_ARGS);
        s.addressed.stampOnce(s.seq + 1); // as Bus.broadcast does for the recipient
        return collect(s, m, s.addressed);
    }

    private static int collect(Rules s, Message m, Connection addressed) {
        m.admit(s.sender, ++s.seq);
        s.out.clear();
        s.index.collect(m, addressed, s.names, s.out);
        return s.out.size();
    }

    /** Retained bytes per rule for each shape (run with -XX:+UseSerialGC for exact full GCs). */
    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 100_000;
        for (String shape : List.of("member", "pathOnly", "noc", "mixed")) {
            List<Connection> conns = new ArrayList<>();
            for (int c = 0; c < 1000; c++) {
                conns.add(connection(c + 2));
            }
            MatchIndex index = new MatchIndex(DRIVER);
            long before = usedAfterGc();
            for (int r = 0; r < n; r++) {
                index.add(conns.get(r % 1000), MatchRule.parse(rule(shape, r, r % 1000)));
            }
            long after = usedAfterGc();
            System.out.printf("%-9s %d rules: %.0f bytes/rule retained%n", shape, index.size(),
                    (after - before) / (double) n);
            if (index.size() != n || conns.isEmpty()) {
                throw new AssertionError();
            }
        }
    }

    private static long usedAfterGc() throws InterruptedException {
        Runtime rt = Runtime.getRuntime();
        long used = Long.MAX_VALUE;
        for (int i = 0; i < 5; i++) {
            System.gc();
            Thread.sleep(50);
            used = Math.min(used, rt.totalMemory() - rt.freeMemory());
        }
        return used;
    }
}
