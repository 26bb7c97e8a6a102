package org.kdbusbridge.core.name;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
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
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.connection.Connection;

class NameRegistryTest {
    private static final String N = "org.example.Name";
    private static final int A = FLAG_ALLOW_REPLACEMENT;
    private static final int R = FLAG_REPLACE_EXISTING;
    private static final int D = FLAG_DO_NOT_QUEUE;

    private NameRegistry reg;
    private Connection a;
    private Connection b;
    private Connection c;
    private List<NameChange> changes;

    @BeforeEach
    void setUp() {
        reg = new NameRegistry();
        a = Fixtures.conn(1);
        b = Fixtures.conn(2);
        c = Fixtures.conn(3);
        changes = new ArrayList<>();
    }

    private int req(Connection who, int flags) {
        return reg.request(who, N, flags, changes);
    }

    private List<NameChange> taken() {
        List<NameChange> out = new ArrayList<>(changes);
        changes.clear();
        return out;
    }

    private Connection byLetter(String s) {
        return Map.of("a", a, "b", b, "c", c).get(s);
    }

    private List<Connection> queueOf(String letters) {
        List<Connection> out = new ArrayList<>();
        for (String s : letters.trim().split("\\s+")) {
            if (!s.isEmpty()) {
                out.add(byLetter(s));
            }
        }
        return out;
    }

