package org.kdbusbridge.bridge.driver;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.StartCheck;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.Message;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The activation methods: StartServiceByName (its rules are the core's
 * {@link Bus#startService}; this renders them), UpdateActivationEnvironment and the
 * environment it keeps, and systemd's ActivationFailure signal.
 */
final class ActivationMethods {
    // Logged under the driver's name, as before these methods had a class of their own.
    private static final Logger LOG = LoggerFactory.getLogger(Driver.class);

    private final Bus bus;
    private final DriverEmitter out;
    private final Supplier<ActivationHooks> activation;
    private final Map<String, String> activationEnvironment = new LinkedHashMap<>();

    ActivationMethods(Bus bus, DriverEmitter out, Supplier<ActivationHooks> activation) {
        this.bus = bus;
        this.out = out;
        this.activation = activation;
    }

    Map<String, String> environment() {
        return Collections.unmodifiableMap(activationEnvironment);
    }

    /**
     * A StartServiceByName that reaches the method itself (any path, as the table allows; the
     * right interface and args); every other one gets its error through the normal route.
     */
    static boolean isStartServiceByName(DriverCall call) {
        return call.type() == Message.METHOD_CALL && "StartServiceByName".equals(call.member())
                && (call.iface() == null || DriverTables.IFACE.equals(call.iface()))
                && "su".equals(call.signature()) && call.caller().uniqueName() != null;
    }

    /**
     * Renders {@link Bus#startService}: LimitsExceeded, ServiceUnknown, ALREADY_RUNNING (2), or
     * a wait for the owner. Monitors see the call after a systemd ActivationRequest it caused
     * (dbus-daemon runs that request in a transaction of its own, first), else first.
     */
    void startServiceByName(DriverCall call) {
        Runnable capture = call.capture();
        String name;
        try {
            name = call.body().readString();
            call.body().readUint32(); // flags: ignored, as by dbus-daemon
        } catch (ProtocolException e) {
            capture.run();
            out.error(call, DBusErrors.INVALID_ARGS, e.getMessage());
            return;
        }
        StartCheck check = bus.startService(name);
        if (check != StartCheck.START) {
            capture.run();
        }
        switch (check) {
            case LIMIT -> out.error(call, DBusErrors.LIMITS_EXCEEDED,
                    Driver.tooManyActivations(name, bus.limits().maxPendingServiceStarts));
            case UNKNOWN -> out.error(call, DBusErrors.SERVICE_UNKNOWN,
                    "The name " + name + " was not provided by any .service files");
            case ALREADY_RUNNING -> out.replyUint32(call.caller(), call.serial(), 2);
            case START -> {
                // Answered with SUCCESS (1) once the name has an owner, or with the start's error.
                activation.get().awaitStart(name, call.caller(), call.serial());
                bus.activate(name);
                capture.run();
            }
        }
    }

    void updateActivationEnvironment(DriverCall call) throws ProtocolException {
        Connection c = call.caller();
        Object value = call.body().readValue();
        List<String> assignments = new ArrayList<>();
        if (value instanceof Map<?, ?> env) {
            for (Map.Entry<?, ?> e : env.entrySet()) {
                activationEnvironment.put(String.valueOf(e.getKey()), String.valueOf(e.getValue()));
                assignments.add(e.getKey() + "=" + e.getValue());
            }
        }
        // Under systemd activation systemd gets them too (SetEnvironment), before our reply.
        String refused = activation.get().environmentUpdated(assignments);
        if (refused != null) {
            out.error(call, DBusErrors.LIMITS_EXCEEDED, refused);
            return;
        }
        out.replyEmpty(c, call.serial());
    }

    /** Only the owner of org.freedesktop.systemd1 may report activation failures. */
    void systemdActivationFailure(DriverCall call) {
        Connection c = call.caller();
        if (bus.resolve("org.freedesktop.systemd1") != c) {
            LOG.warn("Ignoring forged ActivationFailure message from connection {}", c);
            return;
        }
        try {
            if (!"sss".equals(call.signature())) {
                return;
            }
            String unit = call.body().readString();
            String code = call.body().readString();
            String text = call.body().readString();
            activation.get().systemdFailure(unit, code, text);
        } catch (ProtocolException e) {
            LOG.warn("Malformed ActivationFailure from {}: {}", c, e.getMessage());
        }
    }
}
