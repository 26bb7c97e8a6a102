package org.kdbusbridge.bridge.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;

import org.kdbusbridge.bridge.activation.ServiceProcessContext;
import org.kdbusbridge.bridge.capture.CaptureSink;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.config.BusConfigParser;
import org.kdbusbridge.bridge.config.ConfigCache;
import org.kdbusbridge.bridge.config.ConfigException;
import org.kdbusbridge.bridge.server.BusServer;
import org.kdbusbridge.bridge.transport.UnixAddress;

/**
 * One bus from dbus-daemon's command line, without the process around it: read the
 * configuration, start, reload, stop. {@link Main} runs one per process (and adds fork, pid file,
 * user switch, signals, exit); bridge.host runs many in one JVM, each with its front's
 * environment, working directory and stderr. Nothing here exits or touches process-wide state.
 * Failures are printed to {@code err} with dbus-daemon's text and returned as the exit status.
 */
public final class BusLaunch {
    private final Main.Options options;
    private final Map<String, String> env;
    private final Path cwd;
    private final PrintStream err;
    private final ConfigCache cache;
    private BusConfig config;
    private BusServer server;
    private CaptureSink capture;
    private String address;

    BusLaunch(Main.Options options, Map<String, String> env, Path cwd, PrintStream err, ConfigCache cache) {
        this.options = options;
        this.env = Map.copyOf(env);
        this.cwd = cwd;
        this.err = err;
        this.cache = cache;
    }

    /** The process's own bus: its environment and working directory, System.err. */
    static BusLaunch ofProcess(Main.Options options, ConfigCache cache) {
        return new BusLaunch(options, System.getenv(), null, System.err, cache);
    }

    /**
     * A bus for {@code argv} (dbus-daemon's options) run inside a host, with the caller's
     * environment and working directory. Returns null after printing the usage error to {@code
     * err}; {@link #usageStatus} is then the exit status (1, as dbus-daemon).
     */
    public static BusLaunch hosted(String[] argv, Map<String, String> env, Path cwd, PrintStream err,
                                   ConfigCache cache) {
        Main.Options o;
        try {
            o = Main.parse(argv);
        } catch (Main.UsageException e) {
            if (!e.getMessage().isEmpty()) {
                err.println(e.getMessage());
            }
            err.println(Main.USAGE);
            return null;
        }
        return new BusLaunch(o, env, cwd, err, cache);
    }

    /** The exit status after {@link #hosted} returned null. */
    public static int usageStatus() {
        return 1;
    }

    /**
     * Why this start cannot run inside a shared host (it needs a process of its own), or null.
     * The options are checked before {@link #load}, the configuration after it.
     */
    public String notHostable() {
        Main.Options o = options;
        if (o.version || o.introspect || o.fork || o.forkedChild || o.captureFile != null
                || o.monitorMetadata != null || o.metrics != null || o.metricsHttp != null || o.containers) {
            return "options that need a process of their own";
        }
        if (o.configFile == null) {
            return "no configuration file";
        }
        if (Main.SYSTEM_CONF.equals(o.configFile)) {
            return "the system bus";
        }
        if (config == null) {
            return null;
        }
        if (config.user() != null) {
            return "<user> in the configuration";
        }
        if (config.fork() && !o.nofork) {
            return "<fork> in the configuration";
        }
        if (config.pidfile() != null && !o.nopidfile) {
            return "<pidfile> in the configuration";
        }
        for (String listen : config.listen()) {
            String why = notHostableListen(listen);
            if (why != null) {
                return why;
            }
        }
        return null;
    }

    /** --syslog options and {@code <syslog>} are accepted: the bus logs to stderr either way. Only unix sockets at absolute paths: the host's mount namespace is checked to be the front's, nothing else. */
    static String notHostableListen(String listen) {
        UnixAddress a;
        try {
            a = UnixAddress.parse(listen);
        } catch (RuntimeException e) {
            return "listen address " + listen;
        }
        return switch (a.kind()) {
            case PATH, DIR, TMPDIR -> a.value().startsWith("/") ? null : "relative listen address " + listen;
            default -> "listen address " + listen;
        };
    }

