package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Live hand-over by execve (docs/handover.md, step 2): our bus, started through the real
 * launcher, is asked Extensions1.Reexec by real clients (gdbus, dbus-send, a raw socket) while a
 * dbus-python service owns a name and a raw client holds a match rule. After each hand-over the
 * same process (PID, GUID) serves the same connections: unique names, the service's name, match
 * rules; no NameOwnerChanged for them; a new client gets a name never used. A non-owner is
 * refused, and a second Reexec while one runs is told HandOverInProgress. Step 4: signals queued
 * for a client that does not read, and a call held unanswered, cross the hand-over and arrive
 * exactly once. Step 5: a 1 MiB call half-read by the bus at the exec arrives whole, once, byte
 * for byte, once its sender writes the rest; clients cut mid-SASL-line, between AUTH and BEGIN
 * (after NEGOTIATE_UNIX_FD), and after BEGIN before Hello finish, say Hello and call normally; a
 * call whose two fds come in two batches around the hand-over arrives once with both.
 */
class HandOverExecTest {
    static final String EXT = "org.kdbusbridge.Extensions1";
    static final String NAME = "com.example.HandOver";
    static final String JDK25 = "/usr/lib/jvm/temurin-25-jdk-amd64";

    /** The test JDK, JDK 25 if installed, and "jnr": the test JDK without the JNI library (the jnr-ffi exec). */
    static Stream<String> jdks() {
        return Files.isExecutable(Path.of(JDK25, "bin/java")) ? Stream.of("default", JDK25, "jnr") : Stream.of("default", "jnr");
    }

