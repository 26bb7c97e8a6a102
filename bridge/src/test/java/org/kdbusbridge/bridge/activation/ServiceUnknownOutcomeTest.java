package org.kdbusbridge.bridge.activation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.driver.DriverEmitter;
import org.kdbusbridge.bridge.metrics.OpenMetricsWriter;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusLimits;

/**
 * The service_unknown outcome (issue 20): a start the core begins for a name whose service file
 * the registry no longer has. On a running bus that is only the moment between the directory
 * watcher's rescan (its own thread) and the loop publishing the new names, too short to hit on
 * purpose, so this builds that state on a real core bus and loop: the file is removed and
 * re-read (the core's activator goes), then the core is given the old name set again, as it still
 * has it in that moment, and asked to start the name. The start counts once, ends service_unknown,
 * and the dump says so.
 */
class ServiceUnknownOutcomeTest {
    private static final String NAME = "com.example.Stale";

    @Test
    void aStartWhoseFileIsGoneFromTheRegistryEndsServiceUnknownInTheDump(@TempDir Path dir) throws Exception {
        Path services = Files.createDirectories(dir.resolve("services"));
        Path file = services.resolve(NAME + ".service");
        Files.writeString(file, "[D-BUS Service]\nName=" + NAME + "\nExec=/bin/true\n");
        Bus bus = new Bus(new BusLimits());
        EventLoop loop = new EventLoop("service-unknown-test");
        loop.start();
        List<ServiceDir> dirs = ServiceDir.of(List.of(services));
        ActivationManager am = new ActivationManager(bus, loop, new DriverEmitter(bus), dirs,
                "unix:path=" + dir.resolve("bus"), "session", Map::of);
        try {
            onLoop(loop, () -> {
                bus.setActivationListener(am);
                am.setServiceDirs(dirs); // the scan: the core gets the activator
                return null;
            });
            assertTrue(onLoop(loop, () -> bus.activator(NAME) != null), "activatable after the scan");
            Files.delete(file);
            onLoop(loop, () -> {
                am.setServiceDirs(dirs); // the rescan without the file: the activator goes
                return null;
            });
            assertFalse(onLoop(loop, () -> bus.activator(NAME) != null), "gone after the rescan");
            boolean started = onLoop(loop, () -> {
                bus.setActivatable(Set.of(NAME), Set.of()); // the core's view before the publish
                return bus.activate(NAME);
            });
            assertTrue(started, "the core began a start");
            // The failure is reported on the next loop turn (after the send that asked): one more turn.
            String dump = onLoop(loop, () -> new OpenMetricsWriter(10).renderText(bus));
            assertTrue(dump.contains("\nkdbus_activations_started_total 1\n"), dump);
            assertTrue(dump.contains("\nkdbus_activations_total{outcome=\"service_unknown\"} 1\n"), dump);
            for (String other : List.of("acquired", "exec_failed", "exited", "signaled", "timeout", "systemd_failed", "limits")) {
                assertTrue(dump.contains("\nkdbus_activations_total{outcome=\"" + other + "\"} 0\n"), other + "\n" + dump);
            }
            assertTrue(dump.contains("\nkdbus_activations_running 0\n"), dump);
            assertTrue(dump.contains("\nkdbus_activation_start_seconds_count{result=\"failure\"} 1\n"), dump);
        } finally {
            am.shutdown();
            loop.shutdown();
            loop.awaitTermination(5000);
        }
    }

    /** Runs {@code task} on the loop thread and waits for its result (10 s deadline). */
    private static <T> T onLoop(EventLoop loop, Callable<T> task) throws Exception {
        CompletableFuture<T> f = new CompletableFuture<>();
        loop.execute(() -> {
            try {
                f.complete(task.call());
            } catch (Throwable e) {
                f.completeExceptionally(e);
            }
        });
        return f.get(10, TimeUnit.SECONDS);
    }
}
