// Invariants under test: a driver reply of at least the zero-copy threshold (ListNames over
// thousands of names) is encoded into a pooled direct buffer, not a heap array, arrives intact,
// and its buffer goes back to the pool once it is written (issue 14: a 2.4 MB reply on the
// heap lands in a small old generation, a full GC per call). Real sockets, real BusServer.
package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.bridge.transport.TransportSettings;

class LargeDriverReplyTest {
    private static final TransportSettings SETTINGS =
            TransportSettings.fromSystemProperties().withZeroCopyThreshold(TransportSettings.ZERO_COPY_SIZE);
    /** 5,000 names of ~30 bytes: a ~180 KB reply, above the 64 KiB threshold. */
    private static final int NAMES = 5000;

    @TempDir
    Path dir;
    private BusServer server;

    @AfterEach
    void stop() {
        if (server != null) server.stop();
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void largeListNamesIsWrittenFromThePoolAndComesBack() throws Exception {
        server = new BusServer(BusConfig.forAddress("unix:path=" + dir.resolve("bus")), SETTINGS);
        server.start();
        Path socket = dir.resolve("bus");
        List<RawClient> owners = new ArrayList<>();
        try (RawClient asker = RawClient.open(socket)) {
            Set<String> expected = new HashSet<>();
            for (int i = 0; i < NAMES; i += 500) { // 500 names per connection (max_names_per_connection 512)
                RawClient owner = RawClient.open(socket);
                owners.add(owner);
                long last = 0;
                for (int k = i; k < i + 500; k++) {
                    String name = "org.kdbusbridge.LargeReply.Name" + k;
                    expected.add(name);
                    BodyWriter b = new BodyWriter().writeString(name).writeUint32(4); // DO_NOT_QUEUE
                    last = owner.callDriver("RequestName", "su", b.toByteArray());
                }
                RawClient.Msg m;
                do {
                    m = owner.read(); // replies and NameAcquired signals
                } while (m.replySerial() != last);
                assertEquals(WireFormat.METHOD_RETURN, m.type(), m.toString());
                assertEquals(1L, m.body().readUint32(), "PRIMARY_OWNER");
            }
            long before = OnLoop.get(server, () -> server.buffers().allocatedCount() + server.buffers().reusedCount());

            long serial = asker.callDriver("ListNames", "", new byte[0]);
            List<String> got = asker.expectReturn(serial).body().readStringArray();

            assertTrue(OnLoop.get(server, () -> server.buffers().allocatedCount() + server.buffers().reusedCount())
                    > before, "the reply took a pooled direct buffer");
            Set<String> wellKnown = new HashSet<>();
            List<String> unique = new ArrayList<>();
            for (String n : got) {
                if (n.startsWith(":")) unique.add(n);
                else if (n.startsWith("org.kdbusbridge.LargeReply.")) wellKnown.add(n);
            }
            assertEquals(expected, wellKnown);
            assertEquals(owners.size() + 1, unique.size(), "every client's unique name");
            assertEquals("org.freedesktop.DBus", got.get(0));
            OnLoop.await(server, "the reply's buffer given back", 10, () -> server.buffers().lentBytes() == 0);
        } finally {
            for (RawClient o : owners) o.close();
        }
    }
}
