package org.kdbusbridge.bridge.activation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StandardServiceDirsTest {

    private static List<String> paths(List<ServiceDir> dirs) {
        return dirs.stream().map(d -> d.path().toString()).toList();
    }

    @Test
    void sessionDefaults() {
        List<ServiceDir> dirs = StandardServiceDirs.session(Map.<String, String>of()::get, "/home/u");
        assertEquals(List.of("/home/u/.local/share/dbus-1/services", "/usr/local/share/dbus-1/services",
                "/usr/share/dbus-1/services"), paths(dirs), "DBUS_DATADIR=/usr/share is a duplicate");
        assertTrue(dirs.stream().allMatch(d -> d.watch() && !d.strictNaming()));
    }

    @Test
    void sessionFromXdgVariables() {
        Map<String, String> env = Map.of("XDG_DATA_HOME", "/d/home/", "XDG_DATA_DIRS", "/a: /b ::/usr/share:/a",
                "XDG_RUNTIME_DIR", "/run/user/1000");
        List<ServiceDir> dirs = StandardServiceDirs.session(env::get, "/home/u");
        assertEquals(List.of("/run/user/1000/dbus-1/services", "/d/home/dbus-1/services", "/a/dbus-1/services",
                "/b/dbus-1/services", "/usr/share/dbus-1/services"), paths(dirs));
        assertEquals(new ServiceDir(Path.of("/run/user/1000/dbus-1/services"), true, false), dirs.get(0));
        assertEquals(List.of(Path.of("/d/home/dbus-1/services"), Path.of("/a/dbus-1/services"),
                Path.of("/b/dbus-1/services"), Path.of("/usr/share/dbus-1/services")), ServiceDir.watched(dirs));
    }

    @Test
    void system() {
        assertEquals(List.of("/usr/local/share/dbus-1/system-services", "/usr/share/dbus-1/system-services",
                "/lib/dbus-1/system-services"), paths(StandardServiceDirs.system()));
    }

    @Test
    void transientDirIsCreatedAndChecked(@TempDir Path tmp) throws Exception {
        Path runtime = Files.createDirectory(tmp.resolve("run"),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Optional<Path> p = StandardServiceDirs.setUpTransientDir(runtime);
        assertEquals(Optional.of(runtime.resolve("dbus-1/services")), p);
        assertTrue(Files.isDirectory(p.get()));
        assertEquals(Optional.of(runtime.resolve("dbus-1/services")), StandardServiceDirs.setUpTransientDir(runtime),
                "idempotent");

        List<ServiceDir> dirs = StandardServiceDirs.sessionWithTransientSetUp(
                Map.of("XDG_RUNTIME_DIR", runtime.toString())::get, "/home/u");
        assertEquals(new ServiceDir(runtime.resolve("dbus-1/services"), true, false), dirs.get(0));

        Path open = Files.createDirectory(tmp.resolve("open"));
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxrwxrwx"));
        assertEquals(Optional.empty(), StandardServiceDirs.setUpTransientDir(open));
        assertEquals(Optional.empty(), StandardServiceDirs.setUpTransientDir(tmp.resolve("missing")));
        assertFalse(Files.exists(tmp.resolve("missing")));
    }
}
