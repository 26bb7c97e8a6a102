package org.kdbusbridge.bridge.top;

import java.io.IOException;

/** Where {@code top} reads a bus from: our metrics socket or any bus's driver. */
public interface TopSource extends AutoCloseable {
    Snapshot read() throws IOException;

    @Override
    void close();
}
