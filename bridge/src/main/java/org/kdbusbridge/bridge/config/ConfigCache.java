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
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.concurrent.TimeUnit;

/**
 * Busconfig files already read, as {@link ConfigDocument}s, kept in a directory of the user's
 * (bin/kdbus-bridge passes its cache directory): a start with unchanged files loads no XML
 * parser. A file's entry is used only while the file has the path, size, modification time
 * and file key (device and inode) it had when it was read; anything else is read again and
 * the entry replaced. Entries are written to a temporary file and renamed, with mode 0600;
 * an entry not owned by this process's user, or writable by others, is ignored, since it
 * would decide the bus's policy.
 */
public final class ConfigCache {
    /** No cache: every file is parsed. */
    public static final ConfigCache NONE = new ConfigCache(null);
    private static final int MAGIC = 0x4b424301; // "KBC" and the format version
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

    /** The document of {@code file} (whose contents the caller may already hold, or null). */
    ConfigDocument load(Path file) throws ConfigException {
        BasicFileAttributes attrs;
        try {
            attrs = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (IOException e) {
            throw new ConfigException("Failed to open \"" + file + "\": " + e.getMessage(), e);
        }
        String key = file + "\n" + attrs.size() + "\n" + attrs.lastModifiedTime().to(TimeUnit.NANOSECONDS) + "\n" + attrs.fileKey();
        Path entry = dir == null ? null : dir.resolve("config-" + Integer.toHexString(file.toString().hashCode()) + ".events");
        if (entry != null) {
            ConfigDocument cached = read(entry, key);
            if (cached != null) {
                return cached;
            }
        }
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new ConfigException("Failed to open \"" + file + "\": " + e.getMessage(), e);
        }
        ConfigDocument doc = ConfigDocument.parse(file, text);
        if (entry != null) {
            write(entry, key, doc);
        }
        return doc;
    }

    private static ConfigDocument read(Path entry, String key) {
        try {
            if (!trusted(entry)) {
                return null;
            }
            try (InputStream raw = Files.newInputStream(entry);
                 DataInputStream in = new DataInputStream(new BufferedInputStream(raw))) {
                if (in.readInt() != MAGIC || !in.readUTF().equals(key)) {
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

    private void write(Path entry, String key, ConfigDocument doc) {
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, "config-", ".tmp"); // 0600
            try (OutputStream raw = Files.newOutputStream(tmp);
                 DataOutputStream out = new DataOutputStream(new BufferedOutputStream(raw))) {
                out.writeInt(MAGIC);
                out.writeUTF(key);
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
