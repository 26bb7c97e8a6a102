package org.kdbusbridge.bridge.config;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.charset.StandardCharsets;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;

/**
 * Busconfig files already read, as {@link ConfigDocument}s, kept in a directory of the user's
 * (bin/kdbus-bridge passes its cache directory): a start with unchanged files loads no XML
 * parser. An entry is keyed by the file's contents (compared byte for byte, not by a hash), so
 * it serves any path with the same text: test runners (GLib's GTestDBus, say) write the same
 * configuration to a new temporary file for every bus. Reading a small file costs microseconds;
 * parsing it costs the XML parser's classes. Entries are written to a temporary file and renamed, with mode 0600;
 * an entry not owned by this process's user, or writable by others, is ignored, since it
 * would decide the bus's policy.
 */
public final class ConfigCache {
    /** No cache: every file is parsed. */
    public static final ConfigCache NONE = new ConfigCache(null);
    private static final int MAGIC = 0x4b424302; // "KBC" and the format version
    /**
     * Entries kept at most: test runners start buses on a new temporary config each time, and
     * each would otherwise leave an entry for good. The least recently written go first.
     */
    static final int MAX_ENTRIES = 64;

    private final Path dir;

    private ConfigCache(Path dir) {
        this.dir = dir;
    }

    /** A cache in {@code dir} (created if missing), or {@link #NONE} if {@code dir} is null or blank. */
    public static ConfigCache in(String dir) {
        return dir == null || dir.isBlank() ? NONE : new ConfigCache(Path.of(dir));
    }

    /** The document of {@code file}: replayed from an entry with the same contents, else parsed (and kept). */
    ConfigDocument load(Path file) throws ConfigException {
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new ConfigException("Failed to open \"" + file + "\": " + e.getMessage(), e);
        }
        byte[] key = text.getBytes(StandardCharsets.UTF_8);
        Path entry = dir == null ? null : dir.resolve(entryName(text));
        if (entry != null) {
            ConfigDocument cached = read(entry, key);
            if (cached != null) {
                return cached;
            }
        }
        ConfigDocument doc = ConfigDocument.parse(file, text);
        if (entry != null) {
            write(entry, key, doc);
        }
        return doc;
    }

    /** The entry file for {@code text} (two texts with one hash share it: the last one read wins). */
    static String entryName(String text) {
        return "config-" + Integer.toHexString(text.hashCode()) + ".events";
    }

    private static ConfigDocument read(Path entry, byte[] key) {
        try {
            if (!trusted(entry)) {
                return null;
            }
            try (InputStream raw = Files.newInputStream(entry);
                 DataInputStream in = new DataInputStream(new BufferedInputStream(raw))) {
                if (in.readInt() != MAGIC || in.readInt() != key.length) {
                    return null;
                }
                byte[] stored = new byte[key.length];
                in.readFully(stored);
                if (!Arrays.equals(stored, key)) {
                    return null;
                }
                return ConfigDocument.read(in);
            }
        } catch (IOException | RuntimeException e) {
            return null; // absent, stale or damaged: read the file itself
        }
    }

    /** Deletes the oldest entries past {@link #MAX_ENTRIES} (only ever called after a write, a cache miss). */
    static void prune(Path dir) throws IOException {
        java.util.List<Path> entries;
        try (java.util.stream.Stream<Path> s = Files.list(dir)) {
            entries = s.filter(p -> {
                String n = p.getFileName().toString();
                return n.startsWith("config-") && n.endsWith(".events");
            }).collect(java.util.stream.Collectors.toList());
        }
        if (entries.size() <= MAX_ENTRIES) {
            return;
        }
        java.util.Map<Path, Long> mtime = new java.util.HashMap<>();
        for (Path p : entries) {
            try {
                mtime.put(p, Files.getLastModifiedTime(p).toMillis());
            } catch (IOException e) {
                mtime.put(p, 0L); // gone or unreadable: first to go
            }
        }
        entries.sort(java.util.Comparator.comparingLong(mtime::get));
        for (Path p : entries.subList(0, entries.size() - MAX_ENTRIES)) {
            Files.deleteIfExists(p);
        }
    }

    /** Ours and not writable by group or others (a no-op check where the file system has no owners). */
    private static boolean trusted(Path entry) throws IOException {
        if (!Files.isRegularFile(entry, LinkOption.NOFOLLOW_LINKS)) {
            return false;
        }
        int uid = (Integer) Files.getAttribute(entry, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        int mode = (Integer) Files.getAttribute(entry, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        return uid == (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid") && (mode & 022) == 0;
    }

    /** Writes an entry (package-private for the tests, which forge one). */
    void write(Path entry, byte[] key, ConfigDocument doc) {
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, "config-", ".tmp"); // 0600
            try (OutputStream raw = Files.newOutputStream(tmp);
                 DataOutputStream out = new DataOutputStream(new BufferedOutputStream(raw))) {
                out.writeInt(MAGIC);
                out.writeInt(key.length);
                out.write(key);
                doc.write(out);
            }
            Files.move(tmp, entry, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            tmp = null;
            prune(dir);
        } catch (IOException | RuntimeException e) {
            // a cache that cannot be written only costs the next start a parse
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException e) {
                    // left behind in the cache directory; harmless
                }
            }
        }
    }
}
