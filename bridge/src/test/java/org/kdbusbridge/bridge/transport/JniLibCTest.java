package org.kdbusbridge.bridge.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.cli.Posix;
import org.kdbusbridge.bridge.memfd.SealedMemfd;

/** The JNI binding (built by the Maven build next to target/classes) and the jnr fallback. */
class JniLibCTest {
    private static final LibC LIBC = LibC.INSTANCE;

    @Test
    void theBuildsLibraryIsTheBinding() {
        assertEquals("jni", LibC.Native.binding(), "target/" + LibC.Native.LIBRARY_FILE + " should be loaded");
        assertTrue(JniLibC.loaded());
        assertTrue(Posix.INSTANCE instanceof Posix.Jni);
    }

    @Test
    void errnoOfAFailedCallSurvivesLaterJavaWork() {
        assertEquals(-1, LIBC.close(-1));
        List<Object> garbage = new ArrayList<>();
        for (int i = 0; i < 10_000; i++) {
            garbage.add(new byte[64]); // allocation and maybe a GC between the call and the read
        }
        assertEquals(LibC.EBADF, LibC.Native.errno());
        assertEquals(-1, LIBC.fcntl(-1, LibC.F_GETFD, 0));
        assertEquals(LibC.EBADF, LibC.Native.errno());
        assertTrue(LibC.Native.strerror(LibC.EBADF).contains("EBADF"));
    }

    @Test
    void socketCallsAndFdPassing() throws Exception {
        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        assertEquals(0, LIBC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, LibC.Native.address(sv)));
        int a = sv.getInt(0);
        int b = sv.getInt(4);
        ByteBuffer opt = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        opt.putInt(4, 4);
        long o = LibC.Native.address(opt);
        assertEquals(0, LIBC.getsockopt(a, LibC.SOL_SOCKET, LibC.SO_TYPE, o, o + 4));
        assertEquals(LibC.SOCK_STREAM, opt.getInt(0));
        assertTrue((LIBC.fcntl(a, LibC.F_GETFD, 0) & LibC.FD_CLOEXEC) != 0);

        ByteBuffer data = ByteBuffer.allocateDirect(16);
        data.put(0, (byte) 'x');
        assertEquals(1, LIBC.send(a, LibC.Native.address(data), 1, LibC.MSG_NOSIGNAL));
        ByteBuffer in = ByteBuffer.allocateDirect(16);
        assertEquals(1, LIBC.read(b, LibC.Native.address(in), 16));
        assertEquals('x', in.get(0));

        int ep = LIBC.epoll_create1(LibC.EPOLL_CLOEXEC);
        assertTrue(ep >= 0);
        ByteBuffer ev = ByteBuffer.allocateDirect(LibC.Native.EPOLL_EVENT_SIZE * 4).order(ByteOrder.nativeOrder());
        long e = LibC.Native.address(ev);
        ev.putInt(0, LibC.EPOLLIN);
        ev.putInt(LibC.Native.EPOLL_DATA_OFFSET, 42);
        assertEquals(0, LIBC.epoll_ctl(ep, LibC.EPOLL_CTL_ADD, b, e));
        assertEquals(0, LIBC.epoll_wait(ep, e, 4, 0));
        assertEquals(1, LIBC.write(a, LibC.Native.address(data), 1));
        assertEquals(1, LIBC.epoll_wait(ep, e, 4, 1000));
        assertEquals(42, ev.getInt(LibC.Native.EPOLL_DATA_OFFSET));
        LIBC.close(ep);
        LIBC.close(a);
        LIBC.close(b);
    }

    @Test
    void memfdAndPosixGoThroughTheSameLibrary() throws IOException {
        byte[] payload = "sealed".getBytes(StandardCharsets.US_ASCII);
        int fd = SealedMemfd.create("jni-test", payload, true);
        try {
            assertTrue(SealedMemfd.isSealed(fd));
            assertEquals(payload.length, SealedMemfd.mapReadOnly(fd).remaining());
        } finally {
            SealedMemfd.close(fd);
        }
        int old = Posix.INSTANCE.umask(022);
        assertEquals(022, Posix.INSTANCE.umask(old));
        assertEquals(LIBC.getuid(), Posix.INSTANCE.getuid());
    }

    @Test
    void libraryLookUp(@TempDir Path dir) throws IOException {
        assertNull(NativeLibrary.find("none", LibC.class, LibC.Native.LIBRARY_FILE));
        assertNull(NativeLibrary.find(dir.resolve("absent.so").toString(), LibC.class, LibC.Native.LIBRARY_FILE));
        Path given = Files.writeString(dir.resolve("x.so"), "");
        assertEquals(given.toAbsolutePath(), NativeLibrary.find(given.toString(), LibC.class, LibC.Native.LIBRARY_FILE));
        Path next = NativeLibrary.find(null, LibC.class, LibC.Native.LIBRARY_FILE); // beside target/classes
        assertNotNull(next);
        assertEquals(LibC.Native.LIBRARY_FILE, next.getFileName().toString());
        assertNull(NativeLibrary.find(null, LibC.class, "no-such-library.so"));
    }

    /** With the library switched off the same calls go through jnr-ffi (a JVM of its own: INSTANCE is static). */
    @Test
    void jnrFallbackWhenTheLibraryIsOff() throws Exception {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> cmd = new ArrayList<>(List.of(java.toString(), "-D" + LibC.Native.LIBRARY_PROPERTY + "=none"));
        if (Runtime.version().feature() >= 24) { // what bin/kdbus-bridge and the manifest grant jnr there
            cmd.addAll(List.of("--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"));
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), JnrFallbackProbe.class.getName()));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertEquals("jnr " + LibC.EBADF + " false", out);
    }
}
