package org.kdbusbridge.bridge.config;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

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
}
