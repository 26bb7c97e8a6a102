package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Our extension {@code --kdbus-capture=FILE}: every message, in the pcapng format busctl
 * capture writes, flushed and closed on SIGTERM, readable by tshark; and with the capture on,
 * messages of every size still reach every receiver and the file (issue 13, item 10: a message
 * of 64 KiB or more was freed by the capture's copy before its receivers had written it).
 */
class CaptureTest {
    /** TransportSettings.ZERO_COPY_SIZE: frames this long and longer are direct (zero-copy) payloads. */
    static final int ZERO_COPY = 64 * 1024;
    static final String BIG = "com.example.Big";
    static final String BIG_IFACE = "com.example.Big";

    /** Frame lengths on the wire: small, one below the zero-copy threshold, at it, 1 MiB. */
    static final int[] FRAME_SIZES = {1000, ZERO_COPY - 1, ZERO_COPY, 1 << 20};
    /** Body sizes of the fd-carrying calls (GLib client, its own header). */
    static final int[] FD_SIZES = {1000, ZERO_COPY, 1 << 20};

    @Test
    void captureFileIsReadableByTsharkAfterSigterm(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("bus.pcapng");
        MonitorTest.Traffic t;
        try (Background bus = Background.start(List.of(DropInTest.BIN + "/kdbus-bridge", "--session", "--nofork",
                "--print-address", "--address=unix:path=" + dir.resolve("bus"), "--kdbus-capture=" + file), null)) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            t = MonitorTest.traffic(address);
            // SIGTERM through kill(1): Process.destroy() would also close our end of its stderr.
            Cmd.Result kill = Cmd.run(List.of("kill", "-TERM", String.valueOf(bus.process().pid())), Buses.T);
            assertTrue(kill.ok(), kill.describe());
            assertTrue(bus.process().waitFor(Buses.T.toSeconds(), TimeUnit.SECONDS), bus.describe());
            assertNotNull(bus.stderr().awaitLine(l -> l.contains("Capture to " + file + " closed") && l.contains(" 0 dropped"),
                    Buses.T), bus.describe());
        }

        byte[] bytes = Files.readAllBytes(file);
        PcapStream.Header h = PcapStream.header(bytes);
        assertNotNull(h, "pcapng header");
        assertEquals("pcapng", h.format());
        assertEquals(PcapStream.DLT_DBUS, h.linkType());
        List<Message> msgs = PcapStream.messages(bytes);
        String text = PcapStream.describe(msgs);
        assertTrue(PcapStream.hasMember(msgs, Message.METHOD_CALL, "Hello"), text);
        assertTrue(msgs.stream().anyMatch(m -> "Ping".equals(m.member) && t.client().equals(m.sender)), text);
        assertTrue(msgs.stream().anyMatch(m -> m.type == Message.METHOD_RETURN && m.replySerial == t.callSerial()
                && t.service().equals(m.sender)), text);
        assertTrue(PcapStream.hasError(msgs, "org.freedesktop.DBus.Error.ServiceUnknown"), text);
        assertTrue(PcapStream.hasMember(msgs, Message.SIGNAL, "NameOwnerChanged"), text);

        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/tshark")),
                "tshark is not installed (.ci/run installs it): the file was checked by our own reader only");
        Cmd.Result r = Cmd.run(List.of("tshark", "-r", file.toString(), "-T", "fields", "-e", "dbus.message_type",
                "-e", "dbus.member", "-e", "dbus.sender"), Buses.T);
        assertTrue(r.ok(), r.describe());
        List<String> lines = Arrays.asList(r.stdout().split("\n"));
        assertEquals(msgs.size(), lines.size(), "tshark read every record\n" + r.describe());
        assertTrue(lines.contains("1\tPing\t" + t.client()), r.describe());
        assertTrue(lines.contains("4\tTick\t" + t.client()), r.describe());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("4\tNameOwnerChanged\torg.freedesktop.DBus")), r.describe());
    }

    /**
     * dbus-daemon (the reference, no capture) and ours with --kdbus-capture, same script and
     * the same delivery assertions: unicasts and fan-out broadcasts of every size class, gdbus
     * calls answered with 65000- and 65536-byte replies, and GLib calls carrying an fd. On ours
     * the capture file must then hold every one of those messages whole.
     */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void largeMessagesReachEveryReceiverAndTheCaptureWithTheCaptureOn(BusKind kind, @TempDir Path dir) throws Exception {
        Path file = dir.resolve("bus.pcapng");
        boolean capturing = kind == BusKind.KDBUS_BRIDGE;
        try (BusUnderTest bus = capturing
                ? kind.start(Path.of("/usr/share/dbus-1/session.conf"), "--address=unix:path=" + dir.resolve("bus"),
                        "--kdbus-capture=" + file)
                : kind.start();
             RawClient sender = RawClient.connectHello(bus.address(), Buses.T);
             RawClient owner = RawClient.connectHello(bus.address(), Buses.T);
             RawClient fan1 = RawClient.connectHello(bus.address(), Buses.T);
             RawClient fan2 = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(1L, owner.callBus("RequestName", Buses.T, "su", BIG, 4L).arg(0));
            for (RawClient c : List.of(fan1, fan2)) {
                assertEquals(Message.METHOD_RETURN, c.callBus("AddMatch", Buses.T, "s",
                        "type='signal',interface='" + BIG_IFACE + "'").type);
            }
            List<Message> sent = new ArrayList<>();
            for (int size : FRAME_SIZES) {
                Message call = sized(Message.call(BIG, "/big", BIG_IFACE, "Put").flags(Message.FLAG_NO_REPLY_EXPECTED),
                        size);
                call.serial = sender.send(call);
                call.sender = sender.uniqueName();
                sent.add(call);
                assertDelivered(owner, call, size);
                Message signal = sized(signal("Tick"), size);
                signal.serial = sender.send(signal);
                signal.sender = sender.uniqueName();
                sent.add(signal);
                assertDelivered(fan1, signal, size);
                assertDelivered(fan2, signal, size);
            }
            Set<String> answered = new HashSet<>();
            for (int size : new int[] {65000, 65536, 1 << 20}) {
                sent.add(gdbusCallAnsweredWith(bus, owner, size, answered));
            }
            Cmd.Result fds = Cmd.run(bigFdsArgv(dir, bus.address()), Buses.T);
            assertTrue(fds.ok(), fds.describe());
            List<String> expected = new ArrayList<>();
            for (int n : FD_SIZES) {
                expected.add("took " + n + " " + sha256(pattern(n)) + " pipe-" + n);
            }
            assertEquals(expected, fds.stdout().lines().toList(), fds.describe());
            sender.sync(Buses.T);
            assertFalse(sender.isEof(), "the sender is still connected");

            if (capturing) {
                List<byte[]> packets = awaitCaptured(file, sent, bus);
                List<Message> msgs = new ArrayList<>();
                for (byte[] p : packets) {
                    assertEquals(Message.totalLength(Arrays.copyOf(p, 16)), p.length, "a whole record, never truncated");
                    msgs.add(Message.decode(p));
                }
                for (int n : FD_SIZES) {
                    assertTrue(msgs.stream().anyMatch(m -> m.type == Message.METHOD_CALL && "Take".equals(m.member)
                            && m.unixFds == 1 && Arrays.equals(m.body, fdCallBody(n))), "fd call of " + n
                            + " bytes captured whole\n" + PcapStream.describe(msgs));
                }
                String err = Files.readString(bus.stderrLog());
                assertFalse(err.contains("Exception"), err);
            }
        }
    }

    /** Waits (deadline) until the capture file holds each of {@code sent}, byte-identical body. */
    private static List<byte[]> awaitCaptured(Path file, List<Message> sent, BusUnderTest bus) throws Exception {
        long deadline = System.nanoTime() + Buses.T.toNanos();
        List<byte[]> packets = List.of();
        List<Message> missing = sent;
        while (System.nanoTime() < deadline) {
            packets = PcapStream.packets(Files.readAllBytes(file));
            List<Message> msgs = packets.stream().map(Message::decode).toList();
            missing = sent.stream().filter(s -> msgs.stream().noneMatch(m -> m.type == s.type
                    && m.serial == s.serial && s.sender.equals(m.sender) && Arrays.equals(m.body, s.body))).toList();
            if (missing.isEmpty() && msgs.stream().filter(m -> "Take".equals(m.member)).count() >= FD_SIZES.length) {
                return packets;
            }
            TimeUnit.MILLISECONDS.sleep(20); // the writer makes records visible as soon as it is idle
        }
        throw new AssertionError("not in the capture: " + missing + "\n" + bus.stderrLog());
    }

    /**
     * A gdbus call to the owner, which answers with a byte array of {@code size} bytes. Returns
     * the reply as sent (serial and sender filled in) so the capture can be checked for it.
     * {@code answered}: the calls (sender/serial) already answered, which stay in the log.
     */
    private static Message gdbusCallAnsweredWith(BusUnderTest bus, RawClient owner, int size, Set<String> answered)
            throws Exception {
        CompletableFuture<Cmd.Result> gdbus = CompletableFuture.supplyAsync(() -> Cmd.run(List.of("gdbus", "call",
                "-a", bus.address(), "-d", BIG, "-o", "/big", "-m", BIG_IFACE + ".Get", String.valueOf(size)), Buses.T));
        // gdbus introspects first to learn the argument types: told there is no such method,
        // it parses the argument as it is (an int32).
        Message call;
        while (true) {
            call = owner.await(m -> m.type == Message.METHOD_CALL && !answered.contains(m.sender + "/" + m.serial)
                    && ("Introspect".equals(m.member)
                            || ("Get".equals(m.member) && ((Number) m.arg(0)).intValue() == size)), Buses.T, true);
            assertNotNull(call, "gdbus's call arrived");
            answered.add(call.sender + "/" + call.serial);
            if ("Get".equals(call.member)) {
                break;
            }
            Message err = new Message();
            err.type = Message.ERROR;
            err.errorName = "org.freedesktop.DBus.Error.UnknownMethod";
            err.destination = call.sender;
            err.replySerial = call.serial;
            owner.send(err);
        }
        Message reply = new Message();
        reply.type = Message.METHOD_RETURN;
        reply.destination = call.sender;
        reply.replySerial = call.serial;
        reply.signature = "ay";
        reply.body = arrayBody(size);
        reply.serial = owner.send(reply);
        reply.sender = owner.uniqueName();
        Cmd.Result r = gdbus.get(Buses.T.toSeconds() + 5, TimeUnit.SECONDS);
        assertTrue(r.ok(), "a reply of " + size + " bytes reaches gdbus\n" + r.describe().substring(0,
                Math.min(2000, r.describe().length())));
        assertTrue(r.stdout().startsWith("("), r.stdout().substring(0, Math.min(200, r.stdout().length())));
        return reply;
    }

    private static void assertDelivered(RawClient to, Message sent, int frameSize) throws IOException {
        Message got = to.await(m -> m.type == sent.type && m.serial == sent.serial && sent.sender.equals(m.sender),
                Buses.T, true);
        assertNotNull(got, "a " + frameSize + "-byte frame reached its receiver");
        assertArrayEquals(sent.body, got.body, "delivered intact");
    }

    private static Message signal(String member) {
        Message m = new Message();
        m.type = Message.SIGNAL;
        m.flags = Message.FLAG_NO_REPLY_EXPECTED;
        m.path = "/big";
        m.iface = BIG_IFACE;
        m.member = member;
        return m;
    }

    /** Gives {@code m} a byte-array body so that its frame is exactly {@code frameSize} bytes. */
    private static Message sized(Message m, int frameSize) {
        m.signature = "ay";
        m.body = arrayBody(0);
        int header = m.encode(1).length - m.body.length;
        m.body = arrayBody(frameSize - header - 4);
        assertEquals(frameSize, m.encode(1).length);
        return m;
    }

    /** The wire form of an {@code ay} of {@code n} pattern bytes (the array is the body's only value). */
    private static byte[] arrayBody(int n) {
        ByteBuffer b = ByteBuffer.allocate(4 + n).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(n).put(pattern(n));
        return b.array();
    }

    /** The same pattern bigfds.py sends. */
    static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + 7);
        }
        return b;
    }

    /** The body of bigfds.py's Take(ay, h): the pattern array, padding to 4, fd index 0. */
    private static byte[] fdCallBody(int n) {
        int padded = (4 + n + 3) & ~3;
        return Arrays.copyOf(arrayBody(n), padded + 4);
    }

    static String sha256(byte[] b) throws Exception {
        StringBuilder sb = new StringBuilder();
        for (byte x : java.security.MessageDigest.getInstance("SHA-256").digest(b)) {
            sb.append(String.format("%02x", x));
        }
        return sb.toString();
    }

    private static List<String> bigFdsArgv(Path dir, String address) throws IOException {
        Path script = dir.resolve("bigfds.py");
        try (InputStream in = CaptureTest.class.getResourceAsStream("bigfds.py")) {
            assertNotNull(in, "script resource");
            Files.copy(in, script);
        }
        List<String> argv = new ArrayList<>(List.of(DbusPythonTest.PYTHON, script.toString(), address));
        for (int n : FD_SIZES) {
            argv.add(String.valueOf(n));
        }
        return argv;
    }
}
