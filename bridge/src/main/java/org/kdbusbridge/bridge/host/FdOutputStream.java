package org.kdbusbridge.bridge.host;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;

import org.kdbusbridge.bridge.transport.LibC;

/**
 * Writes to a raw descriptor a front passed (its stderr): through write(2), so any kind of
 * descriptor works (pipe, tty, file, socket, where /proc/self/fd/N could not be reopened). Does
 * not close the descriptor; the owner does. Errors are dropped once the reader is gone (EPIPE),
 * as a daemon whose stderr closed goes on.
 */
final class FdOutputStream extends OutputStream {
    private final int fd;
    private final ByteBuffer buf = ByteBuffer.allocateDirect(4096);
    private final long addr = LibC.Native.address(buf);
    private boolean broken;

    FdOutputStream(int fd) {
        this.fd = fd;
    }

    @Override
    public void write(int b) {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) {
        while (len > 0 && !broken) {
            int n = Math.min(len, buf.capacity());
            buf.clear();
            buf.put(b, off, n);
            int done = 0;
            while (done < n) {
                long w = LibC.INSTANCE.write(fd, addr + done, n - done);
                if (w > 0) {
                    done += (int) w;
                } else if (w < 0 && LibC.Native.errno() == LibC.EINTR) {
                    continue;
                } else {
                    broken = true; // EPIPE, EBADF, a full non-blocking pipe: the line is lost
                    return;
                }
            }
            off += n;
            len -= n;
        }
    }

    @Override
    public void flush() throws IOException {
        // unbuffered
    }
}
