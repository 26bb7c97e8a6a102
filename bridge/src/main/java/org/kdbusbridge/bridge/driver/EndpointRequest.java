package org.kdbusbridge.bridge.driver;

import java.util.List;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.endpoint.EndpointFilter;

/**
 * What the driver asks the host for when it makes an endpoint (Containers1.AddServer):
 * {@code where} a socket path, or null for one the bus picks in its containers directory;
 * {@code onlyUid} the one uid that may connect through it, or -1 for the bus's usual rules;
 * {@code creatorStopsListening} true: the creator's disconnect only stops the listener (the
 * Containers1 draft), false: it removes the endpoint with its connections (Endpoints1);
 * {@code lifetimeFd} an fd of the call, borrowed for the call's duration (the host dups it),
 * whose hang-up removes the endpoint, or -1. An endpoint with a lifetime fd outlives its
 * creator's connection.
 */
public record EndpointRequest(String where, EndpointFilter filter, List<String> options, Connection creator,
        long onlyUid, boolean creatorStopsListening, int lifetimeFd) {
    public EndpointRequest {
        options = List.copyOf(options);
    }

    /** The bound endpoint: its connect address and its socket file. */
    public record Bound(String address, String socketPath) { }
}
