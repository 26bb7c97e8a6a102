package org.kdbusbridge.bridge.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import org.kdbusbridge.bridge.capture.CaptureSink;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.config.BusConfigParser;
import org.kdbusbridge.bridge.config.ConfigCache;
import org.kdbusbridge.bridge.config.ConfigException;
import org.kdbusbridge.bridge.server.BusServer;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.TransportSettings;

/**
 * dbus-daemon's command line, so that launchers (dbus-run-session, test runners) can start
 * us instead. Usage errors exit 1 with the usage line on stderr, as dbus-daemon does.
 */
public final class Main {
    public static final String VERSION = "0.1.0";
    static final String SESSION_CONF = "/usr/share/dbus-1/session.conf";
    static final String SYSTEM_CONF = "/usr/share/dbus-1/system.conf";

    private Main() { }

    /** The parsed command line. */
    static final class Options {
        String configFile;
        String address;
        boolean printAddress;
        String printAddressFd;
        boolean printPid;
        String printPidFd;
        boolean fork;
        boolean nofork;
        boolean nopidfile;
        boolean systemdActivation;
        String syslog;
        boolean introspect;
        boolean version;
        /** Our extension: write every message to this pcapng file (busctl capture's format). */
        String captureFile;
        /**
         * Our extension: the AttachMetadata items every BecomeMonitor connection and the capture
         * get (comma list of item names, as given; checked by Driver.monitorMetadataItems).
         */
        String monitorMetadata;
        /** --kdbus-metrics=unix:path=PATH: serve the OpenMetrics exposition there (checked at parse). */
        String metrics;
        /** --kdbus-metrics=http://127.0.0.1:PORT: and over HTTP on loopback (checked at parse). */
        String metricsHttp;
        /** --kdbus-metrics-top=N: per-connection series for the N busiest connections only. */
        int metricsTop = DEFAULT_METRICS_TOP;
        /** --kdbus-containers: offer org.freedesktop.DBus.Containers1 (off, as in dbus-daemon's usual build). */
        boolean containers;
        /** Internal: we are the child a --fork parent started; report to it on stdout. */
        boolean forkedChild;
    }

    /** Thrown for a command line dbus-daemon would refuse; carries the message and exit code. */
    static final class UsageException extends Exception {
        final int exitCode;

        UsageException(String message) {
            super(message);
            this.exitCode = 1;
        }
    }

    static final String USAGE = "kdbus-bridge [--version] [--session] [--system] [--config-file=FILE]"
            + " [--print-address[=DESCRIPTOR]] [--print-pid[=DESCRIPTOR]] [--introspect] [--address=ADDRESS]"
            + " [--nopidfile] [--nosyslog] [--syslog] [--syslog-only] [--nofork] [--fork] [--systemd-activation]"
            + " [--kdbus-capture=FILE] [--kdbus-monitor-metadata=ITEMS] [--kdbus-containers]"
            + " [--kdbus-metrics=unix:path=PATH] [--kdbus-metrics=http://127.0.0.1:PORT] [--kdbus-metrics-top=N]";

