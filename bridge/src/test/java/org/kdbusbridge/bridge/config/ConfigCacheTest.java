package org.kdbusbridge.bridge.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A busconfig text read before comes from the cache, at any path; any other text is parsed. */
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
    void anUnchangedConfigurationIsReplayedFromTheCacheWhateverItsPath(@TempDir Path tmp) throws Exception {
        Path conf = Files.writeString(tmp.resolve("bus.conf"), CONF.formatted(1111));
        Path dir = tmp.resolve("cache");
        ConfigCache cache = ConfigCache.in(dir.toString());
        BusConfig first = BusConfigParser.parse(conf, cache);
        assertSame(BusConfigParser.parse(conf), first);
        assertEquals(1, entries(dir).size(), "one entry written");
        Path entry = entries(dir).get(0);
        FileTime written = FileTime.fromMillis(1_000_000);
        Files.setLastModifiedTime(entry, written);

        // The same text at another path (a test runner's new temporary file): the entry serves it.
        Path other = Files.writeString(tmp.resolve("other.conf"), CONF.formatted(1111));
        assertEquals(1111, BusConfigParser.parse(other, cache).limits().maxMatchRulesPerConnection);
        assertEquals(List.of(entry), entries(dir), "no new entry");
        assertEquals(written, Files.getLastModifiedTime(entry), "replayed, not written again");

        // Other contents, even of the same size and modification time: read again, an entry of its own.
        FileTime mtime = Files.getLastModifiedTime(conf);
        Files.writeString(conf, CONF.formatted(2222));
        Files.setLastModifiedTime(conf, mtime);
        assertEquals(2222, BusConfigParser.parse(conf, cache).limits().maxMatchRulesPerConnection);
        assertEquals(2, entries(dir).size());
    }

    @Test
    void anEntryOthersCanWriteOrADamagedOneIsIgnored(@TempDir Path tmp) throws Exception {
        String text = CONF.formatted(1111);
        Path conf = Files.writeString(tmp.resolve("bus.conf"), text);
        Path dir = tmp.resolve("cache");
        ConfigCache cache = ConfigCache.in(dir.toString());
        // A forged entry: this file's text as its key, another configuration's events.
        Path entry = dir.resolve(ConfigCache.entryName(text));
        cache.write(entry, text.getBytes(StandardCharsets.UTF_8), ConfigDocument.parse(conf, CONF.formatted(3333)));
        assertEquals(3333, BusConfigParser.parse(conf, cache).limits().maxMatchRulesPerConnection,
                "an entry of ours (0600) is believed: it is what was read");

        Files.setPosixFilePermissions(entry, PosixFilePermissions.fromString("rw-rw-rw-"));
        assertEquals(1111, BusConfigParser.parse(conf, cache).limits().maxMatchRulesPerConnection,
                "a world-writable entry could carry anyone's policy");

        cache.write(entry, text.getBytes(StandardCharsets.UTF_8), ConfigDocument.parse(conf, CONF.formatted(3333)));
        byte[] b = Files.readAllBytes(entry);
        Files.write(entry, java.util.Arrays.copyOf(b, b.length / 2));
        assertEquals(1111, BusConfigParser.parse(conf, cache).limits().maxMatchRulesPerConnection, "a damaged entry");
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
        for (int i = 0; i < ConfigCache.MAX_ENTRIES + 10; i++) {
            Path conf = Files.writeString(tmp.resolve("bus" + i + ".conf"), CONF.formatted(i));
            BusConfigParser.parse(conf, cache);
            // Written in order, a second apart, so the oldest are known.
            Files.setLastModifiedTime(dir.resolve(ConfigCache.entryName(CONF.formatted(i))), FileTime.fromMillis(1_000L * (i + 1)));
        }
        assertEquals(ConfigCache.MAX_ENTRIES, entries(dir).size());
        assertTrue(Files.exists(dir.resolve(ConfigCache.entryName(CONF.formatted(ConfigCache.MAX_ENTRIES + 9)))),
                "the newest entry is kept");
    }
}
