package org.kdbusbridge.bridge.driver;

import org.kdbusbridge.core.connection.Connection;

/**
 * What the driver needs from the launcher's activation side: remember StartServiceByName
 * callers until the name appears (or the start fails), and learn when a name was acquired.
 */
public interface ActivationHooks {
    ActivationHooks NONE = new ActivationHooks() {
        @Override
        public void awaitStart(String name, Connection caller, long serial) { }

        @Override
        public void nameAcquired(String name) { }

        @Override
        public void systemdFailure(String unit, String errorName, String message) { }
    };

    /** systemd reported that it could not start {@code unit}. */
    void systemdFailure(String unit, String errorName, String message);

    /** {@code caller} asked StartServiceByName({@code name}) with {@code serial}; reply later. */
    void awaitStart(String name, Connection caller, long serial);

    /** {@code name} has a primary owner now: answer waiting StartServiceByName callers. */
    void nameAcquired(String name);
}
