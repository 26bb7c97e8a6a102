package org.kdbusbridge.core.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class EndpointStateTest {
    @Test
    void selfIsTalkAndSendersBecomeSee() {
        EndpointState s = new EndpointState(8, 8);
        s.helloAnswered(":1.1");
        assertEquals(Level.TALK, s.grantOf(":1.1"));
        assertEquals(Level.NONE, s.grantOf(":1.2"));
        s.delivered(":1.2");
        s.delivered("org.freedesktop.DBus"); // the bus: not a peer
        s.delivered(null);
        s.delivered(":1.1"); // itself stays TALK
        assertEquals(Level.SEE, s.grantOf(":1.2"));
        assertEquals(Level.TALK, s.grantOf(":1.1"));
        assertEquals(1, s.peerCount());
    }

    @Test
    void forgetDropsThePeerAndItsPendingCalls() {
        EndpointState s = new EndpointState(8, 8);
        assertTrue(s.deliveredCall(":1.2", 7));
        assertEquals(1, s.replies().size());
        s.forget(":1.2");
        assertEquals(Level.NONE, s.grantOf(":1.2"));
        assertFalse(s.replies().answer(":1.2", 7));
        assertEquals(0, s.replies().size());
    }

    @Test
    void peersAreBoundedByEvictingTheOldest() {
        EndpointState s = new EndpointState(3, 8);
        for (int i = 2; i <= 6; i++) {
            s.delivered(":1." + i);
        }
        assertEquals(3, s.peerCount());
        assertEquals(2, s.evictions());
        assertEquals(Level.NONE, s.grantOf(":1.2"));
        assertEquals(Level.SEE, s.grantOf(":1.6"));
        assertThrows(IllegalArgumentException.class, () -> new EndpointState(0, 1));
    }
}
