package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.freedesktop.dbus.annotations.DBusInterfaceName;
import org.freedesktop.dbus.connections.impl.DBusConnection;
import org.freedesktop.dbus.connections.impl.DBusConnectionBuilder;
import org.freedesktop.dbus.exceptions.DBusException;
import org.freedesktop.dbus.interfaces.DBusInterface;
import org.freedesktop.dbus.messages.DBusSignal;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;

/**
 * dbus-java (5.x) beside an AttachMetadata receiver (issue 17). dbus-java keeps header fields
 * in an array indexed by code (10 slots), so a message with field 107 kills its reader thread
 * (ArrayIndexOutOfBoundsException): a dbus-java client must not opt in (docs/extensions.md).
 * Not opted in it is unaffected: it calls an opted-in GDBus service and gets its answer, its
 * signals reach that service with its send-time creds attached (this JVM's pid), and it
 * receives the same signals itself without the field.
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
     * Pinned (docs/extensions.md, docs/compatibility.md): dbus-java 5.2.2 cannot opt in in either
     * form. It stores header fields in an array of 10 slots indexed by the field code, so any code
     * past 9 throws ArrayIndexOutOfBoundsException in its reader, whatever the value's type:
     * the text form (a string) fails exactly like the dictionary, and the reply to its own
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
}
