package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.client.BusConnection;
import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.config.BusConfigParser;
import org.kdbusbridge.bridge.handover.Snapshot;
import org.kdbusbridge.bridge.transport.TransportSettings;

/**
 * A bus with two {@code <listen>} addresses, as dbus-daemon: GetId's bus ID is no address's
 * guid, each address has a guid of its own in the printed address and in the SASL OK line of
 * a client that came through it, and a hand-over (in-process) keeps the bus ID and both guids.
 */
class ListenerGuidsTest {
    private static final Duration T = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    private final List<BusServer> servers = new ArrayList<>();
    private final List<BusConnection> clients = new ArrayList<>();

    @AfterEach
    void close() {
        clients.forEach(BusConnection::close);
        servers.forEach(BusServer::stop);
    }

    private BusConfig twoListens() throws Exception {
        Path conf = dir.resolve("bus.conf");
        Files.writeString(conf, "<busconfig><type>session</type>"
                + "<listen>unix:path=" + dir.resolve("one") + "</listen>"
                + "<listen>unix:dir=" + dir + "</listen>"
                + "<auth>EXTERNAL</auth><policy context=\"default\"><allow send_destination=\"*\"/>"
                + "<allow receive_sender=\"*\"/><allow own=\"*\"/></policy></busconfig>");
        return BusConfigParser.parse(conf);
    }

    private BusConnection client(String address) throws IOException {
        BusConnection c = BusConnection.open(address, "listener-guids");
        clients.add(c);
        return c;
    }

    private static String getId(BusConnection c) throws IOException {
        BusMessage m = c.callDriver("GetId", "", new Object[0], T);
        assertTrue(m != null && m.isReturn(), String.valueOf(m));
        return m.stringArg(0);
    }

    private static String guidOf(String entry) {
        return entry.substring(entry.indexOf(",guid=") + ",guid=".length());
    }

    @Test
    void eachListenAddressHasItsOwnGuidAndGetIdIsNoneOfThem() throws Exception {
        BusServer a = new BusServer(twoListens(), TransportSettings.fromSystemProperties());
        servers.add(a);
        String address = a.start();
        String[] entries = address.split(";");
        assertEquals(2, entries.length, address);
        assertTrue(entries[0].matches("unix:path=" + java.util.regex.Pattern.quote(dir.resolve("one").toString())
                + ",guid=[0-9a-f]{32}"), address);
        assertTrue(entries[1].matches("unix:path=.*/dbus-[A-Za-z0-9]{10},guid=[0-9a-f]{32}"), address);
        List<String> guids = List.of(guidOf(entries[0]), guidOf(entries[1]));
        assertEquals(guids, a.listenerGuids());
        assertNotEquals(guids.get(0), guids.get(1), "two servers, two guids: " + address);

        String busId = null;
        for (int i = 0; i < 2; i++) {
            BusConnection c = client(entries[i]); // with guid=: the SASL OK must name this very server
            assertEquals(guids.get(i), c.serverGuid(), entries[i]);
            String id = getId(c);
            assertTrue(id.matches("[0-9a-f]{32}"), id);
            assertTrue(!guids.contains(id), "GetId " + id + " is not an address's guid " + guids);
            if (busId != null) {
                assertEquals(busId, id, "one bus, one bus ID, whichever address");
            }
            busId = id;
        }
        assertEquals(a.busId(), busId);
        assertTrue(!guids.contains(a.guid()) && !a.guid().equals(busId), "the carried GUID itself is never shown");
        // The guid of the other address is refused, as libdbus refuses it.
        IOException wrong = assertThrows(IOException.class,
                () -> client(entries[0].replace(guids.get(0), guids.get(1))));
        assertTrue(wrong.getMessage().contains(guids.get(0)), wrong.getMessage());

        // Hand-over in this JVM: the new bus derives the same values from the one carried GUID.
        Snapshot snap = detach(a);
        BusServer b = HandOverRestore.restore(snap, twoListens(), TransportSettings.fromSystemProperties());
        servers.add(b);
        assertEquals(address, b.address(), "the same printed addresses, guids included");
        assertEquals(guids, b.listenerGuids());
        assertEquals(busId, b.busId());
        for (BusConnection c : clients) {
            assertEquals(busId, getId(c), "a carried client sees the same bus ID");
        }
        for (int i = 0; i < 2; i++) {
            BusConnection c = client(entries[i]); // a new client through the old printed address
            assertEquals(guids.get(i), c.serverGuid(), entries[i]);
            assertEquals(busId, getId(c));
        }
    }

    /** Retries while refused (a reply may still be on its way out); a refusal changes nothing. */
    private static Snapshot detach(BusServer s) throws Exception {
        long deadline = System.nanoTime() + T.toNanos();
        while (true) {
            try {
                return s.detachForHandOver();
            } catch (Snapshot.Refused e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.onSpinWait();
            }
        }
    }
}
