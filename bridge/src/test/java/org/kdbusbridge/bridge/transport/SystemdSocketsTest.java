package org.kdbusbridge.bridge.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

class SystemdSocketsTest {

    private static final long PID = 4242;

    private static List<Integer> fds(Map<String, String> env) {
        return SystemdSockets.listenFds(env::get, PID);
    }

    @Test
    void descriptorsStartAtThree() {
        assertEquals(List.of(3), fds(Map.of("LISTEN_PID", "4242", "LISTEN_FDS", "1")));
        assertEquals(List.of(3, 4, 5), fds(Map.of("LISTEN_PID", "4242", "LISTEN_FDS", "3")));
        assertEquals(List.of(), fds(Map.of("LISTEN_PID", "4242", "LISTEN_FDS", "0")));
    }

    @Test
    void nothingWithoutVariablesOrForAnotherProcess() {
        assertEquals(List.of(), fds(Map.of()));
        assertEquals(List.of(), fds(Map.of("LISTEN_FDS", "2")));
        assertEquals(List.of(), fds(Map.of("LISTEN_PID", "4242")));
        assertEquals(List.of(), fds(Map.of("LISTEN_PID", "4243", "LISTEN_FDS", "2")));
    }

    @Test
    void malformedVariablesForUsAreErrors() {
        assertThrows(IllegalArgumentException.class, () -> fds(Map.of("LISTEN_PID", "x", "LISTEN_FDS", "1")));
        assertThrows(IllegalArgumentException.class, () -> fds(Map.of("LISTEN_PID", "4242", "LISTEN_FDS", "one")));
        assertThrows(IllegalArgumentException.class, () -> fds(Map.of("LISTEN_PID", "4242", "LISTEN_FDS", "-1")));
    }

    @Test
    void takeWithoutActivationFindsNothing() {
        // The test JVM was not socket-activated (surefire does not pass LISTEN_*).
        assertTrue(System.getenv("LISTEN_PID") == null
                || !System.getenv("LISTEN_PID").equals(Long.toString(ProcessHandle.current().pid())));
        assertEquals(List.of(), SystemdSockets.take());
    }
}
