package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;
import org.kdbusbridge.compat.harness.Wire;

/**
 * Issue 17's queue insight on our bus, with raw-socket clients that really stop reading:
 * MessagesDropped (WatchDrops) after a stalled subscriber missed N broadcasts, exactly one with
 * exactly N and the sequence range right behind what PeekQueued showed waiting; PeekQueued
 * listing what waits for a non-reader in order, all of it delivered afterwards; a subscriber
 * that did not ask seeing nothing new; gdbus calling the methods and introspecting the signal.
 * (PeekActivationQueue with a real activated service: ActivationPeekTest.)
 */
class QueueInsightTest {
    static final String EXT = "org.kdbusbridge.Extensions1";
    private static final String IFACE = "org.example.Ticker";
    private static final String PATH = "/org/example/Ticker";
    /**
     * The stalled pools hold this many messages (our max_queued_messages): more than one read
     * burst of the sender routes before the bus writes out, so drops start only once the
     * subscriber's socket is full, not in a burst while it still takes data (that too would be
     * reported, each run with a notice of its own, as soon as the pool had room).
     */
    private static final int POOL = 1024;

    @BeforeEach
    void ours() {
        Assumptions.assumeTrue(BusKind.selected().contains(BusKind.KDBUS_BRIDGE), "our bus not selected");
    }

    static Path config(Path dir, Map<String, Long> limits) throws IOException {
        return Files.writeString(dir.resolve("bus.conf"),
                org.kdbusbridge.compat.harness.Bystanders.openConfig(dir.resolve("bus"), limits));
    }

    static Message ext(String member) {
        return Message.call(RawClient.BUS, RawClient.BUS_PATH, EXT, member);
    }

    private static Message tick(int i, int pad) {
        Message m = new Message();
        m.type = Message.SIGNAL;
        m.flags = Message.FLAG_NO_REPLY_EXPECTED;
        m.path = PATH;
        m.iface = IFACE;
        m.member = "Tick";
        return m.body("us", (long) i, "x".repeat(pad));
    }

    private static void addMatch(RawClient c) throws IOException {
        Message r = c.callBus("AddMatch", Buses.T, "s", "type='signal',interface='" + IFACE + "'");
        assertEquals(Message.METHOD_RETURN, r.type, r.toString());
    }

    /** One key of Debug.Stats.GetConnectionStats for {@code name}. */
    static long stat(RawClient probe, String name, String key) throws IOException {
        Message r = probe.call(Message.call(RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Debug.Stats",
                "GetConnectionStats").body("s", name), Buses.T);
        assertEquals(Message.METHOD_RETURN, r.type, r.toString());
        Map<?, ?> stats = (Map<?, ?>) r.arg(0);
        return ((Number) ((Wire.Variant) stats.get(key)).value()).longValue();
    }

    /** Waits (deadline Buses.T) until {@code name}'s pool holds {@code n} messages. */
    static void awaitQueued(RawClient probe, String name, long n) throws IOException {
        long deadline = System.nanoTime() + Buses.T.toNanos();
        long now;
        while ((now = stat(probe, name, "OutgoingMessages")) != n) {
            assertTrue(System.nanoTime() < deadline, name + " holds " + now + " queued messages, not " + n);
            Thread.onSpinWait();
        }
    }

    /** Waits until {@code name}'s pool count no longer changes between two looks (a stalled reader's steady state). */
    static long steadyQueued(RawClient probe, String name) throws IOException {
        long deadline = System.nanoTime() + Buses.T.toNanos();
        long last = stat(probe, name, "OutgoingMessages");
        while (true) {
            long now = stat(probe, name, "OutgoingMessages");
            if (now == last && now > 0) {
                return now;
            }
            assertTrue(System.nanoTime() < deadline, name + " never settled");
            last = now;
        }
    }

    private static List<Message> ticks(RawClient c) {
        List<Message> out = new ArrayList<>();
        for (Message m : c.messages()) {
            if (m.type == Message.SIGNAL && "Tick".equals(m.member)) {
                out.add(m);
            }
        }
        return out;
    }

