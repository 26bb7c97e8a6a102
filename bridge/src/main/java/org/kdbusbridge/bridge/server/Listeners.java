package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.bridge.transport.SystemdSockets;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.bridge.transport.UnixListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The bus's listening sockets: bound (or adopted from systemd) from the config's listen
 * addresses at start, kept for the bus's life (a reload does not change them, as in dbus-daemon).
 *
 * Invariants: {@link #bindAll} binds every address or, on failure, closes what it bound and
 * leaves none; each listener's connect address is reported once, in listen order.
 */
final class Listeners {
    private static final Logger LOG = LoggerFactory.getLogger(BusServer.class);

    /** The bus's secret GUID; each listener's own guid is derived from it and its bound name (BusIds). */
    private final String guid;
    private final TransportSettings transport;
    private final List<UnixListener> listeners = new ArrayList<>();

    Listeners(String guid, TransportSettings transport) {
        this.guid = guid;
        this.transport = transport;
    }

    /** Binds every listen address; returns the connect addresses. */
    List<String> bindAll(List<String> listen) throws IOException {
        List<String> connect = new ArrayList<>();
        try {
            for (String entry : listen) {
                for (UnixAddress a : UnixAddress.parseList(entry)) {
                    if (a.kind() == UnixAddress.Kind.SYSTEMD) {
                        adoptSystemdSockets(connect);
                        continue;
                    }
                    if (a.kind() == UnixAddress.Kind.RUNTIME) {
                        a = a.resolveRuntime(System::getenv);
                    }
                    UnixListener l = UnixListener.bind(a, null).processFds(transport.processFd());
                    listeners.add(ownGuid(l));
                    connect.add(l.connectAddress());
                }
            }
        } catch (IOException | RuntimeException e) {
            closeAll();
            listeners.clear();
            throw e;
        }
        return connect;
    }

    /**
     * {@code systemd:}: one listener per socket systemd passed (LISTEN_FDS), as dbus-daemon does.
     * The variables are consumed, so a second {@code systemd:} entry finds no sockets.
     */
    private void adoptSystemdSockets(List<String> connect) throws IOException {
        List<Integer> fds;
        try {
            fds = SystemdSockets.take();
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage(), e);
        }
        if (fds.isEmpty()) {
            throw new IOException("No socket received (systemd: needs LISTEN_FDS and LISTEN_PID set for this process).");
        }
        int i = 0;
        try {
            for (; i < fds.size(); i++) {
                UnixListener l = UnixListener.adopt(fds.get(i), null).processFds(transport.processFd());
                listeners.add(ownGuid(l));
                connect.add(l.connectAddress());
            }
        } catch (IOException e) {
            for (int j = i; j < fds.size(); j++) { // the ones not adopted yet; bindAll closes the rest
                org.kdbusbridge.bridge.transport.LibC.INSTANCE.close(fds.get(j));
            }
            throw e;
        }
    }

    /** The listeners, in listen order (hand-over). */
    List<UnixListener> all() {
        return List.copyOf(listeners);
    }

    /**
     * Hand-over: a listener taken over from the bus this one replaces. It gets the guid the old
     * bus's listener had: derived again from the carried GUID and the socket's name.
     */
    void adopt(UnixListener l) {
        listeners.add(ownGuid(l.processFds(transport.processFd())));
    }

    /**
     * Gives {@code l} its own server guid, as dbus-daemon gives each of its servers one: derived,
     * not random, so a hand-over, whose snapshot carries only the bus's GUID, keeps it (BusIds).
     */
    private UnixListener ownGuid(UnixListener l) {
        return l.useGuid(BusIds.listenerGuid(guid, l.boundAddress()));
    }

    /** Each listener's server guid, in listen order. */
    List<String> guids() {
        List<String> out = new ArrayList<>(listeners.size());
        for (UnixListener l : listeners) {
            out.add(l.guid());
        }
        return out;
    }

    /** Hand-over: lets go of every listener without closing it (see UnixListener#detachForHandOver). */
    void detachAll() {
        for (UnixListener l : listeners) {
            l.detachForHandOver();
        }
        listeners.clear();
    }

    /** Loop thread: starts accepting on every listener. */
    void startAll(EventLoop loop, java.util.function.BiConsumer<org.kdbusbridge.bridge.transport.SocketConnection, String> onAccept) {
        for (UnixListener l : listeners) {
            String g = l.guid(); // the SASL OK line names the listener the client came through
            l.start(loop, socket -> onAccept.accept(socket, g));
        }
    }

    /** Closes every listener (removing its socket file). */
    void closeAll() {
        for (UnixListener l : listeners) {
            l.close();
        }
    }

    /** Whether one of these listeners holds the abstract name {@code name} (without its leading NUL). */
    boolean hasAbstractName(String name) {
        for (UnixListener l : listeners) {
            UnixAddress b = l.boundAddress();
            if (b != null && b.kind() == UnixAddress.Kind.ABSTRACT && b.value().equals(name)) {
                return true;
            }
        }
        return false;
    }

    /** Whether {@code p} is the socket file of one of these listeners (an endpoint must not replace it). */
    boolean hasSocketFile(java.nio.file.Path p) {
        for (UnixListener l : listeners) {
            if (EndpointListeners.sameFile(p, l.socketFile())) { // by inode: "a//b" is "a/b"
                return true;
            }
        }
        return false;
    }

    /** See {@link BusServer#giveSocketFilesTo}. */
    void giveSocketFilesTo(int uid, int gid) {
        for (UnixListener l : listeners) {
            try {
                l.giveSocketFileTo(uid, gid);
            } catch (IOException | RuntimeException e) {
                LOG.warn("Could not hand socket file {} to uid {}: {}; it will stay after exit", l.socketFile(), uid,
                        e.toString());
            }
        }
    }
}
