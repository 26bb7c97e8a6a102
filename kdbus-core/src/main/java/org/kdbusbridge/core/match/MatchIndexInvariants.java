package org.kdbusbridge.core.match;

import static org.kdbusbridge.core.match.MatchIndex.ARG0;
import static org.kdbusbridge.core.match.MatchIndex.IFACE;
import static org.kdbusbridge.core.match.MatchIndex.MEMBER;
import static org.kdbusbridge.core.match.MatchIndex.MEMBER_ARG0;
import static org.kdbusbridge.core.match.MatchIndex.NONE;
import static org.kdbusbridge.core.match.MatchIndex.PATH;
import static org.kdbusbridge.core.match.MatchIndex.PATH_NAMESPACE;
import static org.kdbusbridge.core.match.MatchIndex.SENDER;
import static org.kdbusbridge.core.match.MatchIndex.WILD;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;

import org.kdbusbridge.core.connection.Connection;

/**
 * The check of {@link MatchIndex}'s invariants (see its class comment), kept apart from the
 * index so the index holds only what routing runs; {@link #holds} is cheap enough for the
 * index to assert on every add.
 */
final class MatchIndexInvariants {
    private MatchIndexInvariants() { }

    /** The bucket of {@code kind} under r's key in {@code t} now (null if none). */
    static Object slotOf(MatchTable t, int kind, MatchRule r) {
        switch (kind) {
            case MEMBER_ARG0: {
                StringMap byArg0 = (StringMap) t.byMemberArg0.get(r.member);
                return byArg0 == null ? null : byArg0.get(r.plainArg0());
            }
            case ARG0:
                return t.byArg0.get(r.plainArg0());
            case WILD:
                return t.wild;
            default:
                return t.slotFor(r, r.plainArg0(), kind);
        }
    }

    /** Whether {@code e} is in the bucket of {@code kind} under its key (O(1)). */
    static boolean holds(MatchTable t, int kind, MatchEntry e) {
        Object slot = slotOf(t, kind, e.rule);
        return slot == e || (slot instanceof MatchBucket b && e.index() < b.size && b.entries[e.index()] == e);
    }

    /** Whether {@code r} has the key {@code kind} files it under (see the class comment). */
    private static boolean hasKey(MatchRule r, int kind) {
        String a0 = r.plainArg0();
        boolean keyed = r.path != null || r.member != null || r.sender != null || r.pathNamespace != null
                || r.iface != null;
        return switch (kind) {
            case MEMBER_ARG0 -> r.member != null && a0 != null;
            case PATH -> r.path != null;
            case MEMBER -> r.member != null;
            case SENDER -> r.sender != null;
            case PATH_NAMESPACE -> r.pathNamespace != null;
            case IFACE -> r.iface != null;
            case ARG0 -> a0 != null && !keyed;
            case WILD -> a0 == null && !keyed;
            default -> false;
        };
    }

    /**
     * Owner lists against the owners' counts and the index's size, each entry's kind against
     * its rule and its presence in that bucket, and, walking every bucket of both tables, that
     * each holds only listed entries of its table and kind under their own key, each once,
     * adding up to the table's size.
     */
    static void check(MatchIndex index) {
        Set<MatchEntry> listed = Collections.newSetFromMap(new IdentityHashMap<>());
        int total = 0;
        int unfiled = 0;
        for (Map.Entry<Connection, ArrayList<MatchEntry>> o : index.byOwner.entrySet()) {
            Connection owner = o.getKey();
            ArrayList<MatchEntry> mine = o.getValue();
            if (mine.isEmpty() || owner.matchRuleCount() != mine.size()) {
                throw new IllegalStateException(owner + " has " + mine.size() + " entries but counts "
                        + owner.matchRuleCount() + " rules");
            }
            for (MatchEntry e : mine) {
                if (e.owner != owner || !listed.add(e)) {
                    throw new IllegalStateException("rule " + e.rule + " is listed for " + owner + " wrongly or twice");
                }
                MatchTable t = index.table(e.rule);
                int kind = e.kind();
                if (t == null ? kind != NONE : !hasKey(e.rule, kind) || !holds(t, kind, e)) {
                    throw new IllegalStateException("rule " + e.rule + " of " + owner + " is filed as kind " + kind
                            + " but is not in that bucket or has no such key");
                }
                unfiled += t == null ? 1 : 0;
            }
            total += mine.size();
            if (mine.size() > index.peakPerConnection) {
                throw new IllegalStateException(owner + " has " + mine.size() + " rules, over the peak " + index.peakPerConnection);
            }
        }
        if (total != index.size || index.size > index.peakSize) {
            throw new IllegalStateException(index.size + " rules counted, " + total + " listed, peak " + index.peakSize);
        }
        Set<MatchEntry> filed = Collections.newSetFromMap(new IdentityHashMap<>());
        int inTables = checkTable(index, index.broadcasts, listed, filed) + checkTable(index, index.eavesdroppers, listed, filed);
        if (inTables + unfiled != index.size) {
            throw new IllegalStateException(inTables + " rules in buckets and " + unfiled + " in none, but " + index.size + " rules");
        }
    }