    private static List<Message> notices(RawClient c) {
        List<Message> out = new ArrayList<>();
        for (Message m : c.messages()) {
            if (m.type == Message.SIGNAL && EXT.equals(m.iface)) {
                out.add(m);
            }
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    static List<List<Object>> entries(Object array) {
        return (List<List<Object>>) array;
    }

    @Test
    void aStalledSubscriberGetsExactlyOneNoticeWithNAndTheRange(@TempDir Path dir) throws Exception {
        final int sent = 4000;
        Path conf = config(dir, Map.of("max_queued_messages", (long) POOL));
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start(conf);
             RawClient watcher = RawClient.connectDirect(bus.address());
             RawClient plain = RawClient.connectDirect(bus.address());
             RawClient sender = RawClient.connectHello(bus.address(), Buses.T)) {
            String watcherName = watcher.hello(Buses.T);
            String plainName = plain.hello(Buses.T);
            addMatch(watcher);
            addMatch(plain);
            assertEquals(Message.METHOD_RETURN, watcher.call(ext("WatchDrops").body("b", true), Buses.T).type);
            watcher.clearLog();
            plain.clearLog();
            // From here on neither subscriber reads: the kernel's buffer fills, then its pool, then drops.
            for (int i = 0; i < sent; i++) {
                sender.send(tick(i, 1024));
            }
            sender.sync(Buses.T); // every tick was routed before this reply
            try (RawClient probe = RawClient.connectHello(bus.address(), Buses.T)) {
                long waiting = steadyQueued(probe, watcherName);
                assertEquals(POOL, waiting, "the stalled pool is full");
                // The peek is handled while the watcher still reads nothing: its reply joins the pool.
                long peekSerial = watcher.send(ext("PeekQueued"));
                awaitQueued(probe, watcherName, waiting + 1);

                // Resume: everything queued, the peek's answer, then the one notice.
                Message peek = watcher.awaitReply(peekSerial, Buses.T);
                Message notice = watcher.await(m -> m.type == Message.SIGNAL && EXT.equals(m.iface), Buses.T, false);
                assertNotNull(notice, "no MessagesDropped:\n" + String.join("\n", watcher.transcript()));
                watcher.sync(Buses.T);
                assertEquals(1, notices(watcher).size(), "exactly one notice:\n" + String.join("\n", watcher.transcript()));
                assertEquals("MessagesDropped", notice.member);
                assertEquals("utt", notice.signature);
                assertEquals(RawClient.BUS, notice.sender);
                assertEquals(RawClient.BUS_PATH, notice.path);
                assertEquals(watcherName, notice.destination);

                List<Message> got = ticks(watcher);
                int k = got.size();
                for (int i = 0; i < k; i++) {
                    assertEquals((long) i, got.get(i).arg(0), "ticks arrive in order, a prefix of what was sent");
                }
                long n = (Long) notice.arg(0);
                long first = (Long) notice.arg(1);
                long last = (Long) notice.arg(2);
                System.out.println("MESSAGES-DROPPED: " + k + " of " + sent + " ticks arrived, notice count " + n + " seq "
                        + first + ".." + last);
                assertEquals(sent - k, n, "the notice counts exactly the missed ticks (" + k + " of " + sent + " arrived)");
                assertTrue(n > 0 && last - first + 1 >= n, first + ".." + last + " for " + n);
                assertEquals(n, stat(probe, watcherName, "DroppedMessages"), "the bus's statistic agrees");
                assertTrue(watcher.messages().indexOf(notice) > watcher.messages().indexOf(got.get(k - 1)),
                        "the notice comes after what was queued before it");

                // The range: the peek showed the last POOL ticks that waited, consecutive sequence
                // numbers (nothing else was admitted meanwhile); the missed ones follow them.
                assertEquals((long) POOL, peek.arg(0));
                List<List<Object>> listed = entries(peek.arg(1));
                assertEquals(POOL, listed.size());
                long prev = -1;
                for (List<Object> e : listed) {
                    assertEquals((byte) Message.SIGNAL, e.get(0));
                    assertEquals(sender.uniqueName(), e.get(1));
                    assertEquals(IFACE, e.get(2));
                    assertEquals("Tick", e.get(3));
                    assertEquals(PATH, e.get(4));
                    long seq = (Long) e.get(5);
                    assertTrue(prev < 0 || seq == prev + 1, "consecutive: " + prev + " then " + seq);
                    prev = seq;
                }
                assertEquals(prev + 1, first, "the first missed tick follows the last that waited");
                assertEquals(first + n - 1, last, "contiguous: every tick after them was missed");

                // The subscriber that did not ask: the same kind of drops, no notice.
                plain.sync(Buses.T);
                int plainGot = ticks(plain).size();
                assertTrue(plainGot < sent, "it missed some too");
                assertEquals(sent - plainGot, stat(probe, plainName, "DroppedMessages"));
                assertEquals(List.of(), notices(plain), "nothing new for who did not ask");

                // Counted afresh: a second stall, a second notice with only its own drops.
                watcher.clearLog();
                for (int i = 0; i < sent; i++) {
                    sender.send(tick(i, 1024));
                }
                sender.sync(Buses.T);
                steadyQueued(probe, watcherName);
                Message second = watcher.await(m -> m.type == Message.SIGNAL && EXT.equals(m.iface), Buses.T, false);
                assertNotNull(second, "no second notice");
                watcher.sync(Buses.T);
                assertEquals(1, notices(watcher).size());
                assertEquals((long) (sent - ticks(watcher).size()), second.arg(0));
                assertTrue((Long) second.arg(1) > last, "a new range");
            }
        }
    }

    @Test
    void aStalledDbusPythonSubscriberGetsOneNoticeWithExactlyWhatItMissed(@TempDir Path dir) throws Exception {
        final int sent = 4000;
        Path py = dir.resolve("stalled_subscriber.py");
        try (java.io.InputStream in = QueueInsightTest.class.getResourceAsStream("queue/stalled_subscriber.py")) {
            Files.copy(in, py);
        }
        Path conf = config(dir, Map.of("max_queued_messages", (long) POOL));
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start(conf);
             Background sub = Background.start(List.of("/usr/bin/python3", py.toString(), bus.address()), null);
             RawClient sender = RawClient.connectHello(bus.address(), Buses.T);
             RawClient probe = RawClient.connectHello(bus.address(), Buses.T)) {
            String ready = sub.stdout().awaitLine(l -> l.startsWith("ready "), Buses.T);
            assertNotNull(ready, sub.describe());
            String name = ready.substring("ready ".length());
            for (int i = 0; i < sent; i++) {
                sender.send(tick(i, 1024));
            }
            sender.sync(Buses.T);
            assertEquals(POOL, steadyQueued(probe, name), "its pool is full while it stalls");
            long dropped = stat(probe, name, "DroppedMessages");
            sub.process().getOutputStream().write('\n');
            sub.process().getOutputStream().flush();
            String summary = sub.stdout().awaitLine(l -> l.startsWith("summary "), Buses.T);
            assertNotNull(summary, sub.describe());
            System.out.println("DBUS-PYTHON " + summary);
            String[] f = summary.split(" ");
            long ticks = Long.parseLong(f[1]);
            String[] notices = f.length > 2 ? f[2].split(";") : new String[0];
            assertEquals(1, notices.length, summary);
            String[] n = notices[0].split(",");
            long count = Long.parseLong(n[0]);
            assertEquals(sent - ticks, count, "exactly the ticks it did not get: " + summary);
            assertEquals(dropped, count, "as the bus counted them");
            assertEquals(Long.parseLong(n[1]) + count - 1, Long.parseLong(n[2]), "one contiguous run: " + summary);
        }
    }

