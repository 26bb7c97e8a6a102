package org.kdbusbridge.bridge.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.config.ConfigCache;
import org.kdbusbridge.bridge.config.ConfigException;
import org.kdbusbridge.bridge.client.BusConnection;
import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.server.BusServer;
import org.kdbusbridge.bridge.transport.TransportSettings;

/**
 * {@code kdbus-bridge train-cache}: the class-data training run bin/kdbus-bridge starts in the
 * background when its AppCDS archive or AOT cache is missing or older than the jar. It starts
 * a bus on a private socket with the session configuration, drives the paths every real start
 * and its first clients take (config, listener, SASL, Hello, names, match rules, a call between
 * peers, a signal, ListNames, disconnects), stops it and exits normally, which is when the JVM
 * writes the archive. Training apart from the caller's bus keeps the caller's first start as
 * fast as an untrained one and its stop as fast as a trained one.
 */
final class CacheTraining {
    private static final Duration WAIT = Duration.ofSeconds(10);

    private CacheTraining() {
    }

    static int run(String[] argv) {
        String conf = argv.length > 0 ? argv[0] : Main.SESSION_CONF;
        Path dir = null;
        try {
            dir = Files.createTempDirectory("kdbus-bridge-train");
            Main.Options o = Main.parse(new String[] {"--config-file=" + conf, "--nofork",
                    "--address=unix:path=" + dir.resolve("bus")});
            ConfigCache cache = Main.configCache();
            BusConfig config = Main.load(o, cache); // also leaves the config in the cache
            StopSignals.install(); // the classes of a real start's handlers; a stop signal is recorded, not acted on
            BusServer server = new BusServer(config, TransportSettings.fromSystemProperties());
            String address = server.start();
            Main.wireReload(server, o, cache); // as a start does (a SIGHUP here reloads this bus's config)
            try {
                drive(address);
            } finally {
                server.stop();
            }
            return 0;
        } catch (IOException | ConfigException | Main.UsageException | RuntimeException e) {
            System.err.println("kdbus-bridge train-cache: " + e);
            return 1;
        } finally {
            delete(dir);
        }
    }

    private static void drive(String address) throws IOException {
        try (BusConnection service = BusConnection.open(address, "service");
             BusConnection client = BusConnection.open(address, "client")) {
            expectReturn(service.callDriver("RequestName", "su", new Object[] {"org.kdbusbridge.Train", 4}, WAIT));
            expectReturn(client.callDriver("AddMatch", "s",
                    new Object[] {"type='signal',sender='org.kdbusbridge.Train',interface='org.kdbusbridge.Train'"}, WAIT));
            expectReturn(client.callDriver("GetNameOwner", "s", new Object[] {"org.kdbusbridge.Train"}, WAIT));
            expectReturn(client.callDriver("ListNames", "", new Object[0], WAIT));
            expectReturn(client.callDriver("GetConnectionUnixUser", "s", new Object[] {service.uniqueName()}, WAIT));

            BodyWriter body = new BodyWriter();
            body.writeString("ping");
            long serial = client.nextSerial();
            client.send(MessageBuilder.methodCall(serial, 0, "org.kdbusbridge.Train", "/", "org.kdbusbridge.Train",
                    "Ping", null, "s", body.toByteArray()));
            BusMessage call = service.await(m -> "Ping".equals(m.member()), WAIT);
            service.send(MessageBuilder.methodReturn(service.nextSerial(), call.serial(), call.sender(), null,
                    "s", body.toByteArray()));
            client.await(m -> m.isReply() && m.replySerial() == serial, WAIT);

            service.send(MessageBuilder.signal(service.nextSerial(), "/", "org.kdbusbridge.Train", "Tick", null, null,
                    "s", body.toByteArray()));
            client.await(m -> "Tick".equals(m.member()), WAIT);
            expectReturn(client.callDriver("RemoveMatch", "s",
                    new Object[] {"type='signal',sender='org.kdbusbridge.Train',interface='org.kdbusbridge.Train'"}, WAIT));
            expectReturn(service.callDriver("ReleaseName", "s", new Object[] {"org.kdbusbridge.Train"}, WAIT));
        }
    }

    private static void expectReturn(BusMessage reply) throws IOException {
        if (reply == null || reply.isError()) {
            throw new IOException("training call failed: " + (reply == null ? "no reply" : reply.errorName()));
        }
    }

    private static void delete(Path dir) {
        if (dir == null) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            // a temp directory left behind is harmless
        }
    }

    /** For tests: the driver calls the training makes, to keep this list and the docs in step. */
    static List<String> driverCalls() {
        return List.of("Hello", "RequestName", "AddMatch", "GetNameOwner", "ListNames", "GetConnectionUnixUser",
                "RemoveMatch", "ReleaseName");
    }
}
