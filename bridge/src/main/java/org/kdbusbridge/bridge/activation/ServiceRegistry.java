// Invariants: snapshot() is always an immutable, fully built map (name -> file) published through
// one volatile write, so any thread (the event loop included) may read it without locking.
// rescan() does blocking directory and file I/O and must never run on the event loop; rescans are
// serialised. Earlier directories win for duplicate names; inside one directory the file named
// <Name>.service wins, then the lexicographically first file name (dbus-daemon: "arbitrary").
// A broken file or an unreadable directory never fails a scan: it is skipped with a warning.
package org.kdbusbridge.bridge.activation;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The activatable services found in an ordered list of service directories.
 *
 * <p>Typical use: build it, {@link #rescan()} on a worker thread (the {@link ServiceDirWatcher}
 * callback thread is fine), then hand {@link #snapshot()} to the loop with
 * {@code EventLoop.execute}. A new registry (or {@link #setDirectories}) on ReloadConfig.
 */
public final class ServiceRegistry {

    private static final Logger LOG = LoggerFactory.getLogger(ServiceRegistry.class);

    private final boolean usesServiceHelper;
    private volatile List<ServiceDir> dirs;
    private volatile Map<String, ServiceFile> snapshot = Map.of();
    /** Each directory's modification time at the last scan ("missing" if it had none). */
    private List<Object> dirTimes = List.of();
    /** Each loaded file's modification time at the last scan, by bus name. */
    private Map<String, Object> fileTimes = Map.of();

    /**
     * @param dirs              directories in precedence order (first wins)
     * @param usesServiceHelper true on a system bus that activates through a setuid launch helper:
     *                          then a mismatched file name is loaded but warned about, as
     *                          dbus-daemon does; on other buses it is accepted silently
     *                          (except in strict-naming directories, where it is rejected)
     */
    public ServiceRegistry(List<ServiceDir> dirs, boolean usesServiceHelper) {
        this.dirs = List.copyOf(dirs);
        this.usesServiceHelper = usesServiceHelper;
    }

    /** Plain (non-strict) directories, session-bus naming rules. Nothing is scanned yet. */
    public static ServiceRegistry of(List<Path> dirs) {
        return new ServiceRegistry(ServiceDir.of(dirs), false);
    }

    public List<ServiceDir> directories() {
        return dirs;
    }

    /** Replaces the directory list (takes effect at the next {@link #rescan()}). */
    public void setDirectories(List<ServiceDir> newDirs) {
        this.dirs = List.copyOf(newDirs);
    }

    /** The last scan's result: immutable, in directory order. Empty before the first scan. */
    public Map<String, ServiceFile> snapshot() {
        return snapshot;
    }

    /**
     * Rescans every directory (blocking I/O) and publishes a new snapshot.
     *
     * @return true if the set of names differs from the previous snapshot's. Changed contents
     *         under the same names (an edited Exec=) are in the new snapshot but return false;
     *         compare snapshots with {@code equals} to detect those.
     */
    public synchronized boolean rescan() {
        return rescan(modificationTimes(dirs));
    }

    private boolean rescan(List<Object> now) {
        dirTimes = now;
        Map<String, ServiceFile> next = scan(dirs, usesServiceHelper);
        Map<String, Object> times = new java.util.HashMap<>();
        for (ServiceFile f : next.values()) {
            times.put(f.name(), modificationTime(f.path()));
        }
        Map<String, ServiceFile> prev = snapshot;
        snapshot = next;
        fileTimes = times;
        return !prev.keySet().equals(next.keySet());
    }

    /**
     * Whether a directory's modification time differs from the last scan's (a file was added,
     * removed or renamed there, or the directory appeared or went): one stat per directory,
     * so a lookup of a name nobody provides costs no parsing.
     */
    public synchronized boolean directoriesChanged() {
        return !modificationTimes(dirs).equals(dirTimes);
    }

    /** Whether one of the watched directories changed since the last scan. */
    public synchronized boolean watchedDirectoriesChanged() {
        return watchedChanged(modificationTimes(dirs));
    }

    private boolean watchedChanged(List<Object> now) {
        for (int i = 0; i < dirs.size() && i < dirTimes.size(); i++) {
            if (dirs.get(i).watch() && !now.get(i).equals(dirTimes.get(i))) {
                return true;
            }
        }
        return dirs.size() != dirTimes.size();
    }

    /**
     * {@link #directoriesChanged()}, or the file that provides {@code name} was modified in
     * place since the last scan (dbus-daemon re-checks a service file's mtime on each use).
     */
    public synchronized boolean changedFor(String name) {
        return changedFor(name, modificationTimes(dirs));
    }

    private boolean changedFor(String name, List<Object> now) {
        if (!now.equals(dirTimes)) {
            return true;
        }
        ServiceFile f = snapshot.get(name);
        return f != null && !modificationTime(f.path()).equals(fileTimes.get(name));
    }

    /** What a start's look-up did: nothing (null), or a rescan, and whether a watched directory changed. */
    public record Refresh(boolean namesChanged, boolean watchedChanged) {}

    /**
     * A start is about to look {@code name} up: rescans if a directory or that name's file
     * changed since the last scan. One stat per directory (taken once), plus the file's.
     */
    public synchronized Refresh refreshFor(String name) {
        List<Object> now = modificationTimes(dirs);
        if (!changedFor(name, now)) {
            return null;
        }
        boolean watched = watchedChanged(now);
        return new Refresh(rescan(now), watched);
    }

    private static List<Object> modificationTimes(List<ServiceDir> dirs) {
        List<Object> out = new ArrayList<>(dirs.size());
        for (ServiceDir d : dirs) {
            out.add(modificationTime(d.path()));
        }
        return out;
    }

    private static Object modificationTime(Path p) {
        try {
            return Files.getLastModifiedTime(p);
        } catch (IOException | SecurityException e) {
            return "missing";
        }
    }

    /** One full scan; pure except for reading the directories. */
    static Map<String, ServiceFile> scan(List<ServiceDir> dirs, boolean usesServiceHelper) {
        Map<String, ServiceFile> out = new LinkedHashMap<>();
        for (ServiceDir dir : dirs) {
            Map<String, ServiceFile> inDir = scanOne(dir, usesServiceHelper);
            for (ServiceFile f : inDir.values()) {
                ServiceFile earlier = out.putIfAbsent(f.name(), f);
                if (earlier != null) {
                    LOG.debug("{} provides {}, already provided by {}: ignored", f.path(), f.name(), earlier.path());
                }
            }
        }
        return Collections.unmodifiableMap(out);
    }

    private static Map<String, ServiceFile> scanOne(ServiceDir dir, boolean usesServiceHelper) {
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir.path())) {
            for (Path p : ds) {
                if (p.getFileName().toString().endsWith(ServiceFile.SUFFIX)) {
                    files.add(p);
                }
            }
        } catch (NoSuchFileException | NotDirectoryException e) {
            LOG.debug("service directory {} does not exist", dir.path());
            return Map.of();
        } catch (IOException | SecurityException e) {
            LOG.warn("cannot read service directory {}: {}", dir.path(), e.toString());
            return Map.of();
        }
        files.sort(Comparator.INSTANCE);
        Map<String, ServiceFile> out = new LinkedHashMap<>();
        for (Path p : files) {
            if (!Files.isRegularFile(p)) {
                LOG.warn("{}: not a regular file, skipped", p);
                continue;
            }
            ServiceFile f;
            try {
                f = ServiceFile.load(p);
            } catch (ServiceFileException e) {
                LOG.warn("skipping service file: {}", e.getMessage());
                continue;
            }
            if (!f.hasExpectedFileName()) {
                if (dir.strictNaming()) {
                    LOG.warn("Service file \"{}\" should have been named \"{}\": not loading it", p, f.expectedFileName());
                    continue;
                } else if (usesServiceHelper) {
                    LOG.warn("Service file \"{}\" should have been named \"{}\" and will not work with system bus activation",
                            p, f.expectedFileName());
                } else {
                    LOG.debug("Name of \"{}\" should canonically be \"{}\"", p, f.expectedFileName());
                }
            }
            ServiceFile earlier = out.get(f.name());
            if (earlier == null) {
                out.put(f.name(), f);
            } else if (f.hasExpectedFileName() && !earlier.hasExpectedFileName()) {
                LOG.debug("{} and {} both provide {}: using the canonically named one", earlier.path(), p, f.name());
                out.put(f.name(), f);
            } else {
                LOG.debug("{} and {} both provide {}: using the first", earlier.path(), p, f.name());
            }
        }
        return out;
    }

    /** File-name order, so the choice among same-directory duplicates is deterministic. */
    private enum Comparator implements java.util.Comparator<Path> {
        INSTANCE;

        @Override
        public int compare(Path a, Path b) {
            return a.getFileName().toString().compareTo(b.getFileName().toString());
        }
    }

    @Override
    public String toString() {
        return "ServiceRegistry" + Objects.toString(snapshot.keySet());
    }
}