    static Options parse(String[] argv) throws UsageException {
        Options o = new Options();
        String prev = null;
        for (String arg : argv) {
            switch (arg) {
                case "--help", "-h", "-?" -> throw new UsageException("");
                case "--version" -> o.version = true;
                case "--introspect" -> o.introspect = true;
                case "--nosyslog" -> o.syslog = "never";
                case "--syslog" -> o.syslog = "always";
                case "--syslog-only" -> o.syslog = "only";
                case "--nofork" -> { o.nofork = true; o.fork = false; }
                case "--fork" -> { o.fork = true; o.nofork = false; }
                case "--systemd-activation" -> o.systemdActivation = true;
                case "--nopidfile" -> o.nopidfile = true;
                case "--system" -> o.configFile = once(o.configFile, SYSTEM_CONF, "system");
                case "--session" -> o.configFile = once(o.configFile, SESSION_CONF, "session");
                case "--config-file", "--address", CAPTURE, MONITOR_METADATA, METRICS -> { }
                case "--print-address" -> o.printAddress = true;
                case CONTAINERS -> o.containers = true;
                case "--print-pid" -> o.printPid = true;
                case FORKED_CHILD -> o.forkedChild = true;
                default -> {
                    if (arg.startsWith("--config-file=")) {
                        o.configFile = once(o.configFile, arg.substring(14), "config-file");
                    } else if ("--config-file".equals(prev)) {
                        o.configFile = once(o.configFile, arg, "config-file");
                    } else if (arg.startsWith("--address=")) {
                        o.address = onceAddress(o.address, arg.substring(10));
                    } else if ("--address".equals(prev)) {
                        o.address = onceAddress(o.address, arg);
                    } else if (arg.startsWith(CAPTURE + "=")) {
                        o.captureFile = onceCapture(o.captureFile, arg.substring(CAPTURE.length() + 1));
                    } else if (CAPTURE.equals(prev)) {
                        o.captureFile = onceCapture(o.captureFile, arg);
                    } else if (arg.startsWith(MONITOR_METADATA + "=")) {
                        o.monitorMetadata = onceMonitorMetadata(o.monitorMetadata,
                                arg.substring(MONITOR_METADATA.length() + 1));
                    } else if (MONITOR_METADATA.equals(prev)) {
                        o.monitorMetadata = onceMonitorMetadata(o.monitorMetadata, arg);
                    } else if (arg.startsWith(METRICS + "=")) {
                        metricsAddress(o, arg.substring(METRICS.length() + 1));
                    } else if (METRICS.equals(prev)) {
                        metricsAddress(o, arg);
                    } else if (arg.startsWith(METRICS_TOP + "=")) {
                        o.metricsTop = metricsTop(arg.substring(METRICS_TOP.length() + 1));
                    } else if (arg.startsWith("--print-address=")) {
                        o.printAddressFd = onceFd(o.printAddressFd, arg.substring(16), "print-address");
                        o.printAddress = true;
                    } else if ("--print-address".equals(prev)) {
                        o.printAddressFd = onceFd(o.printAddressFd, arg, "print-address");
                    } else if (arg.startsWith("--print-pid=")) {
                        o.printPidFd = onceFd(o.printPidFd, arg.substring(12), "print-pid");
                        o.printPid = true;
                    } else if ("--print-pid".equals(prev)) {
                        o.printPidFd = onceFd(o.printPidFd, arg, "print-pid");
                    } else {
                        throw new UsageException("");
                    }
                }
            }
            prev = arg;
        }
        if (CAPTURE.equals(prev)) {
            throw new UsageException(CAPTURE + " needs a file name");
        }
        if (MONITOR_METADATA.equals(prev)) {
            throw new UsageException(MONITOR_METADATA + " needs a list of metadata items");
        }
        if (METRICS.equals(prev)) {
            throw new UsageException(METRICS + " needs an address (unix:path=PATH or http://127.0.0.1:PORT)");
        }
        checkFd(o.printAddressFd);
        checkFd(o.printPidFd);
        return o;
    }

    static final String FORKED_CHILD = "--kdbus-bridge-forked-child";
    static final String CAPTURE = "--kdbus-capture";
    static final String MONITOR_METADATA = "--kdbus-monitor-metadata";
    static final String CONTAINERS = "--kdbus-containers";
    static final String METRICS = "--kdbus-metrics";
    static final String METRICS_TOP = "--kdbus-metrics-top";
    static final int DEFAULT_METRICS_TOP = 100;

    /** One unix:path= and one http:// address at most (both may be given). */
    private static void metricsAddress(Options o, String value) throws UsageException {
        boolean http = org.kdbusbridge.bridge.metrics.HttpAddress.isHttp(value);
        String existing = http ? o.metricsHttp : o.metrics;
        if (existing != null) {
            throw new UsageException(METRICS + " specified but " + existing + " already requested");
        }
        try {
            if (http) {
                org.kdbusbridge.bridge.metrics.HttpAddress.parse(value);
                o.metricsHttp = value;
            } else {
                org.kdbusbridge.bridge.metrics.MetricsListener.parseAddress(value);
                o.metrics = value;
            }
        } catch (IllegalArgumentException e) {
            throw new UsageException(METRICS + ": " + e.getMessage());
        }
    }

