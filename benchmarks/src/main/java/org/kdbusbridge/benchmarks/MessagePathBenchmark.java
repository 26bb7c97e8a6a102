package org.kdbusbridge.benchmarks;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.MessageFraming;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.MessageWriter;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.connection.ReceivePool;
import org.kdbusbridge.core.match.MatchIndex;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;
import org.kdbusbridge.core.name.NameRegistry;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The per-message steps of the data path (docs/architecture.md), one at a time: frame + header
 * parse + body validation, the SENDER splice, match lookup among 10k rules, and a receive pool
 * enqueue/dequeue. Average time per operation in ns.
 *
 * <p>Forks run with the bus's shipped JIT setting unless {@code -jvmArgs} overrides it: pass
 * {@code -jvmArgsAppend -XX:TieredStopAtLevel=1} to see the C1-only numbers the bus runs with.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class MessagePathBenchmark {

    /** A method call as a client sends it (no SENDER), in a direct buffer like ClientSession's. */
    @State(Scope.Thread)
    public static class Frame {
        @Param({"64", "4096"})
        public int bodySize;

        ByteBuffer buf;
        int length;
        final MessageHeader header = new MessageHeader();

        @Setup
        public void setup() throws Exception {
            byte[] body = new byte[4 + bodySize];
            body[0] = (byte) bodySize;
            body[1] = (byte) (bodySize >>> 8);
            byte[] msg = MessageBuilder.methodCall(7, 0, "org.kdbusbridge.BenchEcho", "/org/kdbusbridge/Bench",
                    "org.kdbusbridge.Bench", "Echo", null, "ay", body);
            buf = ByteBuffer.allocateDirect(msg.length);
            buf.put(msg).flip();
            length = (int) MessageFraming.frameLength(buf, 0, buf.limit());
            header.wrap(buf, 0, length);
        }
    }

    @Benchmark
    public int frameParse(Frame f) throws Exception {
        int len = (int) MessageFraming.frameLength(f.buf, 0, f.buf.limit());
        f.header.wrap(f.buf, 0, len);
        f.header.validateBody();
        return f.header.serialInt();
    }

    @Benchmark
    public byte[] spliceSender(Frame f) throws Exception {
        return MessageWriter.spliceSender(f.buf, 0, f.header, ":1.42");
    }

    /** 10,000 rules of 1,000 connections, 10 of them match the Tick signal. */
    @State(Scope.Thread)
    public static class Matches {
        /** indexed: unrelated rules name members/interfaces; wildcard: they only name a path. */
        @Param({"indexed", "wildcard"})
        public String shape;

        MatchIndex index;
        NameRegistry names;
        Connection sender;
        long seq;
        final List<Connection> out = new ArrayList<>();

        @Setup
        public void setup() throws Exception {
            index = new MatchIndex("org.freedesktop.DBus");
            names = new NameRegistry();
            sender = connection(1);
            int rules = 0;
            for (int c = 0; c < 1000; c++) {
                Connection conn = connection(c + 2);
                for (int i = 0; i < 10; i++, rules++) {
                    String text;
                    if (c < 10 && i == 0) {
                        text = "type='signal',interface='org.kdbusbridge.Bench',path='/org/kdbusbridge/Bench'";
                    } else if (shape.equals("indexed")) {
                        text = (rules % 2 == 0)
                                ? "type='signal',interface='org.example.I" + rules + "',member='M" + rules + "'"
                                : "type='signal',member='Changed" + rules + "'";
                    } else {
                        text = "type='signal',path='/org/example/P" + rules + "'";
                    }
                    index.add(conn, MatchRule.parse(text));
                }
            }
        }

        Connection connection(int id) {
            Connection c = new Connection(id, Credentials.UNKNOWN, x -> { }, new ReceivePool(1 << 20, 1024));
            c.setUniqueNameOnce(":1." + id);
            return c;
        }
    }

    @Benchmark
    public int matchCollect10k(Matches s) {
        Message m = new Message(Message.SIGNAL, 0, 1, Message.NO_REPLY_SERIAL, null, "/org/kdbusbridge/Bench",
                "org.kdbusbridge.Bench", "Tick", null, PAYLOAD, null);
        m.admit(s.sender, ++s.seq);
        s.out.clear();
        s.index.collect(m, null, s.names, s.out);
        return s.out.size();
    }

    static final SealedPayload PAYLOAD = new SealedPayload(new byte[128]);

    @State(Scope.Thread)
    public static class Pool {
        ReceivePool pool;
        Message message;

        @Setup(Level.Trial)
        public void setup() {
            pool = new ReceivePool(1L << 30, 1 << 20);
            message = new Message(Message.SIGNAL, 0, 1, Message.NO_REPLY_SERIAL, null, "/a", "a.b", "C", null,
                    PAYLOAD, null);
        }
    }

    @Benchmark
    public Message receivePoolOfferPop(Pool p) {
        p.pool.offer(p.message);
        return p.pool.pop();
    }

    /** 32 in flight, like one pipelined caller. */
    @Benchmark
    public void receivePoolBurst32(Pool p, Blackhole bh) {
        for (int i = 0; i < 32; i++) {
            p.pool.offer(p.message);
        }
        for (int i = 0; i < 32; i++) {
            bh.consume(p.pool.pop());
        }
    }
}
