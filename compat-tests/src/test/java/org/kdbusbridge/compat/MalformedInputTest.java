package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Scenario 7: malformed input on a raw socket. For each case the expected outcome is what dbus-daemon
 * 1.14 does; our bus must do the same, and after each case a fresh dbus-send must still work.
 */
class MalformedInputTest {
    enum Outcome { DISCONNECTED, STILL_OPEN }

    /**
     * How long a connection must stay up to count as STILL_OPEN. This is a deadline for an absence
     * (no EOF), not a synchronisation sleep: DISCONNECTED cases return as soon as the EOF arrives.
     */
    static final Duration OPEN_WINDOW = Duration.ofSeconds(2);

    enum Case {
        GARBAGE_BEFORE_AUTH(Outcome.DISCONNECTED),
        /** dbus-daemon answers an unknown SASL command with ERROR and keeps the connection. */
        BAD_AUTH_MECHANISM_THEN_GARBAGE(Outcome.STILL_OPEN),
        SERIAL_ZERO(Outcome.DISCONNECTED),
        BAD_ENDIANNESS_BYTE(Outcome.DISCONNECTED),
        BAD_PROTOCOL_VERSION(Outcome.DISCONNECTED),
        CALL_WITHOUT_MEMBER(Outcome.DISCONNECTED),
        LYING_LENGTH_100MB(Outcome.STILL_OPEN),
        OVER_128MIB_CAP(Outcome.DISCONNECTED),
        NON_HELLO_FIRST(Outcome.DISCONNECTED);

        final Outcome onDbusDaemon;

        Case(Outcome o) {
            this.onDbusDaemon = o;
        }
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (BusKind k : BusKind.selected()) {
            for (Case c : Case.values()) {
                out.add(Arguments.of(k, c));
            }
        }
        return out.stream();
    }

    static byte[] listNames(long serial) {
        return Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "ListNames").encode(serial);
    }

    /** A header (no body bytes) that claims a body of {@code bodyLen} bytes. */
    static byte[] headerClaiming(long bodyLen) {
        byte[] full = Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "RequestName")
                .body("su", "com.example.Liar", 0L).encode(77);
        Message m = Message.decode(full);
        int headerLen = full.length - m.body.length;
        byte[] h = java.util.Arrays.copyOf(full, headerLen);
        for (int k = 0; k < 4; k++) {
            h[4 + k] = (byte) (bodyLen >>> (8 * k));
        }
        return h;
    }

    /** Runs one case on a fresh connection; returns what happened to that connection. */
    static Outcome provoke(BusUnderTest bus, Case c) throws Exception {
        try (RawClient raw = RawClient.open(bus.address())) {
            switch (c) {
                case GARBAGE_BEFORE_AUTH -> raw.writeRaw("XAUTH EXTERNAL 30\r\n".getBytes(StandardCharsets.US_ASCII));
                case BAD_AUTH_MECHANISM_THEN_GARBAGE -> {
                    raw.writeRaw("\0AUTH NOPE\r\n".getBytes(StandardCharsets.US_ASCII));
                    String rej = raw.readLine(Buses.T);
                    assertTrue(rej != null && rej.startsWith("REJECTED"), "REJECTED after an unknown mechanism: " + rej);
                    raw.writeRaw("GARBAGE\r\n".getBytes(StandardCharsets.US_ASCII));
                    String err = raw.readLine(Buses.T);
                    assertTrue(err != null && err.startsWith("ERROR"), "ERROR for an unknown SASL command: " + err);
                }
                default -> {
                    raw.authenticate(Buses.T);
                    if (c != Case.NON_HELLO_FIRST) {
                        raw.hello(Buses.T);
                    }
                    switch (c) {
                        case SERIAL_ZERO -> raw.writeRaw(listNames(0));
                        case BAD_ENDIANNESS_BYTE -> {
                            byte[] b = listNames(50);
                            b[0] = 'X';
                            raw.writeRaw(b);
                        }
                        case BAD_PROTOCOL_VERSION -> {
                            byte[] b = listNames(51);
                            b[3] = 2;
                            raw.writeRaw(b);
                        }
                        case CALL_WITHOUT_MEMBER -> raw.writeRaw(
                                Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, null).encode(52));
                        case LYING_LENGTH_100MB -> raw.writeRaw(headerClaiming(100L * 1024 * 1024));
                        case OVER_128MIB_CAP -> raw.writeRaw(headerClaiming(128L * 1024 * 1024 + 1));
                        case NON_HELLO_FIRST -> raw.send(Message.call("com.example.X", "/com/example/X", "com.example.X", "Foo"));
                        default -> throw new AssertionError(c);
                    }
                }
            }
            Duration wait = c.onDbusDaemon == Outcome.STILL_OPEN ? OPEN_WINDOW : Buses.T;
            boolean eof = raw.awaitEof(wait);
            if (!eof) {
                // The half-sent connection is still there: the bus must keep serving others meanwhile.
                assertGoodClientWorks(bus, c + " (while the bad connection is still open)");
            }
            return eof ? Outcome.DISCONNECTED : Outcome.STILL_OPEN;
        }
    }

    static void assertGoodClientWorks(BusUnderTest bus, String after) {
        assertTrue(bus.isAlive(), bus.name() + " died after " + after);
        Cmd.Result r = Cmd.run(List.of("dbus-send", "--bus=" + bus.address(), "--print-reply", "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus", "org.freedesktop.DBus.ListNames"), Buses.T);
        assertTrue(r.ok() && r.stdout().contains("\"org.freedesktop.DBus\""), "good client after " + after + "\n" + r.describe());
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void behavesLikeDbusDaemon(BusKind kind, Case c) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            Outcome got = provoke(bus, c);
            assertEquals(c.onDbusDaemon, got, kind + ": " + c);
            assertGoodClientWorks(bus, c.toString());
        }
    }
}
