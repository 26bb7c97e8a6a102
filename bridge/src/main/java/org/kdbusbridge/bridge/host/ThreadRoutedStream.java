package org.kdbusbridge.bridge.host;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;

/**
 * The host's System.err: each write goes to the stderr of the bus whose thread makes it. A
 * hosted bus's threads (its request thread, and the loop, watcher and spawner threads it
 * creates, which inherit the value) write to their front's stderr; any other thread to the
 * host's own (/dev/null). slf4j-simple looks System.err up at every log line (its "System.err"
 * output choice is not the cached one), so bus log lines follow.
 */
final class ThreadRoutedStream extends OutputStream {
    private static final InheritableThreadLocal<OutputStream> CURRENT = new InheritableThreadLocal<>();
    private final OutputStream fallback;

    ThreadRoutedStream(OutputStream fallback) {
        this.fallback = fallback;
    }

    /** Installs the routing as System.err (once, at host start). */
    static void install() {
        System.setErr(new PrintStream(new ThreadRoutedStream(System.err), true));
    }

    /** This thread, and threads it creates from now on, write to {@code out} (null: the fallback). */
    static void route(OutputStream out) {
        if (out == null) {
            CURRENT.remove();
        } else {
            CURRENT.set(out);
        }
    }

    private OutputStream target() {
        OutputStream o = CURRENT.get();
        return o == null ? fallback : o;
    }

    @Override
    public void write(int b) throws IOException {
        target().write(b);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        target().write(b, off, len);
    }

    @Override
    public void flush() throws IOException {
        target().flush();
    }
}
