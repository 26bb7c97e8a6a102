package org.kdbusbridge.compat.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * Our proxy front's fallback (issue 18): when our bus refuses it AddEndpoint (Endpoints1 is for the
 * bus owner and root only, so a user's front against a bus of another uid, such as the system
 * bus), the front execs the real xdg-dbus-proxy with the same command line, and the sandbox is
 * served by it. Run with the front as uid 65534 against our bus running as root.
 */
class ProxyFallbackTest {
    static final Duration T = Duration.ofSeconds(30);
    static final String NOBODY = "65534";

    @Test
    void aFrontTheBusRefusesExecsTheRealProxyWhichServesTheSandbox() throws Exception {
        Assumptions.assumeTrue(BusKind.selected().contains(BusKind.KDBUS_BRIDGE), "our bus is not selected");
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "needs root to run the front as another uid");
        Assumptions.assumeTrue(Files.isExecutable(SandboxFront.xdgDbusProxy()), "xdg-dbus-proxy is not installed (.ci/run installs it)");
        try (SandboxBus bus = SandboxBus.start(BusKind.KDBUS_BRIDGE, "<allow user=\"*\"/>")) {
            // uid 65534 must reach the bus socket and bind its own socket: a world-writable room.
            Files.setPosixFilePermissions(bus.dir, PosixFilePermissions.fromString("rwxr-xr-x"));
            Path room = Files.createDirectory(bus.dir.resolve("room"));
            Files.setPosixFilePermissions(room, PosixFilePermissions.fromString("rwxrwxrwx"));
            Path service = FakeDesktop.script(bus.dir, "big_service.py");
            Background svc = bus.own(Background.start(List.of(FakeDesktop.PYTHON, service.toString(), bus.address()), null));
            assertNotNull(svc.stdout().awaitLine(l -> l.startsWith("ready "), T), svc.describe());

            Path socket = room.resolve("app.sock");
            Path log = room.resolve("front.log");
            List<String> argv = new ArrayList<>(List.of("/bin/sh", "-c", "exec 3>&1 1>&2; exec \"$@\"", "sh",
                    "setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups",
                    SandboxFront.ourFront().toString(), "--fd=3", bus.address(), socket.toString(),
                    "--filter", "--talk=org.example.Big"));
            ProcessBuilder pb = new ProcessBuilder(argv)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .redirectError(log.toFile());
            Cmd.sanitize(pb.environment());
            pb.environment().put("HOME", room.toString()); // nobody's own is /nonexistent
            Process front = pb.start();
            try {
                InputStream sync = front.getInputStream();
                CompletableFuture<Integer> ready = CompletableFuture.supplyAsync(() -> {
                    try {
                        return sync.read();
                    } catch (IOException e) {
                        return -1;
                    }
                });
                int b = ready.get(T.toMillis(), TimeUnit.MILLISECONDS);
                String frontLog = Files.readString(log);
                assertTrue(b >= 0, "the front wrote the readiness byte: " + frontLog);
                // The same process is now the real proxy (exec keeps the pid).
                Path exe = Files.readSymbolicLink(Path.of("/proc", String.valueOf(front.pid()), "exe"));
                assertEquals(SandboxFront.xdgDbusProxy().toRealPath(), exe.toRealPath(), "front log:\n" + frontLog);
                assertTrue(frontLog.contains("rejected attempt to call AddEndpoint by uid " + NOBODY),
                        "the front said why it fell back:\n" + frontLog);

                // A client in the sandbox (the proxy's uid: xdg-dbus-proxy accepts only its own) gets
                // the proxy's filtering: Big answers, the rest is hidden.
                Cmd.Result echo = Cmd.run(List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups", "gdbus", "call", "--address", "unix:path=" + socket, "--dest", "org.example.Big",
                        "--object-path", "/org/example/Big", "--method", "org.example.Big.Echo", "[byte 1, 2, 3]"), T);
                assertTrue(echo.ok(), echo.describe() + "\n" + Files.readString(log));
                assertTrue(echo.stdout().startsWith("(uint32 3, uint32 "), echo.describe());
                Cmd.Result secret = Cmd.run(List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups", "gdbus", "call", "--address", "unix:path=" + socket, "--dest", "org.example.Secret",
                        "--object-path", "/org/example/Secret", "--method", "org.example.Secret.Ping"), T);
                assertTrue(!secret.ok() && secret.stderr().contains("org.freedesktop.DBus.Error.ServiceUnknown"), secret.describe());
            } finally {
                List<ProcessHandle> children = front.descendants().toList();
                front.destroyForcibly();
                children.forEach(ProcessHandle::destroyForcibly);
                front.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }
}
