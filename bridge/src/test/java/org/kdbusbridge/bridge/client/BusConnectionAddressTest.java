package org.kdbusbridge.bridge.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.client.ClientAddress.Entry;
import org.kdbusbridge.bridge.client.ClientAddress.Kind;
import org.kdbusbridge.bridge.config.BusConfig;
import org.kdbusbridge.bridge.server.BusServer;
import org.kdbusbridge.bridge.transport.TransportSettings;
import org.kdbusbridge.bridge.transport.UnixAddress;
import org.kdbusbridge.bridge.transport.UnixAddress.BadAddressException;

/**
 * BusConnection's addresses as libdbus reads a client address (checked against dbus-send
 * --address= of dbus 1.14): a list tried in order, values unescaped, listen-only keys and other
 * transports refused per entry, syntax errors refusing the whole list, guid= compared after
 * auth; and a real bus on an abstract socket reached through the list.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class BusConnectionAddressTest {
    private static final Duration T = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    private BusServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.stop();
        }
    }

    @Test
    void aListIsKeptInOrderWithItsValuesUnescaped() {
        List<Entry> l = ClientAddress.parseList(
                "unix:path=/run/a%20b%2Cc,guid=0123;unix:abstract=x%3dy%2Fz;unix:tmpdir=/tmp;tcp:host=h,port=1;");
        assertEquals(4, l.size(), "one trailing ';' is tolerated");
        assertEquals(Kind.PATH, l.get(0).kind());
        assertEquals("/run/a b,c", l.get(0).value());
        assertEquals("0123", l.get(0).guid(), "guid is taken as written, compared later as a string");
        assertEquals(Kind.ABSTRACT, l.get(1).kind());
        assertEquals("x=y/z", l.get(1).value(), "upper- and lower-case hex both decode");
        assertNull(l.get(1).guid());
        assertEquals(Kind.REFUSED, l.get(2).kind());
        assertEquals(Kind.REFUSED, l.get(3).kind());
        assertEquals("unix:abstract=x%3dy%2Fz", l.get(1).text());
        // An abstract name is bytes: a non-UTF-8 escape survives as the byte.
        assertArrayEquals(new byte[] {'n', (byte) 0xff}, ClientAddress.parseList("unix:abstract=n%ff").get(0).valueBytes());
        // The first of a repeated key counts; unknown keys and keys written escaped are ignored.
        Entry e = ClientAddress.parseList("unix:abstract=one,abstract=two,bogus=1,abs%74ract=three,").get(0);
        assertEquals("one", e.value());
        // path= or abstract= wins over dir= and runtime=, as in libdbus.
        assertEquals(Kind.ABSTRACT, ClientAddress.parseList("unix:abstract=a,runtime=yes,dir=/tmp").get(0).kind());
    }

    @Test
    void listenOnlyKeysAndOtherTransportsAreRefusedWithAReason() {
        for (String key : List.of("tmpdir=/tmp", "dir=/tmp", "runtime=yes")) {
            Entry e = ClientAddress.parseList("unix:" + key).get(0);
            String k = key.substring(0, key.indexOf('='));
            assertEquals(Kind.REFUSED, e.kind(), key);
            assertEquals("Could not parse server address: cannot use the \"" + k
                    + "\" option for an address to connect to, only in an address to listen on", e.refusal());
        }
        assertTrue(ClientAddress.parseList("unix:abstract=a,tmpdir=/tmp").get(0).refusal().contains("\"tmpdir\""),
                "tmpdir= is refused even beside abstract=, as libdbus does");
        assertTrue(ClientAddress.parseList("unix:path=/a,abstract=b").get(0).refusal()
                .contains("can't specify both \"path\" and \"abstract\""));
        assertEquals("Server address of type unix was missing argument path or abstract",
                ClientAddress.parseList("unix:").get(0).refusal());
        assertTrue(ClientAddress.parseList("unix:abstract=a%00b").get(0).refusal().contains("NUL"));
        assertTrue(ClientAddress.parseList("tcp:host=localhost,port=1").get(0).refusal()
                .contains("does not connect to \"tcp:\" addresses"));
        assertTrue(ClientAddress.parseList("UNIX:path=/a").get(0).refusal().startsWith("Unknown address type \"UNIX\""),
                "the transport name is case-sensitive");
    }

    @Test
    void aSyntaxErrorAnywhereRefusesTheWholeList() {
        String[][] cases = {
            {"unix:path=/a;nocolon", "Address does not contain a colon"},
            {";unix:path=/a", "Address does not contain a colon"},
            {"unix:path=/a;;", "Address does not contain a colon"},
            {"unix:path=/a;foo:x", "'=' character not found or has no value following it"},
            {"unix:path=", "'=' character not found or has no value following it"},
            {"unix:=x", "'=' character not found or has no value following it"},
            {"unix:path=/a,,guid=1", "'=' character not found or has no value following it"},
            {"unix:path=/a;unix:path=%zz", "percent character was followed by characters other than hex digits"},
            {"unix:abstract=x%4", "percent character was not followed by two hex digits"},
            {"unix:abstract=a b", "should have been escaped"},
            {"", "Empty address"},
        };
        for (String[] c : cases) {
            BadAddressException e = assertThrows(BadAddressException.class, () -> ClientAddress.parseList(c[0]), c[0]);
            assertTrue(e.getMessage().contains(c[1]), c[0] + ": " + e.getMessage());
        }
        IOException io = assertThrows(IOException.class, () -> BusConnection.open("unix:path=/a;nocolon", "t"));
        assertTrue(io.getMessage().contains("Address does not contain a colon"), io.getMessage());
    }

    @Test
    void theFirstEntrysErrorIsReportedWhenNoneConnects() {
        String unbound = "kbb-unbound-" + UUID.randomUUID();
        IOException e = assertThrows(IOException.class,
                () -> BusConnection.open("unix:tmpdir=/tmp;unix:abstract=" + unbound, "t"));
        assertTrue(e.getMessage().contains("cannot use the \"tmpdir\" option"), e.getMessage());
        e = assertThrows(IOException.class, () -> BusConnection.open("unix:abstract=" + unbound + ";unix:tmpdir=/tmp", "t"));
        assertTrue(e.getMessage().contains("Failed to connect to socket @" + unbound + ": Connection refused"),
                e.getMessage());
        Path missing = dir.resolve("missing");
        e = assertThrows(IOException.class, () -> BusConnection.open("unix:path=" + missing, "t"));
        assertTrue(e.getMessage().contains("Failed to connect to socket " + missing), e.getMessage());
        e = assertThrows(IOException.class, () -> BusConnection.socketPath("unix:abstract=" + unbound));
        assertTrue(e.getMessage().contains("no unix:path= entry"), e.getMessage());
    }

    /** Our bus on an abstract name with a space and a comma in it, escaped as the spec says. */
    @Test
    void anAbstractBusIsReachedThroughTheListAndItsGuidIsChecked() throws Exception {
        String name = "kbb client " + UUID.randomUUID() + ",x";
        server = new BusServer(BusConfig.forAddress("unix:abstract=" + UnixAddress.escape(name)),
                TransportSettings.fromSystemProperties());
        server.start();
        String printed = server.address();
        assertTrue(printed.startsWith("unix:abstract=" + UnixAddress.escape(name) + ",guid="), printed);
        String guid = printed.substring(printed.indexOf(",guid=") + 6);

        // Entries that cannot work come first: each fails and the next is tried.
        String written = "unix:abstract=" + UnixAddress.escape(name).replace("%2c", "%2C");
        String list = "unix:path=" + dir.resolve("none") + ";unix:tmpdir=/tmp;tcp:host=localhost,port=1;" + written;
        try (BusConnection c = BusConnection.open(list, "t")) {
            assertEquals(guid, c.serverGuid());
            BusMessage id = c.callDriver("GetId", "", new Object[0], T);
            assertNotNull(id);
            assertTrue(id.isReturn(), id.toString());
            assertEquals(server.busId(), id.stringArg(0)); // the bus ID, not the address's guid (as dbus-daemon)
            assertNotEquals(guid, id.stringArg(0));
            // close() ends a reader blocked in read(2): shutdown wakes it, then the fd goes.
            c.close();
            assertNull(c.await(m -> false, T));
            assertTrue(c.ended(), "the reader stopped");
            assertNull(c.failure(), "a close is not a failure");
        }
        try (BusConnection c = BusConnection.open(printed, "t")) {
            assertEquals(guid, c.serverGuid(), "the printed address, guid and all");
        }
        // Another guid: refused after auth, and (as libdbus) the next entry is not tried.
        String other = "0123456789abcdef0123456789abcdef";
        IOException e = assertThrows(IOException.class,
                () -> BusConnection.open(written + ",guid=" + other + ";" + written, "t"));
        assertTrue(e.getMessage().contains("'" + other + "'") && e.getMessage().contains("'" + guid + "'"),
                e.getMessage());
        // The guid is compared as written: upper-case hex is another string, as for libdbus.
        assertThrows(IOException.class, () -> BusConnection.open(written + ",guid=" + guid.toUpperCase(), "t"));
        assertEquals(name, new String(ClientAddress.parseList(written).get(0).valueBytes(), StandardCharsets.UTF_8));
    }
}
