package org.kdbusbridge.bridge.transport;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * SO_PASSCRED / SCM_CREDENTIALS through whichever LibC binding this JVM has. Run in-process by
 * PassCredentialsTest (JNI) and in a JVM of its own with the JNI library off (jnr-ffi). Prints
 * "binding offPid pid uid gid queuedBeforePid/uid".
 */
public final class PassCredProbe {
    private PassCredProbe() {
    }

    public static void main(String[] args) throws IOException {
        System.out.println(run());
    }

    static String run() throws IOException {
        LibC c = LibC.INSTANCE;
        ByteBuffer sv = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        if (c.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC, 0,
                LibC.Native.address(sv)) != 0) {
            throw new IOException("socketpair: errno " + LibC.Native.errno());
        }
        SocketConnection reader = new SocketConnection(sv.getInt(0), null);
        SocketConnection writer = new SocketConnection(sv.getInt(4), null);
        try {
            ByteBuffer in = ByteBuffer.allocateDirect(64);
            SocketConnection.FdSink noFds = fd -> c.close(fd);
            // Off: no credentials come with the bytes.
            send(writer, "a");
            in.clear();
            int n = reader.readWithFds(in, noFds);
            long offPid = n == 1 ? reader.readPid() : -2;
            // Bytes written while it is off, read after it was turned on.
            send(writer, "b");
            if (!reader.passCredentials(true)) {
                throw new IOException("setsockopt(SO_PASSCRED) failed: errno " + LibC.Native.errno());
            }
            in.clear();
            n = reader.readWithFds(in, noFds);
            String queuedBefore = n == 1 ? reader.readPid() + "/" + reader.readUid() : "none";
            send(writer, "c");
            in.clear();
            n = reader.readWithFds(in, noFds);
            if (n != 1) {
                throw new IOException("read " + n);
            }
            return LibC.Native.binding() + " " + offPid + " " + reader.readPid() + " " + reader.readUid() + " "
                    + reader.readGid() + " " + queuedBefore;
        } finally {
            reader.close();
            writer.close();
        }
    }

    private static void send(SocketConnection w, String s) throws IOException {
        ByteBuffer b = ByteBuffer.allocateDirect(s.length());
        b.put(s.getBytes(java.nio.charset.StandardCharsets.US_ASCII)).flip();
        if (w.write(b) != s.length()) {
            throw new IOException("short write");
        }
    }
}