    /** Reads the configuration; 0, or the exit status after the message. */
    int load() {
        if (options.configFile == null) {
            err.println("No configuration file specified.");
            err.println(Main.USAGE);
            return 1;
        }
        try {
            config = read();
        } catch (ConfigException e) {
            err.println("Failed to start message bus: " + e.getMessage());
            return 1;
        }
        if (config.listen().isEmpty()) {
            err.println("Failed to start message bus: No listen addresses specified in configuration file");
            return 1;
        }
        return 0;
    }

    /** As {@link #load} for a hosted bus. */
    public int loadHosted() {
        return load();
    }

    /** The configuration the options name, with --address applied; relative to the caller's directory. */
    BusConfig read() throws ConfigException {
        Path file = Path.of(options.configFile);
        if (cwd != null) {
            file = cwd.resolve(file);
        }
        String home = cwd == null ? System.getProperty("user.home") : env.getOrDefault("HOME", System.getProperty("user.home"));
        BusConfig c = BusConfigParser.parse(file, cache, env, home);
        if (options.address != null) {
            c.overrideListen(options.address);
        }
        c.setSystemdActivation(options.systemdActivation);
        return c;
    }

    BusConfig config() {
        return config;
    }

    Main.Options options() {
        return options;
    }

    /**
     * Builds the server (quotas from {@code server}'s factory), opens the capture, binds and
     * starts the loop. 0, or the exit status after the message (nothing is left open then).
     */
    int start(BusServer built) {
        server = built;
        server.setContainers(options.containers);
        if (options.monitorMetadata != null) {
            server.setMonitorMetadata(org.kdbusbridge.bridge.driver.Driver.monitorMetadataItems(options.monitorMetadata));
        }
        if (options.metrics != null || options.metricsHttp != null) {
            server.setMetrics(options.metrics == null ? null
                            : org.kdbusbridge.bridge.metrics.MetricsListener.parseAddress(options.metrics),
                    options.metricsHttp == null ? null : org.kdbusbridge.bridge.metrics.HttpAddress.parse(options.metricsHttp),
                    options.metricsTop);
        }
        if (options.captureFile != null) {
            try {
                capture = CaptureSink.open(Path.of(options.captureFile));
            } catch (IOException | RuntimeException e) {
                err.println("Failed to start message bus: cannot open capture file " + options.captureFile + ": " + e);
                return 1;
            }
            server.setCapture(capture);
        }
        try {
            address = server.start();
        } catch (IOException | RuntimeException e) {
            err.println("Failed to start message bus: " + e.getMessage());
            if (capture != null) {
                capture.close(1000);
            }
            return 1;
        }
        return 0;
    }

    /**
     * A hosted bus: answers {@code pid} (its front's) as its own and starts services with
     * {@code children}. 0, or the exit status after the message.
     */
    public int startHosted(org.kdbusbridge.core.bus.UserQuota quota, long pid, ServiceProcessContext children) {
        BusServer s = new BusServer(config, quota, org.kdbusbridge.bridge.transport.TransportSettings.fromSystemProperties());
        s.setHostedIdentity(pid, children);
        int status = start(s);
        if (status == 0) {
            wireReload();
        }
        return status;
    }

    /** ReloadConfig (and SIGHUP through the caller) read the configuration again, the same way. */
    void wireReload() {
        server.setReloader(() -> {
            try {
                return read();
            } catch (ConfigException e) {
                throw new IllegalStateException(e.getMessage(), e);
            }
        });
    }

    /** Queues a reload, as SIGHUP does. */
    public void reload() {
        server.requestReload();
    }

    public String address() {
        return address;
    }

    BusServer server() {
        return server;
    }

    /** A full stop: every connection closed, listeners and socket files gone, loop ended. */
    public void stop() {
        server.stop();
    }

    /** The stop before the process ends at once (BusServer.stopForExit). */
    void stopForExit() {
        server.stopForExit();
    }
}
