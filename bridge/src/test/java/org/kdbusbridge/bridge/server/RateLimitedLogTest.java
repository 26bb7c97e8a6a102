package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

class RateLimitedLogTest {
    private long now;
    private final List<String> lines = new ArrayList<>();

    @Test
    void passesAtMostNPerWindowAndCountsTheRest() {
        RateLimitedLog log = new RateLimitedLog(3, 1_000, () -> now, lines::add);
        for (int i = 0; i < 10; i++) {
            log.accept("denied " + i);
        }
        assertEquals(List.of("denied 0", "denied 1", "denied 2"), lines);
        assertEquals(7, log.suppressed());
        now += 999;
        log.accept("still the same window");
        assertEquals(3, lines.size());
        now += 1;
        log.accept("next window");
        assertEquals("next window (8 similar messages suppressed before this one)", lines.get(3));
        assertEquals(0, log.suppressed());
        log.accept("plain");
        assertEquals("plain", lines.get(4));
    }

    @Test
    void refusesNonsense() {
        assertThrows(IllegalArgumentException.class, () -> new RateLimitedLog(0, 1, () -> 0, lines::add));
        assertThrows(IllegalArgumentException.class, () -> new RateLimitedLog(1, 0, () -> 0, lines::add));
    }
}
