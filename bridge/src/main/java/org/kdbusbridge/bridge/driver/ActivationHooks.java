package org.kdbusbridge.bridge.driver;

import java.util.List;

import org.kdbusbridge.core.connection.Connection;

/**
 * What the driver needs from the launcher's activation side: remember StartServiceByName
 * callers until the name appears (or the start fails), learn when a name was acquired, and
 * pass activation environment changes on (to systemd, under systemd activation).
 */
public interface ActivationHooks {
    ActivationHooks NONE = new ActivationHooks() {
        @Override
        public void awaitStart(String name, Connection caller, long serial) { }

        @Override
        public void nameAcquired(String name) { }

        @Override
        public void systemdFailure(String unit, String errorName, String message) { }

        @Override
        public String environmentUpdated(List<String> assignments) {
            return null;
        }
    };

    /**
     * UpdateActivationEnvironment set {@code assignments} ("KEY=VALUE", in the caller's order);
     * under systemd activation they are forwarded to systemd. Returns null, or the
     * LimitsExceeded text if systemd could not be activated to take them.
     */
    String environmentUpdated(List<String> assignments);

    /** systemd reported that it could not start {@code unit}. */
    void systemdFailure(String unit, String errorName, String message);

    /** {@code caller} asked StartServiceByName({@code name}) with {@code serial}; reply later. */
    void awaitStart(String name, Connection caller, long serial);

    /** {@code name} has a primary owner now: answer waiting StartServiceByName callers. */
    void nameAcquired(String name);
}
