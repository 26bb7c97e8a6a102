// Invariants: session()/system() are pure functions of their arguments (no I/O), so they are
// deterministic in tests; only setUpTransientDir() touches the file system. The order and the
// de-duplication (first occurrence kept, exact string match) follow dbus-daemon 1.14's
// <standard_session_servicedirs/> and <standard_system_servicedirs/>.
package org.kdbusbridge.bridge.activation;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * dbus-daemon's standard service directories.
 *
 * <p>Session, in order: {@code $XDG_RUNTIME_DIR/dbus-1/services} (strict naming, not watched; only
 * when XDG_RUNTIME_DIR is set), then {@code $XDG_DATA_HOME/dbus-1/services} (default
 * {@code $HOME/.local/share}), each entry of {@code $XDG_DATA_DIRS} (default
 * {@code /usr/local/share:/usr/share}) + {@code /dbus-1/services}, then
 * {@code DBUS_DATADIR/dbus-1/services}. Empty XDG_DATA_DIRS entries are skipped and entries are
 * whitespace-trimmed, like dbus' path splitting. Duplicates keep their first position.
 *
 * <p>System: {@code /usr/local/share}, {@code /usr/share}, DBUS_DATADIR, {@code /lib}, each +
 * {@code /dbus-1/system-services}.
 */
public final class StandardServiceDirs {

    private static final Logger LOG = LoggerFactory.getLogger(StandardServiceDirs.class);

    /** dbus' configure-time datadir on Debian/Fedora/Arch builds. */
    public static final String DBUS_DATADIR = "/usr/share";
    static final String SESSION_SUFFIX = "/dbus-1/services";
    static final String SYSTEM_SUFFIX = "/dbus-1/system-services";

    private StandardServiceDirs() {
    }

    /**
     * The session directories computed from the environment, without touching the disk. The
     * transient directory is included whenever XDG_RUNTIME_DIR is set; see
     * {@link #sessionWithTransientSetUp} for dbus-daemon's checked and created variant.
     *
     * @param getenv  environment lookup (System::getenv in production)
     * @param homeDir used when XDG_DATA_HOME is unset (dbus uses the passwd home directory,
     *                which is what {@code user.home} is)
     */
    public static List<ServiceDir> session(Function<String, String> getenv, String homeDir) {
        List<ServiceDir> out = new ArrayList<>();
        String runtime = getenv.apply("XDG_RUNTIME_DIR");
        if (runtime != null) {
            out.add(new ServiceDir(Path.of(concat(runtime, SESSION_SUFFIX)), true, false));
        }
        out.addAll(standardSession(getenv, homeDir));
        return dedup(out);
    }

    /** {@link #session(Function, String)} with the JVM's {@code user.home}. */
    public static List<ServiceDir> session(Function<String, String> getenv) {
        return session(getenv, System.getProperty("user.home"));
    }

    /**
     * What dbus-daemon really does for {@code <standard_session_servicedirs/>}: the transient
     * directory is only used if XDG_RUNTIME_DIR is a directory owned by us and not writable by
     * group/others; {@code dbus-1} and {@code dbus-1/services} below it are created (0700) if
     * missing and checked the same way. A failure is logged and the directory left out. Does I/O.
     */
    public static List<ServiceDir> sessionWithTransientSetUp(Function<String, String> getenv, String homeDir) {
        List<ServiceDir> out = new ArrayList<>();
        String runtime = getenv.apply("XDG_RUNTIME_DIR");
        if (runtime != null) {
            setUpTransientDir(Path.of(runtime))
                    .ifPresent(p -> out.add(new ServiceDir(p, true, false)));
        }
        out.addAll(standardSession(getenv, homeDir));
        return dedup(out);
    }

    /** The system directories (no environment involved, like dbus-daemon). */
    public static List<ServiceDir> system() {
        List<ServiceDir> out = new ArrayList<>();
        for (String base : List.of("/usr/local/share", "/usr/share", DBUS_DATADIR, "/lib")) {
            out.add(ServiceDir.of(Path.of(concat(base, SYSTEM_SUFFIX))));
        }
        return dedup(out);
    }

