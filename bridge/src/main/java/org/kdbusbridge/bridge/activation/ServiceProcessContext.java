package org.kdbusbridge.bridge.activation;

import java.io.File;
import java.util.Map;
import java.util.Objects;

/**
 * What an activated service inherits from its bus, as dbus-daemon's children inherit it from
 * the daemon process: the environment, the working directory and where stdout/stderr go. A bus
 * that is its own process uses the JVM's ({@link #inherited()}); a bus hosted in a shared JVM
 * (bridge.host) uses its front's.
 *
 * @param environment the bus's environment, before {@link Spawner#busEnvironment} filters it
 * @param directory   the children's working directory, null for the JVM's own
 * @param stdout      where the children's stdout goes
 * @param stderr      where the children's stderr goes
 * @param stdio       a hosted bus's front's descriptors, inherited as they are (then stdout and
 *                    stderr are only the fallback where the native spawn is missing), or null
 */
public record ServiceProcessContext(Map<String, String> environment, File directory,
                                    ProcessBuilder.Redirect stdout, ProcessBuilder.Redirect stderr,
                                    ChildStdio stdio) {
    public ServiceProcessContext {
        environment = Map.copyOf(environment);
        Objects.requireNonNull(stdout, "stdout");
        Objects.requireNonNull(stderr, "stderr");
    }

    public ServiceProcessContext(Map<String, String> environment, File directory,
                                 ProcessBuilder.Redirect stdout, ProcessBuilder.Redirect stderr) {
        this(environment, directory, stdout, stderr, null);
    }

    /** This process's own environment, directory and streams. */
    public static ServiceProcessContext inherited() {
        return new ServiceProcessContext(System.getenv(), null, ProcessBuilder.Redirect.INHERIT,
                ProcessBuilder.Redirect.INHERIT);
    }
}
