package org.kdbusbridge.bridge.activation;

import org.kdbusbridge.bridge.transport.LibC;

/**
 * The descriptors a hosted bus's services get as stdout and stderr: the very ones its front
 * passed (dup2'd in the child by {@link LibC.Native#spawn}), so they share the front's open file
 * descriptions as dbus-daemon's children share the daemon's (one offset, O_APPEND as the caller
 * opened it; reopening /proc/self/fd/N would start a file at offset 0 and overwrite the bus's
 * lines). Owned here: a spawn holds them from {@link #acquire} to {@link #release}, and
 * {@link #close} (the bus's end) closes both exactly once, when no spawn holds them; after it
 * {@link #acquire} gives null, so no child gets a number the host has since reused.
 */
public final class ChildStdio {
    private final int stdout;
    private final int stderr;
    private int holders;
    private boolean closed;
    private boolean fdsClosed;

    /** Takes ownership of both descriptors. */
    public ChildStdio(int stdout, int stderr) {
        this.stdout = stdout;
        this.stderr = stderr;
    }

    /** {stdout, stderr} until {@link #release}, or null once the bus has ended. */
    public synchronized int[] acquire() {
        if (closed) {
            return null;
        }
        holders++;
        return new int[] {stdout, stderr};
    }

    public synchronized void release() {
        if (--holders == 0 && closed) {
            closeFds();
        }
    }

    /** The bus's end. Idempotent. */
    public synchronized void close() {
        closed = true;
        if (holders == 0) {
            closeFds();
        }
    }

    /** Whether both descriptors are closed (tests). */
    public synchronized boolean descriptorsClosed() {
        return fdsClosed;
    }

    private void closeFds() {
        if (!fdsClosed) {
            fdsClosed = true;
            LibC.INSTANCE.close(stdout);
            LibC.INSTANCE.close(stderr);
        }
    }
}
