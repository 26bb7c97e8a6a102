package org.kdbusbridge.bridge.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.kdbusbridge.core.policy.PolicyRuleParser;

/**
 * User and group names to ids, and the groups of a uid, read from /etc/passwd and /etc/group
 * at config time only (never on the message path, which must not do NSS look-ups).
 *
 * Invariants: numeric names are ids, as in dbus-daemon; a {@link GroupTable} is a snapshot of
 * the two files taken once and never re-read; its per-uid answers are cached.
 */
final class Users {
    static final Path PASSWD = Path.of("/etc/passwd");
    static final Path GROUP = Path.of("/etc/group");

    /** Resolves through /etc/passwd and /etc/group. */
    static final PolicyRuleParser.Principals SYSTEM = new PolicyRuleParser.Principals() {
        @Override
        public OptionalLong uid(String userName) {
            return idOf(userName, PASSWD);
        }

        @Override
        public OptionalLong gid(String groupName) {
            return idOf(groupName, GROUP);
        }
    };

    private Users() { }

    /** The uid, or -2 if unknown. Numeric names are taken as uids. */
    static long uidOf(String name) {
        return idOf(name, PASSWD).orElse(-2);
    }

    /** A name's id (third field) in a passwd- or group-format file; numeric names are ids. */
    static OptionalLong idOf(String name, Path file) {
        if (!name.isEmpty() && name.chars().allMatch(c -> c >= '0' && c <= '9')) {
            try {
                return OptionalLong.of(Long.parseLong(name));
            } catch (NumberFormatException e) {
                return OptionalLong.empty();
            }
        }
        try {
            for (String line : Files.readAllLines(file)) {
                String[] f = line.split(":", -1);
                if (f.length > 2 && f[0].equals(name)) {
                    return OptionalLong.of(Long.parseLong(f[2]));
                }
            }
        } catch (IOException | NumberFormatException e) {
            return OptionalLong.empty();
        }
        return OptionalLong.empty();
    }

    /** Every group of every user, as getgrouplist would give them: primary group first. */
    static final class GroupTable {
        static final GroupTable EMPTY = new GroupTable(Map.of(), Map.of(), Map.of());

        private final Map<Long, String> nameByUid;
        private final Map<Long, Long> primaryGidByUid;
        private final Map<String, List<Long>> gidsByMember;
        private final Map<Long, long[]> cache = new ConcurrentHashMap<>();

        private GroupTable(Map<Long, String> nameByUid, Map<Long, Long> primary, Map<String, List<Long>> byMember) {
            this.nameByUid = nameByUid;
            this.primaryGidByUid = primary;
            this.gidsByMember = byMember;
        }

        /** Reads both files; unreadable files give an empty table (every uid has no groups). */
        static GroupTable load(Path passwd, Path group) {
            Map<Long, String> names = new HashMap<>();
            Map<Long, Long> primary = new HashMap<>();
            Map<String, List<Long>> members = new HashMap<>();
            try {
                for (String line : Files.readAllLines(passwd)) {
                    String[] f = line.split(":", -1);
                    if (f.length > 3) {
                        try {
                            long uid = Long.parseLong(f[2]);
                            names.putIfAbsent(uid, f[0]);
                            primary.putIfAbsent(uid, Long.parseLong(f[3]));
                        } catch (NumberFormatException ignored) {
                            // a malformed line: skipped, as getpwent does
                        }
                    }
                }
                for (String line : Files.readAllLines(group)) {
                    String[] f = line.split(":", -1);
                    if (f.length > 3 && !f[3].isEmpty()) {
                        try {
                            long gid = Long.parseLong(f[2]);
                            for (String m : f[3].split(",")) {
                                members.computeIfAbsent(m.trim(), k -> new ArrayList<>()).add(gid);
                            }
                        } catch (NumberFormatException ignored) {
                            // skipped
                        }
                    }
                }
            } catch (IOException e) {
                return EMPTY;
            }
            return new GroupTable(names, primary, members);
        }

        /** The gids of {@code uid}: its primary group, then supplementary groups in file order. */
        long[] groupsOf(long uid) {
            return cache.computeIfAbsent(uid, this::compute).clone();
        }

        private long[] compute(long uid) {
            Set<Long> gids = new LinkedHashSet<>();
            Long p = primaryGidByUid.get(uid);
            if (p != null) {
                gids.add(p);
            }
            String name = nameByUid.get(uid);
            if (name != null) {
                gids.addAll(gidsByMember.getOrDefault(name, List.of()));
            }
            return gids.stream().mapToLong(Long::longValue).toArray();
        }
    }
}
