// Invariants: returns a reader and a writer together or neither; returns them only while the
// thread that asks is inside DbusJavaMetadata.connect and the connection passes no unix fds,
// so every other connection of the process gets dbus-java's own reader, unchanged.
package org.kdbusbridge.bridge.client.dbusjava;

import java.nio.channels.SocketChannel;

import org.freedesktop.dbus.spi.message.IMessageReader;
import org.freedesktop.dbus.spi.message.IMessageWriter;
import org.freedesktop.dbus.spi.message.ISocketProvider;
import org.freedesktop.dbus.spi.message.OutputStreamMessageWriter;

/**
 * dbus-java's socket provider SPI (found through META-INF/services): gives a connection built
 * by {@link DbusJavaMetadata#connect} a reader that copes with AttachMetadata's header field.
 * For any other connection it answers null, and dbus-java goes on with its next provider or its
 * built-in reader, as if this class were not there.
 *
 * <p>It declines a connection that negotiated unix fd passing (dbus-java's junixsocket
 * transport): reading fds needs that transport's own channel API, and a reader that dropped them
 * would be worse than none. {@code connect} then fails with a message saying so.
 */
public final class MetadataSocketProvider implements ISocketProvider {
    private boolean fdPassing;

    @Override
    public IMessageReader createReader(SocketChannel socket) {
        return takes(socket) ? new MetadataMessageReader(socket) : null;
    }

    @Override
    public IMessageWriter createWriter(SocketChannel socket) {
        if (!takes(socket)) {
            return null;
        }
        DbusJavaMetadata.markInstalled();
        return new OutputStreamMessageWriter(socket);
    }

    private boolean takes(SocketChannel socket) {
        return DbusJavaMetadata.wantedByThisThread() && !fdPassing
                && !socket.getClass().getName().startsWith("org.newsclub.");
    }

    @Override
    public void setFileDescriptorSupport(boolean support) {
        fdPassing = support;
    }

    @Override
    public boolean isFileDescriptorPassingSupported() {
        return false;
    }
}
