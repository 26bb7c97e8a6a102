// Invariants: every start() gives a fresh bus that nobody else uses, with a unix:path= address,
// or throws (and leaves nothing running); RunningBus.close() stops that bus and is idempotent.
package org.kdbusbridge.bridge.migration;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Starts one of the two buses of a differential run. */
public interface BusLauncher {
    String SESSION_CONF = "/usr/share/dbus-1/session.conf";
    Duration STARTUP = Duration.ofSeconds(30);

    /** A bus that is up; {@link #address()} is what DBUS_SESSION_BUS_ADDRESS gets. */
    interface RunningBus extends AutoCloseable {
        String address();

        @Override
        void close();
    }

    /** A short name for reports ("dbus-daemon", "kdbus-bridge"). */
    String name();

    RunningBus start(Path workDir) throws IOException;

    /** {@code EXECUTABLE --session --nofork --print-address} as a child process (dbus-daemon, or our launcher). */
    static BusLauncher process(String name, List<String> argv) {
        return new BusLauncher() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public RunningBus start(Path workDir) throws IOException {
                List<String> cmd = new ArrayList<>(argv);
                cmd.addAll(List.of("--session", "--nofork", "--print-address"));
                ProcessBuilder pb = new ProcessBuilder(cmd)
                        .redirectError(workDir.resolve(name + ".stderr.log").toFile())
                        .redirectInput(ProcessBuilder.Redirect.PIPE);
                pb.environment().remove("DBUS_SESSION_BUS_ADDRESS");
                pb.environment().remove("DBUS_STARTER_ADDRESS");
                Process p = pb.start();
                BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
                CompletableFuture<String> line = CompletableFuture.supplyAsync(() -> {
                    try {
                        return r.readLine();
                    } catch (IOException e) {
                        return null;
                    }
                });
                String address;
                try {
                    address = line.get(STARTUP.toMillis(), TimeUnit.MILLISECONDS);
                } catch (InterruptedException | ExecutionException | TimeoutException e) {
                    address = null;
                }
                if (address == null || !address.startsWith("unix:")) {
                    kill(p);
                    throw new IOException(name + " did not print an address (" + address + "); see "
                            + workDir.resolve(name + ".stderr.log"));
                }
                String a = address.trim();
                return new RunningBus() {
                    @Override
                    public String address() {
                        return a;
                    }

                    @Override
                    public void close() {
                        kill(p);
                    }
                };
            }
        };
    }

    private static void kill(Process p) {
        List<ProcessHandle> children = p.descendants().toList();
        p.destroy();
        children.forEach(ProcessHandle::destroy);
        try {
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    /** The class behind bin/kdbus-bridge; named, not imported, so migration does not link against cli. */
    String OUR_MAIN = "org.kdbusbridge.bridge.cli.Main";

    /**
     * Our bus as a child JVM on this JVM's class path (the migration tool's own jar), started as
     * {@link #process} starts dbus-daemon, so it is reached through its address only.
     */
    static BusLauncher ours() {
        List<String> argv = new ArrayList<>();
        argv.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        argv.addAll(childJvmOptions(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments(),
                Runtime.version().feature()));
        argv.addAll(List.of("-cp", System.getProperty("java.class.path"), OUR_MAIN));
        return process("kdbus-bridge", argv);
    }

    /**
     * The tool's own JVM options (bin/kdbus-bridge gives it conf/jvm.options: heap, GC, C1), so
     * our bus runs as shipped; less the class-data archive, agents and logging, which belong to
     * this JVM. Native access is granted on the command line, since the jar manifest's grant
     * applies to {@code -jar} only.
     */
    static List<String> childJvmOptions(List<String> parent, int jdkFeature) {
        List<String> out = new ArrayList<>();
        for (String a : parent) {
            if (a.startsWith("-XX:SharedArchiveFile") || a.startsWith("-XX:ArchiveClassesAtExit")
                    || a.startsWith("-XX:AOT") || a.startsWith("-Xshare") || a.startsWith("-javaagent")
                    || a.startsWith("-agentlib") || a.startsWith("-agentpath") || a.startsWith("-Xlog")) {
                continue;
            }
            out.add(a);
        }
        if (jdkFeature >= 22 && out.stream().noneMatch(a -> a.startsWith("--enable-native-access"))) {
            out.add("--enable-native-access=ALL-UNNAMED");
        }
        return out;
    }

    /** TEST-ONLY: {@code bus} behind a {@link FaultRelay} that applies {@code drop}; the bus itself is unchanged. */
    static BusLauncher withFaults(BusLauncher bus, SignalDrop drop) {
        return new BusLauncher() {
            @Override
            public String name() {
                return bus.name();
            }

            @Override
            public RunningBus start(Path workDir) throws IOException {
                RunningBus inner = bus.start(workDir);
                FaultRelay relay;
                try {
                    relay = FaultRelay.start(workDir.resolve("fault-relay.socket"), inner.address(), drop);
                } catch (IOException | RuntimeException e) {
                    inner.close();
                    throw e;
                }
                return new RunningBus() {
                    @Override
                    public String address() {
                        return relay.address();
                    }

                    @Override
                    public void close() {
                        relay.close();
                        inner.close();
                    }
                };
            }
        };
    }
}