    @Test
    void peekQueuedListsWhatWaitsForANonReaderAndAllOfItIsDeliveredInOrder(@TempDir Path dir) throws Exception {
        final int each = 150;
        Path conf = config(dir, Map.of());
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start(conf);
             RawClient reader = RawClient.connectDirect(bus.address());
             RawClient a = RawClient.connectHello(bus.address(), Buses.T);
             RawClient b = RawClient.connectHello(bus.address(), Buses.T);
             RawClient probe = RawClient.connectHello(bus.address(), Buses.T)) {
            String readerName = reader.hello(Buses.T);
            List<String> expected = new ArrayList<>();
            for (RawClient from : List.of(a, b)) {
                String member = from == a ? "FromA" : "FromB";
                for (int i = 0; i < each; i++) {
                    Message m = tick(i, 4096);
                    m.member = member;
                    m.destination = readerName;
                    from.send(m);
                    expected.add(member + " " + i);
                }
                from.sync(Buses.T); // all of a's before any of b's
            }
            long waiting = steadyQueued(probe, readerName);
            long peekSerial = reader.send(ext("PeekQueued"));
            awaitQueued(probe, readerName, waiting + 1);

            Message peek = reader.awaitReply(peekSerial, Buses.T);
            List<String> got = new ArrayList<>();
            List<Message> before = new ArrayList<>();
            for (Message m : reader.messages()) {
                if (m == peek) {
                    break;
                }
                if (m.type == Message.SIGNAL && IFACE.equals(m.iface)) { // not its NameAcquired
                    got.add(m.member + " " + m.arg(0));
                    before.add(m);
                }
            }
            assertEquals(expected, got, "every message delivered, in order, before the peek's answer");

            List<List<Object>> listed = entries(peek.arg(1));
            assertEquals(waiting, (long) (Long) peek.arg(0));
            assertEquals(waiting, listed.size());
            assertTrue(listed.size() > 10 && listed.size() < expected.size(), listed.size() + " were waiting");
            System.out.println("PEEK-QUEUED: " + listed.size() + " of " + expected.size() + " messages were waiting");
            long pid = ProcessHandle.current().pid();
            long uid = RawClient.uid();
            long gid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:gid")).longValue();
            // The listed ones are the last of what arrived before the answer, in the same order.
            List<Message> tail = before.subList(before.size() - listed.size(), before.size());
            long prev = -1;
            for (int i = 0; i < listed.size(); i++) {
                List<Object> e = listed.get(i);
                Message m = tail.get(i);
                assertEquals((byte) Message.SIGNAL, e.get(0));
                assertEquals(m.sender, e.get(1), "entry " + i);
                assertEquals(IFACE, e.get(2));
                assertEquals(m.member, e.get(3), "entry " + i);
                assertEquals(PATH, e.get(4));
                long seq = (Long) e.get(5);
                assertTrue(seq > prev, "sequence order");
                prev = seq;
                assertEquals(List.of(pid, uid, gid), e.subList(6, 9), "the sender's pid, uid, gid");
            }
            assertTrue(listed.stream().anyMatch(e -> b.uniqueName().equals(e.get(1))), "b's messages were waiting");

            // Afterwards nothing waits; a peek of an empty queue is empty.
            reader.clearLog();
            Message again = reader.call(ext("PeekQueued"), Buses.T);
            assertEquals(0L, again.arg(0));
            assertEquals(List.of(), again.arg(1));
        }
    }

    @Test
    void gdbusCallsThemAndIntrospectionShowsTheSignal(@TempDir Path dir) throws Exception {
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start(config(dir, Map.of()))) {
            List<String> base = List.of("gdbus", "call", "--address", bus.address(), "--dest", RawClient.BUS,
                    "--object-path", RawClient.BUS_PATH, "--method");
            List<String> peek = new ArrayList<>(base);
            peek.add(EXT + ".PeekQueued");
            Cmd.Result r = Cmd.run(peek, Buses.T);
            assertTrue(r.ok() && r.stdout().contains("(uint32 0, @a(ysssstuuu) [])"), r.describe());
            List<String> watch = new ArrayList<>(base);
            watch.addAll(List.of(EXT + ".WatchDrops", "true"));
            Cmd.Result w = Cmd.run(watch, Buses.T);
            assertTrue(w.ok() && w.stdout().trim().equals("()"), w.describe());
            List<String> act = new ArrayList<>(base);
            act.addAll(List.of(EXT + ".PeekActivationQueue", "org.example.NotMine"));
            Cmd.Result denied = Cmd.run(act, Buses.T);
            assertTrue(!denied.ok() && denied.stderr().contains("org.freedesktop.DBus.Error.AccessDenied"), denied.describe());
            Cmd.Result x = Cmd.run(List.of("gdbus", "introspect", "--address", bus.address(), "--dest", RawClient.BUS,
                    "--object-path", RawClient.BUS_PATH), Buses.T);
            assertTrue(x.ok() && x.stdout().contains("MessagesDropped(u count,")
                    && x.stdout().contains("PeekQueued(out u") , x.describe());
        }
    }
}
