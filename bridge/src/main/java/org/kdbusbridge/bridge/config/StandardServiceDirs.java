package org.kdbusbridge.bridge.config;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What {@code <standard_session_servicedirs/>} and {@code <standard_system_servicedirs/>}
 * expand to on Unix in dbus-daemon 1.14 (built with datadir /usr/share).
 *
 * Invariants: pure functions of the environment passed in, except {@link #setUpTransientDir}
 * (the one that creates directories, as dbus-daemon does); the order is dbus-daemon's
 * search order; empty path components are skipped; duplicates are left for the caller,
 * which keeps the first occurrence.
 */
final class StandardServiceDirs {
    private static final Logger LOG = LoggerFactory.getLogger(StandardServiceDirs.class);
    static final String DATADIR = "/usr/share";
    private static final String SESSION_SUFFIX = "/dbus-1/services";
    private static final String SYSTEM_SUFFIX = "/dbus-1/system-services";

    private StandardServiceDirs() { }

    /**
     * The session list: the transient directory ({@link #transientDir}), then $XDG_DATA_HOME
     * (default ~/.local/share), each entry of $XDG_DATA_DIRS (default
     * /usr/local/share:/usr/share), and the datadir, each with /dbus-1/services appended.
     */
    static List<String> session(Map<String, String> env, String home, Predicate<Path> setUpRuntimeDir) {
        List<String> out = new ArrayList<>();
        transientDir(env, setUpRuntimeDir).ifPresent(out::add);
        out.addAll(dataDirs(env, home));
        return out;
    }

    /**
     * $XDG_RUNTIME_DIR/dbus-1/services, where programs drop transient service files and then
     * call ReloadConfig: only when the variable is set and {@code setUpRuntimeDir} (in the
     * parser: {@link #setUpTransientDir}) accepts the runtime directory.
     */
    static Optional<String> transientDir(Map<String, String> env, Predicate<Path> setUpRuntimeDir) {
        String xrd = env.get("XDG_RUNTIME_DIR");
        if (xrd != null && !xrd.isEmpty() && setUpRuntimeDir.test(Path.of(xrd))) {
            return Optional.of(join(xrd, SESSION_SUFFIX));
        }
        return Optional.empty();
    }

    /** The session list without the transient directory. */
    static List<String> dataDirs(Map<String, String> env, String home) {
        List<String> out = new ArrayList<>();
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

    /**
     * What dbus-daemon does (at every parse, so also on reload) before it uses the transient
     * directory: XDG_RUNTIME_DIR must be a directory owned by our effective uid and not
     * writable by group or others; {@code dbus-1} and {@code dbus-1/services} below it are
     * created with mode 0700 if missing and checked the same way. If any check fails the
     * directory is left out with dbus-daemon's warning; that is not an error.
     */
    static boolean setUpTransientDir(Path runtimeDir) {
        Path dbus1 = runtimeDir.resolve("dbus-1");
        try {
            checkOwned("XDG_RUNTIME_DIR", runtimeDir, false);
            checkOwned("XDG_RUNTIME_DIR subdirectory", dbus1, true);
            checkOwned("XDG_RUNTIME_DIR subdirectory", dbus1.resolve("services"), true);
            return true;
        } catch (IOException e) {
            LOG.warn("Unable to set up transient service directory: {}", e.getMessage());
            return false;
        }
    }

    private static void checkOwned(String label, Path dir, boolean create) throws IOException {
        if (create) {
            try {
                Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            } catch (FileAlreadyExistsException e) {
                // fine: checked below, as dbus-daemon's mkdir() accepts EEXIST
            }
        }
        if (!Files.exists(dir)) { // stat() follows symlinks, as Files.exists does
            throw new IOException(label + " \"" + dir + "\" not available: No such file or directory");
        }
        if (!Files.isDirectory(dir)) {
            throw new IOException(label + " \"" + dir + "\" is not a directory");
        }
        int uid = (Integer) Files.getAttribute(dir, "unix:uid");
        int euid = (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid"); // /proc/self is owned by the euid
        if (uid != euid) {
            throw new IOException(label + " \"" + dir + "\" is owned by uid " + uid + ", not our uid " + euid);
        }
        int mode = (Integer) Files.getAttribute(dir, "unix:mode");
        if ((mode & 022) != 0) {
            throw new IOException(label + " \"" + dir + "\" can be written by others (mode 0"
                    + Integer.toOctalString(mode) + ")");
        }
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
