package org.kdbusbridge.bridge.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

/** Send-time credentials (AttachMetadata's creds): SO_PASSCRED and SCM_CREDENTIALS, JNI and jnr-ffi. */
class PassCredentialsTest {

    /** "binding offPid pid uid gid queuedBeforePid" as this process should see it. */
    private static void check(String out, String binding) throws Exception {
        String[] f = out.split(" ");
        assertEquals(binding, f[0], out);
        assertEquals("-1", f[1], "SO_PASSCRED off: no SCM_CREDENTIALS: " + out);
        assertEquals(Long.toString(ProcessHandle.current().pid()), f[2], "the writer's pid: " + out);
        assertEquals(Long.toString(LibC.INSTANCE.getuid()), f[3], "the writer's uid: " + out);
        String gid = Files.readString(Path.of("/proc/self/status")).lines().filter(l -> l.startsWith("Gid:"))
                .findFirst().orElseThrow().split("\\s+")[1];
        assertEquals(gid, f[4], "the writer's gid: " + out);
        // The documented edge: bytes queued before SO_PASSCRED was on come with pid 0 (and the
        // overflow uid), which MetadataStamp treats as "no send-time creds".
        assertTrue(f[5].startsWith("0/"), "queued before SO_PASSCRED: " + out);
    }

    @Test
    void jniBindingReadsTheWritersCredentials() throws Exception {
        String out = PassCredProbe.run();
        check(out, LibC.Native.binding());
        // Seen on Linux 5.x/6.x: the kernel records creds at write time whatever the flag, so
        // bytes queued before SO_PASSCRED was turned on carry them too (docs/extensions.md).
        System.out.println("PassCredProbe (in-process): " + out);
    }

    @Test
    void jnrFallbackReadsThemToo() throws Exception {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> cmd = new ArrayList<>(List.of(java.toString(), "-D" + LibC.Native.LIBRARY_PROPERTY + "=none"));
        if (Runtime.version().feature() >= 24) {
            cmd.addAll(List.of("--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"));
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), PassCredProbe.class.getName()));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        String[] f = out.split(" ");
        assertEquals("jnr", f[0], out);
        assertEquals("-1", f[1], out);
        assertEquals(Long.toString(p.pid()), f[2], "the child JVM wrote them: " + out);
        assertEquals(Long.toString(LibC.INSTANCE.getuid()), f[3], out);
    }

    @Test
    void aFailedSetsockoptIsRememberedNotRetriedPerRead() {
        int efd = LibC.INSTANCE.eventfd(0, 0); // not a socket: setsockopt fails with ENOTSOCK
        assertTrue(efd >= 0);
        SocketConnection notASocket = new SocketConnection(efd, null);
        try {
            assertFalse(notASocket.passCredentialsFailed());
            assertFalse(notASocket.passCredentials(true));
            assertTrue(notASocket.passCredentialsFailed(), "remembered");
            assertFalse(notASocket.passesCredentials());
            assertFalse(notASocket.passCredentials(true), "not tried again: still false");
        } finally {
            notASocket.close();
        }
    }
}
