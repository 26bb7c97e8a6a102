package org.kdbusbridge.core.name;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.kdbusbridge.core.name.NameRegistry.FLAG_ALLOW_REPLACEMENT;
import static org.kdbusbridge.core.name.NameRegistry.FLAG_DO_NOT_QUEUE;
import static org.kdbusbridge.core.name.NameRegistry.FLAG_REPLACE_EXISTING;
import static org.kdbusbridge.core.name.NameRegistry.RELEASE_NON_EXISTENT;
import static org.kdbusbridge.core.name.NameRegistry.RELEASE_NOT_OWNER;
import static org.kdbusbridge.core.name.NameRegistry.RELEASE_RELEASED;
import static org.kdbusbridge.core.name.NameRegistry.REPLY_ALREADY_OWNER;
import static org.kdbusbridge.core.name.NameRegistry.REPLY_EXISTS;
import static org.kdbusbridge.core.name.NameRegistry.REPLY_IN_QUEUE;
import static org.kdbusbridge.core.name.NameRegistry.REPLY_PRIMARY_OWNER;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.connection.Connection;

// NameRegistry against a plain model of the RequestName/ReleaseName rules (a list of owners per
// name, an acquisition list per connection): reply codes, changes, queues, stored flags, the
// entry listener and the registry's invariants, after every step.
class NameRegistryModelTest {
    private record Owner(Connection conn, int flags) { }

