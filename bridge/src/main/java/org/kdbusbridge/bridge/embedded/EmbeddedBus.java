// An in-process kdbus-bridge bus for tests and embedding: the same BusServer that
// bin/kdbus-bridge runs, started on a private socket and stopped with close().
//
// Invariants:
// - An EmbeddedBus is only ever handed out running: the factories return after the listener is
//   bound and the event loop accepts connections, or throw and leave nothing behind (no thread,
//   no socket file, no temporary directory).
// - address() is the connect address BusServer.start() returned (with guid=); it is valid
//   exactly while isRunning() is true, and address() throws IllegalStateException after close().
// - close() is idempotent and thread-safe: the first call stops the bus (every client is
//   disconnected, the socket file is unlinked) and then deletes the temporary directory, if
//   this object created one; later and concurrent calls return once that has finished.
// - A temporary directory is created only for the default listen address, with mode 0700, and
//   nothing outside it is ever deleted. Explicit listen addresses are used as given.
// - The bus's event-loop thread is not a daemon thread: a bus that is never closed keeps the JVM
//   alive (as a forgotten BusServer would). Always close it (try-with-resources or the
//   KdbusBridgeExtension).
package org.kdbusbridge.bridge.embedded;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Stream;

import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.server.BusServer;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.core.bus.BusLimits;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A kdbus-bridge bus running inside this JVM, with session-bus semantics by default.
 *
 * <pre>{@code
 * try (EmbeddedBus bus = EmbeddedBus.start()) {
 *     DBusConnection c = DBusConnectionBuilder.forAddress(bus.address()).withShared(false).build();
 *     ...
 * }
 * }</pre>
 *
 * {@link #start()} listens on {@code unix:path=<fresh private temp dir>/bus}; {@link #builder()}
 * sets another listen address or resource limits; {@link #start(BusConfig)} runs a complete
 * configuration (for example one read by {@code BusConfigParser}).
 */
public final class EmbeddedBus implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedBus.class);

    /** Name of the socket inside the temporary directory. */
    public static final String SOCKET_NAME = "bus";

    /** UnixListener takes dbus-daemon's limit (sun_path itself would hold 107 bytes and a NUL). */
    private static final int MAX_SOCKET_PATH_BYTES = 99;

    private final BusServer server;
    private final String address;
    private final Path directory; // null unless we created it
    private final Object lock = new Object();
    private volatile boolean running = true;

    private EmbeddedBus(BusServer server, String address, Path directory) {
        this.server = server;
        this.address = address;
        this.directory = directory;
    }

    /**
     * Starts a session bus on {@code unix:path=<dir>/bus}, where {@code <dir>} is a new directory
     * (mode 0700) under {@code java.io.tmpdir} (or {@code /tmp} if that path is too long for a
     * unix socket). The directory is deleted by {@link #close()}.
     *
     * @throws IOException if the directory cannot be created or the socket cannot be bound
     */
    public static EmbeddedBus start() throws IOException {
        return builder().start();
    }

    /**
     * Starts a bus running {@code config} as given; it must name at least one listen address.
     * No temporary directory is created. The config must not be changed while the bus runs.
     *
     * @throws IllegalArgumentException if the config has no listen address or an invalid one
     * @throws IOException if a listen address cannot be bound
     */
    public static EmbeddedBus start(BusConfig config) throws IOException {
        Objects.requireNonNull(config, "config");
        if (config.listen().isEmpty()) {
            throw new IllegalArgumentException("BusConfig has no listen address;"
                    + " use EmbeddedBus.start() or EmbeddedBus.builder() for a private temporary socket");
        }
        return launch(config, null, TransportSettings.fromSystemProperties());
    }

    /** Options for {@link Builder#start()}: a listen address and limits. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The address clients connect to, e.g. {@code unix:path=/tmp/kdbus-bridge-123/bus,guid=...};
     * several addresses are separated by {@code ;} as in {@code DBUS_SESSION_BUS_ADDRESS}.
     *
     * @throws IllegalStateException after {@link #close()}
     */
    public String address() {
        if (!running) {
            throw new IllegalStateException("EmbeddedBus is closed (it was at " + address + ")");
        }
        return address;
    }

    /**
     * The server guid of the bus's (first) listening address, as in {@code guid=} of
     * {@link #address()} and the SASL {@code OK} line; each further address has its own.
     */
    public String guid() {
        return server.listenerGuids().get(0);
    }

    /** The bus ID {@code GetId} returns: not any address's guid, as in dbus-daemon. */
    public String busId() {
        return server.busId();
    }

    /** The temporary directory holding the socket, if this bus created one. */
    public Optional<Path> directory() {
        return Optional.ofNullable(directory);
    }

    /** True until {@link #close()} is called. */
    public boolean isRunning() {
        return running;
    }

    /**
     * Stops the bus: disconnects every client, unlinks the socket file, stops the event-loop
     * thread and deletes the temporary directory (if any). Idempotent; never throws (problems
     * while cleaning up are logged).
     */
    @Override
    public void close() {
        synchronized (lock) {
            if (!running) {
                return;
            }
            running = false;
            try {
                server.stop();
            } finally {
                deleteDirectory(directory);
            }
        }
    }

    @Override
    public String toString() {
        return "EmbeddedBus[" + address + (running ? "" : ", closed") + "]";
    }

    private static EmbeddedBus launch(BusConfig config, Path directory, TransportSettings transport) throws IOException {
        BusServer server = null;
        String address;
        try {
            server = new BusServer(config, transport);
            address = server.start();
        } catch (IOException | RuntimeException e) {
            deleteDirectory(directory);
            String what = "Could not start the embedded bus on " + String.join(";", config.listen())
                    + ": " + e.getMessage();
            if (e instanceof IOException) {
                throw new IOException(what, e);
            }
            if (e instanceof IllegalArgumentException) {
                throw new IllegalArgumentException(what, e);
            }
            throw new IllegalStateException(what, e);
        }
        LOG.debug("Embedded bus listening on {}", address);
        return new EmbeddedBus(server, address, directory);
    }

    /** Deletes dir and what is in it; only ever called with a directory this class created. */
    private static void deleteDirectory(Path dir) {
        if (dir == null) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(p);
            }
        } catch (IOException | RuntimeException e) {
            LOG.warn("Could not delete the embedded bus directory {}: {}", dir, e.toString());
        }
    }

    /**
     * Options for an embedded bus. Not thread-safe; {@link #start()} copies the options, so one
     * builder may start any number of buses (each default one in its own temporary directory).
     */
    public static final class Builder {
        private String listen;
        private Path parent;
        private final Map<String, Long> limits = new LinkedHashMap<>();
        private TransportSettings transport = TransportSettings.fromSystemProperties();

        private Builder() {
        }

        /**
         * Transport tuning for this bus (zero-copy threshold, socket send buffer, loop spinning)
         * instead of the one the {@code -Dkdbus.*} properties give.
         */
        public Builder transport(TransportSettings settings) {
            this.transport = Objects.requireNonNull(settings, "settings");
            return this;
        }

        /**
         * Listens on this D-Bus address instead of a private temporary socket, e.g.
         * {@code unix:path=/run/user/1000/test-bus}, {@code unix:tmpdir=/tmp},
         * {@code unix:abstract=name}. Nothing is created or deleted for it beyond the socket.
         *
         * @throws IllegalArgumentException if the address is not a valid unix address list
         */
        public Builder listen(String address) {
            Objects.requireNonNull(address, "address");
            UnixAddress.parseList(address); // fails early with the parser's message
            if (parent != null) {
                throw new IllegalStateException("listen(...) and temporaryDirectoryParent(...) exclude each other");
            }
            this.listen = address;
            return this;
        }

        /**
         * Creates the private temporary directory under {@code parent} instead of
         * {@code java.io.tmpdir} (useful when that path is too long for a unix socket).
         */
        public Builder temporaryDirectoryParent(Path parent) {
            Objects.requireNonNull(parent, "parent");
            if (listen != null) {
                throw new IllegalStateException("listen(...) and temporaryDirectoryParent(...) exclude each other");
            }
            this.parent = parent;
            return this;
        }

        /**
         * Sets a limit by its dbus-daemon {@code <limit name="...">} name, e.g.
         * {@code limit("max_outgoing_bytes", 1 << 20)} or {@code limit("reply_timeout", 5000)}.
         *
         * @throws IllegalArgumentException for a name dbus-daemon does not know
         */
        public Builder limit(String name, long value) {
            Objects.requireNonNull(name, "name");
            if (!new BusLimits().set(name, value)) {
                throw new IllegalArgumentException("Unknown limit '" + name + "' (use dbus-daemon's <limit name=...>)");
            }
            limits.put(name, value);
            return this;
        }

        /**
         * Starts a bus with these options.
         *
         * @throws IOException if the directory cannot be created or the socket cannot be bound
         */
        public EmbeddedBus start() throws IOException {
            Path dir = null;
            String addr = listen;
            if (addr == null) {
                dir = createDirectory(parent);
                addr = "unix:path=" + UnixAddress.escape(dir.resolve(SOCKET_NAME).toString());
            }
            BusConfig config;
            try {
                config = BusConfig.forAddress(addr);
                for (Map.Entry<String, Long> e : limits.entrySet()) {
                    config.limits().set(e.getKey(), e.getValue());
                }
            } catch (RuntimeException e) {
                deleteDirectory(dir);
                throw e;
            }
            return launch(config, dir, transport);
        }

        private static Path createDirectory(Path explicitParent) throws IOException {
            FileAttribute<?> owner = PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));
            List<Path> parents = explicitParent != null ? List.of(explicitParent)
                    : List.of(Path.of(System.getProperty("java.io.tmpdir")), Path.of("/tmp"));
            for (Path p : parents) {
                // "<parent>/kdbus-bridge-<up to 20 digits>/bus"
                int length = p.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8).length
                        + "/kdbus-bridge-".length() + 20 + 1 + SOCKET_NAME.length();
                if (length <= MAX_SOCKET_PATH_BYTES) {
                    try {
                        return Files.createTempDirectory(p.toAbsolutePath(), "kdbus-bridge-", owner);
                    } catch (IOException e) {
                        throw new IOException("Could not create a temporary directory for the embedded bus under "
                                + p + ": " + e, e);
                    } catch (UnsupportedOperationException e) {
                        throw new IOException("The file system of " + p + " has no POSIX permissions", e);
                    }
                }
            }
            throw new IOException("A socket under " + parents.get(0) + " would exceed the " + MAX_SOCKET_PATH_BYTES
                    + "-byte unix socket path limit; choose a shorter temporaryDirectoryParent(...)");
        }
    }
}
