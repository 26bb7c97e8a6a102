package org.kdbusbridge.core.match;

import static org.kdbusbridge.core.match.MatchIndex.ARG0;
import static org.kdbusbridge.core.match.MatchIndex.IFACE;
import static org.kdbusbridge.core.match.MatchIndex.MEMBER;
import static org.kdbusbridge.core.match.MatchIndex.MEMBER_ARG0;
import static org.kdbusbridge.core.match.MatchIndex.PATH;
import static org.kdbusbridge.core.match.MatchIndex.PATH_NAMESPACE;
import static org.kdbusbridge.core.match.MatchIndex.SENDER;
import static org.kdbusbridge.core.match.MatchIndex.WILD;

/**
 * One of {@link MatchIndex}'s tables: its buckets by kind of key, and where a new rule goes
 * (see the index's class comment for the placement rule and the invariants).
 * A map's value is a MatchEntry or a MatchBucket (MEMBER_ARG0: a map by arg0).
 */
final class MatchTable {
    final StringMap byMemberArg0 = new StringMap();
    final StringMap byPath = new StringMap();
    final StringMap byMember = new StringMap();
    final StringMap bySender = new StringMap();
    final StringMap byPathNamespace = new StringMap();
    final StringMap byIface = new StringMap();
    final StringMap byArg0 = new StringMap();
    Object wild;
    int size;

    /** The keyed kinds in the order {@link #choose} prefers them on equal cost. */
    private static final int[] KEYED = {MEMBER_ARG0, PATH, MEMBER, SENDER, PATH_NAMESPACE, IFACE};

    /** Marks a kind whose key the rule does not have. */
    static final Object NO_KEY = new Object();

    /** The kind of bucket {@code r} goes into: see MatchIndex's class comment. */
    int choose(MatchRule r) {
        String a0 = r.plainArg0();
        int best = -1;
        int bestCost = Integer.MAX_VALUE;
        for (int i = 0; i < KEYED.length && bestCost > 0; i++) {
            Object slot = slotFor(r, a0, KEYED[i]);
            if (slot != NO_KEY) {
                int c = cost(slot, r);
                if (c < bestCost) {
                    best = KEYED[i];
                    bestCost = c;
                }
            }
        }
        if (best >= 0) {
            return best;
        }
        return a0 != null ? ARG0 : WILD;
    }

    /** What the bucket of {@code kind} holds under r's key now, or NO_KEY if r has no such key. */
    Object slotFor(MatchRule r, String a0, int kind) {
        switch (kind) {
            case MEMBER_ARG0: {
                if (r.member == null || a0 == null) {
                    return NO_KEY;
                }
                StringMap inner = (StringMap) byMemberArg0.get(r.member);
                return inner == null ? null : inner.get(a0);
            }
            case PATH:
                return r.path == null ? NO_KEY : byPath.get(r.path);
            case MEMBER:
                return r.member == null ? NO_KEY : byMember.get(r.member);
            case SENDER:
                return r.sender == null ? NO_KEY : bySender.get(r.sender);
            case PATH_NAMESPACE:
                return r.pathNamespace == null ? NO_KEY : byPathNamespace.get(r.pathNamespace);
            case IFACE:
                return r.iface == null ? NO_KEY : byIface.get(r.iface);
            default:
                throw new IllegalArgumentException("kind " + kind);
        }
    }

    /** What joining a bucket costs lookups: nothing if it is empty or holds an equal rule, else its size. */
    private static int cost(Object slot, MatchRule r) {
        if (slot == null) {
            return 0;
        }
        if (slot instanceof MatchEntry e) {
            return e.rule.equals(r) ? 0 : 1;
        }
        MatchBucket b = (MatchBucket) slot;
        return b.entries[0].rule.equals(r) ? 0 : b.size;
    }

    void link(int kind, MatchEntry e) {
        relink(kind, e, true);
        size++;
    }

    void unlink(int kind, MatchEntry e) {
        relink(kind, e, false);
        size--;
    }

    /** Adds {@code e} to (or removes it from) the bucket of {@code kind} under its rule's key. */
    private void relink(int kind, MatchEntry e, boolean add) {
        MatchRule r = e.rule;
        switch (kind) {
            case MEMBER_ARG0 -> {
                StringMap inner = (StringMap) byMemberArg0.get(r.member);
                if (inner == null) {
                    inner = new StringMap();
                    byMemberArg0.put(r.member, inner);
                }
                String a0 = r.plainArg0();
                inner.put(a0, MatchBucket.step(inner.get(a0), e, add));
                if (inner.isEmpty()) {
                    byMemberArg0.put(r.member, null);
                }
            }
            case PATH -> byPath.put(r.path, MatchBucket.step(byPath.get(r.path), e, add));
            case MEMBER -> byMember.put(r.member, MatchBucket.step(byMember.get(r.member), e, add));
            case SENDER -> bySender.put(r.sender, MatchBucket.step(bySender.get(r.sender), e, add));
            case PATH_NAMESPACE -> byPathNamespace.put(r.pathNamespace,
                    MatchBucket.step(byPathNamespace.get(r.pathNamespace), e, add));
            case IFACE -> byIface.put(r.iface, MatchBucket.step(byIface.get(r.iface), e, add));
            case ARG0 -> byArg0.put(r.plainArg0(), MatchBucket.step(byArg0.get(r.plainArg0()), e, add));
            default -> wild = MatchBucket.step(wild, e, add);
        }
    }
}
