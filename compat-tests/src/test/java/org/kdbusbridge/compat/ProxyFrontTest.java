package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * bin/kdbus-bridge-proxy, the xdg-dbus-proxy-compatible front (issue 18), as flatpak drives the
 * real proxy: options through --args=FD, the ready byte on --fd=FD (here the process's stdout
 * pipe, so closing our end is "the other side closed"), then exit 0. On our bus the PATH is an
 * endpoint of the bus, reachable by gdbus; on dbus-daemon it refuses (no real proxy) or execs the
 * real one. Filter outcomes are not asserted here (the routing side's tests do that).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ProxyFrontTest {
    static final Path ROOT = Path.of(System.getProperty("kdbus.repo.root", "..")).toAbsolutePath().normalize();
    static final String PROXY = ROOT.resolve("bin/kdbus-bridge-proxy").toString();
    static final String BRIDGE = ROOT.resolve("bin/kdbus-bridge").toString();
    static final Duration T = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    /** The proxy with stdin, stdout as pipes we hold and stderr to a file; no class-data training. */
    private Process startProxy(List<String> args, Map<String, String> env) throws IOException {
        List<String> argv = new ArrayList<>();
        argv.add(PROXY);
        argv.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(argv).redirectError(dir.resolve("proxy.err").toFile());
        Cmd.sanitize(pb.environment());
        pb.environment().put("KDBUS_BRIDGE_CDS", "0");
        pb.environment().putAll(env);
        return pb.start();
    }

    private String proxyErr() throws IOException {
        Path p = dir.resolve("proxy.err");
        return Files.exists(p) ? Files.readString(p) : "";
    }

    /** One byte from {@code in} within the deadline; -1 on EOF, -2 on timeout. */
    private static int readByte(InputStream in) throws Exception {
        CompletableFuture<Integer> f = CompletableFuture.supplyAsync(() -> {
            try {
                return in.read();
            } catch (IOException e) {
                return -1;
            }
        });
        try {
            return f.get(T.toSeconds(), TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            return -2;
        }
    }

    private static Cmd.Result getId(String address) {
        return Cmd.run(List.of("gdbus", "call", "--address", address, "--dest", "org.freedesktop.DBus", "--object-path",
                "/org/freedesktop/DBus", "--method", "org.freedesktop.DBus.GetId"), Buses.T);
    }

    private static String exit(Process p) throws InterruptedException {
        if (!p.waitFor(T.toSeconds(), TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return "timed out";
        }
        return "status " + p.exitValue();
    }

    @Test
    void onOurBusThePathIsAnEndpointUntilTheSyncFdCloses() throws Exception {
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start()) {
            Path socket = dir.resolve("app-bus");
            Process p = startProxy(List.of(bus.address(), socket.toString(), "--args=0", "--fd=1"), Map.of());
            try (OutputStream args = p.getOutputStream()) {
                // as flatpak writes them: NUL-terminated, read until EOF
                args.write("--filter\0--talk=org.example.Portal\0--own=org.example.App.*\0".getBytes(StandardCharsets.UTF_8));
            }
            InputStream sync = p.getInputStream();
            assertEquals('x', readByte(sync), "the ready byte\n" + proxyErr());
            assertTrue(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "the socket exists once ready");

            Cmd.Result direct = getId(bus.address());
            Cmd.Result through = getId("unix:path=" + socket);
            assertTrue(direct.ok() && through.ok(), direct.describe() + through.describe());
            assertEquals(direct.stdout(), through.stdout(), "the same bus answers through the endpoint");

            Cmd.Result list = Cmd.run(List.of(BRIDGE, "endpoint", "list", "--address=" + bus.address()),
                    Map.of("KDBUS_BRIDGE_CDS", "0"), Buses.T);
            assertTrue(list.ok(), list.describe());
            assertTrue(list.stdout().contains("unix:path=" + socket + ",") && list.stdout().contains(
                    "--filter --talk=org.example.Portal --own=org.example.App.*"), list.describe());

            sync.close(); // the other side of --fd goes: the proxy ends
            assertEquals("status 0", exit(p), proxyErr());
            assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "socket removed by the time it exited");
            Cmd.Result after = Cmd.run(List.of(BRIDGE, "endpoint", "list", "--address=" + bus.address()),
                    Map.of("KDBUS_BRIDGE_CDS", "0"), Buses.T);
            assertTrue(after.ok() && after.stdout().isEmpty(), after.describe());
        }
    }

    @Test
    void flatpaksPlaceholderFileIsReplacedAndItsInstanceFileNamesTheApp() throws Exception {
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start()) {
            Path socket = dir.resolve("bus-XXXXXX");
            Files.writeString(socket, ""); // flatpak's g_mkstemp placeholder, made before it starts the proxy
            Path info = dir.resolve("flatpak-info"); // as flatpak writes /.flatpak-info into the sandbox
            Files.writeString(info, "[Application]\nname=org.example.App\nruntime=runtime/x/y/z\n\n"
                    + "[Instance]\ninstance-id=1234567\nbranch=stable\n");
            Process p = startProxy(List.of(bus.address(), socket.toString(), "--filter", "--fd=1"),
                    Map.of("KDBUS_BRIDGE_FLATPAK_INFO", info.toString()));
            InputStream sync = p.getInputStream();
            assertEquals('x', readByte(sync), "the ready byte\n" + proxyErr());
            assertTrue(getId("unix:path=" + socket).ok(), "a socket now, reachable");
            Cmd.Result list = Cmd.run(List.of(BRIDGE, "endpoint", "list", "--address=" + bus.address()),
                    Map.of("KDBUS_BRIDGE_CDS", "0"), Buses.T);
            assertTrue(list.ok() && list.stdout().contains("\torg.example.App\t1234567\t"), list.describe());
            sync.close();
            assertEquals("status 0", exit(p), proxyErr());
        }
    }

    @Test
    void withoutFdItRunsUntilSigterm() throws Exception {
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start()) {
            Path socket = dir.resolve("a11y-bus");
            Process p = startProxy(List.of(bus.address(), socket.toString(), "--filter", "--sloppy-names"), Map.of());
            long deadline = System.nanoTime() + T.toNanos();
            while (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS) && p.isAlive() && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertTrue(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), proxyErr());
            assertTrue(getId("unix:path=" + socket).ok());
            p.destroy(); // SIGTERM
            assertEquals("status 0", exit(p), proxyErr());
            assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS));
        }
    }

    @Test
    void onDbusDaemonWithoutTheRealProxyItRefuses() throws Exception {
        try (BusUnderTest bus = BusKind.DBUS_DAEMON.start()) {
            Path socket = dir.resolve("app-bus");
            Process p = startProxy(List.of(bus.address(), socket.toString(), "--filter", "--fd=1"),
                    Map.of("KDBUS_BRIDGE_REAL_PROXY", dir.resolve("no-such-proxy").toString()));
            assertEquals(-1, readByte(p.getInputStream()), "no ready byte: EOF\n" + proxyErr());
            assertEquals("status 1", exit(p), proxyErr());
            assertTrue(proxyErr().contains("kdbus-bridge-proxy: " + bus.address() + " is not a kdbus-bridge bus"),
                    proxyErr());
            assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS));
        }
    }

    @Test
    void onDbusDaemonItExecsTheRealProxy() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/xdg-dbus-proxy")), "no /usr/bin/xdg-dbus-proxy");
        try (BusUnderTest bus = BusKind.DBUS_DAEMON.start()) {
            Path socket = dir.resolve("app-bus");
            Process p = startProxy(List.of(bus.address(), socket.toString(), "--args=0", "--fd=1"), Map.of());
            try (OutputStream args = p.getOutputStream()) {
                args.write("--filter\0".getBytes(StandardCharsets.UTF_8));
            }
            InputStream sync = p.getInputStream();
            assertEquals('x', readByte(sync), "the real proxy's ready byte\n" + proxyErr());
            long pid = p.pid();
            String exe = Files.readSymbolicLink(Path.of("/proc/" + pid + "/exe")).toString();
            assertEquals("/usr/bin/xdg-dbus-proxy", exe, "the same process is now the real proxy");
            Cmd.Result direct = getId(bus.address());
            Cmd.Result through = getId("unix:path=" + socket);
            assertTrue(direct.ok() && through.ok(), direct.describe() + through.describe());
            assertEquals(direct.stdout(), through.stdout());
            sync.close();
            assertEquals("status 0", exit(p), proxyErr());
            assertTrue(proxyErr().contains("is not a kdbus-bridge bus"), proxyErr());
        }
    }

    /**
     * A SIGTERM while the front still probes the buses (here a bus that accepts and never
     * answers) ends it by that signal, at once: the front could still become the real proxy,
     * which the signal would have killed, so it is never exec'ed past it (before, the signal was
     * recorded and the real proxy, exec'ed on the fallback, ran until killed again).
     */
    @Test
    void aSigtermWhileProbingKillsTheFrontAndTheRealProxyNeverRuns() throws Exception {
        Path fake = dir.resolve("silent-bus");
        Path marker = dir.resolve("real-proxy-ran");
        Path real = dir.resolve("real-proxy");
        Files.writeString(real, "#!/bin/sh\necho ran > '" + marker + "'\nexec tail -f /dev/null\n");
        assertTrue(real.toFile().setExecutable(true));
        try (java.nio.channels.ServerSocketChannel server = java.nio.channels.ServerSocketChannel.open(
                java.net.StandardProtocolFamily.UNIX)) {
            server.bind(java.net.UnixDomainSocketAddress.of(fake));
            Process p = startProxy(List.of("unix:path=" + fake, dir.resolve("app-bus").toString(), "--filter"),
                    Map.of("KDBUS_BRIDGE_REAL_PROXY", real.toString()));
            CompletableFuture<java.nio.channels.SocketChannel> accepted = CompletableFuture.supplyAsync(() -> {
                try {
                    return server.accept();
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            try (java.nio.channels.SocketChannel probe = accepted.get(T.toSeconds(), TimeUnit.SECONDS)) {
                // Its first SASL byte: the front is in the probe, its handlers installed before it.
                java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1);
                assertEquals(1, probe.read(b), proxyErr());
                p.destroy(); // SIGTERM, the probe still unanswered
                assertEquals("status 143", exit(p), "killed by SIGTERM (128 + 15)\n" + proxyErr());
            } finally {
                p.destroyForcibly();
            }
        }
        assertFalse(Files.exists(marker), "the real proxy never ran");
        assertFalse(Files.exists(dir.resolve("app-bus"), LinkOption.NOFOLLOW_LINKS));
    }
}