    /** Walks one table's buckets; returns how many entries they hold. */
    private static int checkTable(MatchIndex index, MatchTable t, Set<MatchEntry> listed, Set<MatchEntry> filed) {
        int n = 0;
        StringMap[] maps = {t.byPath, t.byMember, t.bySender, t.byPathNamespace, t.byIface, t.byArg0};
        int[] kinds = {PATH, MEMBER, SENDER, PATH_NAMESPACE, IFACE, ARG0};
        for (int m = 0; m < maps.length; m++) {
            n += checkMap(index, t, maps[m], kinds[m], null, listed, filed);
        }
        t.byMemberArg0.checkInvariants();
        for (int i = 0, cap = t.byMemberArg0.capacity(); i < cap; i++) {
            String member = t.byMemberArg0.keyAt(i);
            if (member == null) {
                continue;
            }
            if (!(t.byMemberArg0.valueAt(i) instanceof StringMap byArg0) || byArg0.isEmpty()) {
                throw new IllegalStateException("member " + member + " has no arg0 map or an empty one");
            }
            n += checkMap(index, t, byArg0, MEMBER_ARG0, member, listed, filed);
        }
        if (t.wild != null) {
            n += checkBucket(index, t, t.wild, WILD, null, "(wild)", listed, filed);
        }
        if (n != t.size) {
            throw new IllegalStateException("a table counts " + t.size + " rules but its buckets hold " + n);
        }
        return n;
    }

    private static int checkMap(MatchIndex index, MatchTable t, StringMap map, int kind, String member, Set<MatchEntry> listed,
                         Set<MatchEntry> filed) {
        map.checkInvariants();
        int n = 0;
        for (int i = 0, cap = map.capacity(); i < cap; i++) {
            String key = map.keyAt(i);
            if (key == null) {
                continue;
            }
            n += checkBucket(index, t, map.valueAt(i), kind, member, key, listed, filed);
        }
        return n;
    }

    /** The key a rule is filed under in a bucket of {@code kind} (for MEMBER_ARG0, the inner arg0). */
    private static String keyOf(MatchRule r, int kind) {
        return switch (kind) {
            case PATH -> r.path;
            case MEMBER -> r.member;
            case SENDER -> r.sender;
            case PATH_NAMESPACE -> r.pathNamespace;
            case IFACE -> r.iface;
            default -> r.plainArg0(); // MEMBER_ARG0, ARG0
        };
    }

    /** Checks one bucket (under {@code member} and {@code key} for MEMBER_ARG0); returns its size. */
    private static int checkBucket(MatchIndex index, MatchTable t, Object slot, int kind, String member, String key, Set<MatchEntry> listed,
                            Set<MatchEntry> filed) {
        MatchEntry[] entries;
        int n;
        if (slot instanceof MatchEntry e) {
            entries = new MatchEntry[] {e};
            n = 1;
        } else if (slot instanceof MatchBucket b) {
            if (b.size < 2) {
                throw new IllegalStateException("bucket " + key + " of kind " + kind + " has " + b.size + " entries");
            }
            for (int i = 0; i < b.entries.length; i++) {
                if ((i < b.size) != (b.entries[i] != null) || (i < b.size && b.entries[i].index() != i)) {
                    throw new IllegalStateException("bucket " + key + " of kind " + kind + " is wrong at " + i);
                }
            }
            entries = b.entries;
            n = b.size;
        } else {
            throw new IllegalStateException("bucket " + key + " of kind " + kind + " holds " + slot);
        }
        for (int i = 0; i < n; i++) {
            MatchEntry e = entries[i];
            if (!listed.contains(e) || !filed.add(e) || e.kind() != kind || index.table(e.rule) != t
                    || (kind != WILD && !key.equals(keyOf(e.rule, kind)))
                    || (kind == MEMBER_ARG0 && !member.equals(e.rule.member))) {
                throw new IllegalStateException("rule " + e.rule + " in bucket " + key + " of kind " + kind
                        + " is unlisted, filed twice, or filed there wrongly");
            }
        }
        return n;
    }
}