    private static int metricsTop(String value) throws UsageException {
        try {
            int n = Integer.parseInt(value);
            if (n >= 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // fall through
        }
        throw new UsageException(METRICS_TOP + " needs a number of connections (0 or more): " + value);
    }

    /** The item list is checked here, so a typo fails the start as a usage error. */
    private static String onceMonitorMetadata(String existing, String value) throws UsageException {
        if (existing != null) {
            throw new UsageException(MONITOR_METADATA + " specified but " + existing + " already requested");
        }
        try {
            org.kdbusbridge.bridge.driver.Driver.monitorMetadataItems(value);
        } catch (IllegalArgumentException e) {
            throw new UsageException(MONITOR_METADATA + ": " + e.getMessage());
        }
        return value;
    }

    private static String onceCapture(String existing, String value) throws UsageException {
        if (existing != null) {
            throw new UsageException(CAPTURE + " specified but capturing to " + existing + " already requested");
        }
        if (value.isEmpty()) {
            throw new UsageException(CAPTURE + " needs a file name");
        }
        return value;
    }

    private static void checkFd(String fd) throws UsageException {
        if (fd == null || fd.isEmpty()) {
            return;
        }
        try {
            if (Integer.parseInt(fd) >= 0) {
                return;
            }
        } catch (NumberFormatException e) {
            // fall through
        }
        throw new UsageException("Invalid file descriptor: \"" + fd + "\"");
    }

    private static String once(String existing, String value, String what) throws UsageException {
        if (existing != null) {
            throw new UsageException("--" + what + " specified but configuration file " + existing + " already requested");
        }
        return value;
    }

    private static String onceAddress(String existing, String value) throws UsageException {
        if (existing != null) {
            throw new UsageException("--address specified but address " + existing + " already requested");
        }
        return value;
    }

    private static String onceFd(String existing, String value, String what) throws UsageException {
        if (existing != null) {
            throw new UsageException("--" + what + " specified but printing to " + existing + " already requested");
        }
        return value;
    }

    public static void main(String[] argv) {
        System.exit(run(argv));
    }

    static int run(String[] argv) {
        if (argv.length > 0 && argv[0].equals("proxy")) {
            return ProxyFront.run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        }
        if (argv.length > 0 && argv[0].equals("endpoint")) {
            return EndpointCommand.run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        }
        if (argv.length > 0 && argv[0].equals("run-session")) {
            return RunSession.run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        }
        if (argv.length > 0 && argv[0].equals("train-cache")) {
            return CacheTraining.run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        }
        if (argv.length > 0 && argv[0].equals("diff")) {
            return org.kdbusbridge.bridge.migration.DiffCommand.run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        }
        if (argv.length > 0 && argv[0].equals("top")) {
            return org.kdbusbridge.bridge.top.TopCommand.run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        }
        if (argv.length > 0 && argv[0].equals("draw")) {
            return org.kdbusbridge.bridge.draw.DrawCommand.run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        }
        if (argv.length > 0 && argv[0].equals("host")) {
            return org.kdbusbridge.bridge.host.BusHost.run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        }
        if (argv.length > 0 && argv[0].equals("replay")) {
            return org.kdbusbridge.bridge.migration.ReplayCommand.run(java.util.Arrays.copyOfRange(argv, 1, argv.length));
        }
        for (String a : argv) {
            if (a.startsWith(org.kdbusbridge.bridge.server.HandOver.RESUME_OPTION)) {
                return resume(a, argv);
            }
            if (a.equals(org.kdbusbridge.bridge.server.HandOver.CHECK_OPTION)) {
                return check(a, argv);
            }
            if (a.equals(ReplaceCommand.OPTION)) {
                return ReplaceCommand.run(argv);
            }
        }
        Options o;
        try {
            o = parse(argv);
        } catch (UsageException e) {
            if (!e.getMessage().isEmpty()) {
                System.err.println(e.getMessage());
            }
            System.err.println(USAGE);
            return e.exitCode;
        }
        if (o.version) {
            System.out.println("kdbus-bridge Message Bus Daemon " + VERSION + " (dbus-daemon 1.14 command line)");
            return 0;
        }
        if (o.introspect) {
            System.out.print(org.kdbusbridge.bridge.driver.Driver.introspectionXml());
            return 0;
        }
        ConfigCache cache = configCache();
        BusLaunch launch = BusLaunch.ofProcess(o, cache);
        int loaded = launch.load();
        if (loaded != 0) {
            return loaded;
        }
        BusConfig config = launch.config();
        if (!o.forkedChild && (o.fork || config.fork()) && !o.nofork) {
            return Daemon.forkAndWait(argv, o);
        }
        // From here on SIGTERM/SIGINT only stop the bus (after the pid file, too): one arriving
        // during the start is acted on once the bus is up and its address is out.
        StopSignals signals = StopSignals.install();
        Path pidFile = null;
        if (config.pidfile() != null && !o.nopidfile) {
            pidFile = Path.of(config.pidfile());
            String failure = Daemon.writePidFile(pidFile);
            if (failure != null) {
                System.err.println("Failed to start message bus: " + failure);
                return 1;
            }
        }
        BusServer fresh = new BusServer(config, TransportSettings.fromSystemProperties());
        // Only a bus that is its own process can hand over by exec (never one inside the host).
        org.kdbusbridge.bridge.server.HandOver handOver = org.kdbusbridge.bridge.server.HandOver.fromEnvironment(argv,
                org.kdbusbridge.bridge.server.HandOverSettings.fromSystemProperties());
        fresh.setHandOver(handOver);
        if (launch.start(fresh) != 0) {
            Daemon.removePidFile(pidFile);
            return 1;
        }
        BusServer server = launch.server();
        String address = launch.address();
        if (config.user() != null) {
            String failure = Daemon.switchUser(config.user(), server);
            if (failure != null) {
                System.err.println("Failed to start message bus: " + failure);
                server.stop();
                Daemon.removePidFile(pidFile);
                return 1;
            }
        }
        launch.wireReload();
        Daemon.onSighup(server::requestReload);
        if (handOver.possible()) {
            StopSignals.onHandOverSignal(server::requestHandOver);
        }
        try {
            if (o.forkedChild) {
                Daemon.reportToParent(address);
            } else {
                if (o.printAddress) {
                    printTo(o.printAddressFd, address + "\n");
                }
                if (o.printPid) {
                    printTo(o.printPidFd, ProcessHandle.current().pid() + "\n");
                }
            }
        } catch (IOException e) {
            System.err.println("Failed to start message bus: " + e.getMessage());
            server.stop();
            Daemon.removePidFile(pidFile);
            return 1;
        }
        String signal;
        try {
            signal = signals.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            signal = StopSignals.TERM;
        }
        // A JVM writing a class-data archive must exit normally, after a full stop; any other
        // ends at once (StopSignals.end), so only what outlives the process is cleaned up here.
        boolean training = StopSignals.trainingCdsArchive();
        if (training) {
            server.stop();
        } else {
            server.stopForExit();
        }
        Daemon.removePidFile(pidFile);
        return StopSignals.end(signal, training);
    }

    /**
     * The new program of a live hand-over (hidden --kdbus-resume=FD, docs/handover.md section 4):
     * the same argv and config as the old bus, but no fork, pid file, user switch, printing or
     * binding: the bus is rebuilt from the snapshot memfd over the fds execve kept. A failure here
     * is past the point of no return: the bus ends.
     */
    static int resume(String option, String[] argv) {
        java.util.List<String> rest = new java.util.ArrayList<>();
        for (String a : argv) {
            if (!a.equals(option)) {
                rest.add(a);
            }
        }
        String[] args = rest.toArray(new String[0]);
        int fd;
        Options o;
        BusConfig config;
        ConfigCache cache = configCache();
        try {
            fd = Integer.parseInt(option.substring(org.kdbusbridge.bridge.server.HandOver.RESUME_OPTION.length()));
            o = parse(args);
            config = load(o, cache);
        } catch (NumberFormatException | UsageException | ConfigException e) {
            System.err.println("Failed to resume message bus: " + e.getMessage());
            return 1;
        }
        StopSignals signals = StopSignals.install();
        BusServer server;
        try {
            server = org.kdbusbridge.bridge.server.HandOver.resume(fd, config, TransportSettings.fromSystemProperties(), args,
                    org.kdbusbridge.bridge.server.HandOverSettings.fromSystemProperties(), s -> {
                        s.setContainers(o.containers);
                        if (o.monitorMetadata != null) {
                            s.setMonitorMetadata(org.kdbusbridge.bridge.driver.Driver.monitorMetadataItems(o.monitorMetadata));
                        }
                    }, s -> {
                        // SIGHUP came ignored through execve: default again right before the handler goes
                        // in (HotSpot leaves an ignored one alone), and before Reexec is answered.
                        org.kdbusbridge.bridge.transport.LibC.Native.resetSignal(1);
                        wireReload(s, o, cache);
                        // SIGUSR2 came ignored through execve too: a second request during the pause was dropped.
                        StopSignals.onHandOverSignal(s::requestHandOver);
                    });
        } catch (IOException | RuntimeException e) {
            System.err.println("Failed to resume message bus: " + e);
            return 1;
        }
        String signal;
        try {
            signal = signals.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            signal = StopSignals.TERM;
        }
        server.stopForExit();
        Daemon.removePidFile(config.pidfile() != null && !o.nopidfile ? Path.of(config.pidfile()) : null);
        return StopSignals.end(signal, false);
    }

    /**
     * Check mode of a live hand-over (hidden --kdbus-handover-check, docs/handover.md section 5):
     * run by the old bus as a child, through the new launcher, with the old bus's argv. It parses
     * the command line and the configuration exactly as resume will, checks that the native exec
     * is there, reads the trial snapshot on stdin and restores it into a bus without sockets. It
     * binds, forks, prints and writes nothing else: "ok FORMAT" on stdout and status 0, or one
     * line on stderr naming why not and status 1.
     */
    static int check(String option, String[] argv) {
        java.util.List<String> rest = new java.util.ArrayList<>();
        for (String a : argv) {
            if (!a.equals(option)) {
                rest.add(a);
            }
        }
        String verdict;
        try {
            Options o = parse(rest.toArray(new String[0]));
            BusConfig config;
            try {
                config = load(o, configCache());
            } catch (ConfigException e) {
                throw new IllegalStateException("configuration " + o.configFile + ": " + e.getMessage(), e);
            }
            String unsupported = LibC.Native.handOverUnsupported();
            if (unsupported != null) {
                throw new IllegalStateException(unsupported);
            }
            verdict = org.kdbusbridge.bridge.server.HandOver.check(System.in.readAllBytes(), config);
        } catch (UsageException e) {
            System.err.println(org.kdbusbridge.bridge.server.HandOver.CHECK_FAILED + "command line: "
                    + (e.getMessage().isEmpty() ? USAGE : e.getMessage()));
            return 1;
        } catch (IOException | RuntimeException | LinkageError e) {
            String why = e.getMessage() == null ? e.toString() : e.getMessage();
            System.err.println(org.kdbusbridge.bridge.server.HandOver.CHECK_FAILED + why.replace('\n', ' '));
            return 1;
        }
        System.out.println(verdict);
        System.out.flush();
        return 0;
    }

    /**
     * ReloadConfig and SIGHUP read the configuration again. The training run calls this too,
     * so its classes and lambdas are in the class-data cache and a start does not spin them.
     */
    static void wireReload(BusServer server, Options o, ConfigCache cache) {
        server.setReloader(() -> {
            try {
                return load(o, cache);
            } catch (ConfigException e) {
                throw new IllegalStateException(e.getMessage(), e);
            }
        });
        Daemon.onSighup(server::requestReload);
    }

    /** -Dkdbus.cacheDir: where read busconfig files are kept (bin/kdbus-bridge passes its cache directory). */
    static final String CACHE_DIR_PROPERTY = "kdbus.cacheDir";

    /** The busconfig cache this JVM was given (none if the property is unset). */
    static ConfigCache configCache() {
        return ConfigCache.in(System.getProperty(CACHE_DIR_PROPERTY));
    }

    /** Reads the configuration the options name, with --address applied. */
    static BusConfig load(Options o, ConfigCache cache) throws ConfigException {
        BusConfig config = BusConfigParser.parse(Path.of(o.configFile), cache);
        if (o.address != null) {
            config.overrideListen(o.address);
        }
        config.setSystemdActivation(o.systemdActivation);
        return config;
    }

    /** One write of the whole line, to stdout or to the given descriptor (closed after if > 2). */
    static void printTo(String fd, String line) throws IOException {
        byte[] bytes = line.getBytes(StandardCharsets.UTF_8);
        if (fd == null || fd.isEmpty() || fd.equals("1")) {
            PrintStream out = System.out;
            out.write(bytes);
            out.flush();
            return;
        }
        int n;
        try {
            n = Integer.parseInt(fd);
        } catch (NumberFormatException e) {
            throw new IOException("Invalid file descriptor: \"" + fd + "\"");
        }
        if (n == 2) {
            System.err.write(bytes);
            System.err.flush();
            return;
        }
        // write(2) on the fd itself, as dbus-daemon: a pipe, file or socket alike (a socket cannot be
        // reopened through /proc), and a closed or read-only fd fails with its text
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocateDirect(bytes.length).put(bytes).flip();
        long addr = LibC.Native.address(buf);
        int done = 0;
        while (done < bytes.length) {
            long w = LibC.INSTANCE.write(n, addr + done, bytes.length - done);
            if (w > 0) {
                done += (int) w;
            } else if (w < 0 && LibC.Native.errno() == LibC.EINTR) {
                continue;
            } else {
                String text = LibC.Native.strerror(w < 0 ? LibC.Native.errno() : LibC.EBADF);
                throw new IOException("Writing to pipe: " + text.replaceFirst(" \\([A-Z0-9]+\\)$", ""));
            }
        }
        if (n > 2) {
            LibC.INSTANCE.close(n);
        }
    }
}