    // ---------------------------------------------------------------- RequestName

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2, 3, 4, 5, 6, 7})
    void firstRequestIsPrimaryOwnerForEveryFlagCombination(int flags) {
        assertEquals(REPLY_PRIMARY_OWNER, req(a, flags));
        assertEquals(List.of(new NameChange(N, null, a)), taken());
        assertSame(a, reg.owner(N));
        assertEquals(List.of(a), reg.queue(N));
        assertEquals(List.of(N), reg.names());
        assertEquals(List.of(N), a.ownedNames());
        // REPLACE_EXISTING is never stored
        assertEquals(flags & (A | D), reg.storedFlags(a, N));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2, 3, 4, 5, 6, 7})
    void repeatedRequestByPrimaryIsAlreadyOwnerAndStoresNewFlags(int flags) {
        req(a, 0);
        req(b, 0);
        taken();
        assertEquals(REPLY_ALREADY_OWNER, req(a, flags));
        assertEquals(List.of(), taken());
        assertEquals(List.of(a, b), reg.queue(N));
        assertEquals(flags & (A | D), reg.storedFlags(a, N));
        assertEquals(List.of(N), a.ownedNames(), "no duplicate in ownedNames");
    }

    /**
     * b asks for a name a owns. Columns: a's flags, b's flags, expected reply, expected queue
     * (primary first). Straight from bus_registry_acquire_service.
     */
    @ParameterizedTest(name = "primary={0} request={1} -> {2} [{3}]")
    @CsvSource({
        // a does not allow replacement
        "0, 0, 2, a b",
        "0, 1, 2, a b",
        "0, 2, 2, a b",
        "0, 3, 2, a b",
        "0, 4, 3, a",
        "0, 5, 3, a",
        "0, 6, 3, a",
        "0, 7, 3, a",
        // a allows replacement
        "1, 0, 2, a b",
        "1, 1, 2, a b",
        "1, 2, 1, b a",
        "1, 3, 1, b a",
        "1, 4, 3, a",
        "1, 5, 3, a",
        "1, 6, 1, b a",
        "1, 7, 1, b a",
        // a allows replacement but did not want to queue: it leaves when replaced
        "5, 0, 2, a b",
        "5, 2, 1, b",
        "5, 4, 3, a",
        "5, 6, 1, b",
        // a did not want to queue and does not allow replacement
        "4, 2, 2, a b",
        "4, 6, 3, a",
    })
    void secondRequesterForEveryFlagCombination(int primaryFlags, int flags, int expected, String queue) {
        req(a, primaryFlags);
        taken();
        assertEquals(expected, req(b, flags));
        assertEquals(queueOf(queue), reg.queue(N));
        if (expected == REPLY_PRIMARY_OWNER) {
            assertEquals(List.of(new NameChange(N, a, b)), taken());
            assertSame(b, reg.owner(N));
            assertEquals(flags & (A | D), reg.storedFlags(b, N));
        } else {
            assertEquals(List.of(), taken());
            assertSame(a, reg.owner(N));
        }
        assertEquals(reg.queue(N).contains(a), a.ownedNames().contains(N));
        assertEquals(reg.queue(N).contains(b), b.ownedNames().contains(N));
        if (expected == REPLY_IN_QUEUE) {
            assertEquals(flags & (A | D), reg.storedFlags(b, N));
        }
        if (expected == REPLY_EXISTS) {
            assertEquals(-1, reg.storedFlags(b, N));
        }
    }

    /** The map is rebuilt once a flood of names has mostly gone; what is left is intact. */
    @Test
    void aFloodOfNamesThatHasGoneLeavesTheRestIntact() {
        for (int i = 0; i < 20_000; i++) {
            assertEquals(NameRegistry.REPLY_PRIMARY_OWNER, reg.request(a, "org.flood.N" + i, 0, changes));
        }
        assertEquals(NameRegistry.REPLY_IN_QUEUE, reg.request(b, "org.flood.N7", 0, changes));
        for (int i = 0; i < 20_000; i++) {
            if (i % 1000 != 7) {
                reg.release(a, "org.flood.N" + i, changes);
            }
        }
        reg.checkInvariants(List.of(a, b, c));
        assertEquals(20, reg.names().size());
        assertEquals(a, reg.owner("org.flood.N1007"));
        assertEquals(List.of(a, b), reg.queue("org.flood.N7"));
        reg.release(a, "org.flood.N7", changes);
        assertEquals(b, reg.owner("org.flood.N7"), "the queue moved on after the rebuild");
        assertEquals(NameRegistry.REPLY_PRIMARY_OWNER, reg.request(c, "org.flood.N3", 0, changes));
        reg.checkInvariants(List.of(a, b, c));
    }

    @Test
    void replacedPrimaryGoesToPositionTwoAheadOfEarlierQueuers() {
        req(a, A);
        req(c, 0); // queued: [a, c]
        taken();
        assertEquals(REPLY_PRIMARY_OWNER, req(b, R));
        assertEquals(List.of(b, a, c), reg.queue(N));
        assertEquals(List.of(new NameChange(N, a, b)), taken());
        // a is still queued and keeps its flags
        assertEquals(A, reg.storedFlags(a, N));
        assertTrue(a.ownedNames().contains(N));
    }

    @Test
    void replacedPrimaryWithDoNotQueueLeavesEntirely() {
        req(a, A | D);
        req(c, 0);
        taken();
        assertEquals(REPLY_PRIMARY_OWNER, req(b, R));
        assertEquals(List.of(b, c), reg.queue(N));
        assertEquals(List.of(new NameChange(N, a, b)), taken());
        assertEquals(-1, reg.storedFlags(a, N));
        assertFalse(a.ownedNames().contains(N));
    }

    @Test
    void alreadyOwnerCanWithdrawAllowReplacement() {
        req(a, A);
        assertEquals(A, reg.storedFlags(a, N));
        assertEquals(REPLY_ALREADY_OWNER, req(a, 0));
        assertEquals(0, reg.storedFlags(a, N));
        taken();
        assertEquals(REPLY_IN_QUEUE, req(b, R));
        assertSame(a, reg.owner(N));
        assertEquals(List.of(), taken());
    }

    @Test
    void alreadyOwnerCanGrantAllowReplacement() {
        req(a, 0);
        assertEquals(REPLY_ALREADY_OWNER, req(a, A | R));
        assertEquals(A, reg.storedFlags(a, N), "REPLACE_EXISTING is not stored");
        taken();
        assertEquals(REPLY_PRIMARY_OWNER, req(b, R));
        assertEquals(List.of(b, a), reg.queue(N));
        assertEquals(List.of(new NameChange(N, a, b)), taken());
    }

    @Test
    void alreadyOwnerCanAddDoNotQueueAndThenLeavesWhenReplaced() {
        req(a, A);
        assertEquals(REPLY_ALREADY_OWNER, req(a, A | D));
        assertEquals(A | D, reg.storedFlags(a, N));
        taken();
        assertEquals(REPLY_PRIMARY_OWNER, req(b, R));
        assertEquals(List.of(b), reg.queue(N));
        assertFalse(a.ownedNames().contains(N));
    }

    @Test
    void queuedRequesterAskingAgainKeepsItsPlaceAndUpdatesFlags() {
        req(a, 0);
        req(b, 0);
        req(c, 0);
        assertEquals(REPLY_IN_QUEUE, req(b, A));
        assertEquals(List.of(a, b, c), reg.queue(N));
        assertEquals(A, reg.storedFlags(b, N));
        assertEquals(REPLY_IN_QUEUE, req(c, 0));
        assertEquals(List.of(a, b, c), reg.queue(N));
        assertEquals(List.of(N), b.ownedNames(), "re-queueing does not duplicate ownedNames");
    }

    @Test
    void replaceExistingByQueuedNonPrimaryMovesItToPositionTwo() {
        req(a, 0); // no replacement allowed
        req(b, 0);
        req(c, 0);
        taken();
        assertEquals(REPLY_IN_QUEUE, req(c, R));
        assertEquals(List.of(a, c, b), reg.queue(N));
        assertEquals(List.of(), taken());
    }

    @Test
    void newcomerWithReplaceExistingButNoReplacementAllowedQueuesAtPositionTwo() {
        req(a, 0);
        req(b, 0);
        assertEquals(REPLY_IN_QUEUE, req(c, R));
        assertEquals(List.of(a, c, b), reg.queue(N));
    }

    @Test
    void replaceExistingByQueuedNonPrimaryTakesOverWhenAllowed() {
        req(a, A);
        req(b, 0);
        req(c, 0);
        taken();
        assertEquals(REPLY_PRIMARY_OWNER, req(c, R | D));
        assertEquals(List.of(c, a, b), reg.queue(N));
        assertEquals(List.of(new NameChange(N, a, c)), taken());
        assertEquals(D, reg.storedFlags(c, N));
        assertEquals(List.of(N), c.ownedNames());
    }

    @Test
    void doNotQueueWithExistsRemovesAQueuedRequester() {
        req(a, 0);
        req(b, 0);
        req(c, 0);
        taken();
        assertEquals(REPLY_EXISTS, req(b, D));
        assertEquals(List.of(a, c), reg.queue(N));
        assertEquals(List.of(), b.ownedNames());
        assertEquals(-1, reg.storedFlags(b, N));
        assertEquals(List.of(), taken());
    }

    @Test
    void doNotQueueWithoutReplaceIsExistsEvenWhenReplacementAllowed() {
        req(a, A);
        req(b, 0);
        assertEquals(REPLY_EXISTS, req(b, D | A));
        assertEquals(List.of(a), reg.queue(N));
        assertFalse(b.ownedNames().contains(N));
    }

    // ---------------------------------------------------------------- ReleaseName

    @Test
    void releaseOfUnknownNameIsNonExistent() {
        assertEquals(RELEASE_NON_EXISTENT, reg.release(a, N, changes));
        assertEquals(List.of(), changes);
    }

    @Test
    void releaseByNonMemberIsNotOwner() {
        req(a, 0);
        taken();
        assertEquals(RELEASE_NOT_OWNER, reg.release(b, N, changes));
        assertEquals(List.of(), changes);
        assertSame(a, reg.owner(N));
    }

    @Test
    void releaseOfSoleOwnerRemovesTheName() {
        req(a, 0);
        taken();
        assertEquals(RELEASE_RELEASED, reg.release(a, N, changes));
        assertEquals(List.of(new NameChange(N, a, null)), taken());
        assertNull(reg.owner(N));
        assertEquals(List.of(), reg.queue(N));
        assertEquals(List.of(), reg.names());
        assertEquals(-1, reg.storedFlags(a, N));
        assertEquals(List.of(), a.ownedNames());
        // and it can be requested afresh
        assertEquals(REPLY_PRIMARY_OWNER, req(b, 0));
    }

    @Test
    void releaseOfPrimaryPromotesNextInQueue() {
        req(a, 0);
        req(b, D | A);
        assertEquals(REPLY_EXISTS, req(b, D)); // b got removed again...
        req(b, A); // ...and queued with ALLOW_REPLACEMENT
        req(c, 0);
        taken();
        assertEquals(RELEASE_RELEASED, reg.release(a, N, changes));
        assertEquals(List.of(new NameChange(N, a, b)), taken());
        assertEquals(List.of(b, c), reg.queue(N));
        assertEquals(A, reg.storedFlags(b, N), "the promoted owner keeps its stored flags");
        assertFalse(a.ownedNames().contains(N));
    }

    @Test
    void releaseOfQueuedNonPrimaryChangesNoOwner() {
        req(a, 0);
        req(b, 0);
        req(c, 0);
        taken();
        assertEquals(RELEASE_RELEASED, reg.release(b, N, changes));
        assertEquals(List.of(), taken());
        assertEquals(List.of(a, c), reg.queue(N));
        assertEquals(List.of(), b.ownedNames());
        assertEquals(RELEASE_NOT_OWNER, reg.release(b, N, changes));
    }

    // ---------------------------------------------------------------- releaseAll

    @Test
    void releaseAllDropsMostRecentlyAcquiredFirst() {
        reg.request(a, "org.example.One", 0, changes);
        reg.request(a, "org.example.Two", 0, changes);
        reg.request(b, "org.example.Queued", 0, changes);
        reg.request(a, "org.example.Queued", 0, changes); // a only queued here
        reg.request(a, "org.example.Three", 0, changes);
        reg.request(c, "org.example.Two", 0, changes); // c waits for Two
        reg.request(a, "org.example.One", A, changes); // ALREADY_OWNER: does not reorder
        taken();

        reg.releaseAll(a, changes);
        assertEquals(List.of(
                new NameChange("org.example.Three", a, null),
                new NameChange("org.example.Two", a, c),
                new NameChange("org.example.One", a, null)), taken());
        assertEquals(List.of(), a.ownedNames());
        assertEquals(List.of(b), reg.queue("org.example.Queued"));
        assertEquals(List.of(c), reg.queue("org.example.Two"));
        assertNull(reg.owner("org.example.One"));
        assertNull(reg.owner("org.example.Three"));
        assertEquals(2, reg.names().size());
    }

    @Test
    void releaseAllOfConnectionWithoutNamesChangesNothing() {
        req(a, 0);
        taken();
        reg.releaseAll(b, changes);
        assertEquals(List.of(), changes);
        assertSame(a, reg.owner(N));
    }

    @Test
    void ownedNamesTracksAcquisitionOrderIncludingQueuedNames() {
        reg.request(a, "org.example.X", 0, changes);
        reg.request(b, "org.example.Y", 0, changes);
        reg.request(a, "org.example.Y", 0, changes);
        assertEquals(List.of("org.example.X", "org.example.Y"), a.ownedNames());
        reg.release(b, "org.example.Y", changes);
        assertEquals(List.of("org.example.X", "org.example.Y"), a.ownedNames(), "promotion does not reorder");
        assertSame(a, reg.owner("org.example.Y"));
    }

    @Test
    void nameChangeRendersMissingOwnersAsEmptyString() {
        NameChange gained = new NameChange(N, null, a);
        NameChange lost = new NameChange(N, a, null);
        assertEquals("", gained.oldOwnerName());
        assertEquals(":1.1", gained.newOwnerName());
        assertEquals(":1.1", lost.oldOwnerName());
        assertEquals("", lost.newOwnerName());
    }

    @Test
    void storedFlagsOfNonMemberIsMinusOne() {
        assertEquals(-1, reg.storedFlags(a, N));
        req(a, A);
        assertEquals(-1, reg.storedFlags(b, N));
    }

    /**
     * wouldAddEntry (the quota check's question) says exactly whether request then adds an
     * entry for the requester, in every state (absent, primary, queued; primary with or without
     * ALLOW_REPLACEMENT) and for every flag combination; the entry listener sees each add and
     * remove, so a ledger over it balances to zero when everyone leaves.
     */
    @Test
    void wouldAddEntryPredictsEveryRequestAndTheListenerBalances() {
        int[] held = new int[4];
        for (int primaryFlags = 0; primaryFlags < 8; primaryFlags++) {
            for (int bState = 0; bState < 3; bState++) { // 0 absent, 1 queued, 2 primary
                for (int flags = 0; flags < 8; flags++) {
                    setUp();
                    reg.setEntryListener(new NameRegistry.EntryListener() {
                        @Override
                        public void added(Connection conn, String name) {
                            held[(int) conn.id()]++;
                        }

                        @Override
                        public void removed(Connection conn, String name) {
                            held[(int) conn.id()]--;
                        }
                    });
                    java.util.Arrays.fill(held, 0);
                    if (bState == 2) {
                        req(b, primaryFlags);
                    } else {
                        req(a, primaryFlags);
                        if (bState == 1) {
                            req(b, 0);
                        }
                    }
                    boolean predicted = reg.wouldAddEntry(b, N, flags);
                    int before = held[2];
                    req(b, flags);
                    String what = "primary flags " + primaryFlags + ", b state " + bState + ", flags " + flags;
                    assertEquals(predicted, held[2] > before, what);
                    assertEquals(reg.queue(N).contains(b) ? 1 : 0, held[2], what);
                    reg.releaseAll(a, changes);
                    reg.releaseAll(b, changes);
                    assertEquals(0, held[1] + held[2] + held[3], what);
                }
            }
        }
    }

    /** Many names: a bulk release is in the asked order, hands queues on, and leaves the list empty. */
    @Test
    void releaseAllOfManyNamesInEitherOrder() {
        for (boolean oldestFirst : new boolean[] {false, true}) {
            NameRegistry r = new NameRegistry();
            Connection owner = Fixtures.conn(10);
            Connection next = Fixtures.conn(11);
            List<NameChange> ch = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                r.request(owner, "org.example.N" + i, 0, ch);
            }
            r.request(next, "org.example.N7", 0, ch); // queued behind owner
            assertTrue(owner.ownsName("org.example.N999"));
            assertTrue(next.ownsName("org.example.N7"));
            ch.clear();
            r.releaseAll(owner, oldestFirst, ch);
            assertEquals(1000, ch.size());
            assertEquals("org.example.N" + (oldestFirst ? 0 : 999), ch.get(0).name());
            assertEquals("org.example.N" + (oldestFirst ? 999 : 0), ch.get(999).name());
            NameChange handOver = ch.stream().filter(x -> x.name().equals("org.example.N7")).findFirst().orElseThrow();
            assertEquals(next, handOver.newOwner());
            assertEquals(List.of(), owner.ownedNames());
            assertFalse(owner.ownsName("org.example.N7"));
            assertEquals(next, r.owner("org.example.N7"));
            assertEquals(1, r.ownerEntries());
        }
    }

    /** The membership set a connection keeps past a few names agrees with its list. */
    @Test
    void ownsNameAgreesWithTheListAcrossTheIndexThreshold() {
        for (int i = 0; i < 20; i++) {
            reg.request(a, "org.example.M" + i, 0, changes);
        }
        reg.release(a, "org.example.M3", changes);
        reg.release(a, "org.example.M19", changes);
        for (int i = 0; i < 20; i++) {
            String n = "org.example.M" + i;
            assertEquals(a.ownedNames().contains(n), a.ownsName(n), n);
            assertEquals(a.ownedNames().contains(n), a.inQueueOf(n), n);
        }
        assertEquals(18, a.ownedNames().size());
    }
}
