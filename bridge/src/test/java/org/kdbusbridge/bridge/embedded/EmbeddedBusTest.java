package org.kdbusbridge.bridge.embedded;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;

@Timeout(120)
class EmbeddedBusTest {
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;

    @TempDir
    Path tmp;

    private static boolean isSocket(Path p) throws IOException {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
            return false;
        }
        int mode = (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        return (mode & S_IFMT) == S_IFSOCK;
    }

    @Test
    void startServesOnAPrivateSocketAndCloseRemovesEverything() throws Exception {
        EmbeddedBus bus = EmbeddedBus.start();
        Path dir = bus.directory().orElseThrow();
        Path socket = dir.resolve(EmbeddedBus.SOCKET_NAME);
        try {
            assertTrue(bus.isRunning());
            assertTrue(bus.address().startsWith("unix:path=" + socket + ",guid=" + bus.guid()), bus.address());
            assertTrue(isSocket(socket), socket + " is a socket");
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
            Cmd.Result r = Cmd.listNames(bus.address());
            assertTrue(r.ok(), r.describe());
            assertTrue(r.stdout().contains("\"org.freedesktop.DBus\""), r.describe());
        } finally {
            bus.close();
        }
        assertFalse(bus.isRunning());
        assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "socket file removed");
        assertFalse(Files.exists(dir, LinkOption.NOFOLLOW_LINKS), "temporary directory removed");
        IllegalStateException e = assertThrows(IllegalStateException.class, bus::address);
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        bus.close(); // idempotent
        assertFalse(bus.isRunning());
        Cmd.Result after = Cmd.listNames("unix:path=" + socket);
        assertFalse(after.ok(), "nobody listens after close\n" + after.describe());
    }

    @Test
    void twoBusesSideBySideAreIndependent() throws Exception {
        try (EmbeddedBus a = EmbeddedBus.start(); EmbeddedBus b = EmbeddedBus.start()) {
            assertNotEquals(a.address(), b.address());
            assertNotEquals(a.directory(), b.directory());
            assertNotEquals(a.guid(), b.guid());
            try (HelloClient ca = HelloClient.connect(a.address()); HelloClient cb = HelloClient.connect(b.address())) {
                // Each bus numbers its own connections from :1.0.
                assertEquals(":1.0", ca.uniqueName);
                assertEquals(":1.0", cb.uniqueName);
                assertEquals(a.guid(), ca.serverGuid);
                assertEquals(b.guid(), cb.serverGuid);
            }
            String aAddress = a.address();
            a.close();
            Cmd.Result down = Cmd.listNames(aAddress);
            assertFalse(down.ok(), down.describe());
            Cmd.Result up = Cmd.listNames(b.address());
            assertTrue(up.ok(), "closing one bus leaves the other running\n" + up.describe());
        }
    }

    @Test
    void startWithConfigUsesItsListenAddressAndCreatesNoDirectory() throws Exception {
        Path socket = tmp.resolve("configured");
        EmbeddedBus bus = EmbeddedBus.start(BusConfig.forAddress("unix:path=" + socket));
        try {
            assertTrue(bus.directory().isEmpty());
            assertTrue(bus.address().startsWith("unix:path=" + socket + ",guid="), bus.address());
            assertTrue(isSocket(socket));
            try (HelloClient c = HelloClient.connect(bus.address())) {
                assertEquals(":1.0", c.uniqueName);
            }
        } finally {
            bus.close();
        }
        assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS));
        assertTrue(Files.isDirectory(tmp), "a directory the bus did not create is left alone");
    }

    @Test
    void builderListensWhereItIsTold() throws Exception {
        try (EmbeddedBus bus = EmbeddedBus.builder().listen("unix:dir=" + tmp).start()) {
            assertTrue(bus.directory().isEmpty());
            assertTrue(bus.address().startsWith("unix:path=" + tmp + "/dbus-"), bus.address());
            Cmd.Result r = Cmd.listNames(bus.address());
            assertTrue(r.ok(), r.describe());
        }
        try (EmbeddedBus bus = EmbeddedBus.builder().temporaryDirectoryParent(tmp).start()) {
            Path dir = bus.directory().orElseThrow();
            assertEquals(tmp, dir.getParent());
            assertTrue(isSocket(dir.resolve("bus")));
        }
        try (var dirs = Files.list(tmp)) {
            assertEquals(0, dirs.count(), "the socket and the temporary directory are gone");
        }
    }

    @Test
    void builderLimitsApplyToTheBus() throws Exception {
        try (EmbeddedBus bus = EmbeddedBus.builder().limit("max_completed_connections", 1).start()) {
            try (HelloClient only = HelloClient.connect(bus.address())) {
                assertEquals(":1.0", only.uniqueName);
                Cmd.Result refused = Cmd.listNames(bus.address());
                assertFalse(refused.ok(), "a second connection is over max_completed_connections\n" + refused.describe());
            }
            // The bus notices the first client leaving on its own loop; wait for that, with a deadline.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            Cmd.Result r;
            do {
                r = Cmd.listNames(bus.address());
            } while (!r.ok() && System.nanoTime() < deadline);
            assertTrue(r.ok(), "the slot is free again once the first client left\n" + r.describe());
        }
    }

    @Test
    void mistakesGiveClearExceptions() throws Exception {
        IllegalArgumentException limit = assertThrows(IllegalArgumentException.class,
                () -> EmbeddedBus.builder().limit("max_everything", 1));
        assertTrue(limit.getMessage().contains("max_everything"), limit.getMessage());
        assertThrows(IllegalArgumentException.class, () -> EmbeddedBus.builder().listen("tcp:host=localhost,port=1"));
        assertThrows(IllegalStateException.class,
                () -> EmbeddedBus.builder().listen("unix:tmpdir=/tmp").temporaryDirectoryParent(tmp));
        IllegalArgumentException empty = assertThrows(IllegalArgumentException.class,
                () -> EmbeddedBus.start(new BusConfig()));
        assertTrue(empty.getMessage().contains("no listen address"), empty.getMessage());

        Path missing = tmp.resolve("no-such-dir").resolve("bus");
        IOException bind = assertThrows(IOException.class,
                () -> EmbeddedBus.builder().listen("unix:path=" + missing).start());
        assertTrue(bind.getMessage().startsWith("Could not start the embedded bus on unix:path=" + missing),
                bind.getMessage());

        Path deep = tmp.resolve("x".repeat(100));
        Files.createDirectories(deep);
        IOException tooLong = assertThrows(IOException.class,
                () -> EmbeddedBus.builder().temporaryDirectoryParent(deep).start());
        assertTrue(tooLong.getMessage().contains("path limit"), tooLong.getMessage());
        try (var left = Files.list(deep)) {
            assertEquals(0, left.count(), "nothing created for a failed start");
        }
    }

    @Test
    void failedStartsLeakNoFileDescriptors() throws Exception {
        Path missing = tmp.resolve("no-such-dir").resolve("bus");
        EmbeddedBus.Builder builder = EmbeddedBus.builder().listen("unix:path=" + missing);
        assertThrows(IOException.class, builder::start); // warm up classes and logging
        long before = openFds();
        int attempts = 50;
        for (int i = 0; i < attempts; i++) {
            assertThrows(IOException.class, builder::start);
        }
        long grown = openFds() - before;
        // Each failed start used to keep an epoll fd and an eventfd: 100 here.
        assertTrue(grown < attempts / 2, "descriptors grew by " + grown + " over " + attempts + " failed starts");
    }

    private static long openFds() throws IOException {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    @Test
    void concurrentStartsAndClosesAreSafe() throws Exception {
        int n = 6;
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            CountDownLatch go = new CountDownLatch(1);
            List<Future<EmbeddedBus>> started = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                started.add(pool.submit(() -> {
                    go.await();
                    return EmbeddedBus.start();
                }));
            }
            go.countDown();
            List<EmbeddedBus> buses = new ArrayList<>();
            for (Future<EmbeddedBus> f : started) {
                buses.add(f.get(60, TimeUnit.SECONDS));
            }
            Set<String> addresses = new HashSet<>();
            for (EmbeddedBus b : buses) {
                addresses.add(b.address());
            }
            assertEquals(n, addresses.size(), "every bus has its own address");

            // Close every bus from several threads at once.
            CountDownLatch closeGo = new CountDownLatch(1);
            List<Future<Void>> closes = new ArrayList<>();
            for (int t = 0; t < n; t++) {
                Callable<Void> closer = () -> {
                    closeGo.await();
                    for (EmbeddedBus b : buses) {
                        b.close();
                    }
                    return null;
                };
                closes.add(pool.submit(closer));
            }
            closeGo.countDown();
            for (Future<Void> f : closes) {
                f.get(60, TimeUnit.SECONDS);
            }
            for (EmbeddedBus b : buses) {
                assertFalse(b.isRunning());
                assertFalse(Files.exists(b.directory().orElseThrow(), LinkOption.NOFOLLOW_LINKS), b.toString());
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
