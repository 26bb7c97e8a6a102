package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * A unix fd index ('h' value) past UNIX_FDS is the receiver's business: libdbus checks its
 * alignment only, so dbus-daemon relays the message and the service answers with its own
 * reply; the sender stays connected (issue 13, item 8). A raw client (fds negotiated) sends
 * One(5) with no fds and Two(0, 3) with one fd to a GDBus service, then pings the bus.
 */
class HandleIndexTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void indexesPastUnixFdsAreRelayedAndTheSenderStaysConnected(BusKind kind) throws Exception {
        Path script = tmp.resolve("handles.py");
        for (String name : List.of("handles.py", "rawwire.py")) { // rawwire: its raw-message encoder
            try (InputStream in = HandleIndexTest.class.getResourceAsStream(name)) {
                assertNotNull(in, "script resource " + name);
                Files.copy(in, tmp.resolve(name));
            }
        }
        try (BusUnderTest bus = kind.start()) {
            Cmd.Result r = Cmd.run(List.of(DbusPythonTest.PYTHON, script.toString(), bus.address()), Buses.T);
            assertEquals(0, r.exitCode(), r.describe());
            assertEquals(List.of(
                    "return no-fd-5-of-0",          // relayed with no fds: the service finds none
                    "return pipe-two no-fd-3-of-1", // index 0 is the pipe, index 3 is past UNIX_FDS=1
                    "return"),                      // Peer.Ping: still connected
                    r.stdout().lines().map(String::strip).toList(), r.describe());
        }
    }
}
