package org.kdbusbridge.bridge.activation;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

import org.kdbusbridge.bridge.driver.ActivationHooks;
import org.kdbusbridge.bridge.driver.DBusErrors;
import org.kdbusbridge.bridge.driver.Driver;
import org.kdbusbridge.bridge.driver.DriverEmitter;
import org.kdbusbridge.bridge.transport.EventLoop;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusCounters.Activation;
import org.kdbusbridge.core.bus.Delivery;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.Message;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Service activation on the bus side: keeps the core's activators in step with the service
 * files, starts services when an activator asks, and ends every start with exactly one outcome.
 *
 * Invariants: runs on the loop thread (spawner and watcher callbacks hop over with
 * {@link EventLoop#execute}); a name has at most one start in flight; a start ends exactly once
 * - the name was acquired (StartServiceByName callers get SUCCESS), or it failed (exec
 * failure, the child exited or was killed before taking the name, service_start_timeout),
 * and then every waiting caller and every message queued on the activator gets the error.
 */
public final class ActivationManager implements ActivationHooks, Bus.ActivationListener {
    private static final Logger LOG = LoggerFactory.getLogger(ActivationManager.class);

    /** One start in flight. */
    private static final class Start {
        final List<Connection> callers = new ArrayList<>();
        final List<Long> serials = new ArrayList<>();
        EventLoop.Timer timeout;
        boolean spawned;
        /** activationRequested began it (counted as started), at this System.nanoTime(). */
        boolean begun;
        long begunNanos;
        /** The unit systemd was asked to start, kept so its ActivationFailure matches even if the file went. */
        String systemdUnit;
    }

    private final Bus bus;
    private final EventLoop loop;
    private final DriverEmitter out;
    private final ServiceRegistry registry;
    private final Spawner spawner;
    private final Supplier<Map<String, String>> activationEnvironment;
    private final Map<String, Start> starts = new HashMap<>();
    private boolean systemdActivation;
    private ServiceDirWatcher watcher;

    static final String SYSTEMD = "org.freedesktop.systemd1";
    static final String SYSTEMD_ACTIVATOR = "org.freedesktop.systemd1.Activator";
    static final String SYSTEMD_PATH = "/org/freedesktop/systemd1";
    static final String SYSTEMD_MANAGER = "org.freedesktop.systemd1.Manager";

    public ActivationManager(Bus bus, EventLoop loop, DriverEmitter out, List<ServiceDir> serviceDirs, String busAddress,
                             String busType, Supplier<Map<String, String>> activationEnvironment) {
        this(bus, loop, out, serviceDirs, busAddress, busType, activationEnvironment, ServiceProcessContext.inherited());
    }

    /** As above, the services started with {@code children}'s environment, directory and streams. */
    public ActivationManager(Bus bus, EventLoop loop, DriverEmitter out, List<ServiceDir> serviceDirs, String busAddress,
                             String busType, Supplier<Map<String, String>> activationEnvironment,
                             ServiceProcessContext children) {
        this.bus = bus;
        this.loop = loop;
        this.out = out;
        this.activationEnvironment = activationEnvironment;
        this.registry = new ServiceRegistry(serviceDirs, false);
        this.spawner = new Spawner(busAddress, busType, Spawner.busEnvironment(children.environment()),
                children.directory(), children.stdout(), children.stderr(), children.stdio(), new Spawner.Listener() {
            @Override
            public void onSpawned(String name, long pid) {
                loop.execute(() -> spawned(name, pid));
            }

            @Override
            public void onExecFailed(String name, String message) {
                loop.execute(() -> fail(name, Activation.EXEC_FAILED, DBusErrors.SPAWN_EXEC_FAILED, message));
            }

            @Override
            public void onExited(String name, long pid, int exitCode) {
                loop.execute(() -> exited(name, pid, exitCode));
            }

            @Override
            public void onSignaled(String name, long pid, int signal) {
                loop.execute(() -> fail(name, Activation.SIGNALED, DBusErrors.SPAWN_CHILD_SIGNALED, Spawner.childSignaledMessage(name, signal)));
            }
        });
    }

    /**
     * Reads the service files (blocking: call before the loop serves clients, or off it) and
     * starts watching their directories; the watcher rescans on its own thread.
     */
    public void start() {
        registry.rescan();
        loop.execute(() -> publish(false));
        try {
            watcher = new ServiceDirWatcher(ServiceDir.watched(registry.directories()), () -> {
                if (registry.rescan()) {
                    loop.execute(() -> publish(true));
                }
            });
            watcher.start();
        } catch (IOException e) {
            LOG.warn("Service directories are not watched: {}", e.getMessage());
        }
    }

    /**
     * --systemd-activation: services with SystemdService= are started by asking systemd, and
     * org.freedesktop.systemd1 needs no service file: what is sent to it while it has no owner
     * waits for systemd to connect (dbus-daemon assumes systemd will). Call before {@link #start}.
     */
    public void setSystemdActivation(boolean on) {
        this.systemdActivation = on;
    }

    /** New service dirs after a reload (loop thread; the directory scan is a few small reads). */
    public void setServiceDirs(List<ServiceDir> dirs) {
        registry.setDirectories(dirs);
        if (registry.rescan()) {
            publish(true);
        }
    }

    public void shutdown() {
        if (watcher != null) {
            watcher.close();
        }
        spawner.shutdown();
    }

    /** Pushes the current set of names to the core; orphaned waiters get ServiceUnknown. */
    private void publish(boolean announce) {
        List<Message> orphaned = bus.setActivatable(registry.snapshot().keySet(),
                systemdActivation ? Set.of(SYSTEMD) : Set.of());
        for (Message m : orphaned) {
            if (m.expectsReply()) {
                replyError(m, DBusErrors.SERVICE_UNKNOWN, "The name " + m.destination() + " was not provided by any .service files");
            }
        }
        if (announce) {
            out.signal("ActivatableServicesChanged");
        }
    }

    /**
     * A start is about to look {@code name} up: as dbus-daemon, read the files again if a
     * directory or that name's file changed since the last scan (a file dropped into or
     * removed from the unwatched transient directory, or a change the watcher has not reported
     * yet). Costs one stat per directory, plus the file's.
     */
    @Override
    public void activatableLookup(String name) {
        ServiceRegistry.Refresh r = registry.refreshFor(name);
        // dbus-daemon announces nothing for this look-up (checked against 1.14.10), but a change
        // in a watched directory it announces anyway, when inotify makes it reload.
        if (r != null && r.namesChanged()) {
            publish(r.watchedChanged());
        }
    }

    @Override
    public void awaitStart(String name, Connection caller, long serial) {
        Start s = starts.computeIfAbsent(name, n -> new Start());
        s.callers.add(caller);
        s.serials.add(serial);
        bus.addActivationWaiters(1); // max_pending_service_starts counts them until the start ends
    }

    /**
     * Called by the core inside the send (or StartServiceByName) that needs {@code name}, before
     * monitors see that message. Failures found here are reported on the next loop turn, so the
     * message is shown before its error, as in dbus-daemon.
     */
    @Override
    public void activationRequested(String name) {
        Start s = starts.computeIfAbsent(name, n -> new Start());
        if (!s.begun) {
            s.begun = true;
            s.begunNanos = System.nanoTime();
            bus.counters().noteActivationStarted();
        }
        long timeoutMs = bus.limits().serviceStartTimeout;
        if (systemdActivation && name.equals(SYSTEMD)) {
            // As dbus-daemon: systemd itself is expected to connect on its own, file or not.
            s.timeout = loop.schedule(timeoutMs, () -> fail(name, Activation.TIMEOUT, DBusErrors.TIMED_OUT, "Activation of " + name + " timed out"));
            return;
        }
        ServiceFile file = registry.snapshot().get(name);
        if (file == null) {
            failSoon(name, Activation.SERVICE_UNKNOWN, DBusErrors.SERVICE_UNKNOWN, "The name " + name + " was not provided by any .service files");
            return;
        }
        if (systemdActivation && file.systemdService().isPresent()) {
            s.timeout = loop.schedule(timeoutMs, () -> fail(name, Activation.TIMEOUT, DBusErrors.TIMED_OUT, "Activation of " + name + " timed out"));
            s.systemdUnit = file.systemdService().get();
            requestFromSystemd(name, s.systemdUnit);
            return;
        }
        List<String> argv;
        try {
            argv = ExecLine.parse(file.exec());
        } catch (ExecLine.ParseException e) {
            failSoon(name, Activation.EXEC_FAILED, DBusErrors.SPAWN_EXEC_FAILED, Spawner.execFailedMessage(name, e.getMessage()));
            return;
        }
        s.timeout = loop.schedule(timeoutMs, () -> fail(name, Activation.TIMEOUT, DBusErrors.TIMED_OUT, "Activation of " + name + " timed out"));
        LOG.info("Activating service name='{}' requested", name);
        spawner.spawn(name, argv, activationEnvironment.get());
    }

    /**
     * systemd activation: a directed ActivationRequest(unit) signal from the bus to
     * org.freedesktop.systemd1, sent at once (monitors see it now); if systemd is not on the bus
     * yet, the signal waits on systemd's activator, which it starts, and reaches systemd when it
     * takes its name (dbus-daemon queues it as a pending activation of systemd).
     */
    private void requestFromSystemd(String name, String unit) {
        if (bus.resolve(SYSTEMD) != null) {
            LOG.info("Activating via systemd: service name='{}' unit='{}'", name, unit);
        } else {
            LOG.info("Activating systemd to hand-off: service name='{}' unit='{}'", name, unit);
        }
        Delivery d = out.directedSignalToName(SYSTEMD, SYSTEMD_ACTIVATOR, "ActivationRequest", unit);
        if (d == Delivery.TOO_MANY_ACTIVATIONS) {
            failSoon(name, Activation.LIMITS, DBusErrors.LIMITS_EXCEEDED,
                    Driver.tooManyActivations(SYSTEMD, bus.limits().maxPendingServiceStarts));
        } else if (d != Delivery.OK) { // systemd neither on the bus nor activatable: nobody can start it
            failSoon(name, Activation.SERVICE_UNKNOWN, DBusErrors.SERVICE_UNKNOWN, "The name " + SYSTEMD + " was not provided by any .service files");
        }
    }

    /**
     * UpdateActivationEnvironment under systemd activation: the same assignments go to systemd
     * as Manager.SetEnvironment(as), from the bus, NO_REPLY_EXPECTED; to systemd's unique name
     * if it is on the bus, else to org.freedesktop.systemd1, which waits for (and activates)
     * systemd, as dbus-daemon's bus_driver_send_or_activate.
     */
    @Override
    public String environmentUpdated(List<String> assignments) {
        if (!systemdActivation) {
            return null;
        }
        Delivery d = out.callFromBus(bus.resolve(SYSTEMD), SYSTEMD, SYSTEMD_PATH, SYSTEMD_MANAGER,
                "SetEnvironment", assignments);
        return d == Delivery.TOO_MANY_ACTIVATIONS
                ? Driver.tooManyActivations(SYSTEMD, bus.limits().maxPendingServiceStarts) : null;
    }

    /**
     * systemd's ActivationFailure(unit, error name, message) for a unit we asked for: matched
     * against the unit each start asked for, not the current files (as dbus-daemon, whose pending
     * activation keeps its unit), so a file removed meanwhile does not turn it into a timeout.
     */
    @Override
    public void systemdFailure(String unit, String errorName, String message) {
        for (Map.Entry<String, Start> e : new ArrayList<>(starts.entrySet())) {
            if (unit.equals(e.getValue().systemdUnit)) {
                fail(e.getKey(), Activation.SYSTEMD_FAILED, errorName, message);
            }
        }
    }

    private void spawned(String name, long pid) {
        Start s = starts.get(name);
        if (s != null) {
            s.spawned = true;
        }
    }

    private void exited(String name, long pid, int exitCode) {
        if (exitCode == 0) {
            return; // it may have handed over to a daemonised child; the timeout still applies
        }
        fail(name, Activation.EXITED, DBusErrors.SPAWN_CHILD_EXITED, Spawner.childExitedMessage(name, exitCode));
    }

    @Override
    public void nameAcquired(String name) {
        Start s = starts.remove(name);
        if (s == null) {
            return;
        }
        counted(s, Activation.ACQUIRED);
        bus.addActivationWaiters(-s.callers.size());
        if (s.timeout != null) {
            s.timeout.cancel();
        }
        LOG.info("Successfully activated service '{}'", name);
        for (int i = 0; i < s.callers.size(); i++) {
            Connection c = s.callers.get(i);
            if (!c.isClosed()) {
                out.replyUint32(c, s.serials.get(i), 1); // DBUS_START_REPLY_SUCCESS
            }
        }
    }

    /** {@link #fail}, on the next loop turn (for failures found inside the send that asked). */
    private void failSoon(String name, Activation outcome, String errorName, String message) {
        loop.execute(() -> fail(name, outcome, errorName, message));
    }

    /**
     * Ends a start in failure: every StartServiceByName caller and the sender of every queued
     * message hears why; as dbus-daemon (try_send_activation_failure), even a signal or a call
     * sent with NO_REPLY_EXPECTED gets the error.
     */
    private void fail(String name, Activation outcome, String errorName, String message) {
        Start s = starts.remove(name);
        if (s == null) {
            return; // already ended (acquired, or failed another way)
        }
        counted(s, outcome);
        bus.addActivationWaiters(-s.callers.size());
        if (s.timeout != null) {
            s.timeout.cancel();
        }
        LOG.warn("Activation of {} failed: {}", name, message);
        for (int i = 0; i < s.callers.size(); i++) {
            Connection c = s.callers.get(i);
            if (!c.isClosed()) {
                out.error(c, s.serials.get(i), errorName, message);
            }
        }
        for (Message m : bus.failActivation(name)) {
            replyError(m, errorName, message);
        }
    }

    /** The metrics: a start that began ends here, exactly once (its Start is removed by the caller). */
    private void counted(Start s, Activation outcome) {
        if (s.begun) {
            bus.counters().noteActivationEnded(outcome, System.nanoTime() - s.begunNanos);
        }
    }

    private void replyError(Message m, String errorName, String message) {
        Connection c = m.sender();
        if (c != null && !c.isClosed()) {
            out.error(c, m.serial(), errorName, message);
        }
    }
}
