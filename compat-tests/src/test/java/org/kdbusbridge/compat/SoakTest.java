package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * A bounded soak: {@value #CLIENTS} raw clients for {@code kdbus.soak.seconds} (default 60 s on our bus,
 * {@code kdbus.soak.daemonSeconds}, default 10 s, on dbus-daemon) mix calls to {@value #SERVICES} echo
 * services (some answered with an error), calls to the driver and to a name nobody owns, broadcast
 * signals with match rules (argN, arg0namespace), name churn on {@value #SHARED} shared names (every
 * RequestName flag combination, queueing, leaving while owning or queued), and disconnect/reconnect
 * (sometimes with a call still in flight).
 *
 * <p>At the end: every awaited call got exactly one reply or error; a listener that stayed connected
 * got every signal; no shared name has an owner; the bus's fd count is back at its baseline and its
 * RSS grew less than {@value #RSS_BOUND_MIB} MiB. Figures are printed as a "SOAK" line.
 */
class SoakTest {
    static final int CLIENTS = 12;
    static final int SERVICES = 3;
    static final int SHARED = 3;
    static final long RSS_BOUND_MIB = 256;
    static final String IFACE = "com.example.Soak";
    static final String PATH = "/com/example/Soak";

    /** Totals over all workers. */
    static final class Totals {
        final AtomicLong calls = new AtomicLong();
        final AtomicLong replies = new AtomicLong();
        final AtomicLong errors = new AtomicLong();
        final AtomicLong abandoned = new AtomicLong();
        final AtomicLong signalsSent = new AtomicLong();
        final AtomicLong signalsMatched = new AtomicLong();
        final AtomicLong nameRequests = new AtomicLong();
        final AtomicLong nameReleases = new AtomicLong();
        final AtomicLong reconnects = new AtomicLong();
        final AtomicLong served = new AtomicLong();
        final ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void soak(BusKind kind) throws Exception {
        long seconds = kind == BusKind.KDBUS_BRIDGE ? Long.getLong("kdbus.soak.seconds", 60)
                : Long.getLong("kdbus.soak.daemonSeconds", 10);
        long seed = Long.getLong("kdbus.soak.seed", System.nanoTime());
        Totals t = new Totals();
        try (BusUnderTest bus = kind.start()) {
            String addr = bus.address();
            List<RawClient> persistent = new ArrayList<>();
            List<Thread> threads = new ArrayList<>();
            try {
                for (int i = 0; i < SERVICES; i++) {
                    RawClient svc = RawClient.connectDirect(addr);
                    persistent.add(svc);
                    svc.hello(Buses.T);
                    Message r = svc.callBus("RequestName", Buses.T, "su", IFACE + ".Echo" + i, 4L);
                    assertEquals(1L, r.arg(0), r.toString());
                    threads.add(daemon(() -> serve(svc, t), "soak-echo-" + i));
                }
                RawClient listener = RawClient.connectDirect(addr);
                persistent.add(listener);
                listener.hello(Buses.T);
                Message add = listener.callBus("AddMatch", Buses.T, "s", "type='signal',interface='" + IFACE + "',member='Tick'");
                assertEquals(Message.METHOD_RETURN, add.type, add.toString());
                AtomicLong heard = new AtomicLong();
                threads.add(daemon(() -> listen(listener, heard), "soak-listener"));
                RawClient probe = RawClient.connectHello(addr, Buses.T);
                persistent.add(probe);
                probe.sync(Buses.T);

                long fds0 = HostileClientTest.fdCount(bus.pid());
                long rss0 = HostileClientTest.rssKb(bus.pid());
                long rssPeak = rss0;
                long fdsPeak = fds0;
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
                List<CompletableFuture<Void>> workers = new ArrayList<>();
                for (int w = 0; w < CLIENTS; w++) {
                    int id = w;
                    workers.add(CompletableFuture.runAsync(() -> {
                        try {
                            work(addr, id, new Random(seed + id), end, t);
                        } catch (Throwable e) {
                            t.failures.add(new AssertionError("worker " + id + ": " + e, e));
                        }
                    }, r -> daemon(r, "soak-worker-" + id)));
                }
                CompletableFuture<Void> all = CompletableFuture.allOf(workers.toArray(CompletableFuture[]::new));
                long hardEnd = end + TimeUnit.SECONDS.toNanos(60);
                while (!all.isDone()) {
                    try {
                        all.get(1, TimeUnit.SECONDS); // paces the sampling: returns as soon as all are done
                    } catch (TimeoutException e) {
                        rssPeak = Math.max(rssPeak, HostileClientTest.rssKb(bus.pid()));
                        fdsPeak = Math.max(fdsPeak, HostileClientTest.fdCount(bus.pid()));
                        assertTrue(System.nanoTime() < hardEnd, "workers still running 60 s after the soak ended");
                        assertTrue(bus.isAlive(), "bus died");
                    }
                }
                if (!t.failures.isEmpty()) {
                    AssertionError e = new AssertionError(t.failures.size() + " worker failure(s); first: " + t.failures.peek(),
                            t.failures.peek());
                    t.failures.stream().skip(1).limit(5).forEach(e::addSuppressed);
                    throw e;
                }
                assertTrue(bus.isAlive(), "bus died");

                // The listener never left: it must have heard every signal sent.
                long deadline = System.nanoTime() + Buses.T.toNanos();
                while (heard.get() < t.signalsSent.get() && System.nanoTime() < deadline) {
                    probe.sync(Buses.T); // a round trip instead of a sleep
                }
                // No shared name is left with an owner (every owner disconnected or released).
                // A worker's hang-up and the probe's call reach the bus on different sockets, so the
                // probe may be read first: wait (round trips, with a deadline) for the releases.
                deadline = System.nanoTime() + Buses.SHORT.toNanos();
                for (int k = 0; k < SHARED; k++) {
                    Message has = probe.callBus("NameHasOwner", Buses.T, "s", IFACE + ".Shared" + k);
                    while (Boolean.TRUE.equals(has.arg(0)) && System.nanoTime() < deadline) {
                        has = probe.callBus("NameHasOwner", Buses.T, "s", IFACE + ".Shared" + k);
                    }
                    assertEquals(Boolean.FALSE, has.arg(0), "Shared" + k + " still owned " + Buses.SHORT + " after every worker left");
                }
                // Back to the baseline: every socket of a departed client is closed by the bus.
                long fds1 = HostileClientTest.fdCount(bus.pid());
                deadline = System.nanoTime() + Buses.SHORT.toNanos();
                while (fds1 > fds0 && System.nanoTime() < deadline) {
                    probe.sync(Buses.T);
                    fds1 = HostileClientTest.fdCount(bus.pid());
                }
                long rss1 = HostileClientTest.rssKb(bus.pid());
                rssPeak = Math.max(rssPeak, rss1);
                long growthMib = (rssPeak - rss0) / 1024;
                System.out.println("SOAK " + bus.name() + " | " + seconds + " s, " + CLIENTS + " clients, seed " + seed
                        + " | calls " + t.calls + " = replies " + t.replies + " + errors " + t.errors
                        + "; abandoned in-flight " + t.abandoned + "; served by echo " + t.served
                        + " | signals sent " + t.signalsSent + ", listener heard " + heard + ", matched by workers " + t.signalsMatched
                        + " | RequestName " + t.nameRequests + ", ReleaseName " + t.nameReleases + ", reconnects " + t.reconnects
                        + " | fds " + fds0 + " -> peak " + fdsPeak + " -> " + fds1
                        + " | RSS " + rss0 / 1024 + " MiB -> peak " + rssPeak / 1024 + " -> " + rss1 / 1024 + " MiB (growth " + growthMib + " MiB)");
                assertEquals(t.calls.get(), t.replies.get() + t.errors.get(), "calls vs replies + errors");
                assertTrue(t.calls.get() > 0 && t.replies.get() > 0 && t.errors.get() > 0 && t.reconnects.get() > 0
                        && t.nameRequests.get() > 0 && t.signalsMatched.get() > 0, "the mix did not happen");
                assertEquals(t.signalsSent.get(), heard.get(), "signals heard by the listener");
                assertTrue(fds1 <= fds0, "bus fds " + fds0 + " -> " + fds1 + " after all clients left");
                assertTrue(growthMib < RSS_BOUND_MIB, "bus RSS grew by " + growthMib + " MiB");
            } finally {
                for (RawClient c : persistent) c.close();
                for (Thread th : threads) th.join(TimeUnit.SECONDS.toMillis(10));
            }
        }
    }

    static Thread daemon(Runnable r, String name) {
        Thread th = new Thread(r, name);
        th.setDaemon(true);
        th.start();
        return th;
    }

    /** An echo service: Echo returns its arguments, Fail answers with an error. */
    static void serve(RawClient svc, Totals t) {
        try {
            Message m;
            while ((m = svc.next()) != null) {
                if (m.type != Message.METHOD_CALL || !IFACE.equals(m.iface)) continue;
                Message r = new Message();
                r.replySerial = m.serial;
                r.destination = m.sender;
                if ("Fail".equals(m.member)) {
                    r.type = Message.ERROR;
                    r.errorName = IFACE + ".Error.Failed";
                    r.body("s", "as asked");
                } else {
                    r.type = Message.METHOD_RETURN;
                    r.signature = m.signature;
                    r.body = m.body;
                }
                svc.send(r);
                t.served.incrementAndGet();
            }
        } catch (IOException e) {
            // closed at the end of the test
        }
    }

    static void listen(RawClient listener, AtomicLong heard) {
        try {
            Message m;
            while ((m = listener.next()) != null) {
                if (m.type == Message.SIGNAL && "Tick".equals(m.member) && IFACE.equals(m.iface)) heard.incrementAndGet();
            }
        } catch (IOException e) {
            // closed at the end of the test
        }
    }

    /** One client's life cycle, repeated until {@code end}: it connects, does random things, leaves. */
    static void work(String addr, int id, Random rnd, long end, Totals t) throws IOException {
        long seq = 0;
        while (System.nanoTime() < end) {
            RawClient c = RawClient.connectHello(addr, Buses.T);
            Map<Long, Integer> answers = new HashMap<>(); // reply serial -> replies seen
            List<Long> awaited = new ArrayList<>();
            awaited.add(1L); // Hello
            t.calls.incrementAndGet();
            try {
                expectOk(c, t, awaited, c.send(bus("AddMatch").body("s",
                        "type='signal',interface='" + IFACE + "',member='Tick',arg0='w" + (id + 1) % CLIENTS + "'")));
                expectOk(c, t, awaited, c.send(bus("AddMatch").body("s",
                        "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0namespace='" + IFACE + "'")));
                boolean leave = false;
                boolean abandon = false;
                while (!leave && System.nanoTime() < end) {
                    int op = rnd.nextInt(100);
                    if (op < 40) {
                        boolean failing = rnd.nextInt(10) == 0;
                        Message m = Message.call(IFACE + ".Echo" + rnd.nextInt(SERVICES), PATH, IFACE, failing ? "Fail" : "Echo")
                                .body("su", "w" + id, seq++);
                        long s = c.send(m);
                        awaited.add(s);
                        t.calls.incrementAndGet();
                        Message r = c.awaitReply(s, Buses.T);
                        if (failing) {
                            assertEquals(IFACE + ".Error.Failed", r.errorName, r.toString());
                        } else {
                            assertEquals(Message.METHOD_RETURN, r.type, r.toString());
                            assertEquals(List.of("w" + id, seq - 1), r.args(), "echo");
                        }
                    } else if (op < 60) {
                        Message s = Message.call(null, PATH, IFACE, "Tick").body("su", "w" + id, seq++);
                        s.type = Message.SIGNAL;
                        c.send(s);
                        t.signalsSent.incrementAndGet();
                    } else if (op < 80) {
                        String name = IFACE + ".Shared" + rnd.nextInt(SHARED);
                        long flags = new long[] {0, 1, 2, 3, 4, 5, 6}[rnd.nextInt(7)];
                        t.nameRequests.incrementAndGet();
                        long code = (Long) expectOk(c, t, awaited, c.send(bus("RequestName").body("su", name, flags))).arg(0);
                        assertTrue(code >= 1 && code <= 4, "RequestName code " + code);
                        if (rnd.nextBoolean()) { // else: kept (owned or queued) until release or disconnect
                            t.nameReleases.incrementAndGet();
                            long rc = (Long) expectOk(c, t, awaited, c.send(bus("ReleaseName").body("s", name))).arg(0);
                            assertTrue(rc >= 1 && rc <= 3, "ReleaseName code " + rc);
                        }
                    } else if (op < 88) {
                        // A driver query that may fail (no owner): either answer counts.
                        long s = c.send(bus("GetNameOwner").body("s", IFACE + ".Shared" + rnd.nextInt(SHARED)));
                        awaited.add(s);
                        t.calls.incrementAndGet();
                        Message r = c.awaitReply(s, Buses.T);
                        assertTrue(r.type == Message.METHOD_RETURN
                                || "org.freedesktop.DBus.Error.NameHasNoOwner".equals(r.errorName), r.toString());
                    } else if (op < 94) {
                        long s = c.send(Message.call(IFACE + ".Nobody", PATH, IFACE, "Echo").flags(Message.FLAG_NO_AUTO_START));
                        awaited.add(s);
                        t.calls.incrementAndGet();
                        Message r = c.awaitReply(s, Buses.T);
                        assertEquals("org.freedesktop.DBus.Error.NameHasNoOwner", r.errorName, r.toString()); // as dbus-daemon, with NO_AUTO_START
                    } else if (op < 97) {
                        leave = true;
                    } else {
                        leave = true;
                        abandon = true;
                    }
                    tally(c, answers, t);
                }
                c.sync(Buses.T); // barrier: a duplicate reply queued before it would now be in the log
                tally(c, answers, t);
                for (long s : awaited) {
                    assertEquals(1, answers.getOrDefault(s, 0), "replies to serial " + s + " (worker " + id + ")");
                }
                for (Map.Entry<Long, Integer> e : answers.entrySet()) {
                    assertTrue(awaited.contains(e.getKey()), "a reply to serial " + e.getKey() + " that was never awaited");
                }
                if (abandon) {
                    // Leave with a call in flight: not counted, its reply has nobody to go to.
                    c.send(Message.call(IFACE + ".Echo" + rnd.nextInt(SERVICES), PATH, IFACE, "Echo").body("su", "w" + id, seq++));
                    t.abandoned.incrementAndGet();
                }
            } finally {
                c.close();
            }
            t.reconnects.incrementAndGet();
        }
    }

    static Message bus(String member) {
        return Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, member);
    }

    /** Awaits a driver reply that must be a success; counts it as a call. */
    static Message expectOk(RawClient c, Totals t, List<Long> awaited, long serial) throws IOException {
        awaited.add(serial);
        t.calls.incrementAndGet();
        Message r = c.awaitReply(serial, Buses.T);
        if (r.type != Message.METHOD_RETURN) fail("driver call failed: " + r + " " + r.args());
        return r;
    }

    /** Counts replies and signals in the log, then empties it (only this thread reads the log). */
    static void tally(RawClient c, Map<Long, Integer> answers, Totals t) {
        for (Message m : c.messages()) {
            if (m.type == Message.METHOD_RETURN || m.type == Message.ERROR) {
                answers.merge(m.replySerial, 1, Integer::sum);
                if (m.type == Message.METHOD_RETURN) t.replies.incrementAndGet();
                else t.errors.incrementAndGet();
            } else if (m.type == Message.SIGNAL && "Tick".equals(m.member)) {
                t.signalsMatched.incrementAndGet();
            }
        }
        c.clearLog();
    }
}