    private static List<ServiceDir> standardSession(Function<String, String> getenv, String homeDir) {
        StringBuilder search = new StringBuilder();
        String dataHome = getenv.apply("XDG_DATA_HOME");
        search.append(dataHome != null ? dataHome : concat(homeDir == null ? "" : homeDir, "/.local/share"));
        search.append(':');
        String dataDirs = getenv.apply("XDG_DATA_DIRS");
        search.append(dataDirs != null ? dataDirs + ":" : "/usr/local/share:/usr/share:");
        search.append(DBUS_DATADIR);
        List<ServiceDir> out = new ArrayList<>();
        for (String p : splitPaths(search.toString())) {
            out.add(ServiceDir.of(Path.of(concat(p, SESSION_SUFFIX))));
        }
        return out;
    }

    /** dbus' path splitting: ':'-separated, whitespace-trimmed, empty entries skipped. */
    static List<String> splitPaths(String s) {
        List<String> out = new ArrayList<>();
        for (String part : s.split(":", -1)) {
            String t = part.strip();
            if (!t.isEmpty()) {
                out.add(t);
            }
        }
        return out;
    }

    /** Joins with exactly one '/' at the seam (dbus' concat_dir_and_file). */
    static String concat(String dir, String file) {
        boolean dirSlash = dir.endsWith("/");
        boolean fileSlash = file.startsWith("/");
        if (dirSlash && fileSlash) {
            return dir + file.substring(1);
        }
        if (!dirSlash && !fileSlash && !dir.isEmpty()) {
            return dir + "/" + file;
        }
        return dir + file;
    }

    private static List<ServiceDir> dedup(List<ServiceDir> dirs) {
        Set<Path> seen = new LinkedHashSet<>();
        List<ServiceDir> out = new ArrayList<>();
        for (ServiceDir d : dirs) {
            if (seen.add(d.path())) {
                out.add(d);
            }
        }
        return List.copyOf(out);
    }

    /**
     * Checks XDG_RUNTIME_DIR and creates/checks {@code dbus-1/services} below it, as dbus-daemon
     * does before using the transient directory. Empty (with a warning) when unusable.
     */
    public static Optional<Path> setUpTransientDir(Path runtimeDir) {
        Path dbus1 = runtimeDir.resolve("dbus-1");
        Path services = dbus1.resolve("services");
        try {
            checkOwned("XDG_RUNTIME_DIR", runtimeDir, false);
            checkOwned("XDG_RUNTIME_DIR subdirectory", dbus1, true);
            checkOwned("XDG_RUNTIME_DIR subdirectory", services, true);
            return Optional.of(services);
        } catch (IOException e) {
            LOG.warn("Unable to set up transient service directory: {}", e.getMessage());
            return Optional.empty();
        }
    }

    private static void checkOwned(String label, Path dir, boolean create) throws IOException {
        if (create) {
            try {
                Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(
                        Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
                                PosixFilePermission.OWNER_EXECUTE)));
            } catch (FileAlreadyExistsException e) {
                // fine, checked below
            }
        }
        if (!Files.exists(dir)) {
            throw new IOException(label + " \"" + dir + "\" not available: No such file or directory");
        }
        if (!Files.isDirectory(dir)) {
            throw new IOException(label + " \"" + dir + "\" is not a directory");
        }
        int uid = (Integer) Files.getAttribute(dir, "unix:uid");
        int euid = (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid") /* our euid */;
        if (uid != euid) {
            throw new IOException(label + " \"" + dir + "\" is owned by uid " + uid + ", not our uid " + euid);
        }
        int mode = (Integer) Files.getAttribute(dir, "unix:mode");
        if ((mode & 022) != 0) {
            throw new IOException(label + " \"" + dir + "\" can be written by others (mode 0"
                    + Integer.toOctalString(mode) + ")");
        }
    }
}