    private final Map<String, List<Owner>> model = new HashMap<>();
    private final Map<Connection, List<String>> acquired = new IdentityHashMap<>();
    private final Map<Connection, Integer> listened = new IdentityHashMap<>();

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4})
    void matchesAPlainModel(long seed) {
        Random r = new Random(seed);
        NameRegistry reg = new NameRegistry();
        reg.setEntryListener(new NameRegistry.EntryListener() {
            @Override
            public void added(Connection conn, String name) {
                listened.merge(conn, 1, Integer::sum);
            }

            @Override
            public void removed(Connection conn, String name) {
                listened.merge(conn, -1, Integer::sum);
            }
        });
        List<Connection> conns = new ArrayList<>();
        for (int i = 1; i <= 5; i++) {
            conns.add(Fixtures.conn(i));
        }
        long nextId = 6;
        String[] names = {"a.A", "a.B", "a.C", "b.D"};
        for (int step = 0; step < 4_000; step++) {
            Connection c = conns.get(r.nextInt(conns.size()));
            String name = names[r.nextInt(names.length)];
            String at = "seed " + seed + " step " + step;
            List<NameChange> got = new ArrayList<>();
            List<NameChange> want = new ArrayList<>();
            int op = r.nextInt(10);
            if (op < 6) {
                int flags = r.nextInt(8);
                boolean had = indexOf(model.get(name), c) >= 0;
                boolean would = reg.wouldAddEntry(c, name, flags);
                int code = request(c, name, flags, want);
                assertEquals(code, reg.request(c, name, flags, got), at + ": request " + name + " flags " + flags);
                assertEquals(!had && indexOf(model.get(name), c) >= 0, would, at + ": wouldAddEntry");
            } else if (op < 9) {
                assertEquals(release(c, name, want), reg.release(c, name, got), at + ": release " + name);
            } else {
                boolean oldestFirst = r.nextBoolean();
                List<String> mine = new ArrayList<>(acquired.getOrDefault(c, List.of()));
                for (int k = 0; k < mine.size(); k++) {
                    release(c, mine.get(oldestFirst ? k : mine.size() - 1 - k), want);
                }
                reg.releaseAll(c, oldestFirst, got);
                conns.set(conns.indexOf(c), Fixtures.conn(nextId++)); // it left
            }
            assertEquals(want, got, at + ": changes");
            reg.checkInvariants(conns);
            compare(reg, conns, names, at);
        }
    }

    @org.junit.jupiter.api.Test
    void checkInvariantsNamesAConnectionWhoseListDisagreesWithTheQueues() {
        NameRegistry reg = new NameRegistry();
        Connection a = Fixtures.conn(1);
        Connection b = Fixtures.conn(2);
        reg.request(a, "a.A", 0, new ArrayList<>());
        reg.checkInvariants(List.of(a, b));
        b.addOwnedName("a.A"); // listed, but in no queue
        IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> reg.checkInvariants(List.of(a, b)));
        assertEquals(true, e.getMessage().contains(":1.2"), e.getMessage());
        b.removeOwnedName("a.A");
        a.removeOwnedName("a.A"); // in the queue, but not listed
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, reg::checkInvariants);
    }

    private void compare(NameRegistry reg, List<Connection> conns, String[] names, String at) {
        int entries = 0;
        for (String name : names) {
            List<Owner> q = model.getOrDefault(name, List.of());
            List<Connection> want = new ArrayList<>();
            for (Owner o : q) {
                want.add(o.conn);
                assertEquals(o.flags, reg.storedFlags(o.conn, name), at + ": flags of " + o.conn + " for " + name);
            }
            assertEquals(want, reg.queue(name), at + ": queue of " + name);
            assertSame(q.isEmpty() ? null : q.get(0).conn, reg.owner(name), at + ": owner of " + name);
            entries += q.size();
        }
        assertEquals(new TreeSet<>(model.keySet()), new TreeSet<>(reg.names()), at + ": names");
        assertEquals(entries, reg.ownerEntries(), at + ": entries");
        for (Connection c : conns) {
            List<String> mine = acquired.getOrDefault(c, List.of());
            assertEquals(mine, c.ownedNames(), at + ": names of " + c);
            assertEquals(mine.size(), (int) listened.getOrDefault(c, 0), at + ": listener entries of " + c);
        }
    }

    // --- the model: the rules as the D-Bus specification states them -------------------------

    private int request(Connection c, String name, int flags, List<NameChange> changes) {
        int stored = flags & (FLAG_ALLOW_REPLACEMENT | FLAG_DO_NOT_QUEUE);
        boolean replace = (flags & FLAG_REPLACE_EXISTING) != 0;
        boolean doNotQueue = (flags & FLAG_DO_NOT_QUEUE) != 0;
        List<Owner> q = model.get(name);
        if (q == null) {
            model.put(name, new ArrayList<>(List.of(new Owner(c, stored))));
            gain(c, name);
            changes.add(new NameChange(name, null, c));
            return REPLY_PRIMARY_OWNER;
        }
        Owner primary = q.get(0);
        if (primary.conn == c) {
            q.set(0, new Owner(c, stored));
            return REPLY_ALREADY_OWNER;
        }
        int at = indexOf(q, c);
        if (replace && (primary.flags & FLAG_ALLOW_REPLACEMENT) != 0) {
            if (at >= 0) {
                q.remove(at);
            } else {
                gain(c, name);
            }
            q.set(0, new Owner(c, stored)); // the newcomer takes the head ...
            if ((primary.flags & FLAG_DO_NOT_QUEUE) != 0) {
                lose(primary.conn, name);
            } else {
                q.add(1, primary); // ... and the old primary waits right behind it
            }
            changes.add(new NameChange(name, primary.conn, c));
            return REPLY_PRIMARY_OWNER;
        }
        if (doNotQueue) {
            if (at >= 0) {
                q.remove(at);
                lose(c, name);
            }
            return REPLY_EXISTS;
        }
        if (at >= 0 && !replace) {
            q.set(at, new Owner(c, stored)); // keeps its place
        } else {
            if (at >= 0) {
                q.remove(at);
            } else {
                gain(c, name);
            }
            Owner o = new Owner(c, stored);
            if (replace) {
                q.add(1, o); // asked to replace but may not: first in line
            } else {
                q.add(o);
            }
        }
        return REPLY_IN_QUEUE;
    }

    private int release(Connection c, String name, List<NameChange> changes) {
        List<Owner> q = model.get(name);
        if (q == null) {
            return RELEASE_NON_EXISTENT;
        }
        int at = indexOf(q, c);
        if (at < 0) {
            return RELEASE_NOT_OWNER;
        }
        q.remove(at);
        lose(c, name);
        if (at == 0) {
            changes.add(new NameChange(name, c, q.isEmpty() ? null : q.get(0).conn));
        }
        if (q.isEmpty()) {
            model.remove(name);
        }
        return RELEASE_RELEASED;
    }

    private void gain(Connection c, String name) {
        acquired.computeIfAbsent(c, k -> new ArrayList<>()).add(name);
    }

    private void lose(Connection c, String name) {
        acquired.get(c).remove(name);
    }

    private static int indexOf(List<Owner> q, Connection c) {
        if (q != null) {
            for (int i = 0; i < q.size(); i++) {
                if (q.get(i).conn == c) {
                    return i;
                }
            }
        }
        return -1;
    }
}
