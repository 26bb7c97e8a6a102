// Invariants under test: EndpointCaps refuses in dbus-daemon's order (metadata, bus-wide count,
// per-uid count for a held uid, then our per-connection count) with the limit's name, value and
// dbus-daemon-style text; a free slot is null; the per-uid cap never applies to a uid that is
// not held to it, nor to an Endpoints1 endpoint, and the per-connection cap never to AddServer.
package org.kdbusbridge.core.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

class EndpointCapsTest {
    private static final String WHO = "Connection \":1.5\" (uid=1001 pid=7 comm=\"app\")";
    private final EndpointCaps caps = new EndpointCaps(5, 3, 100, 2);

    @Test
    void roomIsNull() {
        assertNull(caps.create(WHO, EndpointCaps.Kind.CONTAINER, 1001, true, 100, 4, 2, 0));
        assertNull(caps.create(WHO, EndpointCaps.Kind.ENDPOINT, 1000, false, 0, 4, 0, 1));
    }

    @Test
    void refusalsComeInDbusDaemonsOrderWithItsTexts() {
        EndpointCaps.Refusal r = caps.create(WHO, EndpointCaps.Kind.CONTAINER, 1001, true, 101, 5, 3, 0);
        assertEquals("max_container_metadata_bytes", r.limitName());
        assertEquals(100, r.limit());
        assertEquals(WHO + " is not allowed to set 101 bytes of container metadata (max_container_metadata_bytes=100)",
                r.message());
        r = caps.create(WHO, EndpointCaps.Kind.CONTAINER, 1001, true, 0, 5, 3, 0);
        assertEquals(WHO + " is not allowed to create more container servers (max_containers=5)", r.message());
        r = caps.create(WHO, EndpointCaps.Kind.CONTAINER, 1001, true, 0, 4, 3, 0);
        assertEquals(WHO + " is not allowed to create more container servers for uid 1001 (max_containers_per_user=3)",
                r.message());
        r = caps.create(WHO, EndpointCaps.Kind.ENDPOINT, 1000, false, 0, 4, 0, 2);
        assertEquals("max_endpoints_per_connection", r.limitName());
        assertEquals(WHO + " is not allowed to create more endpoints (max_endpoints_per_connection=2)", r.message());
        r = caps.create(WHO, EndpointCaps.Kind.ENDPOINT, 1000, false, 0, 5, 0, 0);
        assertEquals(WHO + " is not allowed to create more endpoints (max_containers=5)", r.message());
    }

    @Test
    void eachCapHoldsOnlyWhatItIsFor() {
        assertNull(caps.create(WHO, EndpointCaps.Kind.CONTAINER, 0, false, 0, 4, 99, 99), "an unheld uid, AddServer");
        assertNull(caps.create(WHO, EndpointCaps.Kind.ENDPOINT, 1001, true, 0, 4, 99, 1), "per-uid is AddServer's");
        // As dbus-daemon, a per-uid limit of 0 or less lets nothing through for a held uid.
        assertEquals("max_containers_per_user",
                new EndpointCaps(5, 0, 100, 2).create(WHO, EndpointCaps.Kind.CONTAINER, 1001, true, 0, 0, 0, 0)
                        .limitName());
    }

    @Test
    void connectionCapIsCountedAgainstTheLimit() {
        assertNull(EndpointCaps.connection("endpoint e1", 63, 64, "max_connections_per_endpoint"));
        EndpointCaps.Refusal r = EndpointCaps.connection("endpoint e1", 64, 64, "max_connections_per_endpoint");
        assertEquals("Closing connection to endpoint e1 because it would exceed resource limit "
                + "(max_connections_per_endpoint=64)", r.message());
        assertEquals(64, r.limit());
    }
}
