package org.kdbusbridge.bridge.config;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * What {@code <standard_session_servicedirs/>} and {@code <standard_system_servicedirs/>}
 * expand to on Unix in dbus-daemon 1.14 (built with datadir /usr/share).
 *
 * Invariants: pure functions of the environment passed in; the order is dbus-daemon's
 * search order; empty path components are skipped; duplicates are left for the caller,
 * which keeps the first occurrence.
 */
final class StandardServiceDirs {
    static final String DATADIR = "/usr/share";
    private static final String SESSION_SUFFIX = "/dbus-1/services";
    private static final String SYSTEM_SUFFIX = "/dbus-1/system-services";

    private StandardServiceDirs() { }

    /**
     * The session list: $XDG_RUNTIME_DIR/dbus-1/services (transient services; only when the
     * variable is set and {@code runtimeDirUsable} accepts it), then $XDG_DATA_HOME (default
     * ~/.local/share), each entry of $XDG_DATA_DIRS (default /usr/local/share:/usr/share), and
     * the datadir, each with /dbus-1/services appended.
     */
    static List<String> session(Map<String, String> env, String home, Predicate<Path> runtimeDirUsable) {
        List<String> out = new ArrayList<>();
        String xrd = env.get("XDG_RUNTIME_DIR");
        if (xrd != null && !xrd.isEmpty() && runtimeDirUsable.test(Path.of(xrd))) {
            out.add(join(xrd, SESSION_SUFFIX));
        }
        String dataHome = env.get("XDG_DATA_HOME");
        StringBuilder search = new StringBuilder();
        search.append(dataHome != null ? dataHome : join(home, "/.local/share")).append(':');
        String dataDirs = env.get("XDG_DATA_DIRS");
        search.append(dataDirs != null ? dataDirs + ":" : "/usr/local/share:/usr/share:");
        search.append(DATADIR);
        split(search.toString(), SESSION_SUFFIX, out);
        return out;
    }

    /** The system list: /usr/local/share, /usr/share, the datadir and /lib, each + /dbus-1/system-services. */
    static List<String> system() {
        List<String> out = new ArrayList<>();
        split("/usr/local/share:/usr/share:" + DATADIR + ":/lib", SYSTEM_SUFFIX, out);
        return out;
    }

    /** The runtime-dir check used by the parser: an existing directory. */
    static boolean usableRuntimeDir(Path p) {
        return Files.isDirectory(p);
    }

    private static void split(String path, String suffix, List<String> out) {
        for (String part : path.split(":", -1)) {
            String t = part.strip();
            if (!t.isEmpty()) {
                out.add(join(t, suffix));
            }
        }
    }

    private static String join(String dir, String file) {
        return dir.endsWith("/") ? dir + file.substring(1) : dir + file;
    }
}
