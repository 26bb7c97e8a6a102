package org.kdbusbridge.bridge.activation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServiceRegistryTest {

    static Path write(Path dir, String file, String name, String exec) throws Exception {
        Files.createDirectories(dir);
        return Files.writeString(dir.resolve(file), "[D-BUS Service]\nName=" + name + "\nExec=" + exec + "\n");
    }

    @Test
    void earlierDirectoryWins(@TempDir Path tmp) throws Exception {
        Path first = tmp.resolve("first");
        Path second = tmp.resolve("second");
        write(first, "org.example.A.service", "org.example.A", "/first/a");
        write(second, "org.example.A.service", "org.example.A", "/second/a");
        write(second, "org.example.B.service", "org.example.B", "/second/b");
        ServiceRegistry r = ServiceRegistry.of(List.of(first, tmp.resolve("missing"), second));
        assertTrue(r.rescan());
        Map<String, ServiceFile> s = r.snapshot();
        assertEquals(Set.of("org.example.A", "org.example.B"), s.keySet());
        assertEquals("/first/a", s.get("org.example.A").exec());
        assertEquals("/second/b", s.get("org.example.B").exec());
        assertThrows(UnsupportedOperationException.class, () -> s.remove("org.example.A"));
    }

    @Test
    void invalidAndForeignFilesAreSkipped(@TempDir Path tmp) throws Exception {
        write(tmp, "org.example.Good.service", "org.example.Good", "/bin/true");
        Files.writeString(tmp.resolve("org.example.Bad.service"), "[D-BUS Service]\nName=org.example.Bad\n");
        Files.writeString(tmp.resolve("broken.service"), "garbage\n");
        write(tmp, "org.example.Other.desktop", "org.example.Other", "/bin/true");
        Files.createDirectory(tmp.resolve("dir.service"));
        ServiceRegistry r = ServiceRegistry.of(List.of(tmp));
        r.rescan();
        assertEquals(Set.of("org.example.Good"), r.snapshot().keySet());
    }

    @Test
    void namingRules(@TempDir Path tmp) throws Exception {
        Path lenient = tmp.resolve("lenient");
        Path strict = tmp.resolve("strict");
        write(lenient, "whatever.service", "org.example.Lenient", "/bin/true");
        write(strict, "whatever.service", "org.example.Strict", "/bin/true");
        write(strict, "org.example.Ok.service", "org.example.Ok", "/bin/true");
        ServiceRegistry session = new ServiceRegistry(
                List.of(ServiceDir.of(lenient), new ServiceDir(strict, true, false)), false);
        session.rescan();
        assertEquals(Set.of("org.example.Lenient", "org.example.Ok"), session.snapshot().keySet());
        ServiceRegistry system = new ServiceRegistry(List.of(ServiceDir.of(lenient)), true);
        system.rescan();
        assertEquals(Set.of("org.example.Lenient"), system.snapshot().keySet(), "loaded with a warning");
    }

    @Test
    void sameDirectoryDuplicatesPreferTheCanonicalName(@TempDir Path tmp) throws Exception {
        write(tmp, "a.service", "org.example.Dup", "/from/a");
        write(tmp, "org.example.Dup.service", "org.example.Dup", "/from/canonical");
        write(tmp, "b.service", "org.example.Other", "/from/b");
        write(tmp, "c.service", "org.example.Other", "/from/c");
        ServiceRegistry r = ServiceRegistry.of(List.of(tmp));
        r.rescan();
        assertEquals("/from/canonical", r.snapshot().get("org.example.Dup").exec());
        assertEquals("/from/b", r.snapshot().get("org.example.Other").exec(), "else the first file name");
    }

    @Test
    void rescanReportsNameSetChanges(@TempDir Path tmp) throws Exception {
        ServiceRegistry r = ServiceRegistry.of(List.of(tmp));
        assertEquals(Map.of(), r.snapshot());
        assertFalse(r.rescan(), "empty -> empty");
        Path a = write(tmp, "org.example.A.service", "org.example.A", "/v1");
        assertTrue(r.rescan());
        Map<String, ServiceFile> before = r.snapshot();
        assertFalse(r.rescan(), "nothing changed");
        assertEquals(before, r.snapshot());

        write(tmp, "org.example.A.service", "org.example.A", "/v2");
        assertFalse(r.rescan(), "same names");
        assertNotEquals(before, r.snapshot(), "but the snapshot shows the new content");
        assertEquals("/v2", r.snapshot().get("org.example.A").exec());

        write(tmp, "org.example.B.service", "org.example.B", "/b");
        assertTrue(r.rescan());
        Files.delete(a);
        assertTrue(r.rescan());
        assertEquals(Set.of("org.example.B"), r.snapshot().keySet());

        r.setDirectories(List.of());
        assertTrue(r.rescan());
        assertEquals(Map.of(), r.snapshot());
    }

    /** What a start checks before it looks a name up (dbus-daemon re-checks its files on use). */
    @Test
    void changesSinceTheLastScanAreNoticedByModificationTime(@TempDir Path tmp) throws Exception {
        Path a = write(tmp, "org.example.A.service", "org.example.A", "/bin/a");
        ServiceRegistry r = ServiceRegistry.of(List.of(tmp, tmp.resolve("missing")));
        r.rescan();
        assertFalse(r.changedFor("org.example.A"));
        assertFalse(r.changedFor("org.example.B"));
        java.nio.file.attribute.FileTime past = java.nio.file.attribute.FileTime.fromMillis(1_000_000L);
        Files.writeString(a, "[D-BUS Service]\nName=org.example.A\nExec=/bin/edited\n");
        Files.setLastModifiedTime(a, past); // edited in place: the directory's time stays
        assertTrue(r.changedFor("org.example.A"), "the name's own file changed");
        assertFalse(r.rescan(), "same names");
        assertEquals("/bin/edited", r.snapshot().get("org.example.A").exec());
        assertFalse(r.changedFor("org.example.A"));
        write(tmp, "org.example.B.service", "org.example.B", "/bin/b");
        Files.setLastModifiedTime(tmp, past);
        assertTrue(r.directoriesChanged(), "a file was added");
        assertTrue(r.watchedDirectoriesChanged());
        assertTrue(r.rescan());
        Files.createDirectory(tmp.resolve("missing"));
        assertTrue(r.changedFor("org.example.B"), "a directory appeared");
        ServiceRegistry.Refresh refresh = r.refreshFor("org.example.B");
        assertEquals(new ServiceRegistry.Refresh(false, true), refresh, "rescanned; same names");
        assertEquals(null, r.refreshFor("org.example.B"), "nothing changed since");
    }
}
