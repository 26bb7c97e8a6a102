// Invariants: runs in its own surefire execution whose classpath has the junixsocket transport
// and not the native one (asserted below, so a pom change that breaks this fails loudly); the
// receiver reads the passed socket through the fd it got; every fd the test opens is closed.
package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

import org.freedesktop.dbus.FileDescriptor;
import org.freedesktop.dbus.annotations.DBusInterfaceName;
import org.freedesktop.dbus.connections.impl.DBusConnection;
import org.freedesktop.dbus.connections.impl.DBusConnectionBuilder;
import org.freedesktop.dbus.errors.NotSupported;
import org.freedesktop.dbus.interfaces.DBusInterface;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.RawClient;

/** dbus-java over the junixsocket transport passes fds through the bus, both ways. */
class DbusJavaFdTest {
    private static final LibC LIBC = LibC.INSTANCE;

    @DBusInterfaceName("com.example.JavaFds")
    public interface Fds extends DBusInterface {
        String read(FileDescriptor fd);

        FileDescriptor socket();
    }

    static final class FdsImpl implements Fds {
        @Override
        public String read(FileDescriptor fd) {
            int n = fd.getIntFileDescriptor();
            try {
                return readAll(n);
            } finally {
                LIBC.close(n);
            }
        }

        @Override
        public FileDescriptor socket() {
            return new FileDescriptor(filled("from-service"));
        }

        @Override
        public String getObjectPath() {
            return "/com/example/JavaFds";
        }
    }

    /** One end of a socketpair whose other end wrote {@code text} and closed. */
    static int filled(String text) {
        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        if (LIBC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, LibC.Native.address(sv)) != 0) {
            throw new IllegalStateException("socketpair failed");
        }
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        ByteBuffer d = ByteBuffer.allocateDirect(b.length);
        d.put(b);
        LIBC.write(sv.getInt(0), LibC.Native.address(d), b.length);
        LIBC.close(sv.getInt(0));
        return sv.getInt(4);
    }

    static String readAll(int fd) {
        ByteBuffer buf = ByteBuffer.allocateDirect(256);
        StringBuilder out = new StringBuilder();
        while (true) {
            long n = LIBC.read(fd, LibC.Native.address(buf), 256);
            if (n <= 0) {
                return out.toString();
            }
            byte[] b = new byte[(int) n];
            buf.get(0, b);
            out.append(new String(b, StandardCharsets.UTF_8));
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void junixsocketTransportPassesFds(BusKind kind) throws Exception {
        // A -Dtest=... run also selects it in the default execution (native transport): skip there.
        Assumptions.assumeFalse(classPresent("org.freedesktop.dbus.transport.jre.NativeTransportProvider"),
                "runs in the junixsocket-fds surefire execution, where it is the only transport");
        assertTrue(classPresent("org.freedesktop.dbus.transport.junixsocket.JUnixSocketTransportProvider"));
        try (BusUnderTest bus = kind.start();
             DBusConnection server = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build();
             DBusConnection client = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build();
             RawClient noFds = RawClient.connectHello(bus.address(), Buses.T)) {
            server.exportObject("/com/example/JavaFds", new FdsImpl());
            Fds remote = client.getRemoteObject(server.getUniqueName(), "/com/example/JavaFds", Fds.class);

            int mine = filled("hello-fd");
            try {
                assertEquals("hello-fd", remote.read(new FileDescriptor(mine)));
            } finally {
                LIBC.close(mine);
            }
            int got = remote.socket().getIntFileDescriptor();
            try {
                assertEquals("from-service", readAll(got));
            } finally {
                LIBC.close(got);
            }

            Fds old = client.getRemoteObject(noFds.uniqueName(), "/com/example/JavaFds", Fds.class);
            int spare = filled("x");
            try {
                assertThrows(NotSupported.class, () -> old.read(new FileDescriptor(spare)));
            } finally {
                LIBC.close(spare);
            }
        }
    }

    /**
     * The AttachMetadata helper for dbus-java (bridge.client.dbusjava) cannot read fds, so it
     * declines a junixsocket connection whatever the providers' order, and its connect says so
     * instead of handing out a connection that AttachMetadata would stop (docs/extensions.md).
     */
    @org.junit.jupiter.api.Test
    void theMetadataHelperRefusesAJunixsocketConnection() throws Exception {
        Assumptions.assumeFalse(classPresent("org.freedesktop.dbus.transport.jre.NativeTransportProvider"),
                "runs in the junixsocket-fds surefire execution, where it is the only transport");
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start()) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> org.kdbusbridge.bridge.client.dbusjava.DbusJavaMetadata.connect(
                            DBusConnectionBuilder.forAddress(bus.address()).withShared(false)));
            assertTrue(e.getMessage().contains("junixsocket"), e.getMessage());
            // Nothing of the refusal sticks: the next connection is dbus-java's own, with fds.
            try (DBusConnection plain = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build();
                 DBusConnection server = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build()) {
                server.exportObject("/com/example/JavaFds", new FdsImpl());
                int mine = filled("after-refusal");
                try {
                    assertEquals("after-refusal", plain.getRemoteObject(server.getUniqueName(), "/com/example/JavaFds",
                            Fds.class).read(new FileDescriptor(mine)));
                } finally {
                    LIBC.close(mine);
                }
            }
        }
    }

    private static boolean classPresent(String name) {
        try {
            Class.forName(name, false, DbusJavaFdTest.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }
}