    private static Path config(Path dir, Path socket) throws IOException {
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                + " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n"
                + "  <type>session</type>\n  <listen>unix:path=" + socket + "</listen>\n  <auth>EXTERNAL</auth>\n"
                + "  <policy context=\"default\">\n    <allow user=\"*\"/>\n    <allow own=\"*\"/>\n"
                + "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow eavesdrop=\"true\"/>\n  </policy>\n</busconfig>\n");
        return conf;
    }

    private static WaitedBus start(Path dir, String jdk) throws IOException {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // uid 65534 connects too
        Map<String, String> env = new HashMap<>();
        env.put("KDBUS_BRIDGE_HOST", "0");
        if (jdk.equals("jnr")) {
            env.put("KDBUS_BRIDGE_JAVA_OPTS", "-Dkdbus.nativeLibrary=none");
        } else if (!jdk.equals("default")) {
            env.put("JAVA_HOME", jdk);
        }
        Path conf = config(dir, dir.resolve("bus"));
        return WaitedBus.start(List.of(DropInTest.BIN + "/kdbus-bridge", "--config-file=" + conf, "--nofork",
                "--print-address"), env, dir);
    }

    private static Background service(Path dir, String address) throws IOException {
        Path py = dir.resolve("service.py");
        if (!Files.exists(py)) {
            try (InputStream in = HandOverExecTest.class.getResourceAsStream("handover/service.py")) {
                Files.copy(in, py);
            }
        }
        return Background.start(List.of("/usr/bin/python3", py.toString(), address), null);
    }

    private static Cmd.Result busCall(String address, String member, String... args) {
        List<String> argv = new ArrayList<>(List.of("dbus-send", "--bus=" + address, "--print-reply",
                "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", member));
        argv.addAll(List.of(args));
        return Cmd.run(argv, Buses.T);
    }

    private static String reply(RawClient c, String member, String sig, Object... args) throws IOException {
        Message r = c.callBus(member, Buses.T, sig, args);
        assertNotNull(r, member + ": no reply");
        assertEquals(Message.METHOD_RETURN, r.type, member + ": " + r);
        return r.args().isEmpty() ? "" : String.valueOf(r.arg(0));
    }

    private static long number(String unique) {
        return Long.parseLong(unique.substring(unique.lastIndexOf('.') + 1));
    }

    /** The highest :1.N the service saw in NameOwnerChanged so far (every client that came or went). */
    private static long highestSeen(Background svc) {
        long max = 0;
        for (String l : svc.stdout().all()) {
            String[] f = l.split(" ");
            if (f[0].equals("noc") && f[1].startsWith(":")) {
                max = Math.max(max, number(f[1]));
            }
        }
        return max;
    }

    /** The bus's open fds by kind: "socket", "memfd", or the link text (anon inodes, files). */
    private static Map<String, Integer> fdKinds(long pid) throws IOException {
        Map<String, Integer> out = new java.util.TreeMap<>();
        try (var fds = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            for (Path fd : (Iterable<Path>) fds::iterator) {
                String link;
                try {
                    link = Files.readSymbolicLink(fd).toString();
                } catch (IOException e) {
                    continue; // closed meanwhile
                }
                String kind = link.startsWith("socket:") ? "socket" : link.startsWith("/memfd:") ? "memfd" : link;
                out.merge(kind, 1, Integer::sum);
            }
        }
        return out;
    }

    private static Message reexec(RawClient c) throws IOException {
        return c.call(Message.call(RawClient.BUS, RawClient.BUS_PATH, EXT, "Reexec"), Duration.ofSeconds(60));
    }

    @ParameterizedTest
    @MethodSource("jdks")
    void reexecKeepsThePidTheGuidAndEveryConnection(String jdk, @TempDir Path dir) throws Exception {
        try (WaitedBus bus = start(dir, jdk);
             Background svc = service(dir, bus.address());
             RawClient raw = RawClient.connectHello(bus.address(), Buses.T);
             RawClient pinger = RawClient.connectHello(bus.address(), Buses.T)) {
            String ready = svc.stdout().awaitLine(l -> l.startsWith("ready "), Buses.T);
            assertNotNull(ready, svc.describe());
            String service = ready.substring(6);
            String guid = reply(raw, "GetId", "");
            long pid = bus.pid();
            assertEquals(String.valueOf(pid), reply(raw, "GetConnectionUnixProcessID", "s", "org.freedesktop.DBus"));
            reply(raw, "AddMatch", "s", "type='signal',interface='" + NAME + "',member='Tick'");
            String rawName = raw.uniqueName();
            // The service may have subscribed before raw and pinger joined: their joins are not the
            // hand-over's. A call it answers after them marks where the hand-overs' signals begin
            // (the bus delivers in order, the service handles in order).
            Message sync = raw.call(Message.call(NAME, "/t", NAME, "Echo").body("s", "sync"), Buses.T);
            assertEquals(Message.METHOD_RETURN, sync.type, String.valueOf(sync));
            int nocFrom = svc.stdout().all().size();

            // A ping loop on its own connection: the longest gap between answers is the pause clients see.
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong longestGap = new AtomicLong();
            AtomicLong pingErrors = new AtomicLong();
            Thread ping = new Thread(() -> {
                long last = System.nanoTime();
                while (!stop.get()) {
                    try {
                        Message r = pinger.call(Message.call(RawClient.BUS, RawClient.BUS_PATH,
                                "org.freedesktop.DBus.Peer", "Ping"), Duration.ofSeconds(30));
                        if (r == null || r.type != Message.METHOD_RETURN) {
                            pingErrors.incrementAndGet();
                        }
                    } catch (IOException e) {
                        pingErrors.incrementAndGet();
                        return;
                    }
                    long now = System.nanoTime();
                    longestGap.accumulateAndGet(now - last, Math::max);
                    last = now;
                }
            }, "ping");
            ping.start();
            List<String> figures = new ArrayList<>();
            try {
                for (int round = 1; round <= 3; round++) {
                    long before = highestSeen(svc);
                    longestGap.set(0);
                    Map<String, Integer> fdsBefore = fdKinds(pid);
                    long t0 = System.nanoTime();
                    if (round == 1) {
                        Cmd.Result r = Cmd.run(List.of("gdbus", "call", "--address", bus.address(), "--timeout", "60",
                                "--dest", "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus",
                                "--method", EXT + ".Reexec"), Map.of(), Duration.ofSeconds(60));
                        assertTrue(r.ok() && r.stdout().trim().equals("()"), r.describe() + "\n" + bus.describe());
                    } else {
                        Message r = reexec(raw);
                        assertNotNull(r, "no Reexec reply\n" + bus.describe());
                        assertEquals(Message.METHOD_RETURN, r.type, r + "\n" + bus.describe());
                    }
                    long callMs = (System.nanoTime() - t0) / 1_000_000;
                    // The keep set: the old JVM's own fds (epoll, eventfd, its socketpairs, the
                    // snapshot memfd) closed at exec; the new one has one of each and no more sockets.
                    Map<String, Integer> fdsAfter = fdKinds(pid);
                    assertEquals(1, fdsAfter.getOrDefault("anon_inode:[eventpoll]", 0), fdsAfter.toString());
                    assertEquals(0, fdsAfter.getOrDefault("memfd", 0), "the snapshot memfd is closed: " + fdsAfter);
                    assertTrue(fdsAfter.getOrDefault("socket", 0) <= fdsBefore.getOrDefault("socket", 0) + (round == 1 ? 1 : 0),
                            "sockets before " + fdsBefore + ", after " + fdsAfter);
                    // The same process: the waiter has not seen it end, /proc has it, the bus says so.
                    assertTrue(Files.isDirectory(Path.of("/proc/" + pid)), bus.describe());
                    assertEquals(String.valueOf(pid), reply(raw, "GetConnectionUnixProcessID", "s", "org.freedesktop.DBus"));
                    assertEquals(guid, reply(raw, "GetId", ""), "GUID after hand-over " + round);
                    // Old connections: the same unique names, the service's name, its match rules.
                    assertEquals(rawName, reply(raw, "GetNameOwner", "s", rawName));
                    assertEquals(service, reply(raw, "GetNameOwner", "s", NAME));
                    Cmd.Result echo = Cmd.run(List.of("gdbus", "call", "--address", bus.address(), "--dest", NAME,
                            "--object-path", "/t", "--method", NAME + ".Echo", "round" + round), Map.of(), Buses.T);
                    assertEquals("('round" + round + "',)", echo.stdout().trim(), echo.describe() + "\n" + svc.describe());
                    Cmd.Result tick = Cmd.run(List.of("dbus-send", "--bus=" + bus.address(), "--type=signal", "/t",
                            NAME + ".Tick", "string:after" + round), Buses.T);
                    assertTrue(tick.ok(), tick.describe());
                    int r0 = round;
                    assertNotNull(svc.stdout().awaitLine(l -> l.equals("tick after" + r0), Buses.T),
                            "the service's match rule after hand-over " + round + "\n" + svc.describe());
                    Message sig = raw.await(m -> m.type == Message.SIGNAL && "Tick".equals(m.member)
                            && ("after" + r0).equals(m.arg(0)), Buses.T, true);
                    assertNotNull(sig, "the raw client's match rule after hand-over " + round + "\n" + raw.transcript());
                    // A new client gets a unique name never used before.
                    try (RawClient fresh = RawClient.connectHello(bus.address(), Buses.T)) {
                        assertTrue(number(fresh.uniqueName()) > Math.max(before, number(rawName)),
                                fresh.uniqueName() + " after highest " + before);
                    }
                    figures.add("round " + round + ": Reexec call " + callMs + " ms, longest ping gap "
                            + longestGap.get() / 1_000_000 + " ms");
                }
            } finally {
                stop.set(true);
                ping.join(30_000);
            }
            assertEquals(0, pingErrors.get(), "pings failed across the hand-over");
            for (String l : svc.stdout().all().subList(nocFrom, svc.stdout().all().size())) {
                if (l.startsWith("noc ")) {
                    String n = l.split(" ")[1];
                    assertTrue(!n.equals(service) && !n.equals(rawName) && !n.equals(pinger.uniqueName())
                            && !n.equals(NAME), "NameOwnerChanged for a carried client: " + l);
                }
            }
            // The resumed program took SIGHUP back (it came ignored through execve): a reload, not a death.
            assertTrue(Cmd.run(List.of("kill", "-HUP", String.valueOf(pid)), Buses.T).ok());
            long deadline = System.nanoTime() + Buses.T.toNanos();
            while (!bus.stderr().contains("Reloaded configuration") && System.nanoTime() < deadline) {
                java.util.concurrent.locks.LockSupport.parkNanos(20_000_000L); // polling the log file
            }
            assertTrue(bus.stderr().contains("Reloaded configuration"), bus.describe());
            assertEquals(guid, reply(raw, "GetId", ""));
            // And SIGTERM stops it as it stops a bus that never handed over: status 0, socket file removed.
            assertEquals("status 0", bus.kill(15), bus.describe());
            assertTrue(!Files.exists(dir.resolve("bus")), "socket file left behind\n" + bus.describe());
            System.out.println("HANDOVER " + jdk + " (load " + Files.readString(Path.of("/proc/loadavg")).trim() + "): "
                    + String.join("; ", figures));
        }
    }

    @Test
    void reexecByAnotherUidIsDenied(@TempDir Path dir) throws Exception {
        assumeTrue(RawClient.uid() == 0 && Files.isExecutable(Path.of("/usr/bin/setpriv")), "needs root and setpriv");
        try (WaitedBus bus = start(dir, "default")) {
            Cmd.Result r = Cmd.run(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    "dbus-send", "--bus=" + bus.address(), "--print-reply", "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus", EXT + ".Reexec"), Buses.T);
            assertTrue(!r.ok() && r.stderr().contains("org.freedesktop.DBus.Error.AccessDenied"), r.describe());
            assertTrue(busCall(bus.address(), "org.freedesktop.DBus.GetId").ok(), bus.describe());
            assertTrue(!bus.stderr().contains("hand-over:"), bus.describe());
        }
    }

    /**
     * Step 4: a client that does not read while signals are queued for it (its socket full, the
     * rest in its pool) and a method call the service holds unanswered (an open reply slot) both
     * cross a hand-over: afterwards the slow client reads every signal exactly once, in order,
     * and the held call is answered exactly once.
     */
    @Test
    void queuedSignalsAndAPendingCallCrossTheHandOverExactlyOnce(@TempDir Path dir) throws Exception {
        int signals = 200;
        String pad = "x".repeat(4000); // 200 x 4 KB: far past the slow client's socket buffer
        try (WaitedBus bus = start(dir, "default");
             Background svc = service(dir, bus.address());
             RawClient raw = RawClient.connectHello(bus.address(), Buses.T);
             RawClient slow = RawClient.connectDirect(bus.address())) {
            assertNotNull(svc.stdout().awaitLine(l -> l.startsWith("ready "), Buses.T), svc.describe());
            slow.hello(Buses.T);
            Message added = slow.callBus("AddMatch", Buses.T, "s", "type='signal',interface='" + NAME + "',member='Seq'");
            assertEquals(Message.METHOD_RETURN, added.type, String.valueOf(added));
            long pid = bus.pid();
            String guid = reply(raw, "GetId", "");
            long hang = raw.send(Message.call(NAME, "/t", NAME, "Hang"));
            assertNotNull(svc.stdout().awaitLine(l -> l.startsWith("hang "), Buses.T), svc.describe());
            for (int i = 0; i < signals; i++) {
                Message sig = Message.call(null, "/t", NAME, "Seq").body("us", i, pad);
                sig.type = Message.SIGNAL;
                raw.send(sig);
            }
            raw.sync(Buses.T); // every signal was routed: the slow client's socket is full, its pool holds the rest

            Message ok = reexec(raw);
            assertNotNull(ok, bus.describe());
            assertEquals(Message.METHOD_RETURN, ok.type, ok + "\n" + bus.describe());
            assertEquals(String.valueOf(pid), reply(raw, "GetConnectionUnixProcessID", "s", "org.freedesktop.DBus"));
            assertEquals(guid, reply(raw, "GetId", ""));

            // The held call, answered after the hand-over: its reply reaches the caller once.
            Cmd.Result rel = Cmd.run(List.of("gdbus", "call", "--address", bus.address(), "--dest", NAME,
                    "--object-path", "/t", "--method", NAME + ".Release"), Map.of(), Buses.T);
            assertEquals("(uint32 1,)", rel.stdout().trim(), rel.describe() + "\n" + bus.describe());
            Message answered = raw.awaitReply(hang, Buses.T);
            assertEquals(Message.METHOD_RETURN, answered.type, String.valueOf(answered));
            raw.sync(Buses.T);
            assertEquals(1, raw.messages().stream().filter(m -> m.replySerial == hang
                    && (m.type == Message.METHOD_RETURN || m.type == Message.ERROR)).count(), "the held call answered once");

            // The slow client reads at last: every signal once, in order, then nothing more.
            for (int i = 0; i < signals; i++) {
                Message m = slow.next();
                assertNotNull(m, "EOF at signal " + i + "\n" + bus.describe());
                assertEquals("Seq", m.member, "message " + i + ": " + m);
                assertEquals(i, ((Number) m.arg(0)).intValue(), "signal " + i + " in order");
                assertEquals(pad, m.arg(1));
                assertEquals(raw.uniqueName(), m.sender);
            }
            slow.sync(Buses.T); // whatever came before the Ping's reply is in the log now
            assertEquals(0, slow.messages().stream().filter(m -> m.type == Message.SIGNAL
                    && "Seq".equals(m.member)).count(), "each signal exactly once: none after the last");
            // The restore said what it carried: some of the signals waited in the slow client's pool.
            java.util.regex.Matcher restored = java.util.regex.Pattern.compile(
                    "carried (\\d+) queued messages in \\d+ pool entries, (\\d+) reply slots")
                    .matcher(bus.stderr());
            assertTrue(restored.find(), bus.describe());
            assertTrue(Integer.parseInt(restored.group(1)) > 0, "queued messages were carried: " + restored.group());
            assertEquals("1", restored.group(2), "the held call's slot was carried: " + restored.group());
        }
    }

    /** The number a stderr line of the resumed bus gives for {@code what} (the last hand-over's). */
    private static long carried(WaitedBus bus, String what) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+) " + what).matcher(bus.stderr());
        long last = -1;
        while (m.find()) {
            last = Long.parseLong(m.group(1));
        }
        assertTrue(last >= 0, "no \"" + what + "\" in the hand-over line\n" + bus.describe());
        return last;
    }

    @Test
    void aMegabyteCallHalfReadAtTheHandOverArrivesWholeOnce(@TempDir Path dir) throws Exception {
        try (WaitedBus bus = start(dir, "default");
             RawClient recv = RawClient.connectHello(bus.address(), Buses.T);
             RawClient send = RawClient.connectHello(bus.address(), Buses.T);
             RawClient ctl = RawClient.connectHello(bus.address(), Buses.T)) {
            long pid = bus.pid();
            byte[] payload = new byte[1 << 20];
            for (int i = 0; i < payload.length; i++) {
                payload[i] = (byte) (i * 131 + (i >>> 11));
            }
            Message big = Message.call(recv.uniqueName(), "/big", NAME, "Big").flags(Message.FLAG_NO_REPLY_EXPECTED);
            big.signature = "ay";
            big.body = java.nio.ByteBuffer.allocate(4 + payload.length).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                    .putInt(payload.length).put(payload).array();
            byte[] frame = big.encode(1_000_000); // a serial the client's own counter never reaches here
            int half = frame.length / 2;
            send.writeRaw(java.util.Arrays.copyOf(frame, half));
            // The bus reads what arrives at once; the Reexec's check run alone takes far longer.
            Message ok = reexec(ctl);
            assertNotNull(ok, bus.describe());
            assertEquals(Message.METHOD_RETURN, ok.type, ok + "\n" + bus.describe());
            assertEquals(String.valueOf(pid), reply(ctl, "GetConnectionUnixProcessID", "s", "org.freedesktop.DBus"));
            assertEquals(half, carried(bus, "bytes of input"), "the half read before the exec crossed as bytes");
            send.writeRaw(java.util.Arrays.copyOfRange(frame, half, frame.length));
            Message got = recv.await(m -> "Big".equals(m.member), Buses.T, false);
            assertNotNull(got, "the 1 MiB call never arrived\n" + bus.describe());
            assertEquals(1_000_000, got.serial);
            assertEquals(send.uniqueName(), got.sender);
            assertTrue(java.util.Arrays.equals(big.body, got.body), "the 1 MiB body byte for byte");
            recv.sync(Buses.T);
            assertEquals(1, recv.messages().stream().filter(m -> "Big".equals(m.member)).count(), "exactly once");
            send.sync(Buses.T); // the sender goes on normally after its frame
        }
    }

    @Test
    void clientsMidSaslAndBeforeHelloCrossTheExecAndFinish(@TempDir Path dir) throws Exception {
        try (WaitedBus bus = start(dir, "default");
             RawClient raw = RawClient.connectHello(bus.address(), Buses.T);
             RawClient midLine = RawClient.open(bus.address());
             RawClient midAuth = RawClient.open(bus.address());
             RawClient noHello = RawClient.connect(bus.address(), Buses.T)) {
            String guid = reply(raw, "GetId", "");
            long pid = bus.pid();
            byte[] auth = RawClient.authLine();
            midLine.writeRaw(java.util.Arrays.copyOf(auth, 10)); // NUL and "AUTH EXTE": cut mid-line
            midAuth.writeRaw(auth);
            String agreed = midAuth.readLine(Buses.T);
            assertTrue(agreed != null && agreed.startsWith("OK "), String.valueOf(agreed));
            midAuth.writeRaw("NEGOTIATE_UNIX_FD\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            assertEquals("AGREE_UNIX_FD", midAuth.readLine(Buses.T)); // stopped between AUTH and BEGIN
            // Two at once: the second is told one runs; the first hands over with all three carried.
            long first = raw.send(Message.call(RawClient.BUS, RawClient.BUS_PATH, EXT, "Reexec"));
            long second = raw.send(Message.call(RawClient.BUS, RawClient.BUS_PATH, EXT, "Reexec"));
            Message busy = raw.awaitReply(second, Buses.T);
            assertNotNull(busy, bus.describe());
            assertEquals("org.kdbusbridge.Extensions1.Error.HandOverInProgress", busy.errorName, busy + "\n" + bus.describe());
            Message r = raw.awaitReply(first, Duration.ofSeconds(60));
            assertNotNull(r, bus.describe());
            assertEquals(Message.METHOD_RETURN, r.type, r + "\n" + bus.describe());
            assertEquals(String.valueOf(pid), reply(raw, "GetConnectionUnixProcessID", "s", "org.freedesktop.DBus"));
            assertEquals(guid, reply(raw, "GetId", ""));
            assertEquals(3, carried(bus, "connections before Hello"), bus.describe());

            midLine.writeRaw(java.util.Arrays.copyOfRange(auth, 10, auth.length));
            String ok = midLine.readLine(Buses.T);
            assertEquals(agreed, ok, "the same OK and server guid as before the exec");
            midLine.writeRaw("BEGIN\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            midAuth.writeRaw("BEGIN\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            List<String> names = new ArrayList<>();
            for (RawClient c : List.of(midLine, midAuth, noHello)) {
                String name = c.hello(Buses.T);
                assertTrue(number(name) > number(raw.uniqueName()), "a fresh unique name: " + name);
                names.add(name);
                Message pong = c.call(Message.call(RawClient.BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Peer", "Ping"),
                        Buses.T);
                assertEquals(Message.METHOD_RETURN, pong.type, name + ": " + pong);
                assertEquals(name, reply(raw, "GetNameOwner", "s", name), "known to the bus");
            }
            assertEquals(3, new java.util.HashSet<>(names).size(), String.valueOf(names));
        }
    }

    @Test
    void aCallWhoseFdsComeInTwoBatchesAroundTheHandOverArrivesWithBoth(@TempDir Path dir) throws Exception {
        for (String n : List.of("handover/pending_fds.py", "rawconn.py", "rawwire.py")) {
            Path p = dir.resolve(Path.of(n).getFileName());
            try (InputStream in = HandOverExecTest.class.getResourceAsStream(n)) {
                assertNotNull(in, n);
                Files.copy(in, p);
            }
        }
        try (WaitedBus bus = start(dir, "default");
             RawClient ctl = RawClient.connectHello(bus.address(), Buses.T);
             Background py = Background.start(List.of("/usr/bin/python3", dir.resolve("pending_fds.py").toString(),
                     bus.address()), null)) {
            assertNotNull(py.stdout().awaitLine(l -> l.startsWith("half "), Buses.T), py.describe());
            Message ok = reexec(ctl);
            assertNotNull(ok, bus.describe());
            assertEquals(Message.METHOD_RETURN, ok.type, ok + "\n" + bus.describe());
            assertEquals(10, carried(bus, "bytes of input"), "the first batch's bytes crossed\n" + bus.describe());
            assertEquals(1, carried(bus, "unclaimed or unsent fds"), "and its fd, unclaimed\n" + bus.describe());
            py.process().getOutputStream().write("go\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            py.process().getOutputStream().flush();
            String got = py.stdout().awaitLine(l -> l.startsWith("got "), Buses.T);
            assertEquals("got serial=2 fds=2 same=[True, True] through=through-0,through-1", got, // serial 1 was its Hello
                    py.describe() + "\n" + bus.describe());
            String done = py.stdout().awaitLine(l -> l.startsWith("done "), Buses.T);
            assertEquals("done extra=0", done, "the call once, nothing else\n" + py.describe());
        }
    }
}
