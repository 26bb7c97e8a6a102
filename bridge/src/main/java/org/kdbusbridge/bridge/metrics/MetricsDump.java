package org.kdbusbridge.bridge.metrics;

import java.nio.ByteBuffer;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * The rendered exposition, shared (read-only) by every metrics client of every listener until
 * the bus's state {@code version} changes: a client reconnecting in a loop costs neither a
 * render (a sort over every connection, ~377 KB at 5,000) nor a buffer per connect. Loop thread.
 */
public final class MetricsDump {
    private final Supplier<byte[]> render;
    private final LongSupplier version;
    private ByteBuffer last;
    private long lastVersion;

    /**
     * @param render  renders the exposition (called on the loop thread)
     * @param version changes whenever the dump may have; null renders every dump afresh
     */
    public MetricsDump(Supplier<byte[]> render, LongSupplier version) {
        this.render = render;
        this.version = version;
    }

    /** The current dump, one read-only direct buffer (duplicate it for a position of your own). */
    public ByteBuffer current() {
        long v = version == null ? 0 : version.getAsLong();
        if (last == null || version == null || v != lastVersion) {
            byte[] text = render.get();
            ByteBuffer buf = ByteBuffer.allocateDirect(text.length);
            buf.put(text).flip();
            last = buf.asReadOnlyBuffer();
            lastVersion = v;
        }
        return last;
    }
}
