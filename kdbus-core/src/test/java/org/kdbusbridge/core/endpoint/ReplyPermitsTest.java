package org.kdbusbridge.core.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ReplyPermitsTest {
    @Test
    void aReceivedCallMayBeAnsweredOnceByItsCallerAndSerial() {
        ReplyPermits r = new ReplyPermits(4);
        assertTrue(r.received(":1.5", 10));
        assertFalse(r.answer(":1.5", 11)); // a call it never got
        assertFalse(r.answer(":1.6", 10)); // same serial, another peer
        assertFalse(r.answer(null, 10));
        assertTrue(r.answer(":1.5", 10));
        assertFalse(r.answer(":1.5", 10)); // only once
        assertEquals(0, r.size());
    }

    @Test
    void sameSerialFromTwoCallersAreTwoPermits() {
        ReplyPermits r = new ReplyPermits(4);
        r.received(":1.5", 1);
        r.received(":1.6", 1);
        r.received(":1.6", 1); // a duplicate counts once
        assertEquals(2, r.size());
        assertTrue(r.answer(":1.6", 1));
        assertTrue(r.answer(":1.5", 1));
    }

    @Test
    void capacityIsABackstopAndForgettingFreesRoom() {
        ReplyPermits r = new ReplyPermits(2);
        assertTrue(r.received(":1.5", 1));
        assertTrue(r.received(":1.5", 2));
        assertFalse(r.received(":1.6", 1));
        r.forgetCaller(":1.5");
        assertEquals(0, r.size());
        assertTrue(r.received(":1.6", 1));
        r.expire(":1.6", 1);
        assertFalse(r.answer(":1.6", 1));
        assertThrows(IllegalArgumentException.class, () -> new ReplyPermits(0));
    }
}
