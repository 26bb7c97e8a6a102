// Invariants: immutable value; path is absolute-or-as-given and never null. strictNaming and
// watch carry dbus-daemon's per-directory flags (STRICT_NAMING, NO_WATCH).
package org.kdbusbridge.bridge.activation;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * One service directory with dbus-daemon's flags.
 *
 * @param path         the directory
 * @param strictNaming only files named {@code <Name>.service} are loaded (dbus-daemon sets this
 *                     for the transient {@code $XDG_RUNTIME_DIR/dbus-1/services} directory)
 * @param watch        whether {@link ServiceDirWatcher} should watch it (false for the transient
 *                     directory: its writers call ReloadConfig instead)
 */
public record ServiceDir(Path path, boolean strictNaming, boolean watch) {

    public ServiceDir {
        Objects.requireNonNull(path, "path");
    }

    /** A plain {@code <servicedir>}: lenient naming, watched. */
    public static ServiceDir of(Path path) {
        return new ServiceDir(path, false, true);
    }

    /** Plain directories for each path, in order. */
    public static List<ServiceDir> of(List<Path> paths) {
        List<ServiceDir> out = new ArrayList<>(paths.size());
        for (Path p : paths) {
            out.add(of(p));
        }
        return List.copyOf(out);
    }

    /** The paths of the directories that should be watched, in order. */
    public static List<Path> watched(List<ServiceDir> dirs) {
        List<Path> out = new ArrayList<>();
        for (ServiceDir d : dirs) {
            if (d.watch()) {
                out.add(d.path());
            }
        }
        return List.copyOf(out);
    }
}
