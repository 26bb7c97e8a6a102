package org.kdbusbridge.bridge.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StandardServiceDirsTest {
    @Test
    void sessionDefaultsWithoutXdgVariables() {
        assertEquals(List.of("/home/u/.local/share/dbus-1/services", "/usr/local/share/dbus-1/services",
                "/usr/share/dbus-1/services", "/usr/share/dbus-1/services"),
                StandardServiceDirs.session(Map.of(), "/home/u", p -> true));
    }

    @Test
    void sessionFollowsXdgVariablesInOrder() {
        Map<String, String> env = Map.of("XDG_RUNTIME_DIR", "/run/user/1000", "XDG_DATA_HOME", "/data/home/",
                "XDG_DATA_DIRS", "/a:: /b :/usr/share");
        assertEquals(List.of("/run/user/1000/dbus-1/services", "/data/home/dbus-1/services", "/a/dbus-1/services",
                "/b/dbus-1/services", "/usr/share/dbus-1/services", "/usr/share/dbus-1/services"),
                StandardServiceDirs.session(env, "/home/u", p -> true));
    }

    @Test
    void unusableRuntimeDirIsLeftOut() {
        List<String> dirs = StandardServiceDirs.session(Map.of("XDG_RUNTIME_DIR", "/nope"), "/h", p -> false);
        assertEquals("/h/.local/share/dbus-1/services", dirs.get(0));
        assertEquals(4, dirs.size());
    }

    @Test
    void emptyXdgDataDirsMeansOnlyTheDatadir() {
        assertEquals(List.of("/h/.local/share/dbus-1/services", "/usr/share/dbus-1/services"),
                StandardServiceDirs.session(Map.of("XDG_DATA_DIRS", ""), "/h", p -> true));
    }

    @Test
    void systemList() {
        assertEquals(List.of("/usr/local/share/dbus-1/system-services", "/usr/share/dbus-1/system-services",
                "/usr/share/dbus-1/system-services", "/lib/dbus-1/system-services"), StandardServiceDirs.system());
    }

    @Test
    void theTransientDirectoryIsCreatedPrivateBelowAUsableRuntimeDir(@TempDir Path tmp) throws Exception {
        Path runtime = Files.createDirectory(tmp.resolve("run"), PosixFilePermissions.asFileAttribute(
                PosixFilePermissions.fromString("rwx------")));
        assertTrue(StandardServiceDirs.setUpTransientDir(runtime));
        for (Path d : List.of(runtime.resolve("dbus-1"), runtime.resolve("dbus-1/services"))) {
            assertTrue(Files.isDirectory(d), d + " created");
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(d)));
        }
        assertTrue(StandardServiceDirs.setUpTransientDir(runtime), "already there: fine");
        assertEquals(List.of(runtime + "/dbus-1/services"), List.of(StandardServiceDirs.transientDir(
                Map.of("XDG_RUNTIME_DIR", runtime.toString()), StandardServiceDirs::setUpTransientDir).orElseThrow()));
    }

    @Test
    void aRuntimeDirOthersCanWriteOrThatIsMissingGetsNothingCreated(@TempDir Path tmp) throws Exception {
        Path open = Files.createDirectory(tmp.resolve("open"));
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxrwxrwx"));
        assertFalse(StandardServiceDirs.setUpTransientDir(open));
        assertFalse(Files.exists(open.resolve("dbus-1")), "checked before anything is created");
        assertFalse(StandardServiceDirs.setUpTransientDir(tmp.resolve("missing")));
        assertFalse(Files.exists(tmp.resolve("missing")));
        assertTrue(StandardServiceDirs.transientDir(Map.of(), p -> true).isEmpty(), "XDG_RUNTIME_DIR unset");
    }
}
