package org.kdbusbridge.compat.bench;

import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.bridge.driver.DriverEmitter;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.bus.Delivery;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.ArgSource;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;

/**
 * Issue 14, in one JVM and without sockets: (1) bus-thread CPU of 200 callers with 1,000 open
 * calls each disconnecting, or else of their callees disconnecting (NoReply for each open slot);
 * (2) bytes allocated per ListNames reply with 100k names, and the GCs 42 of them cause. Uses
 * only API that predates the fix, so the same source runs against the old build:
 * {@code java -XX:+UseSerialGC -Xmn6m -Xmx512m -XX:TieredStopAtLevel=1 -cp <core>:<bridge>:<this> ...CoreMemoryBench}.
 */
public final class CoreMemoryBench {
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        for (int r = 0; r < reps; r++) {
            replySlots(200, 1_000, 10);
        }
        listNames(100_000, 42);
    }

    private static Message call(String dest, long serial) {
        return new Message(Message.METHOD_CALL, 0, serial, Message.NO_REPLY_SERIAL, dest, "/o", "org.example.I", "Call",
                null, new SealedPayload(new byte[16]), ArgSource.NONE);
    }

    private static void replySlots(int callers, int callsEach, int callees) {
        for (boolean callersLeave : new boolean[] {true, false}) {
            BusLimits limits = new BusLimits();
            limits.maxRepliesPerConnection = callsEach;
            Bus bus = new Bus(limits);
            List<Connection> in = new ArrayList<>();
            List<Connection> out = new ArrayList<>();
            for (int i = 0; i < callees; i++) {
                in.add(join(bus));
            }
            for (int i = 0; i < callers; i++) {
                out.add(join(bus));
            }
            long tid = Thread.currentThread().getId();
            long a0 = THREADS.getThreadAllocatedBytes(tid);
            long t0 = THREADS.getCurrentThreadCpuTime();
            for (int serial = 1; serial <= callsEach; serial++) {
                for (int i = 0; i < callers; i++) {
                    Connection to = in.get((i + serial) % callees);
                    if (bus.send(out.get(i), call(to.uniqueName(), serial)) != Delivery.OK) {
                        throw new IllegalStateException("call refused");
                    }
                }
            }
            long t1 = THREADS.getCurrentThreadCpuTime();
            long a1 = THREADS.getThreadAllocatedBytes(tid);
            int dead = 0;
            // Either every caller leaves (its slots die quietly) or every callee (NoReply for each slot).
            for (Connection c : callersLeave ? out : in) {
                dead += bus.disconnect(c).deadReplies().size();
            }
            long t2 = THREADS.getCurrentThreadCpuTime();
            if (dead != (callersLeave ? 0 : callers * callsEach)) {
                throw new IllegalStateException(dead + " NoReply");
            }
            System.out.printf("reply slots: %d callers x %d open calls on %d callees: open %.0f ms (%.0f bytes allocated per call, message included); %s leave %.0f ms"
                            + " (%d NoReply) (bus-thread CPU)%n", callers, callsEach, callees, (t1 - t0) / 1e6,
                    (a1 - a0) / (double) (callers * callsEach),
                    callersLeave ? "the callers" : "the callees", (t2 - t1) / 1e6, dead);
        }
    }

    private static Connection join(Bus bus) {
        Connection c = bus.connect(new Credentials(1000, 1000, 1), x -> { });
        bus.hello(c);
        return c;
    }

    private static void listNames(int count, int calls) {
        Bus bus = new Bus(new BusLimits());
        Connection c = join(bus);
        DriverEmitter e = new DriverEmitter(bus);
        List<String> names = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            names.add(i % 2 == 0 ? ":1." + i : "org.example.Service" + i);
        }
        for (int i = 0; i < 5; i++) { // warm-up
            e.replyStrings(c, i + 1, names);
            c.pool().pop();
        }
        long[] gc0 = gcCounts();
        long tid = Thread.currentThread().getId();
        long a0 = THREADS.getThreadAllocatedBytes(tid);
        long size = 0;
        for (int i = 0; i < calls; i++) {
            e.replyStrings(c, i + 10, names);
            size = c.pool().pop().size();
        }
        long a1 = THREADS.getThreadAllocatedBytes(tid);
        long[] gc1 = gcCounts();
        StringBuilder gcs = new StringBuilder();
        List<GarbageCollectorMXBean> beans = ManagementFactory.getGarbageCollectorMXBeans();
        for (int i = 0; i < beans.size(); i++) {
            gcs.append(i == 0 ? "" : ", ").append(beans.get(i).getName()).append(' ').append(gc1[2 * i] - gc0[2 * i])
                    .append(" (").append(gc1[2 * i + 1] - gc0[2 * i + 1]).append(" ms)");
        }
        System.out.printf("ListNames: %d names, reply %d bytes: %.2f MB allocated per call; %d calls: %s%n",
                count, size, (a1 - a0) / (double) calls / 1e6, calls, gcs);
    }

    private static long[] gcCounts() {
        List<GarbageCollectorMXBean> beans = ManagementFactory.getGarbageCollectorMXBeans();
        long[] out = new long[2 * beans.size()];
        for (int i = 0; i < beans.size(); i++) {
            out[2 * i] = beans.get(i).getCollectionCount();
            out[2 * i + 1] = beans.get(i).getCollectionTime();
        }
        return out;
    }
}
