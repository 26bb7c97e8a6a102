package org.kdbusbridge.bridge.memfd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import jnr.ffi.LibraryLoader;

import org.kdbusbridge.bridge.transport.JniLibC;

/**
 * Client side of sealed memfd payloads (docs/extensions.md): create a memfd, fill it, seal it
 * so nobody can change it any more, and map a received one read-only.
 *
 * Invariants: {@link #create} returns an fd whose contents are exactly {@code data} and that
 * carries F_SEAL_WRITE, F_SEAL_SHRINK, F_SEAL_GROW and F_SEAL_SEAL when {@code seal} is true;
 * a receiver that checked {@link #isSealed} can map it without defending against change.
 * Send the fd with any D-Bus client that passes unix fds (dbus-java's junixsocket transport,
 * GDBus, dbus-python, sd-bus).
 */
public final class SealedMemfd {
    private SealedMemfd() { }

    public static final int MFD_CLOEXEC = 0x1;
    public static final int MFD_ALLOW_SEALING = 0x2;
    public static final int F_ADD_SEALS = 1033;
    public static final int F_GET_SEALS = 1034;
    public static final int F_SEAL_SEAL = 0x1;
    public static final int F_SEAL_SHRINK = 0x2;
    public static final int F_SEAL_GROW = 0x4;
    public static final int F_SEAL_WRITE = 0x8;
    /** What the bus requires of a memfd sent to a connection that asked for sealed payloads. */
    public static final int PAYLOAD_SEALS = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;

    /** The libc calls this needs. */
    public interface Libc {
        int memfd_create(String name, int flags);

        int fcntl(int fd, int cmd, int arg);

        int close(int fd);
    }

    private static final Libc LIBC = JniLibC.loaded() ? new Libc() {
        @Override public int memfd_create(String name, int flags) { return JniLibC.memfdCreate0(JniLibC.cString(name), flags); }
        @Override public int fcntl(int fd, int cmd, int arg) { return JniLibC.fcntl0(fd, cmd, arg); }
        @Override public int close(int fd) { return JniLibC.close0(fd); }
    } : LibraryLoader.create(Libc.class).load("c");

    /** A new memfd holding {@code data}; sealed against any change if {@code seal}. */
    public static int create(String name, byte[] data, boolean seal) throws IOException {
        int fd = LIBC.memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0) {
            throw new IOException("memfd_create failed");
        }
        try (FileChannel ch = FileChannel.open(procPath(fd), StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(data);
            while (b.hasRemaining()) {
                ch.write(b);
            }
        } catch (IOException e) {
            LIBC.close(fd);
            throw e;
        }
        if (seal && LIBC.fcntl(fd, F_ADD_SEALS, PAYLOAD_SEALS | F_SEAL_SEAL) != 0) {
            LIBC.close(fd);
            throw new IOException("F_ADD_SEALS failed");
        }
        return fd;
    }

    /** True if {@code fd} is a memfd with the write, shrink and grow seals. */
    public static boolean isSealed(int fd) {
        int seals = LIBC.fcntl(fd, F_GET_SEALS, 0);
        return seals >= 0 && (seals & PAYLOAD_SEALS) == PAYLOAD_SEALS;
    }

    /** Maps the whole memfd read-only (the mapping stays valid after the fd is closed). */
    public static MappedByteBuffer mapReadOnly(int fd) throws IOException {
        try (FileChannel ch = FileChannel.open(procPath(fd), StandardOpenOption.READ)) {
            return ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
        }
    }

    public static void close(int fd) {
        LIBC.close(fd);
    }

    private static Path procPath(int fd) {
        return Path.of("/proc/self/fd/" + fd);
    }
}
