package org.kdbusbridge.bridge.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Unchanged busconfig files come from the cache; anything else is read again. */
class ConfigCacheTest {
    private static final String CONF = """
            <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
             "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
            <busconfig>
              <type>session</type>
              <listen>unix:tmpdir=/tmp</listen>
              <limit name="max_match_rules_per_connection">%d</limit>
              <policy context="default">
                <allow send_destination="*" eavesdrop="true"/>
                <allow own="*"/>
              </policy>
            </busconfig>
            """;

    @Test
    void anUnchangedFileIsReplayedFromTheCache(@TempDir Path tmp) throws Exception {
        Path conf = Files.writeString(tmp.resolve("bus.conf"), CONF.formatted(1111));
        Path dir = tmp.resolve("cache");
        ConfigCache cache = ConfigCache.in(dir.toString());
        BusConfig first = BusConfigParser.parse(conf, cache);
        BusConfig plain = BusConfigParser.parse(conf);
        assertSame(plain, first);
        assertEquals(1, entries(dir).size(), "one entry written");

        // Same size and modification time, other contents: the cache is what is read.
        FileTime mtime = Files.getLastModifiedTime(conf);
        Files.writeString(conf, CONF.formatted(2222));
        Files.setLastModifiedTime(conf, mtime);
        assertEquals(1111, BusConfigParser.parse(conf, cache).limits().maxMatchRulesPerConnection);

        // A new modification time: read again, and the entry replaced.
        Files.setLastModifiedTime(conf, FileTime.fromMillis(mtime.toMillis() + 5000));
        assertEquals(2222, BusConfigParser.parse(conf, cache).limits().maxMatchRulesPerConnection);
        assertEquals(1, entries(dir).size());
    }

    @Test
    void anEntryOthersCanWriteOrADamagedOneIsIgnored(@TempDir Path tmp) throws Exception {
        Path conf = Files.writeString(tmp.resolve("bus.conf"), CONF.formatted(1111));
        Path dir = tmp.resolve("cache");
        ConfigCache cache = ConfigCache.in(dir.toString());
        BusConfigParser.parse(conf, cache);
        Path entry = entries(dir).get(0);
        FileTime mtime = Files.getLastModifiedTime(conf);
        Files.writeString(conf, CONF.formatted(3333));
        Files.setLastModifiedTime(conf, mtime);

        Files.setPosixFilePermissions(entry, PosixFilePermissions.fromString("rw-rw-rw-"));
        assertEquals(3333, BusConfigParser.parse(conf, cache).limits().maxMatchRulesPerConnection,
                "a world-writable entry could carry anyone's policy");

        Files.setLastModifiedTime(conf, mtime);
        byte[] b = Files.readAllBytes(entries(dir).get(0));
        Files.write(entries(dir).get(0), java.util.Arrays.copyOf(b, b.length / 2));
        assertEquals(3333, BusConfigParser.parse(conf, cache).limits().maxMatchRulesPerConnection);
    }

    @Test
    void errorsStillNameFileAndLineAndNothingIsCachedForThem(@TempDir Path tmp) throws Exception {
        Path conf = Files.writeString(tmp.resolve("bad.conf"), "<busconfig>\n  <type>session</type>\n  <listen>\n</busconfig>\n");
        Path dir = tmp.resolve("cache");
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(conf, ConfigCache.in(dir.toString())));
        assertTrue(e.getMessage().startsWith(conf + ":4: "), e.getMessage());
        assertTrue(!Files.isDirectory(dir) || entries(dir).isEmpty());
    }

    @Test
    void theSessionConfigurationReadsTheSameEitherWay(@TempDir Path tmp) throws Exception {
        Path session = Path.of("/usr/share/dbus-1/session.conf");
        ConfigCache cache = ConfigCache.in(tmp.toString());
        BusConfig parsed = BusConfigParser.parse(session, cache);
        BusConfig replayed = BusConfigParser.parse(session, cache);
        assertSame(parsed, replayed);
        assertSame(BusConfigParser.parse(session), replayed);
    }

    private static void assertSame(BusConfig a, BusConfig b) {
        assertEquals(a.type(), b.type());
        assertEquals(a.listen(), b.listen());
        assertEquals(a.auth(), b.auth());
        assertEquals(a.serviceDirs(), b.serviceDirs());
        assertEquals(a.sourceFiles(), b.sourceFiles());
        assertEquals(a.limits().maxMatchRulesPerConnection, b.limits().maxMatchRulesPerConnection);
        assertEquals(a.limits().maxIncomingBytes, b.limits().maxIncomingBytes);
        assertEquals(a.policy().defaultRules(), b.policy().defaultRules());
        assertEquals(a.policy().mandatoryRules(), b.policy().mandatoryRules());
        assertEquals(a.policy().size(), b.policy().size());
    }

    private static List<Path> entries(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".events")).toList();
        }
    }

    /** A test runner's many temporary configs leave at most MAX_ENTRIES entries, the newest. */
    @Test
    void entriesAreBounded(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("cache");
        ConfigCache cache = ConfigCache.in(dir.toString());
        Path last = null;
        for (int i = 0; i < ConfigCache.MAX_ENTRIES + 10; i++) {
            last = Files.writeString(tmp.resolve("bus" + i + ".conf"), CONF.formatted(i));
            BusConfigParser.parse(last, cache);
        }
        assertEquals(ConfigCache.MAX_ENTRIES, entries(dir).size());
        FileTime mtime = Files.getLastModifiedTime(last);
        Files.writeString(last, CONF.formatted(11)); // same length as MAX_ENTRIES + 9 (73), same mtime: only the entry can say 73
        Files.setLastModifiedTime(last, mtime);
        assertEquals(ConfigCache.MAX_ENTRIES + 9, BusConfigParser.parse(last, cache).limits().maxMatchRulesPerConnection,
                "the newest entry is kept");
    }
}
