package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.freedesktop.dbus.annotations.DBusInterfaceName;
import org.freedesktop.dbus.connections.impl.DBusConnection;
import org.freedesktop.dbus.connections.impl.DBusConnectionBuilder;
import org.freedesktop.dbus.exceptions.DBusException;
import org.freedesktop.dbus.errors.NotSupported;
import org.freedesktop.dbus.interfaces.DBusInterface;
import org.freedesktop.dbus.messages.DBusSignal;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.client.dbusjava.DbusJavaMetadata;
import org.kdbusbridge.bridge.metadata.MessageMetadata;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;

/**
 * dbus-java (5.x) and AttachMetadata (issue 17). dbus-java keeps header fields in an array
 * indexed by code (10 slots), so on its own a message with field 107 kills its reader thread
 * (ArrayIndexOutOfBoundsException): pinned below, so docs/extensions.md stays true. Through the
 * bridge artifact's helper (org.kdbusbridge.bridge.client.dbusjava.DbusJavaMetadata, which reads
 * the connection's frames and takes the field out) a dbus-java receiver with every item but
 * pidfd receives calls and signals, answers, and reads each message's metadata. Not opted in
 * it is unaffected: it calls an opted-in GDBus service and gets its answer, its signals reach
 * that service with its send-time creds attached (this JVM's pid), and it receives the same
 * signals itself without the field.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DbusJavaMetadataTest {
    @TempDir
    Path tmp;

    @DBusInterfaceName("org.kdbusbridge.MetaCompat")
    public interface MetaCompat extends DBusInterface {
        String Echo(String s);

        class Tick extends DBusSignal {
            private final String payload;

            public Tick(String path, String payload) throws DBusException {
                super(path, payload);
                this.payload = payload;
            }

            public String getPayload() {
                return payload;
            }
        }
    }

    @Test
    void plainDbusJavaWorksWithAnOptedInPeer() throws Exception {
        Path script = tmp.resolve("meta_receiver_gi.py");
        try (InputStream in = DbusJavaMetadataTest.class.getResourceAsStream("meta_receiver_gi.py")) {
            assertNotNull(in);
            Files.copy(in, script);
        }
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start();
             Background gi = Background.start(List.of(DbusPythonTest.PYTHON, script.toString(), bus.address(),
                     AttachMetadataCompatTest.ALL), Map.of());
             DBusConnection client = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build();
             DBusConnection listener = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build()) {
            String ready = gi.stdout().awaitLine(l -> l.startsWith("ready "), Buses.T);
            assertNotNull(ready, gi.describe());
            String receiver = ready.substring(6).trim();
            MetaCompat remote = client.getRemoteObject(receiver, "/org/kdbusbridge/MetaCompat", MetaCompat.class);
            assertEquals("echo:fromJava", remote.Echo("fromJava"));
            String call = gi.stdout().awaitLine(l -> l.startsWith("CALL "), Buses.T);
            Map<String, String> c = AttachMetadataCompatTest.words(call);
            assertEquals("True", c.get("field"), call);
            assertEquals(Long.toString(ProcessHandle.current().pid()), c.get("pid"), "dbus-java in this JVM sent it: " + call);

            CompletableFuture<String> got = new CompletableFuture<>();
            try (AutoCloseable reg = listener.addSigHandler(MetaCompat.Tick.class, s -> got.complete(s.getPayload()))) {
                client.sendMessage(new MetaCompat.Tick("/org/kdbusbridge/MetaCompat", "tick-java"));
                assertEquals("tick-java", got.get(20, TimeUnit.SECONDS), "a plain dbus-java receiver gets it as usual");
                String sig = gi.stdout().awaitLine(l -> l.startsWith("SIG ") && l.contains("body=tick-java"), Buses.T);
                assertNotNull(sig, gi.describe());
                Map<String, String> s = AttachMetadataCompatTest.words(sig);
                assertEquals("True", s.get("field"), sig);
                assertEquals(Long.toString(ProcessHandle.current().pid()), s.get("pid"), sig);
                assertEquals("True", s.get("creds-at-send"), sig);
            }
        }
    }
    @DBusInterfaceName("org.kdbusbridge.Extensions1")
    public interface Extensions1 extends DBusInterface {
        void AttachMetadata(List<String> items);
    }

    /**
     * Pinned (docs/extensions.md, docs/compatibility.md): without the helper, dbus-java 5.2.2
     * cannot opt in in either form, although the helper's socket provider is on this classpath
     * (it answers null for a connection not built through DbusJavaMetadata.connect). dbus-java
     * stores header fields in an array of 10 slots indexed by the field code, so any code past 9
     * throws ArrayIndexOutOfBoundsException in its reader, whatever the value's type: the text
     * form (a string) fails exactly like the dictionary, and the reply to its own
     * AttachMetadata, which already carries field 107, never reaches it. Codes 0 to 9 are the
     * specification's own (0 is invalid), so no vendor code would do either.
     */
    @Test
    void dbusJavaCannotOptInInEitherForm() throws Exception {
        for (List<String> items : List.of(List.of("format=text", "seq"), List.of("seq"))) {
            try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start()) {
                DBusConnection c = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build();
                Extensions1 ext = c.getRemoteObject("org.freedesktop.DBus", "/org/freedesktop/DBus", Extensions1.class);
                CompletableFuture<Void> call = CompletableFuture.runAsync(() -> ext.AttachMetadata(items));
                Throwable failed = null;
                try {
                    call.get(15, TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                    failed = e;
                }
                assertNotNull(failed, "dbus-java got its fielded reply after all (" + items + "): update the docs");
                CompletableFuture.runAsync(() -> {
                    try {
                        c.close();
                    } catch (java.io.IOException e) {
                        // its reader is dead already
                    }
                });
            }
        }
    }

    /** What the receiver's handlers saw: the message's text and its metadata. */
    record Seen(String what, String sender, Optional<MessageMetadata> metadata) { }

    /** The receiver's service: answers Echo and keeps the metadata of each call it serves. */
    static final class EchoWithMetadata implements MetaCompat {
        final BlockingQueue<Seen> calls = new LinkedBlockingQueue<>();

        @Override
        public String Echo(String s) {
            calls.add(new Seen(s, org.freedesktop.dbus.connections.AbstractConnection.getCallInfo().getSource(),
                    DbusJavaMetadata.ofCurrentCall()));
            return "echo:" + s;
        }

        @Override
        public String getObjectPath() {
            return "/org/kdbusbridge/MetaCompat";
        }
    }

    /**
     * Issue 17's requirement for dbus-java: a receiver built through the helper opts in to every
     * item (pidfd needs fd passing, which dbus-java's native transport does not negotiate: the
     * bus refuses it with NotSupported), answers method calls (from dbus-java in this JVM and
     * from dbus-send, another process) and receives signals normally, and each message's field
     * holds its sender's pid, uid, gid, comm, exe, cmdline, groups and cgroup as /proc gives
     * them, its names, a seq increasing in send order and timestamps taken while the test ran;
     * a plain dbus-java connection beside it in the same JVM talks to it as usual.
     */
    @Test
    void dbusJavaReceivesEveryItemThroughTheHelper() throws Exception {
        // A -Dtest=... run selects it in the junixsocket execution too, where the helper refuses
        // (DbusJavaFdTest.theMetadataHelperRefusesAJunixsocketConnection): skip there.
        org.junit.jupiter.api.Assumptions.assumeTrue(
                getClass().getClassLoader().getResource("org/freedesktop/dbus/transport/jre/NativeTransportProvider.class") != null,
                "the native transport's execution");
        List<String> items = List.of(AttachMetadataCompatTest.ALL.split(","));
        long mono0 = System.nanoTime();
        long real0 = System.currentTimeMillis() * 1_000_000L;
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start();
             DBusConnection rx = DbusJavaMetadata.connect(
                     DBusConnectionBuilder.forAddress(bus.address()).withShared(false));
             DBusConnection tx = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build()) {
            NotSupported refused = assertThrows(NotSupported.class, () -> DbusJavaMetadata.attach(rx, List.of("pidfd")));
            assertTrue(String.valueOf(refused.getMessage()).contains("NEGOTIATE_UNIX_FD"), refused.getMessage());
            DbusJavaMetadata.attach(rx, items);
            DbusJavaMetadata.Extensions1 ext = rx.getRemoteObject("org.freedesktop.DBus", "/org/freedesktop/DBus",
                    DbusJavaMetadata.Extensions1.class);
            assertEquals(items, ext.GetAttachedMetadata(), "a fielded reply read by dbus-java");

            EchoWithMetadata service = new EchoWithMetadata();
            rx.exportObject(service);
            BlockingQueue<Seen> signals = new LinkedBlockingQueue<>();
            try (AutoCloseable reg = rx.addSigHandler(MetaCompat.Tick.class,
                    s -> signals.add(new Seen(s.getPayload(), s.getSource(), DbusJavaMetadata.of(s))))) {
                // Also the round trip after which tx's socket passes send-time creds (the bus turns
                // SO_PASSCRED on at its next read; docs/extensions.md "Send-time credentials").
                tx.requestBusName("org.kdbusbridge.MetaJavaSender");
                MetaCompat remote = tx.getRemoteObject(rx.getUniqueName(), "/org/kdbusbridge/MetaCompat", MetaCompat.class);
                assertEquals("echo:fromJava", remote.Echo("fromJava"), "the opted-in dbus-java service answers");
                for (int i = 0; i < 5; i++) {
                    tx.sendMessage(new MetaCompat.Tick("/org/kdbusbridge/MetaCompat", "tick-" + i));
                }
                List<Seen> seen = new ArrayList<>();
                Seen echo = service.calls.poll(20, TimeUnit.SECONDS);
                assertNotNull(echo, "the Echo call was served");
                seen.add(echo);
                for (int i = 0; i < 5; i++) {
                    Seen s = signals.poll(20, TimeUnit.SECONDS);
                    assertNotNull(s, "signal " + i + " reached the opted-in dbus-java receiver");
                    seen.add(s);
                }
                // Signal handlers may run on several threads: order by seq, then check the send order.
                List<Seen> ticks = new ArrayList<>(seen.subList(1, 6));
                ticks.sort((a, b) -> Long.compareUnsigned(a.metadata().orElseThrow().seq().getAsLong(),
                        b.metadata().orElseThrow().seq().getAsLong()));
                for (int i = 0; i < 5; i++) {
                    assertEquals("tick-" + i, ticks.get(i).what(), "seq follows the send order");
                }
                long mono1 = System.nanoTime();
                long real1 = System.currentTimeMillis() * 1_000_000L;
                long lastSeq = -1;
                for (Seen s : List.of(seen.get(0), ticks.get(0), ticks.get(1), ticks.get(2), ticks.get(3), ticks.get(4))) {
                    assertEquals(tx.getUniqueName(), s.sender(), s.what());
                    MessageMetadata m = s.metadata().orElseThrow(() -> new AssertionError("no metadata on " + s.what()));
                    assertSelf(m, s.what());
                    assertEquals(List.of("org.kdbusbridge.MetaJavaSender"), m.names().orElseThrow(), s.what());
                    long seq = m.seq().getAsLong();
                    assertTrue(seq > lastSeq, s.what() + ": seq " + seq + " after " + lastSeq);
                    lastSeq = seq;
                    MessageMetadata.Timestamp t = m.timestamp().orElseThrow();
                    assertTrue(t.monotonicNs() >= mono0 && t.monotonicNs() <= mono1, s.what() + " monotonic " + t);
                    // currentTimeMillis is coarser than CLOCK_REALTIME: allow its millisecond.
                    assertTrue(t.realtimeNs() >= real0 - 1_000_000L && t.realtimeNs() <= real1 + 1_000_000L,
                            s.what() + " realtime " + t);
                }

                // Another process: dbus-send calls the dbus-java service, which answers it.
                Process ds = new ProcessBuilder("dbus-send", "--bus=" + bus.address(), "--print-reply",
                        "--dest=" + rx.getUniqueName(), "/org/kdbusbridge/MetaCompat",
                        "org.kdbusbridge.MetaCompat.Echo", "string:fromDbusSend").redirectErrorStream(true).start();
                String out = new String(ds.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertTrue(ds.waitFor(20, TimeUnit.SECONDS));
                assertEquals(0, ds.exitValue(), out);
                assertTrue(out.contains("\"echo:fromDbusSend\""), out);
                Seen c = service.calls.poll(20, TimeUnit.SECONDS);
                assertNotNull(c);
                assertEquals("fromDbusSend", c.what());
                MessageMetadata m = c.metadata().orElseThrow();
                assertEquals(ds.pid(), m.pid().getAsLong(), "dbus-send's own pid");
                assertEquals(statusId("Uid:"), m.uid().getAsLong());
                assertEquals(Optional.of(true), m.credsAtSend());
                assertEquals(Optional.of("dbus-send"), m.comm());
                assertEquals(List.of(), m.names().orElse(List.of()), "dbus-send owns no name");
                assertTrue(m.seq().getAsLong() > lastSeq);
            }
        }
    }

    /**
     * The text form through the helper: a dbus-java receiver that asked for
     * {@code format=text,creds,seq} reads its fielded replies and a signal, whose metadata
     * (parsed from the string) holds the sender's pid and a seq.
     */
    @Test
    void dbusJavaReadsTheTextFormThroughTheHelper() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(
                getClass().getClassLoader().getResource("org/freedesktop/dbus/transport/jre/NativeTransportProvider.class") != null,
                "the native transport's execution");
        List<String> items = List.of("creds", "seq", "format=text");
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start();
             DBusConnection rx = DbusJavaMetadata.connect(DBusConnectionBuilder.forAddress(bus.address()));
             DBusConnection tx = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build()) {
            DbusJavaMetadata.attach(rx, items);
            assertEquals(items, rx.getRemoteObject("org.freedesktop.DBus", "/org/freedesktop/DBus",
                    DbusJavaMetadata.Extensions1.class).GetAttachedMetadata());
            BlockingQueue<Seen> signals = new LinkedBlockingQueue<>();
            try (AutoCloseable reg = rx.addSigHandler(MetaCompat.Tick.class,
                    s -> signals.add(new Seen(s.getPayload(), s.getSource(), DbusJavaMetadata.of(s))))) {
                // One round trip first: the bus turns SO_PASSCRED on at a socket's next read, so
                // the first bytes tx wrote after AttachMetadata carry connect-time creds
                // (creds-at-send false, docs/extensions.md "Send-time credentials").
                tx.requestBusName("org.kdbusbridge.MetaJavaTextSender");
                tx.sendMessage(new MetaCompat.Tick("/org/kdbusbridge/MetaCompat", "tick-text"));
                Seen s = signals.poll(20, TimeUnit.SECONDS);
                assertNotNull(s, "the signal reached the text-form receiver");
                assertEquals("tick-text", s.what());
                MessageMetadata m = s.metadata().orElseThrow();
                assertEquals(ProcessHandle.current().pid(), m.pid().getAsLong());
                assertEquals(Optional.of(true), m.credsAtSend());
                assertTrue(m.seq().isPresent(), m.toString());
            }
        }
    }

    /** {@code m} describes this JVM's process, as its /proc files say. */
    private static void assertSelf(MessageMetadata m, String what) throws Exception {
        assertEquals(ProcessHandle.current().pid(), m.pid().getAsLong(), what + ": pid");
        assertEquals(statusId("Uid:"), m.uid().getAsLong(), what + ": uid");
        assertEquals(statusId("Gid:"), m.gid().getAsLong(), what + ": gid");
        assertEquals(Optional.of(true), m.credsAtSend(), what);
        assertEquals(Optional.of(Files.readString(Path.of("/proc/self/comm")).strip()), m.comm(), what + ": comm");
        assertEquals(Optional.of(Files.readSymbolicLink(Path.of("/proc/self/exe")).toString()), m.exe(), what + ": exe");
        byte[] cmdline = Files.readAllBytes(Path.of("/proc/self/cmdline"));
        assertArrayEquals(Arrays.copyOf(cmdline, Math.min(cmdline.length, 4096)), m.cmdline().orElseThrow(), what + ": cmdline");
        String groups = status("Groups:");
        long[] want = groups.isEmpty() ? new long[0]
                : Arrays.stream(groups.split("\\s+")).mapToLong(Long::parseLong).toArray();
        assertArrayEquals(want, m.groups().orElseThrow(), what + ": groups");
        String cgroup = Files.readAllLines(Path.of("/proc/self/cgroup")).stream().filter(l -> l.startsWith("0::"))
                .map(l -> l.substring(3)).findFirst().orElse(null);
        if (cgroup != null) {
            assertEquals(Optional.of(cgroup), m.cgroup(), what + ": cgroup");
        }
    }

    private static String status(String key) throws Exception {
        return Files.readAllLines(Path.of("/proc/self/status")).stream().filter(l -> l.startsWith(key))
                .map(l -> l.substring(key.length()).strip()).findFirst().orElseThrow();
    }

    /** The real id (first of the four) of a /proc/self/status Uid: or Gid: line. */
    private static long statusId(String key) throws Exception {
        return Long.parseLong(status(key).split("\\s+")[0]);
    }
}
